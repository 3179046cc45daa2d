package io.hintgrpo.trainer.data;

import io.hintgrpo.trainer.format.DcFormat;
import io.hintgrpo.trainer.format.Polarity;

import java.util.ArrayList;
import java.util.List;

/**
 * The synthetic teacher: writes a Discrimination-Calibration chain from an utterance's latents.
 * The disc phase names the polarity, then the evidence of each modality (the words, the voice, the
 * face) and which of them wins; the calib phase reasons from energy and expression strength to an
 * intensity; the answer is the score. Every word it can write is listed in {@link #vocabularyTexts}.
 */
final class TeacherChains {
    private TeacherChains() {}

    /**
     * What the non-text modalities show: the valence on the face and in the voice (−3…3), arousal
     * (0…1, drives energy) and expressiveness (0 = flat delivery, 1 = laughing).
     */
    record Cues(float faceValence, float voiceValence, float arousal, float expressiveness) {
        /** The cues of an utterance whose face and voice match its valence. */
        static Cues congruent(float valence) {
            float arousal = Math.abs(valence) / 3f;
            return new Cues(valence, valence, arousal, 0.3f + 0.6f * arousal);
        }
    }

    private static final String VOICE_FLAT = "the voice is flat", VOICE_LAUGHING = "the voice is laughing",
            VOICE_WARM_LIVELY = "the voice is warm and lively", VOICE_WARM = "the voice is warm",
            VOICE_TENSE = "the voice is tense", VOICE_CALM = "the voice is calm";
    private static final String FACE_BROAD_SMILE = "the face shows a broad smile", FACE_SMILE = "the face shows a smile",
            FACE_DEEP_FROWN = "the face shows a deep frown", FACE_FROWN = "the face shows a frown",
            FACE_NEUTRAL = "the face is neutral";
    private static final String AGREE = "the cues agree",
            DEADPAN_WINS = "the flat voice and neutral face outweigh the words",
            FACE_VOICE_WIN = "the face and voice outweigh the words";
    private static final List<String> ENERGY = List.of("low", "moderate", "high");
    private static final List<String> EXPRESSION = List.of("faint", "clear", "strong");
    private static final List<String> INTENSITY = List.of("slight", "mild", "clear", "strong");

    /**
     * A chain claiming {@code polarity} and {@code score} for an utterance whose words are
     * {@code phrase} (read by the lexicon as {@code textClass}) and whose face and voice show {@code cues}.
     */
    static String render(Polarity polarity, float score, String phrase, Polarity textClass, Cues cues) {
        String resolution = textClass == polarity ? AGREE
                : polarity == Polarity.NEUTRAL ? DEADPAN_WINS : FACE_VOICE_WIN;
        String evidence = "the words are " + textClass.word() + " (" + phrase + "); "
                + voice(cues) + " and " + face(cues) + "; " + resolution + ".";
        float magnitude = Math.abs(score);
        String calibration = "the energy is " + ENERGY.get(cues.arousal() < 0.25f ? 0 : cues.arousal() < 0.6f ? 1 : 2)
                + " and the expression is " + EXPRESSION.get(Math.abs(cues.faceValence()) < 0.6f ? 0 : Math.abs(cues.faceValence()) < 2f ? 1 : 2)
                + ", so the intensity is " + INTENSITY.get(magnitude < 0.6f ? 0 : magnitude < 1.5f ? 1 : magnitude < 2.3f ? 2 : 3)
                + ": about " + DcFormat.formatScore(magnitude) + " of 3.";
        return DcFormat.response(polarity, evidence, calibration, score);
    }

    private static String voice(Cues c) {
        if (c.expressiveness() < 0.2f) return VOICE_FLAT;
        if (c.expressiveness() > 0.9f) return VOICE_LAUGHING;
        if (c.voiceValence() >= 1f) return c.arousal() > 0.5f ? VOICE_WARM_LIVELY : VOICE_WARM;
        if (c.voiceValence() <= -1f) return VOICE_TENSE;
        return VOICE_CALM;
    }

    private static String face(Cues c) {
        float v = c.faceValence();
        if (v >= 2f) return FACE_BROAD_SMILE;
        if (v >= 0.6f) return FACE_SMILE;
        if (v <= -2f) return FACE_DEEP_FROWN;
        if (v <= -0.6f) return FACE_FROWN;
        return FACE_NEUTRAL;
    }

    /** Every fixed fragment a chain can contain (the tokenizer's vocabulary is built from these). */
    static List<String> vocabularyTexts() {
        List<String> out = new ArrayList<>(List.of(VOICE_FLAT, VOICE_LAUGHING, VOICE_WARM_LIVELY, VOICE_WARM, VOICE_TENSE,
                VOICE_CALM, FACE_BROAD_SMILE, FACE_SMILE, FACE_DEEP_FROWN, FACE_FROWN, FACE_NEUTRAL,
                AGREE, DEADPAN_WINS, FACE_VOICE_WIN,
                "the words are (); and; .", "the energy is and the expression is, so the intensity is: about of 3."));
        out.addAll(ENERGY);
        out.addAll(EXPRESSION);
        out.addAll(INTENSITY);
        for (Polarity p : Polarity.values()) out.add(DcFormat.hintPrefix(p));
        return out;
    }
}
