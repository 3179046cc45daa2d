package io.hintgrpo.trainer.format;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.Sequence;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.tokenizer.SpecialTokens;
import io.hintgrpo.trainer.tokenizer.Tokenizer;

/**
 * Utterances as model input: the prompt of {@link DcFormat} with one placeholder per feature frame
 * of each modality the model has (a modality it lacks is left out), and for SFT the teacher chain
 * as the response with loss weight 1 on every response token (end of turn included) and 0 on the
 * prompt.
 */
public final class Examples {
    private Examples() {}

    /** A training example: prompt ids, response ids, and the packed-ready sequence (prompt ++ response, weights, feature rows). */
    public record Sft(int[] promptIds, int[] responseIds, Sequence sequence) {}

    /** A generation input: the prompt ids and the sequence holding them and the feature rows (no weights). */
    public record Prompt(int[] promptIds, Sequence sequence) {}

    public static Prompt prompt(Utterance u, Tokenizer tok, ModelConfig cfg) {
        float[][] audio = cfg.hasAudio() ? u.audio() : null;
        float[][] vision = cfg.hasVision() ? u.vision() : null;
        checkPlaceholders(tok, cfg);
        String text = DcFormat.prompt(audio == null ? 0 : audio.length, vision == null ? 0 : vision.length, u.text());
        int[] ids = tok.encode(text);
        Sequence seq = new Sequence(ids, null, audio, vision);
        Batch.validate(cfg, seq, "utterance " + u.id());
        return new Prompt(ids, seq);
    }

    /**
     * The utterance's teacher chain ({@code cot}) as the response to its prompt. weights[t] weighs
     * predicting ids[t+1] (the engine's convention), so positions promptLength−1 … length−2 carry 1.
     */
    public static Sft sft(Utterance u, Tokenizer tok, ModelConfig cfg) {
        if (u.cot() == null) throw new BadInputException("utterance " + u.id(), "no teacher chain (cot) to train on");
        Prompt p = prompt(u, tok, cfg);
        int[] response = tok.encode(DcFormat.completion(u.cot()));
        int n = p.promptIds().length + response.length;
        int[] ids = new int[n];
        System.arraycopy(p.promptIds(), 0, ids, 0, p.promptIds().length);
        System.arraycopy(response, 0, ids, p.promptIds().length, response.length);
        float[] weights = new float[n];
        for (int t = p.promptIds().length - 1; t < n - 1; t++) weights[t] = 1f;
        Sequence seq = new Sequence(ids, weights, p.sequence().audio(), p.sequence().vision());
        Batch.validate(cfg, seq, "utterance " + u.id());
        return new Sft(p.promptIds(), response, seq);
    }

    /** The model's placeholder ids must be the tokenizer's, or features would land on the wrong tokens. */
    private static void checkPlaceholders(Tokenizer tok, ModelConfig cfg) {
        if (cfg.hasAudio() && tok.idOf(SpecialTokens.AUDIO) != cfg.audioTokenId())
            throw new BadInputException("config", "audio_token_id " + cfg.audioTokenId() + " is not the tokenizer's "
                    + SpecialTokens.AUDIO + " id " + tok.idOf(SpecialTokens.AUDIO));
        if (cfg.hasVision() && tok.idOf(SpecialTokens.VISION) != cfg.visionTokenId())
            throw new BadInputException("config", "vision_token_id " + cfg.visionTokenId() + " is not the tokenizer's "
                    + SpecialTokens.VISION + " id " + tok.idOf(SpecialTokens.VISION));
    }
}
