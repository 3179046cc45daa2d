package io.hintgrpo.trainer.format;

import java.util.Locale;

import static io.hintgrpo.trainer.tokenizer.SpecialTokens.*;

/**
 * The prompt template and the Discrimination-Calibration response grammar, defined once:
 *
 * <pre>
 * &lt;|im_start|&gt;user\n &lt;|audio|&gt;×T_a &lt;|vision|&gt;×T_v \n INSTRUCTION \n transcript: TEXT &lt;|im_end|&gt;\n&lt;|im_start|&gt;assistant\n
 * &lt;disc&gt;polarity: negative. EVIDENCE&lt;/disc&gt;&lt;calib&gt;INTENSITY&lt;/calib&gt;&lt;answer&gt;-1.8&lt;/answer&gt;&lt;|im_end|&gt;
 * </pre>
 *
 * The answer is a score in [-3, 3] with one decimal. {@link DcParser} reads responses back.
 */
public final class DcFormat {
    private DcFormat() {}

    public static final String INSTRUCTION =
            "rate the sentiment of this utterance from -3 to 3. first decide the polarity, then the intensity.";
    public static final String TRANSCRIPT_LABEL = "transcript: ";
    public static final String POLARITY_LABEL = "polarity: ";

    /** The user turn and the opening of the assistant turn; the response follows directly. */
    public static String prompt(int audioFrames, int visionFrames, String transcript) {
        StringBuilder sb = new StringBuilder();
        sb.append(IM_START).append("user\n");
        sb.append(AUDIO.repeat(audioFrames)).append(VISION.repeat(visionFrames));
        if (audioFrames + visionFrames > 0) sb.append('\n');
        sb.append(INSTRUCTION).append('\n');
        sb.append(TRANSCRIPT_LABEL).append(transcript);
        sb.append(IM_END).append('\n').append(IM_START).append("assistant\n");
        return sb.toString();
    }

    /** A full response (without the end of turn): disc phase with the polarity first, calibration, answer. */
    public static String response(Polarity polarity, String evidence, String calibration, double score) {
        return hintPrefix(polarity) + (evidence.isEmpty() ? "" : " " + evidence) + DISC_CLOSE
                + CALIB_OPEN + calibration + CALIB_CLOSE
                + ANSWER_OPEN + formatScore(score) + ANSWER_CLOSE;
    }

    /** The response as training text: the response and the end of turn. */
    public static String completion(String response) {
        return response + IM_END;
    }

    /** Opening of the discrimination phase naming the class; Hint-GRPO forces it on hard groups. */
    public static String hintPrefix(Polarity polarity) {
        return DISC_OPEN + POLARITY_LABEL + polarity.word() + ".";
    }

    /** A score as the answer writes it: one decimal, no "-0.0". */
    public static String formatScore(double score) {
        String s = String.format(Locale.ROOT, "%.1f", score);
        return s.equals("-0.0") ? "0.0" : s;
    }
}
