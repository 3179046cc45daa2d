package io.hintgrpo.engine.model;

import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.Kernels.Gemm;
import io.hintgrpo.engine.model.LoraConfig.Target;

import java.util.SplittableRandom;

/**
 * A LoRA adapter attached to a {@link Model} ({@link Model#attachLora}): the trainable set of a
 * frozen base. One contiguous buffer with its own {@link ParamLayout} holds, per layer and
 * target, A [r, in] and B [out, r] (PEFT's names), and a trainable copy of the modality
 * projectors; {@link #grads} mirrors it (allocated on first use: an adapter that only serves has
 * none). Each target Linear computes y = W·x + s·B·(A·x) with s = alpha / r, the adapter's part on the side of the base GEMM ({@link #forward}); the backward
 * ({@link #backward}) writes only into this buffer's gradients and adds the adapter's share of
 * ∂L/∂x to the base's. All GEMMs go through {@link Model#gemm}, so the model's precision applies.
 */
public final class Lora implements Trainable {
    public final LoraConfig config;
    public final ParamLayout layout;
    private final Model model;
    private final Kernels kernels;
    private final Buf params;
    private Buf grads; // made by the first backward or grads() call
    private final float scaling;
    // [layer][target ordinal]: the A and B slices of params and of grads (null where not a target)
    private final Buf[][] a, b, gradA, gradB;

    /**
     * A from PEFT's default (torch kaiming_uniform_(a = √5) on [r, in]: U(−1/√in, 1/√in)), drawn
     * from (seed, name) alone; B = 0, so the adapted model starts as the base; the projectors copied
     * from the base.
     */
    Lora(Model model, LoraConfig config, long seed) {
        this.model = model;
        this.config = config;
        this.kernels = model.kernels;
        ModelConfig cfg = model.config;
        this.layout = new ParamLayout(cfg, config);
        this.scaling = config.scaling();
        params = kernels.allocF32(layout.size());
        kernels.fill(params, 0f);
        int layers = cfg.numLayers(), targets = Target.values().length;
        a = new Buf[layers][targets];
        b = new Buf[layers][targets];
        gradA = new Buf[layers][targets];
        gradB = new Buf[layers][targets];
        for (int l = 0; l < layers; l++) {
            for (Target t : config.targets()) {
                String an = ParamLayout.loraA(l, t), bn = ParamLayout.loraB(l, t);
                a[l][t.ordinal()] = slice(params, an);
                b[l][t.ordinal()] = slice(params, bn);
                ParamLayout.Entry e = layout.get(an);
                float[] v = new float[Math.toIntExact(e.size())];
                double bound = 1.0 / Math.sqrt(t.in(cfg));
                SplittableRandom rng = Model.initRandom(seed, an);
                for (int i = 0; i < v.length; i++) v[i] = (float) ((2 * rng.nextDouble() - 1) * bound);
                kernels.upload(a[l][t.ordinal()], v);
            }
        }
        for (ParamLayout.Entry e : layout.entries()) {
            if (!e.name().startsWith("multi_modal_projector.")) continue;
            Buf from = model.param(e.name()); // a frozen bf16 base's projector matrices are bf16: widened exactly
            if (from.type == Buf.Type.BF16) kernels.castBf16ToF32(param(e.name()), from, e.size());
            else kernels.copy(param(e.name()), from);
        }
    }

    private Buf slice(Buf buf, String name) {
        ParamLayout.Entry e = layout.get(name);
        return buf.slice(e.offset(), e.size());
    }

    // ---- the trainable set ----

    @Override
    public ParamLayout layout() {
        return layout;
    }

    /** Adapters and projectors, one contiguous buffer in {@link #layout}. */
    @Override
    public Buf params() {
        return params;
    }

    /** Their gradients, same layout; {@link Model#forwardBackward} adds into them while the adapter is attached. */
    @Override
    public Buf grads() {
        if (grads == null) {
            grads = kernels.allocF32(layout.size());
            kernels.fill(grads, 0f);
            for (int l = 0; l < model.config.numLayers(); l++) {
                for (Target t : config.targets()) {
                    gradA[l][t.ordinal()] = slice(grads, ParamLayout.loraA(l, t));
                    gradB[l][t.ordinal()] = slice(grads, ParamLayout.loraB(l, t));
                }
            }
        }
        return grads;
    }

    /** Nothing to refresh: adapter operands are read (or cast) afresh by every GEMM. */
    @Override
    public void paramsChanged() {}

    Buf param(String name) {
        return slice(params, name);
    }

    Buf grad(String name) {
        return slice(grads(), name);
    }

    public float[] download(String name) {
        return read(param(name));
    }

    public float[] downloadGrad(String name) {
        return read(grad(name));
    }

    /** Writes one tensor by its name in {@link #layout} (e.g. an A or B loaded from a PEFT file). */
    public void upload(String name, float[] values) {
        Buf p = param(name);
        if (values.length != p.length)
            throw new IllegalArgumentException(name + ": expected " + p.length + " values, got " + values.length);
        kernels.upload(p, values);
    }

    private float[] read(Buf buf) {
        float[] v = new float[Math.toIntExact(buf.length)];
        kernels.download(buf, v);
        return v;
    }

