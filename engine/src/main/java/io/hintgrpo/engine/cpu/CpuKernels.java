package io.hintgrpo.engine.cpu;

import io.hintgrpo.engine.Bf16;
import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.Kernels.Gemm;

import java.util.Arrays;

/**
 * The pure-Java backend and the reference for every other: fp32, multithreaded through
 * {@link Parallel} with thread-count-independent task boundaries (bit-identical for any thread
 * count). Memory is a Java array per allocation (short[] of bit patterns for BF16).
 */
public final class CpuKernels implements Kernels {
    private final long logitChunkFloats;

    public CpuKernels() {
        this(1L << 22);
    }

    /** With LM-head chunks of at most this many logits (the default, 4M, stays in cache; tests take small ones to get many chunks). */
    public CpuKernels(long logitChunkFloats) {
        if (logitChunkFloats < 1) throw new IllegalArgumentException("logitChunkFloats must be ≥ 1, got " + logitChunkFloats);
        this.logitChunkFloats = logitChunkFloats;
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public long logitChunkFloats() {
        return logitChunkFloats;
    }

    // ---- memory ----

    @Override
    public Buf allocF32(long n) {
        return new Buf(new float[arrayLength(n)], Buf.Type.F32, 0, n);
    }

    @Override
    public Buf allocI32(long n) {
        return new Buf(new int[arrayLength(n)], Buf.Type.I32, 0, n);
    }

    @Override
    public Buf allocBf16(long n) {
        return new Buf(new short[arrayLength(n)], Buf.Type.BF16, 0, n);
    }

    private static int arrayLength(long n) {
        if (n < 0 || n > Integer.MAX_VALUE - 16)
            throw new IllegalArgumentException("cpu backend: cannot allocate " + n + " elements (Java arrays hold at most 2^31 − 17)");
        return (int) n;
    }

    @Override
    public void free(Buf buf) {
        // garbage collected
    }

    @Override
    public void upload(Buf dst, float[] src) {
        checkLength(dst, src.length);
        System.arraycopy(src, 0, f(dst), dst.off(), src.length);
    }

    @Override
    public void upload(Buf dst, int[] src) {
        checkLength(dst, src.length);
        System.arraycopy(src, 0, i(dst), dst.off(), src.length);
    }

    @Override
    public void upload(Buf dst, short[] src) {
        checkLength(dst, src.length);
        System.arraycopy(src, 0, s(dst), dst.off(), src.length);
    }

    @Override
    public void download(Buf src, float[] dst) {
        checkLength(src, dst.length);
        System.arraycopy(f(src), src.off(), dst, 0, dst.length);
    }

    @Override
    public void download(Buf src, int[] dst) {
        checkLength(src, dst.length);
        System.arraycopy(i(src), src.off(), dst, 0, dst.length);
    }

    @Override
    public void download(Buf src, short[] dst) {
        checkLength(src, dst.length);
        System.arraycopy(s(src), src.off(), dst, 0, dst.length);
    }

    private static void checkLength(Buf b, int n) {
        if (b.length != n) throw new IllegalArgumentException("buffer of " + b.length + " elements, array of " + n);
    }

    @Override
    public void fill(Buf dst, float value) {
        int from = dst.off(), to = from + (int) dst.length;
        switch (dst.type) {
            case F32 -> Arrays.fill(f(dst), from, to, value);
            case I32 -> Arrays.fill(i(dst), from, to, (int) value);
            case BF16 -> Arrays.fill(s(dst), from, to, Bf16.fromFloat(value));
        }
    }

    @Override
    public void copy(Buf dst, Buf src) {
        if (dst.length != src.length || dst.type != src.type)
            throw new IllegalArgumentException("copy " + src + " to " + dst);
        System.arraycopy(src.memory, src.off(), dst.memory, dst.off(), (int) src.length);
    }

    @Override
    public void synchronize() {
    }

    @Override
    public void close() {
    }

    static float[] f(Buf b) {
        if (!(b.memory instanceof float[] a)) throw new IllegalArgumentException("not a cpu F32 buffer: " + b);
        return a;
    }

    static int[] i(Buf b) {
        if (!(b.memory instanceof int[] a)) throw new IllegalArgumentException("not a cpu I32 buffer: " + b);
        return a;
    }

    static short[] s(Buf b) {
        if (!(b.memory instanceof short[] a)) throw new IllegalArgumentException("not a cpu BF16 buffer: " + b);
        return a;
    }

    // ---- precision ----

    @Override
    public void castF32ToBf16(Buf dst, Buf src, long n) {
        checkCount("castF32ToBf16", n, dst, src);
        short[] o = s(dst);
        float[] x = f(src);
        int oo = dst.off(), xo = src.off();
        int tasks = Parallel.tasksFor(n, 1 << 15);
        Parallel.forEach(tasks, task -> {
            int s = (int) (n * task / tasks), e = (int) (n * (task + 1) / tasks);
            for (int j = s; j < e; j++) o[oo + j] = Bf16.fromFloat(x[xo + j]);
        });
    }

    @Override
    public void castBf16ToF32(Buf dst, Buf src, long n) {
        checkCount("castBf16ToF32", n, dst, src);
        float[] o = f(dst);
        short[] x = s(src);
        int oo = dst.off(), xo = src.off();
        int tasks = Parallel.tasksFor(n, 1 << 15);
        Parallel.forEach(tasks, task -> {
            int s = (int) (n * task / tasks), e = (int) (n * (task + 1) / tasks);
            for (int j = s; j < e; j++) o[oo + j] = Bf16.toFloat(x[xo + j]);
        });
    }

    /** n ≥ 0 and within every buffer: a slice must not spill into its neighbours' elements. */
    private static void checkCount(String op, long n, Buf... bufs) {
        if (n < 0) throw new IllegalArgumentException(op + ": negative size " + n);
        for (Buf b : bufs)
            if (b.length < n) throw new IllegalArgumentException(op + ": " + b + " holds fewer than " + n + " elements");
    }

    // ---- embedding and modality rows ----

    @Override
    public void embedding(Buf out, Buf ids, Buf table, int m, int c) {
        float[] o = f(out), t = table.type == Buf.Type.BF16 ? null : f(table);
        short[] t16 = t == null ? s(table) : null;
        int[] id = i(ids);
        int oo = out.off(), io = ids.off(), to = table.off();
        long rows = table.length / c;
        Parallel.forEach(Parallel.tasksFor((long) m * c, 1 << 14), rowsTask(m, (long) m * c, 1 << 14, r -> {
            int token = id[io + r];
            if (token >= rows) throw new IllegalArgumentException("token id " + token + " ≥ vocabulary " + rows);
            if (token < 0) Arrays.fill(o, oo + r * c, oo + (r + 1) * c, 0f);
            else if (t != null) System.arraycopy(t, to + token * c, o, oo + r * c, c);
            else for (int j = 0; j < c; j++) o[oo + r * c + j] = Bf16.toFloat(t16[to + token * c + j]);
        }));
    }

    @Override
    public void embeddingBackward(Buf dtable, Buf dout, Buf ids, int m, int c) {
        float[] dt = f(dtable), d = f(dout);
        int[] id = i(ids);
        int dto = dtable.off(), dof = dout.off(), io = ids.off();
        // split by columns so each dtable element is summed by one task, rows in order
        int cols = 64, tasks = (c + cols - 1) / cols;
        Parallel.forEach(tasks, task -> {
            int c0 = task * cols, c1 = Math.min(c, c0 + cols);
            for (int r = 0; r < m; r++) {
                int token = id[io + r];
                if (token < 0) continue;
                int dst = dto + token * c, src = dof + r * c;
                for (int j = c0; j < c1; j++) dt[dst + j] += d[src + j];
            }
        });
    }

    @Override
    public void scatterRows(Buf out, Buf src, Buf rows, int n, int c) {
        float[] o = f(out), s = f(src);
        int[] r = i(rows);
        for (int k = 0; k < n; k++) System.arraycopy(s, src.off() + k * c, o, out.off() + r[rows.off() + k] * c, c);
    }

    @Override
    public void gatherRows(Buf out, Buf src, Buf rows, int n, int c) {
        float[] o = f(out), s = f(src);
        int[] r = i(rows);
        for (int k = 0; k < n; k++) System.arraycopy(s, src.off() + r[rows.off() + k] * c, o, out.off() + k * c, c);
    }

    // ---- dense ----

    @Override
    public void gemm(Gemm layout, Buf out, Buf a, Buf b, Buf bias, int m, int n, int k, boolean accumulate) {
        CpuGemm.gemm(layout, f(out), out.off(), f(a), a.off(), f(b), b.off(),
                bias == null ? null : f(bias), bias == null ? 0 : bias.off(), m, n, k, accumulate);
    }

    @Override
    public Buf prepareWeight(Buf w, int n, int k) {
        float[] p = CpuGemm.prepareNT(f(w), w.off(), n, k);
        return p == null ? null : new Buf(p, Buf.Type.F32, 0, p.length);
    }

    @Override
    public void gemmPrepared(Buf out, Buf a, Buf prepared, Buf bias, int m, int n, int k, boolean accumulate) {
        CpuGemm.gemmPrepared(f(out), out.off(), f(a), a.off(), f(prepared), bias == null ? null : f(bias), bias == null ? 0 : bias.off(),
                m, n, k, accumulate);
    }

    @Override
    public void gemmBf16(Gemm layout, Buf out, Buf a, Buf b, Buf bias, int m, int n, int k, boolean accumulate) {
        String op = "gemmBf16 " + layout;
        if (m < 0 || n < 0 || k < 0)
            throw new IllegalArgumentException(op + ": negative shape m=" + m + " n=" + n + " k=" + k);
        checkCount(op, (long) m * k, a);
        checkCount(op, (long) n * k, b);
        // bf16 → fp32 is exact, so this is the fp32 product of the very values the device multiplies
        float[] wa = widen(a, Math.toIntExact((long) m * k)), wb = widen(b, Math.toIntExact((long) n * k));
        CpuGemm.gemm(layout, f(out), out.off(), wa, 0, wb, 0,
                bias == null ? null : f(bias), bias == null ? 0 : bias.off(), m, n, k, accumulate);
    }

    /** The first n elements of a BF16 buffer as floats. */
    private static float[] widen(Buf src, int n) {
        short[] x = s(src);
        int xo = src.off();
        float[] o = new float[n];
        int tasks = Parallel.tasksFor(n, 1 << 15);
        Parallel.forEach(tasks, task -> {
            int s = (int) ((long) n * task / tasks), e = (int) ((long) n * (task + 1) / tasks);
            for (int j = s; j < e; j++) o[j] = Bf16.toFloat(x[xo + j]);
        });
        return o;
    }

    @Override
    public void biasBackward(Buf dbias, Buf dout, int m, int n) {
        float[] db = f(dbias), d = f(dout);
        int dbo = dbias.off(), dof = dout.off();
        int cols = 64, tasks = (n + cols - 1) / cols;
        Parallel.forEach(tasks, task -> {
            int c0 = task * cols, c1 = Math.min(n, c0 + cols);
            float[] acc = new float[c1 - c0];
            for (int r = 0; r < m; r++)
                for (int j = c0; j < c1; j++) acc[j - c0] += d[dof + r * n + j];
            for (int j = c0; j < c1; j++) db[dbo + j] += acc[j - c0];
        });
    }

    @Override
    public void add(Buf out, Buf a, Buf b, long n) {
        float[] o = f(out), x = f(a), y = f(b);
        int oo = out.off(), xo = a.off(), yo = b.off();
        int chunk = 1 << 15, tasks = Parallel.tasksFor(n, chunk);
        Parallel.forEach(tasks, task -> {
            int s = (int) (n * task / tasks), e = (int) (n * (task + 1) / tasks);
            for (int j = s; j < e; j++) o[oo + j] = x[xo + j] + y[yo + j];
        });
    }

    @Override
    public void addBlock(Buf dst, int ldDst, Buf src, int ldSrc, int m, int n, float alpha) {
        if (ldDst < n || ldSrc < n)
            throw new IllegalArgumentException("addBlock: row strides " + ldDst + ", " + ldSrc + " must be ≥ n = " + n);
        float[] d = f(dst), s = f(src);
        int dOff = dst.off(), sOff = src.off();
        Parallel.forEach(Parallel.tasksFor((long) m * n, 1 << 15), rowsTask(m, (long) m * n, 1 << 15, r -> {
            int di = dOff + r * ldDst, si = sOff + r * ldSrc;
            for (int j = 0; j < n; j++) d[di + j] += alpha * s[si + j];
        }));
    }

    // ---- norm, activations ----

    @Override
    public void rmsnorm(Buf out, Buf rstd, Buf x, Buf weight, int m, int c, float eps) {
        float[] o = f(out), rs = f(rstd), xs = f(x), w = f(weight);
        int oo = out.off(), ro = rstd.off(), xo = x.off(), wo = weight.off();
        Parallel.forEach(Parallel.tasksFor((long) m * c, 1 << 14), rowsTask(m, (long) m * c, 1 << 14, r -> {
            float ss = 0f;
            for (int j = 0; j < c; j++) {
                float v = xs[xo + r * c + j];
                ss += v * v;
            }
            float inv = (float) (1.0 / Math.sqrt(ss / c + eps));
            rs[ro + r] = inv;
            for (int j = 0; j < c; j++) o[oo + r * c + j] = w[wo + j] * (xs[xo + r * c + j] * inv);
        }));
    }

    @Override
    public void rmsnormBackward(Buf dx, Buf dweight, Buf dout, Buf x, Buf weight, Buf rstd, int m, int c) {
        float[] dxs = f(dx), dy = f(dout), xs = f(x), w = f(weight), rs = f(rstd);
        int dxo = dx.off(), dyo = dout.off(), xo = x.off(), wo = weight.off(), ro = rstd.off();
        Parallel.forEach(Parallel.tasksFor((long) m * c, 1 << 14), rowsTask(m, (long) m * c, 1 << 14, r -> {
            float inv = rs[ro + r];
            float dot = 0f; // Σ_j w_j dy_j x_j
            for (int j = 0; j < c; j++) dot += w[wo + j] * dy[dyo + r * c + j] * xs[xo + r * c + j];
            float k = dot * inv * inv * inv / c;
            for (int j = 0; j < c; j++)
                dxs[dxo + r * c + j] += inv * w[wo + j] * dy[dyo + r * c + j] - k * xs[xo + r * c + j];
        }));
        if (dweight == null) return;
        float[] dw = f(dweight);
        int dwo = dweight.off();
        int cols = 64, tasks = (c + cols - 1) / cols;
        Parallel.forEach(tasks, task -> {
            int c0 = task * cols, c1 = Math.min(c, c0 + cols);
            float[] acc = new float[c1 - c0];
            for (int r = 0; r < m; r++) {
                float inv = rs[ro + r];
                for (int j = c0; j < c1; j++) acc[j - c0] += dy[dyo + r * c + j] * (xs[xo + r * c + j] * inv);
            }
            for (int j = c0; j < c1; j++) dw[dwo + j] += acc[j - c0];
        });
    }

    @Override
    public void swiglu(Buf out, Buf gateUp, int m, int inter) {
        float[] o = f(out), gu = f(gateUp);
        int oo = out.off(), go = gateUp.off();
        Parallel.forEach(Parallel.tasksFor((long) m * inter, 1 << 14), rowsTask(m, (long) m * inter, 1 << 14, r -> {
            int g = go + r * 2 * inter, y = oo + r * inter;
            if (CpuGemm.vectorized()) VectorOps.swiglu(gu, g, o, y, inter);
            else swigluScalar(gu, g, o, y, 0, inter);
        }));
    }

    /** out[j] = silu(g_j)·u_j for j in [j0, inter), g_j at gu[g + j], u_j at gu[g + inter + j]; silu(g) = g / (1 + e^−g). */
    static void swigluScalar(float[] gu, int g, float[] o, int y, int j0, int inter) {
        for (int j = j0; j < inter; j++) o[y + j] = gu[g + j] / (1f + Softmax.exp(-gu[g + j])) * gu[g + inter + j];
    }

    @Override
    public void swigluBackward(Buf dgateUp, Buf dout, Buf gateUp, int m, int inter) {
        float[] dgu = f(dgateUp), d = f(dout), gu = f(gateUp);
        int dgo = dgateUp.off(), dof = dout.off(), go = gateUp.off();
        Parallel.forEach(Parallel.tasksFor((long) m * inter, 1 << 14), rowsTask(m, (long) m * inter, 1 << 14, r -> {
            int g = go + r * 2 * inter, dg = dgo + r * 2 * inter, dy = dof + r * inter;
            if (CpuGemm.vectorized()) VectorOps.swigluBackward(gu, g, d, dy, dgu, dg, inter);
            else swigluBackwardScalar(gu, g, d, dy, dgu, dg, 0, inter);
        }));
    }

    /** ∂gate = dy·u·σ(g)·(1 + g·(1 − σ(g))), ∂up = dy·g·σ(g) for j in [j0, inter) (layouts as {@link #swigluScalar}). */
    static void swigluBackwardScalar(float[] gu, int g, float[] d, int dy, float[] dgu, int dg, int j0, int inter) {
        for (int j = j0; j < inter; j++) {
            float gj = gu[g + j], u = gu[g + inter + j], dyj = d[dy + j];
            float sig = 1f / (1f + Softmax.exp(-gj));
            dgu[dg + j] = dyj * u * sig * (1f + gj * (1f - sig));
            dgu[dg + inter + j] = dyj * gj * sig;
        }
    }

    private static final float GELU_K = 0.7978845608028654f; // sqrt(2/pi)

    @Override
    public void gelu(Buf out, Buf x, long n) {
        float[] o = f(out), xs = f(x);
        int oo = out.off(), xo = x.off();
        int tasks = Parallel.tasksFor(n, 1 << 14);
        Parallel.forEach(tasks, task -> {
            int s = (int) (n * task / tasks), e = (int) (n * (task + 1) / tasks);
            for (int j = s; j < e; j++) {
                float v = xs[xo + j];
                float t = (float) Math.tanh(GELU_K * (v + 0.044715f * v * v * v));
                o[oo + j] = 0.5f * v * (1f + t);
            }
        });
    }

    @Override
    public void geluBackward(Buf dx, Buf dout, Buf x, long n) {
        float[] dxs = f(dx), d = f(dout), xs = f(x);
        int dxo = dx.off(), dof = dout.off(), xo = x.off();
        int tasks = Parallel.tasksFor(n, 1 << 14);
        Parallel.forEach(tasks, task -> {
            int s = (int) (n * task / tasks), e = (int) (n * (task + 1) / tasks);
            for (int j = s; j < e; j++) {
                float v = xs[xo + j];
                float t = (float) Math.tanh(GELU_K * (v + 0.044715f * v * v * v));
                float dt = GELU_K * (1f + 3f * 0.044715f * v * v);
                dxs[dxo + j] = d[dof + j] * (0.5f * (1f + t) + 0.5f * v * (1f - t * t) * dt);
            }
        });
    }

    // ---- attention ----

    @Override
    public void rope(Buf qkv, Buf positions, int m, int heads, int kvHeads, int headDim, float theta, boolean inverse) {
        float[] x = f(qkv);
        int[] pos = i(positions);
        int xo = qkv.off(), po = positions.off();
        int half = headDim / 2, width = (heads + 2 * kvHeads) * headDim, rotated = heads + kvHeads;
        float[] invFreq = ropeInverseFrequencies(headDim, theta);
        Parallel.forEach(Parallel.tasksFor((long) m * width, 1 << 14), rowsTask(m, (long) m * width, 1 << 14, r -> {
            float p = pos[po + r];
            for (int i = 0; i < half; i++) {
                float angle = p * invFreq[i];
                float cos = (float) Math.cos(angle), sin = (float) Math.sin(angle);
                if (inverse) sin = -sin;
                for (int h = 0; h < rotated; h++) {
                    int base = xo + r * width + h * headDim;
                    float x1 = x[base + i], x2 = x[base + i + half];
                    x[base + i] = x1 * cos - x2 * sin;
                    x[base + i + half] = x2 * cos + x1 * sin;
                }
            }
        }));
    }

    /** theta^(-2i/d) in fp32, as HF computes it (also ONNX export's rope tables). */
    public static float[] ropeInverseFrequencies(int headDim, float theta) {
        float[] inv = new float[headDim / 2];
        for (int i = 0; i < inv.length; i++) inv[i] = (float) (1.0 / Math.pow(theta, (float) (2 * i) / headDim));
        return inv;
    }

    /*
     * Attention runs per (sequence, head) as GEMMs on the head's rows gathered into contiguous
     * scratch (the n valid rows of q, k, v): scores S = Q·Kᵀ over the full n×n square (the masked
     * half costs less than the row-at-a-time dot products it replaces), a causal softmax per row,
     * O = P·V. The backward recomputes P from the forward's log-sum-exp. Rows past a sequence's
     * length are zero (and their lse 0). Every GEMM is serial inside its task (Parallel runs nested
     * calls inline), so results do not depend on the thread count.
     */

    /** Per-thread scratch of the attention GEMMs, grown to the largest (t, headDim) seen. */
    private static final class AttentionScratch {
        float[] q = new float[0], k = q, v = q, dy = q, o = q, dq = q, dk = q, dv = q, p = q, dp = q; // o: the forward's P·V

        static final ThreadLocal<AttentionScratch> LOCAL = ThreadLocal.withInitial(AttentionScratch::new);

        static AttentionScratch get(int t, int headDim) {
            AttentionScratch w = LOCAL.get();
            int rows = t * headDim, square = t * t;
            if (w.q.length < rows) {
                w.q = new float[rows]; w.k = new float[rows]; w.v = new float[rows]; w.dy = new float[rows];
                w.o = new float[rows]; w.dq = new float[rows]; w.dk = new float[rows]; w.dv = new float[rows];
            }
            if (w.p.length < square) {
                w.p = new float[square];
                w.dp = new float[square];
            }
            return w;
        }
    }

    /** dst[r·d + i] = src[so + r·stride + i] for n rows of d: one head's slice of interleaved rows, made contiguous. */
    private static void gatherRows(float[] src, int so, int stride, int n, int d, float[] dst) {
        for (int r = 0; r < n; r++) System.arraycopy(src, so + r * stride, dst, r * d, d);
    }

    /** The inverse of {@link #gatherRows}, then zeros in rows [n, t) of the slice. */
    private static void scatterRows(float[] src, int n, int t, int d, float[] dst, int dOff, int stride) {
        for (int r = 0; r < n; r++) System.arraycopy(src, r * d, dst, dOff + r * stride, d);
        for (int r = n; r < t; r++) Arrays.fill(dst, dOff + r * stride, dOff + r * stride + d, 0f);
    }

    @Override
    public void attention(Buf out, Buf lse, Buf qkv, Buf lengths, int b, int t, int heads, int kvHeads, int headDim) {
        float[] o = f(out), l = f(lse), x = f(qkv);
        int[] len = i(lengths);
        int oo = out.off(), lo = lse.off(), xo = qkv.off(), leno = lengths.off();
        int width = (heads + 2 * kvHeads) * headDim, group = heads / kvHeads, oWidth = heads * headDim;
        float scale = (float) (1.0 / Math.sqrt(headDim));
        Parallel.forEach(b * heads, task -> {
            int s = task / heads, h = task % heads, g = h / group;
            int n = len[leno + s], seq = xo + s * t * width, l0 = lo + (s * heads + h) * t;
            AttentionScratch w = AttentionScratch.get(t, headDim);
            gatherRows(x, seq + h * headDim, width, n, headDim, w.q);
            gatherRows(x, seq + (heads + g) * headDim, width, n, headDim, w.k);
            gatherRows(x, seq + (heads + kvHeads + g) * headDim, width, n, headDim, w.v);
            CpuGemm.gemm(Gemm.NT, w.p, 0, w.q, 0, w.k, 0, null, 0, n, n, headDim, false);
            for (int r = 0; r < n; r++) l[l0 + r] = Softmax.causalRow(w.p, r * n, r + 1, n, scale);
            Arrays.fill(l, l0 + n, l0 + t, 0f);
            CpuGemm.gemm(Gemm.NN, w.o, 0, w.p, 0, w.v, 0, null, 0, n, headDim, n, false);
            scatterRows(w.o, n, t, headDim, o, oo + s * t * oWidth + h * headDim, oWidth);
        });
    }

    /** The twin of the bf16 tensor-core forward: q, k, v widened exactly to fp32, then {@link #attention}. */
    @Override
    public void attentionBf16(Buf out, Buf lse, Buf qkvBf16, Buf lengths, int b, int t, int heads, int kvHeads, int headDim) {
        attention(out, lse, widenQkv("attentionBf16", qkvBf16, b, t, heads, kvHeads, headDim), lengths, b, t, heads, kvHeads, headDim);
    }

    @Override
    public void attentionBackwardBf16(Buf dqkv, Buf dout, Buf qkvBf16, Buf out, Buf lse, Buf lengths,
                                      int b, int t, int heads, int kvHeads, int headDim) {
        attentionBackward(dqkv, dout, widenQkv("attentionBackwardBf16", qkvBf16, b, t, heads, kvHeads, headDim), out, lse, lengths,
                b, t, heads, kvHeads, headDim);
    }

    /** The bf16 attention ops' shape checks (the cuda kernels' limits, kept on every backend) and their exactly widened qkv. */
    private Buf widenQkv(String op, Buf qkvBf16, int b, int t, int heads, int kvHeads, int headDim) {
        if (b < 0 || t < 0) throw new IllegalArgumentException(op + ": negative size b=" + b + " t=" + t);
        if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0)
            throw new IllegalArgumentException(op + ": heads (" + heads + ") must be a positive multiple of kvHeads (" + kvHeads + ")");
        if (headDim <= 0 || headDim > 128 || headDim % 16 != 0)
            throw new IllegalArgumentException(op + ": headDim must be a multiple of 16 (one mma k-step) in [16, 128], got " + headDim);
        int n = Math.toIntExact((long) b * t * (heads + 2 * kvHeads) * headDim);
        checkCount(op, n, qkvBf16);
        return new Buf(widen(qkvBf16, n), Buf.Type.F32, 0, n);
    }

