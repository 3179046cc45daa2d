package io.hintgrpo.engine.model;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/** Small configs and random batches shared by the model tests. */
public final class TestModels {
    private TestModels() {}

    /** Untied head, GQA 4/2, no modalities. */
    public static ModelConfig textConfig() {
        return ModelConfig.parse("""
                {"hidden_size": 16, "intermediate_size": 24, "num_attention_heads": 4, "num_key_value_heads": 2,
                 "num_hidden_layers": 2, "vocab_size": 37, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
                 "tie_word_embeddings": false, "max_position_embeddings": 64}""", "test");
    }

    /** Untied head, GQA 4/2, head dim 16: the smallest config whose BF16 attention runs on {@code Kernels.attentionBf16}. */
    public static ModelConfig tensorCoreAttentionConfig() {
        return ModelConfig.parse("""
                {"hidden_size": 64, "intermediate_size": 48, "num_attention_heads": 4, "num_key_value_heads": 2,
                 "num_hidden_layers": 2, "vocab_size": 37, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
                 "tie_word_embeddings": false, "max_position_embeddings": 128}""", "test");
    }

    /** Tied head, GQA 6/2, audio through an MLP projector and vision through a linear one. */
    public static ModelConfig multimodalConfig(String projector) {
        return ModelConfig.parse("""
                {"hidden_size": 24, "intermediate_size": 40, "num_attention_heads": 6, "num_key_value_heads": 2,
                 "num_hidden_layers": 2, "vocab_size": 41, "rms_norm_eps": 1e-5, "rope_theta": 1000000.0,
                 "tie_word_embeddings": true, "max_position_embeddings": 64,
                 "audio_feature_size": 5, "vision_feature_size": 7, "audio_token_id": 39, "vision_token_id": 40,
                 "projector_type": "%s"}""".formatted(projector), "test");
    }

    /** Sequences of unequal lengths with signed weights and, where the config has them, modality rows. */
    public static List<Sequence> randomSequences(ModelConfig cfg, SplittableRandom rng, int... lengths) {
        List<Sequence> seqs = new ArrayList<>();
        for (int len : lengths) {
            int[] ids = new int[len];
            float[] w = new float[len];
            int nAudio = 0, nVision = 0;
            for (int i = 0; i < len; i++) {
                int special = rng.nextInt(5);
                if (cfg.hasAudio() && special == 0 && i > 0) { ids[i] = cfg.audioTokenId(); nAudio++; }
                else if (cfg.hasVision() && special == 1 && i > 0) { ids[i] = cfg.visionTokenId(); nVision++; }
                else ids[i] = rng.nextInt(cfg.vocabSize() - 2);
                w[i] = (float) rng.nextGaussian();
            }
            float[][] audio = rows(rng, nAudio, cfg.audioFeatureSize());
            float[][] vision = rows(rng, nVision, cfg.visionFeatureSize());
            seqs.add(new Sequence(ids, w, nAudio > 0 ? audio : null, nVision > 0 ? vision : null));
        }
        return seqs;
    }

    private static float[][] rows(SplittableRandom rng, int n, int dim) {
        float[][] r = new float[n][dim];
        for (float[] row : r) for (int j = 0; j < dim; j++) row[j] = (float) rng.nextGaussian();
        return r;
    }

    /** Every B of an adapter N(0, std²) from the seed (so every adapter does something and A has a gradient). */
    public static void randomizeLoraB(Lora lora, long seed, double std) {
        SplittableRandom rng = new SplittableRandom(seed);
        for (ParamLayout.Entry e : lora.layout.entries()) {
            if (!e.name().endsWith("lora_B.weight")) continue;
            float[] v = new float[Math.toIntExact(e.size())];
            for (int i = 0; i < v.length; i++) v[i] = (float) (std * rng.nextGaussian());
            lora.upload(e.name(), v);
        }
    }

    /** A cpu model with seeded weights and perturbed norms and biases (so their gradients are exercised). */
    public static Model perturbed(ModelConfig cfg, long seed) {
        Model m = new Model(new io.hintgrpo.engine.cpu.CpuKernels(), cfg);
        m.initialize(seed);
        SplittableRandom rng = new SplittableRandom(seed + 1);
        for (ParamLayout.Entry e : m.layout.entries()) {
            if (e.shape().length == 1) {
                float[] v = m.download(e.name());
                for (int i = 0; i < v.length; i++) v[i] += (float) (0.1 * rng.nextGaussian());
                m.upload(e.name(), v);
            }
        }
        return m;
    }
}
