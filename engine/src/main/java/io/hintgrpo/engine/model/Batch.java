package io.hintgrpo.engine.model;

import io.hintgrpo.engine.BadInputException;

import java.util.List;

/**
 * Sequences packed for one forward: right-padded to the longest (b × t rows), positions
 * 0..len−1 per sequence, next-token targets (−1 where none) and loss weights per row, and the
 * modality feature rows with the row index each one replaces. Host arrays; the model uploads them.
 */
public final class Batch {
    public final int b, t;
    /** Token per row for the embedding lookup; −1 at modality placeholders (their rows are replaced). */
    public final int[] embedIds;
    public final int[] positions, lengths, targets;
    public final float[] weights;
    public final Modality audio, vision;

    /** Feature rows [n, dim] of one modality and the batch row each replaces. */
    public record Modality(int n, int dim, float[] features, int[] rows) {}

    private Batch(int b, int t, int[] embedIds, int[] positions, int[] lengths, int[] targets, float[] weights,
                  Modality audio, Modality vision) {
        this.b = b;
        this.t = t;
        this.embedIds = embedIds;
        this.positions = positions;
        this.lengths = lengths;
        this.targets = targets;
        this.weights = weights;
        this.audio = audio;
        this.vision = vision;
    }

    public int rows() {
        return b * t;
    }

    public static Batch pack(ModelConfig cfg, List<Sequence> seqs) {
        if (seqs.isEmpty()) throw new BadInputException("batch", "no sequences");
        int b = seqs.size(), t = 0;
        int nAudio = 0, nVision = 0;
        for (int s = 0; s < b; s++) {
            Sequence q = seqs.get(s);
            int[] slots = validate(cfg, q, "sequence " + s);
            t = Math.max(t, q.ids().length);
            nAudio += slots[0];
            nVision += slots[1];
        }
        int rows = b * t;
        int[] embedIds = new int[rows], positions = new int[rows], lengths = new int[b], targets = new int[rows];
        float[] weights = new float[rows];
        float[] audioF = new float[nAudio * cfg.audioFeatureSize()], visionF = new float[nVision * cfg.visionFeatureSize()];
        int[] audioRows = new int[nAudio], visionRows = new int[nVision];
        int a = 0, v = 0;
        for (int s = 0; s < b; s++) {
            Sequence q = seqs.get(s);
            int len = q.ids().length;
            lengths[s] = len;
            int ai = 0, vi = 0;
            for (int i = 0; i < t; i++) {
                int row = s * t + i;
                positions[row] = i;
                targets[row] = -1;
                if (i >= len) continue; // padding: token 0, no target, weight 0
                int id = q.ids()[i];
                embedIds[row] = id;
                if (i + 1 < len) {
                    targets[row] = q.ids()[i + 1];
                    if (q.weights() != null) weights[row] = q.weights()[i];
                }
                if (cfg.hasAudio() && id == cfg.audioTokenId()) {
                    embedIds[row] = -1;
                    System.arraycopy(q.audio()[ai++], 0, audioF, a * cfg.audioFeatureSize(), cfg.audioFeatureSize());
                    audioRows[a++] = row;
                } else if (cfg.hasVision() && id == cfg.visionTokenId()) {
                    embedIds[row] = -1;
                    System.arraycopy(q.vision()[vi++], 0, visionF, v * cfg.visionFeatureSize(), cfg.visionFeatureSize());
                    visionRows[v++] = row;
                }
            }
        }
        return new Batch(b, t, embedIds, positions, lengths, targets, weights,
                new Modality(nAudio, cfg.audioFeatureSize(), audioF, audioRows),
                new Modality(nVision, cfg.visionFeatureSize(), visionF, visionRows));
    }

    /**
     * Checks one sequence against the model (ids in the vocabulary, length, weights, one feature
     * row of the right width per placeholder); the error names {@code where}. Returns the number
     * of audio and vision rows.
     */
    public static int[] validate(ModelConfig cfg, Sequence q, String where) {
        if (q.ids() == null || q.ids().length == 0) throw new BadInputException(where, "no tokens");
        if (q.weights() != null && q.weights().length != q.ids().length)
            throw new BadInputException(where, q.weights().length + " weights for " + q.ids().length + " tokens");
        if (q.ids().length > cfg.maxPositionEmbeddings())
            throw new BadInputException(where, q.ids().length + " tokens exceed max_position_embeddings " + cfg.maxPositionEmbeddings());
        int audioSlots = 0, visionSlots = 0;
        for (int i = 0; i < q.ids().length; i++) {
            int id = q.ids()[i];
            if (id < 0 || id >= cfg.vocabSize())
                throw new BadInputException(where, "token " + i + " is " + id + ", outside the vocabulary [0, " + cfg.vocabSize() + ")");
            if (cfg.hasAudio() && id == cfg.audioTokenId()) audioSlots++;
            if (cfg.hasVision() && id == cfg.visionTokenId()) visionSlots++;
        }
        return new int[]{
                checkFeatures(where, "audio", q.audio(), audioSlots, cfg.hasAudio(), cfg.audioFeatureSize()),
                checkFeatures(where, "vision", q.vision(), visionSlots, cfg.hasVision(), cfg.visionFeatureSize())};
    }

    private static int checkFeatures(String where, String modality, float[][] features, int slots, boolean enabled, int dim) {
        int n = features == null ? 0 : features.length;
        if (!enabled) {
            if (n > 0) throw new BadInputException(where, modality + " features given but the model has no " + modality + " projector");
            return 0;
        }
        if (n != slots)
            throw new BadInputException(where, slots + " " + modality + " placeholder tokens but " + n + " " + modality + " feature rows");
        for (int r = 0; r < n; r++) {
            if (features[r] == null || features[r].length != dim)
                throw new BadInputException(where, modality + " row " + r + " has " + (features[r] == null ? 0 : features[r].length)
                        + " values, the model expects " + dim);
            for (float x : features[r])
                if (!Float.isFinite(x)) throw new BadInputException(where, modality + " row " + r + " has a non-finite value");
        }
        return n;
    }
}