    @Override
    public void attentionBackward(Buf dqkv, Buf dout, Buf qkv, Buf out, Buf lse, Buf lengths,
                                  int b, int t, int heads, int kvHeads, int headDim) {
        // out is not read: δ = Σ_d dout·out comes as Σ_j p_j·dp_j from the recomputed weights (Softmax.causalBackwardRow)
        float[] dx = f(dqkv), dy = f(dout), x = f(qkv), l = f(lse);
        int[] len = i(lengths);
        int dxo = dqkv.off(), dyo = dout.off(), xo = qkv.off(), lo = lse.off(), leno = lengths.off();
        int width = (heads + 2 * kvHeads) * headDim, group = heads / kvHeads, oWidth = heads * headDim;
        float scale = (float) (1.0 / Math.sqrt(headDim));
        // one task per (sequence, kv head): it owns dk/dv of that head and dq of its query heads
        Parallel.forEach(b * kvHeads, task -> {
            int s = task / kvHeads, g = task % kvHeads, n = len[leno + s];
            int seq = xo + s * t * width, seqDx = dxo + s * t * width;
            AttentionScratch w = AttentionScratch.get(t, headDim);
            gatherRows(x, seq + (heads + g) * headDim, width, n, headDim, w.k);
            gatherRows(x, seq + (heads + kvHeads + g) * headDim, width, n, headDim, w.v);
            for (int h = g * group; h < (g + 1) * group; h++) {
                int l0 = lo + (s * heads + h) * t, yo = s * t * oWidth + h * headDim;
                gatherRows(x, seq + h * headDim, width, n, headDim, w.q);
                gatherRows(dy, dyo + yo, oWidth, n, headDim, w.dy);
                CpuGemm.gemm(Gemm.NT, w.p, 0, w.q, 0, w.k, 0, null, 0, n, n, headDim, false);  // scores
                CpuGemm.gemm(Gemm.NT, w.dp, 0, w.dy, 0, w.v, 0, null, 0, n, n, headDim, false); // ∂L/∂P
                for (int r = 0; r < n; r++) Softmax.causalBackwardRow(w.p, w.dp, r * n, r + 1, n, scale, l[l0 + r]);
                boolean more = h > g * group; // the group's later heads add to dk, dv
                CpuGemm.gemm(Gemm.NN, w.dq, 0, w.dp, 0, w.k, 0, null, 0, n, headDim, n, false);
                CpuGemm.gemm(Gemm.TN, w.dk, 0, w.dp, 0, w.q, 0, null, 0, n, headDim, n, more);
                CpuGemm.gemm(Gemm.TN, w.dv, 0, w.p, 0, w.dy, 0, null, 0, n, headDim, n, more);
                scatterRows(w.dq, n, t, headDim, dx, seqDx + h * headDim, width);
            }
            scatterRows(w.dk, n, t, headDim, dx, seqDx + (heads + g) * headDim, width);
            scatterRows(w.dv, n, t, headDim, dx, seqDx + (heads + kvHeads + g) * headDim, width);
        });
    }

