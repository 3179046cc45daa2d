package io.hintgrpo.benchmarks;

import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.Presets;
import io.hintgrpo.engine.model.Sequence;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/** The two model configs every model-level benchmark runs at (its {@code config} param), and their inputs. */
final class BenchModels {
    private BenchModels() {}

    /** Shape of a training batch in the benchmarks: 8 sequences × 128 tokens. */
    static final int BATCH = 8, LENGTH = 128;

    /** "embedded": {@link Presets#embeddedDefault} (~3.6M); "25m": {@link Presets#small25m} (~26M). */
    static ModelConfig config(String name) {
        return switch (name) {
            case "embedded" -> Presets.embeddedDefault();
            case "25m" -> Presets.small25m();
            default -> throw new IllegalArgumentException("config must be embedded or 25m, got '" + name + "'");
        };
    }

    /** A model of that config on the cpu backend, initialised from seed 1. */
    static Model cpuModel(String name) {
        Model model = new Model(new CpuKernels(), config(name));
        model.initialize(1);
        return model;
    }

    /**
     * b random text sequences of len tokens (no modality placeholders), each next-token prediction
     * weighted 1/(b·(len−1)) so the loss is the mean.
     */
    static Batch textBatch(ModelConfig cfg, int b, int len, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        // placeholder ids sit at the top of the embedded vocabulary
        int textVocab = cfg.hasAudio() ? Math.min(cfg.audioTokenId(), cfg.visionTokenId()) : cfg.vocabSize();
        List<Sequence> seqs = new ArrayList<>();
        for (int s = 0; s < b; s++) {
            int[] ids = new int[len];
            float[] w = new float[len];
            for (int i = 0; i < len; i++) {
                ids[i] = rng.nextInt(textVocab);
                w[i] = 1f / (b * (len - 1));
            }
            seqs.add(new Sequence(ids, w, null, null));
        }
        return Batch.pack(cfg, seqs);
    }

    /** n uniform floats in [−0.5, 0.5): benchmark inputs must not be zeros (no shortcuts). */
    static float[] random(int n, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (rng.nextDouble() - 0.5);
        return x;
    }
}
