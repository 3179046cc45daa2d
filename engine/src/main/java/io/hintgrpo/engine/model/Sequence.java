package io.hintgrpo.engine.model;

/**
 * One input sequence: token ids, the signed loss weight of each next-token prediction
 * (weights[t] weighs predicting ids[t+1] from ids[0..t]; the last entry is unused; null = all 0,
 * forward only), and the feature rows that replace its modality placeholder tokens, in order
 * (audio: one row per audio_token_id in ids, each of audio_feature_size floats; likewise vision;
 * null where the sequence has none).
 */
public record Sequence(int[] ids, float[] weights, float[][] audio, float[][] vision) {
    public static Sequence text(int[] ids) {
        return new Sequence(ids, null, null, null);
    }

    public int length() {
        return ids.length;
    }
}