    // ---- decode ----

    @Override
    public void kvCacheWrite(Buf kCache, Buf vCache, Buf qkv, Buf rowSeq, Buf rowPos, int m, int maxT,
                             int heads, int kvHeads, int headDim) {
        float[] kc = f(kCache), vc = f(vCache), x = f(qkv);
        int[] seq = i(rowSeq), pos = i(rowPos);
        int width = (heads + 2 * kvHeads) * headDim;
        Parallel.forEach(Parallel.tasksFor((long) m * width, 1 << 14), rowsTask(m, (long) m * width, 1 << 14, r -> {
            int p = pos[rowPos.off() + r];
            if (p < 0) return;
            if (p >= maxT) throw new IllegalArgumentException("cache position " + p + " ≥ capacity " + maxT);
            int s = seq[rowSeq.off() + r];
            for (int g = 0; g < kvHeads; g++) {
                int dst = ((s * kvHeads + g) * maxT + p) * headDim;
                System.arraycopy(x, qkv.off() + r * width + (heads + g) * headDim, kc, kCache.off() + dst, headDim);
                System.arraycopy(x, qkv.off() + r * width + (heads + kvHeads + g) * headDim, vc, vCache.off() + dst, headDim);
            }
        }));
    }

    @Override
    public void decodeAttention(Buf out, Buf qkv, Buf kCache, Buf vCache, Buf lengths, int b, int maxT,
                                int heads, int kvHeads, int headDim) {
        float[] o = f(out), x = f(qkv), kc = f(kCache), vc = f(vCache);
        int[] len = i(lengths);
        int width = (heads + 2 * kvHeads) * headDim, group = heads / kvHeads;
        float scale = (float) (1.0 / Math.sqrt(headDim));
        Parallel.forEach(b * heads, task -> {
            int s = task / heads, h = task % heads, g = h / group;
            int n = len[lengths.off() + s];
            int q = qkv.off() + s * width + h * headDim;
            int cache = ((s * kvHeads + g) * maxT) * headDim;
            int orow = out.off() + s * heads * headDim + h * headDim;
            if (CpuGemm.vectorized()) { // the same bits, faster
                VectorOps.attendRow(x, q, kc, kCache.off() + cache, vc, vCache.off() + cache, n, headDim, scale, o, orow);
                return;
            }
            float[] scores = new float[n];
            float max = Float.NEGATIVE_INFINITY;
            for (int j = 0; j < n; j++) {
                scores[j] = dot(x, q, kc, kCache.off() + cache + j * headDim, headDim) * scale;
                max = Math.max(max, scores[j]);
            }
            float sum = Softmax.expInPlace(scores, 0, n, 1f, max);
            Arrays.fill(o, orow, orow + headDim, 0f);
            for (int j = 0; j < n; j++) axpy(scores[j] / sum, vc, vCache.off() + cache + j * headDim, o, orow, headDim);
        });
    }

