package io.hintgrpo.trainer.tokenizer;

import java.util.List;

/**
 * Every special token the trainer relies on, in one place: chat turns, modality placeholders and
 * the Discrimination-Calibration tags of the response grammar. Names follow Qwen2's chat tokens so
 * a real Qwen tokenizer already has the first three.
 */
public final class SpecialTokens {
    private SpecialTokens() {}

    /** Padding and end of text. */
    public static final String PAD = "<|endoftext|>";
    public static final String IM_START = "<|im_start|>";
    /** End of turn: generation stops here. */
    public static final String IM_END = "<|im_end|>";
    /** Placeholders whose embeddings the audio / vision projector outputs replace, one per frame. */
    public static final String AUDIO = "<|audio|>";
    public static final String VISION = "<|vision|>";
    public static final String DISC_OPEN = "<disc>", DISC_CLOSE = "</disc>";
    public static final String CALIB_OPEN = "<calib>", CALIB_CLOSE = "</calib>";
    public static final String ANSWER_OPEN = "<answer>", ANSWER_CLOSE = "</answer>";
    /** Unknown word of a word-level tokenizer (a byte-level BPE tokenizer has none). */
    public static final String UNK = "<unk>";

    /** The six tags of the DC response grammar, in the order they appear. */
    public static final List<String> DC_TAGS = List.of(DISC_OPEN, DISC_CLOSE, CALIB_OPEN, CALIB_CLOSE, ANSWER_OPEN, ANSWER_CLOSE);

    /** What a tokenizer must contain for the trainer (chat, placeholders, DC tags). */
    public static final List<String> REQUIRED = List.of(PAD, IM_START, IM_END, AUDIO, VISION,
            DISC_OPEN, DISC_CLOSE, CALIB_OPEN, CALIB_CLOSE, ANSWER_OPEN, ANSWER_CLOSE);
}
