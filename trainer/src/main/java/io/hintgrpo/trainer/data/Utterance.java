package io.hintgrpo.trainer.data;

/**
 * One labelled utterance, as a line of a corpus JSONL file holds it: the transcript, the sentiment
 * label in [-3, 3], its domain, the audio and vision feature frames (T × D, null where absent), an
 * optional teacher Discrimination-Calibration chain ({@code cot}, null where absent) and an optional
 * subset ({@link #HARD} or {@link #EASY}, null where the corpus does not say): how the utterance was
 * made, e.g. words that disagree with the face and voice, independent of any teacher.
 */
public record Utterance(String id, String text, float label, String domain,
                        float[][] audio, float[][] vision, String cot, String subset) {
    public static final float LABEL_MIN = -3f, LABEL_MAX = 3f;
    public static final String HARD = "hard", EASY = "easy";

    public Utterance {
        if (subset != null && !subset.equals(HARD) && !subset.equals(EASY))
            throw new IllegalArgumentException("subset must be hard, easy or null, got " + subset);
    }

    /** Without a subset. */
    public Utterance(String id, String text, float label, String domain, float[][] audio, float[][] vision, String cot) {
        this(id, text, label, domain, audio, vision, cot, null);
    }

    public Utterance withCot(String newCot) {
        return new Utterance(id, text, label, domain, audio, vision, newCot, subset);
    }

    /** The same utterance with the named modalities' frames replaced by zeros (same shapes): the ablation input. */
    public Utterance withZeroed(boolean zeroAudio, boolean zeroVision) {
        return withZeroed(zeroAudio, zeroVision, -1, -1);
    }

    /**
     * The same, with the zero frames {@code audioDim} / {@code visionDim} wide (-1: as wide as the
     * frames), so that a model can run text-only on data of another dataset's feature widths.
     */
    public Utterance withZeroed(boolean zeroAudio, boolean zeroVision, int audioDim, int visionDim) {
        return new Utterance(id, text, label, domain,
                zeroAudio ? zerosLike(audio, audioDim) : audio, zeroVision ? zerosLike(vision, visionDim) : vision, cot, subset);
    }

    private static float[][] zerosLike(float[][] frames, int width) {
        if (frames == null) return null;
        float[][] out = new float[frames.length][];
        for (int t = 0; t < frames.length; t++) out[t] = new float[width < 0 ? frames[t].length : width];
        return out;
    }
}