    @Override
    public void sample(Buf tokens, Buf logits, int b, int v, float temperature, int topK, float topP, long seed, long step,
                       Buf banned, int nBanned) {
        drawRows(tokens, logits, b, v, temperature, topK, topP, banned, nBanned, r -> Kernels.uniform(seed, r, step));
    }

    @Override
    public void sampleRows(Buf tokens, Buf logits, int b, int v, float temperature, int topK, float topP, Buf keys, Buf steps,
                           Buf banned, int nBanned) {
        int[] k = i(keys), st = i(steps);
        int ko = keys.off(), so = steps.off();
        drawRows(tokens, logits, b, v, temperature, topK, topP, banned, nBanned, r ->
                Kernels.uniform((k[ko + 2 * r] & 0xFFFFFFFFL) | ((long) k[ko + 2 * r + 1] << 32), 0, st[so + r]));
    }

    /** One token per row of logits, drawn with the uniform u(r) of its row (sample and sampleRows differ only there). */
    private void drawRows(Buf tokens, Buf logits, int b, int v, float temperature, int topK, float topP, Buf banned, int nBanned,
                          java.util.function.IntToDoubleFunction u) {
        float[] z = f(logits);
        int[] tok = i(tokens);
        boolean[] isBanned = new boolean[v];
        for (int j = 0; j < nBanned; j++) isBanned[i(banned)[banned.off() + j]] = true;
        Parallel.forEach(b, r -> tok[tokens.off() + r] = sampleRow(z, logits.off() + r * v, v, temperature, topK, topP,
                (float) u.applyAsDouble(r), isBanned));
    }