    // ---- forward and backward ----

    /** Floats per row of the scratch {@link #forward} and {@link #backward} take: u and g [r] and one module output [out]. */
    long scratchPerRow() {
        return scratchPerRow(model.config, config);
    }

    static long scratchPerRow(ModelConfig cfg, LoraConfig config) {
        int widest = 0;
        for (Target t : config.targets()) widest = Math.max(widest, t.out(cfg));
        return 2L * config.rank() + widest;
    }

    /**
     * y += s·(x·Aᵀ)·Bᵀ for each of the given targets that this adapter has: x [m, in] is the
     * module's input, y the output of the base GEMM that holds the module's columns (packed q|k|v
     * or gate|up, or a residual stream). scratch holds m · {@link #scratchPerRow} floats.
     */
    void forward(int l, Buf x, Buf y, int m, Buf scratch, Target... targets) {
        ModelConfig cfg = model.config;
        int r = config.rank();
        for (Target t : targets) {
            Buf at = a[l][t.ordinal()];
            if (at == null) continue;
            int in = t.in(cfg), out = t.out(cfg), width = t.packedWidth(cfg);
            Buf u = scratch.slice(0, (long) m * r), delta = scratch.slice(2L * m * r, (long) m * out);
            model.gemm(Gemm.NT, u, x, at, null, m, r, in, false);
            model.gemm(Gemm.NT, delta, u, b[l][t.ordinal()], null, m, out, r, false);
            kernels.addBlock(y.slice(t.column(cfg), (long) (m - 1) * width + out), width, delta, out, m, out, scaling);
        }
    }

    /**
     * The backward of {@link #forward} for the same targets, from dy (∂L/∂y, in the same packing as
     * y): with dys = s·dy of the module's columns, u = x·Aᵀ recomputed and g = dys·B,
     * dB += dysᵀ·u, dA += gᵀ·x, and dx += g·A (dx: ∂L/∂x, which the base's input gradient GEMM
     * wrote just before).
     */
    void backward(int l, Buf x, Buf dy, Buf dx, int m, Buf scratch, Target... targets) {
        ModelConfig cfg = model.config;
        int r = config.rank();
        grads(); // made by the first backward
        for (Target t : targets) {
            Buf at = a[l][t.ordinal()], bt = b[l][t.ordinal()];
            if (at == null) continue;
            int in = t.in(cfg), out = t.out(cfg), width = t.packedWidth(cfg);
            Buf u = scratch.slice(0, (long) m * r), g = scratch.slice((long) m * r, (long) m * r);
            Buf dys = scratch.slice(2L * m * r, (long) m * out);
            model.gemm(Gemm.NT, u, x, at, null, m, r, in, false);
            kernels.fill(dys, 0f);
            kernels.addBlock(dys, out, dy.slice(t.column(cfg), (long) (m - 1) * width + out), width, m, out, scaling);
            model.gemm(Gemm.TN, gradB[l][t.ordinal()], dys, u, null, out, r, m, true);
            model.gemm(Gemm.NN, g, dys, bt, null, m, r, out, false);
            model.gemm(Gemm.TN, gradA[l][t.ordinal()], g, x, null, r, in, m, true);
            model.gemm(Gemm.NN, dx, g, at, null, m, in, r, true);
        }
    }

    /** The base tensors a merge changes: every target's weight, and the projectors (their trained copies). */
    java.util.List<String> mergedNames() {
        java.util.List<String> names = new java.util.ArrayList<>();
        for (int l = 0; l < model.config.numLayers(); l++)
            for (Target t : config.targets()) names.add(t.path(l) + ".weight");
        for (ParamLayout.Entry e : layout.entries())
            if (e.name().startsWith("multi_modal_projector.")) names.add(e.name());
        return names;
    }

    /**
     * Base tensor {@code name} with this adapter merged, on the host in fp32: a target's weight
     * W [out, in] + s·B·A, a projector tensor the adapter's trained copy, any other tensor base as
     * it is. Each element sums its r products in a fixed order (k ascending), so the result does
     * not depend on the backend.
     */
    float[] merged(String name, float[] base) {
        if (name.startsWith("multi_modal_projector.") && layout.has(name)) return download(name);
        ModelConfig cfg = model.config;
        for (int l = 0; l < cfg.numLayers(); l++) {
            for (Target t : config.targets()) {
                if (!name.equals(t.path(l) + ".weight")) continue;
                int in = t.in(cfg), out = t.out(cfg), r = config.rank();
                float[] av = read(a[l][t.ordinal()]), bv = read(b[l][t.ordinal()]), w = base.clone();
                double[] row = new double[in];
                for (int o = 0; o < out; o++) {
                    java.util.Arrays.fill(row, 0);
                    for (int k = 0; k < r; k++) {
                        double bk = bv[o * r + k];
                        for (int i = 0; i < in; i++) row[i] += bk * av[k * in + i];
                    }
                    for (int i = 0; i < in; i++) w[o * in + i] += (float) (scaling * row[i]);
                }
                return w;
            }
        }
        return base;
    }

    void free() {
        kernels.free(params);
        if (grads != null) kernels.free(grads);
    }
}
