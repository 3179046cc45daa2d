package io.hintgrpo.engine.model;

import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.Kernels;

/**
 * AdamW over the model's trainable set ({@link Model#trainable}, fixed when the optimizer is
 * made): the whole parameter buffer, or with LoRA the adapter's. Global gradient-norm clipping
 * folded into the update as a gradient scale, decoupled weight decay on the matrices only (the
 * layout puts them first, so that is two optimizer passes), bias correction. Moments mirror the
 * set's layout. The update is on the fp32 master weights in every {@link Precision}; a bf16
 * model's weight copy is refreshed from them lazily ({@link Model#paramsChanged}).
 */
public final class AdamW implements AutoCloseable {
    private final Model model;
    private final Trainable set;
    private final Buf m, v;
    private float lr;
    private final float beta1, beta2, eps, weightDecay;
    private int step;

    public AdamW(Model model, float lr, float beta1, float beta2, float eps, float weightDecay) {
        this.model = model;
        this.lr = lr;
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
        this.set = model.trainable();
        Kernels k = model.kernels;
        m = k.allocF32(set.layout().size());
        v = k.allocF32(set.layout().size());
        k.fill(m, 0f);
        k.fill(v, 0f);
    }

    public void setLearningRate(float lr) {
        this.lr = lr;
    }

    public int steps() {
        return step;
    }

    /** The layout of the set this optimizer trains: the model's, or its LoRA adapter's (names for {@link #downloadMoment}). */
    public ParamLayout layout() {
        return set.layout();
    }

    /** First ("exp_avg") or second ("exp_avg_sq") moment of one tensor of the trainable set, for checkpoints. */
    public float[] downloadMoment(String which, String name) {
        ParamLayout.Entry e = set.layout().get(name);
        float[] v = new float[Math.toIntExact(e.size())];
        model.kernels.download(moment(which).slice(e.offset(), e.size()), v);
        return v;
    }

    public void uploadMoment(String which, String name, float[] values) {
        ParamLayout.Entry e = set.layout().get(name);
        if (values.length != e.size())
            throw new IllegalArgumentException(which + "." + name + ": expected " + e.size() + " values, got " + values.length);
        model.kernels.upload(moment(which).slice(e.offset(), e.size()), values);
    }

    /** Restores the step count (bias correction) when resuming from a checkpoint. */
    public void setSteps(int steps) {
        if (steps < 0) throw new IllegalArgumentException("steps must be ≥ 0, got " + steps);
        this.step = steps;
    }

    private Buf moment(String which) {
        return switch (which) {
            case "exp_avg" -> m;
            case "exp_avg_sq" -> v;
            default -> throw new IllegalArgumentException("no moment named " + which + " (exp_avg or exp_avg_sq)");
        };
    }

    /**
     * Applies one update from the trainable set's gradients, clipped to a global norm of maxGradNorm
     * (≤ 0: no clipping). Returns the gradient norm before clipping. A non-finite norm (an
     * overflow or NaN somewhere in the gradients) changes nothing: no update, no step counted;
     * the caller sees the non-finite norm and counts the skipped step.
     */
    public double step(float maxGradNorm) {
        if (model.trainable() != set)
            throw new IllegalStateException("the model's trainable set changed since this optimizer was made (LoRA attached, merged or detached)");
        Kernels k = model.kernels;
        Buf grads = set.grads();
        long size = set.layout().size(), decayEnd = set.layout().decayEnd();
        double norm = Math.sqrt(k.sumSquares(grads, size));
        if (!Double.isFinite(norm)) return norm;
        float scale = maxGradNorm > 0 ? (float) Math.min(1.0, maxGradNorm / (norm + 1e-6)) : 1f;
        step++;
        Buf p = set.params();
        k.adamw(p.slice(0, decayEnd), grads.slice(0, decayEnd), m.slice(0, decayEnd), v.slice(0, decayEnd),
                decayEnd, lr, beta1, beta2, eps, weightDecay, scale, step);
        long rest = size - decayEnd;
        k.adamw(p.slice(decayEnd, rest), grads.slice(decayEnd, rest), m.slice(decayEnd, rest), v.slice(decayEnd, rest),
                rest, lr, beta1, beta2, eps, 0f, scale, step);
        set.paramsChanged(); // a bf16 model recasts its weight copy before the next GEMM
        return norm;
    }

    @Override
    public void close() {
        model.kernels.free(m);
        model.kernels.free(v);
    }
}
