package io.hintgrpo.engine.model;

import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.Kernels;

import java.util.SplittableRandom;

/**
 * The Qwen2-style multimodal decoder: its config, the one contiguous parameter buffer on a
 * backend, and (added with the training step) gradients and the explicit forward/backward.
 */
public final class Model implements AutoCloseable {
    /** Standard deviation of the normal initialisation of matrices (HF initializer_range). */
    public static final double INIT_STD = 0.02;

    public final ModelConfig config;
    public final ParamLayout layout;
    public final Kernels kernels;
    public final Buf params;

    /** Allocates zeroed parameters; call {@link #initialize} or load a checkpoint into them. */
    public Model(Kernels kernels, ModelConfig config) {
        this.config = config;
        this.layout = new ParamLayout(config);
        this.kernels = kernels;
        this.params = kernels.allocF32(layout.size());
        kernels.fill(params, 0f);
    }

    /** Every tensor from the seed: matrices N(0, 0.02), biases 0, norm weights 1. */
    public void initialize(long seed) {
        for (ParamLayout.Entry e : layout.entries()) initialize(e.name(), seed);
    }

    /** One tensor from the seed; the values depend only on (seed, name), never on the others. */
    public void initialize(String name, long seed) {
        ParamLayout.Entry e = layout.get(name);
        float[] v = new float[Math.toIntExact(e.size())];
        if (name.endsWith("layernorm.weight") || name.equals("model.norm.weight")) {
            java.util.Arrays.fill(v, 1f);
        } else if (e.shape().length == 2) {
            SplittableRandom rng = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + name.hashCode());
            for (int i = 0; i < v.length; i += 2) {
                // Box-Muller: two normals per pair of uniforms
                double u1 = 1.0 - rng.nextDouble(), u2 = rng.nextDouble();
                double r = Math.sqrt(-2.0 * Math.log(u1)) * INIT_STD;
                v[i] = (float) (r * Math.cos(2 * Math.PI * u2));
                if (i + 1 < v.length) v[i + 1] = (float) (r * Math.sin(2 * Math.PI * u2));
            }
        }
        upload(name, v);
    }

    public Buf param(String name) {
        ParamLayout.Entry e = layout.get(name);
        return params.slice(e.offset(), e.size());
    }

    public float[] download(String name) {
        Buf b = param(name);
        float[] v = new float[Math.toIntExact(b.length)];
        kernels.download(b, v);
        return v;
    }

    public void upload(String name, float[] values) {
        Buf b = param(name);
        if (values.length != b.length)
            throw new IllegalArgumentException(name + ": expected " + b.length + " values, got " + values.length);
        kernels.upload(b, values);
    }

    /** The LM head matrix: lm_head.weight, or the embedding when tied. */
    public String lmHeadName() {
        return config.tieWordEmbeddings() ? "model.embed_tokens.weight" : "lm_head.weight";
    }

    @Override
    public void close() {
        kernels.free(params);
    }
}