    static int sampleRow(float[] logits, int off, int v, float temperature, int topK, float topP, float u, boolean[] banned) {
        if (temperature == 0f) {
            int best = -1;
            for (int j = 0; j < v; j++) if (!banned[j] && (best < 0 || logits[off + j] > logits[off + best])) best = j;
            return best;
        }
        float invT = 1f / temperature;
        float[] z = new float[v];
        float max = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < v; j++) {
            z[j] = banned[j] ? Float.NEGATIVE_INFINITY : logits[off + j] * invT;
            max = Math.max(max, z[j]);
        }
        boolean[] keep = new boolean[v];
        for (int j = 0; j < v; j++) keep[j] = !banned[j];
        if (topK > 0 && topK < v) {
            float[] sorted = z.clone();
            Arrays.sort(sorted);
            float kth = sorted[v - topK]; // a token survives when z ≥ the k-th largest value
            for (int j = 0; j < v; j++) keep[j] &= z[j] >= kth;
        }
        double[] e = new double[v]; // each exp once: the sums below see the same values, in the same order, as recomputing would
        for (int j = 0; j < v; j++) e[j] = keep[j] ? Math.exp(z[j] - max) : 0;
        if (topP < 1f) {
            double total = 0;
            for (int j = 0; j < v; j++) if (keep[j]) total += e[j];
            Integer[] order = new Integer[v];
            for (int j = 0; j < v; j++) order[j] = j;
            Arrays.sort(order, (a, c) -> Float.compare(z[c], z[a]));
            double above = 0; // mass of tokens strictly more likely than the current tie group
            int j = 0;
            while (j < v) {
                int end = j;
                double group = 0;
                while (end < v && z[order[end]] == z[order[j]]) {
                    if (keep[order[end]]) group += e[order[end]] / total;
                    end++;
                }
                if (above >= topP) for (int q = j; q < end; q++) keep[order[q]] = false;
                above += group;
                j = end;
            }
        }
        double total = 0;
        for (int j = 0; j < v; j++) if (keep[j]) total += e[j];
        double target = u * total, cum = 0;
        int last = -1;
        for (int j = 0; j < v; j++) {
            if (!keep[j]) continue;
            cum += e[j];
            last = j;
            if (cum > target) return j;
        }
        return last;
    }

    // ---- LM head loss ----

    @Override
    public void crossEntropy(Buf logits, Buf logprob, Buf entropy, Buf logZ, Buf targets, Buf weights,
                             int m, int v, float invTemperature, boolean backward) {
        float[] z = f(logits), lp = f(logprob), en = f(entropy), w = f(weights), lz = logZ == null ? null : f(logZ);
        int[] tg = i(targets);
        int zo = logits.off(), lpo = logprob.off(), eno = entropy.off(), wo = weights.off(), tgo = targets.off();
        int lzo = logZ == null ? 0 : logZ.off();
        Parallel.forEach(m, r -> {
            int row = zo + r * v;
            int target = tg[tgo + r];
            if (target >= v) throw new IllegalArgumentException("target " + target + " ≥ vocabulary " + v);
            float max = Softmax.max(z, row, v) * invTemperature; // = max of z·invT: rounding keeps the order
            double[] sums = new double[2];
            Softmax.expSums(z, row, v, invTemperature, max, sums);
            double logSum = Math.log(sums[0]), logZd = max + logSum;
            en[eno + r] = (float) (logSum - sums[1] / sums[0]);
            lp[lpo + r] = target < 0 ? 0f : (float) (z[row + target] * invTemperature - logZd);
            if (lz != null) lz[lzo + r] = (float) logZd;
            if (backward) softmaxGradient(z, row, v, target, w[wo + r] * invTemperature, (float) logZd, invTemperature);
        });
    }

    @Override
    public void crossEntropyBackward(Buf logits, Buf logZ, Buf targets, Buf weights, int m, int v, float invTemperature) {
        float[] z = f(logits), lz = f(logZ), w = f(weights);
        int[] tg = i(targets);
        int zo = logits.off(), lzo = logZ.off(), wo = weights.off(), tgo = targets.off();
        Parallel.forEach(m, r -> {
            int target = tg[tgo + r];
            if (target >= v) throw new IllegalArgumentException("target " + target + " ≥ vocabulary " + v);
            softmaxGradient(z, zo + r * v, v, target, w[wo + r] * invTemperature, lz[lzo + r], invTemperature);
        });
    }

    /** Row z[row, row+v) ← scale · (p − onehot(target)), p = exp(z·invT − logZ); zeros without a target. */
    private static void softmaxGradient(float[] z, int row, int v, int target, float scale, float logZ, float invTemperature) {
        if (target < 0) Arrays.fill(z, row, row + v, 0f);
        else Softmax.gradient(z, row, v, target, scale, logZ, invTemperature);
    }

    // ---- optimizer ----

    private static final int SUM_CHUNK = 1 << 16;

    @Override
    public double sumSquares(Buf x, long n) {
        float[] xs = f(x);
        int xo = x.off();
        int tasks = (int) ((n + SUM_CHUNK - 1) / SUM_CHUNK);
        double[] partial = new double[tasks];
        Parallel.forEach(tasks, task -> {
            int s = task * SUM_CHUNK, e = (int) Math.min(n, (long) s + SUM_CHUNK);
            double acc = 0;
            for (int j = s; j < e; j++) acc += (double) xs[xo + j] * xs[xo + j];
            partial[task] = acc;
        });
        double total = 0;
        for (double p : partial) total += p;
        return total;
    }

    @Override
    public void adamw(Buf params, Buf grads, Buf m, Buf v, long n, float lr, float beta1, float beta2,
                      float eps, float weightDecay, float gradScale, int t) {
        float[] p = f(params), g = f(grads), ms = f(m), vs = f(v);
        int po = params.off(), go = grads.off(), mo = m.off(), vo = v.off();
        float c1 = (float) (1.0 - Math.pow(beta1, t)), c2 = (float) (1.0 - Math.pow(beta2, t));
        int tasks = Parallel.tasksFor(n, 1 << 15);
        Parallel.forEach(tasks, task -> {
            int s = (int) (n * task / tasks), e = (int) (n * (task + 1) / tasks);
            int j = CpuGemm.vectorized() ? s + VectorOps.adamw(p, po + s, g, go + s, ms, mo + s, vs, vo + s, e - s,
                    lr, beta1, beta2, eps, weightDecay, gradScale, c1, c2) : s;
            adamwScalar(p, po, g, go, ms, mo, vs, vo, j, e, lr, beta1, beta2, eps, weightDecay, gradScale, c1, c2);
        });
    }

    /** AdamW on elements [from, to); {@link VectorOps#adamw} computes the same per lane. */
    static void adamwScalar(float[] p, int po, float[] g, int go, float[] ms, int mo, float[] vs, int vo, int from, int to,
                            float lr, float beta1, float beta2, float eps, float weightDecay, float gradScale, float c1, float c2) {
        for (int j = from; j < to; j++) {
            float gj = g[go + j] * gradScale;
            float mj = beta1 * ms[mo + j] + (1f - beta1) * gj;
            float vj = beta2 * vs[vo + j] + (1f - beta2) * gj * gj;
            ms[mo + j] = mj;
            vs[vo + j] = vj;
            float update = (mj / c1) / ((float) Math.sqrt(vj / c2) + eps);
            p[po + j] -= lr * (update + weightDecay * p[po + j]);
        }
    }

    // ---- GRPO ----

    @Override
    public void grpoAdvantages(Buf advantages, Buf stats, Buf rewards, int groups, int groupSize, boolean drGrpo, float eps) {
        if (groups < 0 || groupSize < 1) throw new IllegalArgumentException("grpoAdvantages: " + groups + " groups of " + groupSize);
        float[] a = f(advantages), st = f(stats), r = f(rewards);
        int ao = advantages.off(), so = stats.off(), ro = rewards.off();
        Parallel.forEach(Parallel.tasksFor((long) groups * groupSize, 1 << 14),
                rowsTask(groups, (long) groups * groupSize, 1 << 14, g -> {
                    int base = g * groupSize;
                    double sum = 0;
                    for (int i = 0; i < groupSize; i++) sum += r[ro + base + i];
                    double mean = sum / groupSize;
                    double sq = 0;
                    for (int i = 0; i < groupSize; i++) {
                        double d = r[ro + base + i] - mean;
                        sq += d * d;
                    }
                    double std = Math.sqrt(sq / groupSize);
                    double inv = drGrpo ? 1.0 : 1.0 / (std + eps);
                    for (int i = 0; i < groupSize; i++) a[ao + base + i] = (float) ((r[ro + base + i] - mean) * inv);
                    st[so + 2 * g] = (float) mean;
                    st[so + 2 * g + 1] = (float) std;
                }));
    }

    @Override
    public void grpoPolicyLoss(Buf loss, Buf weight, Buf clipped, Buf kl, Buf logp, Buf logpOld, Buf ref, Buf advantage,
                               Buf scale, int m, float epsLow, float epsHigh, float beta) {
        if (m < 0) throw new IllegalArgumentException("grpoPolicyLoss: negative size " + m);
        if (ref == null && beta != 0f)
            throw new IllegalArgumentException("grpoPolicyLoss: ref is null but beta = " + beta + " (only beta = 0 runs without a reference)");
        float[] lo = f(loss), w = f(weight), cl = f(clipped), k = f(kl), lp = f(logp), lpo = f(logpOld), adv = f(advantage), sc = f(scale);
        float[] rf = ref == null ? null : f(ref);
        int loO = loss.off(), wO = weight.off(), clO = clipped.off(), kO = kl.off(), lpO = logp.off(), lpoO = logpOld.off();
        int rfO = ref == null ? 0 : ref.off(), advO = advantage.off(), scO = scale.off();
        double lower = 1.0 - epsLow, upper = 1.0 + epsHigh;
        int tasks = Parallel.tasksFor(m, 1 << 14);
        Parallel.forEach(tasks, task -> {
            int s = (int) ((long) m * task / tasks), e = (int) ((long) m * (task + 1) / tasks);
            for (int t = s; t < e; t++) {
                double l = lp[lpO + t], a = adv[advO + t];
                double rho = Math.exp(l - lpo[lpoO + t]);
                double unclipped = rho * a;
                double clippedTerm = Math.min(Math.max(rho, lower), upper) * a;
                boolean isClipped = clippedTerm < unclipped; // a tie counts as unclipped: the gradient flows
                // k3 = e^x − x − 1 with x = ref − logp, as expm1(x) − x (no cancellation for small x)
                double x = rf == null ? 0 : rf[rfO + t] - l;
                double k3 = rf == null ? 0 : Math.expm1(x) - x;
                double dk3 = rf == null ? 0 : -Math.expm1(x); // ∂k3/∂logp = 1 − e^x
                double objective = isClipped ? clippedTerm : unclipped;
                double dObjective = isClipped ? 0 : unclipped; // ∂(ρA)/∂logp = ρA
                double sct = sc[scO + t];
                lo[loO + t] = (float) (sct * (-objective + beta * k3));
                w[wO + t] = (float) (-sct * (-dObjective + beta * dk3));
                cl[clO + t] = isClipped ? 1f : 0f;
                k[kO + t] = (float) k3;
            }
        });
    }

    /** Σ a[i]·b[i] over n elements: SIMD where the vector module is present, a plain loop otherwise. */
    static float dot(float[] a, int ao, float[] b, int bo, int n) {
        if (CpuGemm.vectorized()) return VectorOps.dot(a, ao, b, bo, n);
        float s = 0f;
        for (int i = 0; i < n; i++) s += a[ao + i] * b[bo + i];
        return s;
    }

    /** y += alpha · x over n elements. */
    static void axpy(float alpha, float[] x, int xo, float[] y, int yo, int n) {
        if (CpuGemm.vectorized()) {
            VectorOps.axpy(alpha, x, xo, y, yo, n);
            return;
        }
        for (int i = 0; i < n; i++) y[yo + i] += alpha * x[xo + i];
    }

    /** A task body over row ranges: splits m rows into the tasks that tasksFor(total, grain) gives. */
    private static java.util.function.IntConsumer rowsTask(int m, long total, int grain, java.util.function.IntConsumer row) {
        int tasks = Parallel.tasksFor(total, grain);
        return task -> {
            int r0 = (int) ((long) m * task / tasks), r1 = (int) ((long) m * (task + 1) / tasks);
            for (int r = r0; r < r1; r++) row.accept(r);
        };
    }
}
