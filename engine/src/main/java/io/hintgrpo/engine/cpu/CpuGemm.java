package io.hintgrpo.engine.cpu;

import io.hintgrpo.engine.Kernels.Gemm;

/**
 * The CPU matmul family behind {@code Kernels.gemm}: out[m,n] (+)= op(a)·op(b) (+ bias), row-major,
 * offsets in elements (layouts in {@link Gemm}).
 *
 * <p>With jdk.incubator.vector in the boot layer the work goes to {@link CpuGemmVector} (packed
 * panels, fma micro-kernel). Without it, a blocked scalar path runs and one warning is printed; the
 * vector class is then never loaded, so a JVM started without the module does not fail.
 *
 * <p>Both paths give results that are bit-identical for any {@link Parallel#setThreads} (task
 * boundaries and each element's summation order depend on m, n, k only); the two paths differ from
 * each other in rounding.
 */
public final class CpuGemm {
    private CpuGemm() {}

    /** Tests set this to run the scalar path with the module present. */
    static volatile boolean forceScalar;

    private static final boolean VECTOR = vectorUsable();

    private static boolean vectorUsable() {
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()) {
            try {
                return CpuGemmVector.NR > 0; // initialises the class (and the species) now, not mid-call
            } catch (LinkageError e) {
                System.err.println("jdk.incubator.vector failed to initialise (" + e + "): the CPU backend uses scalar loops");
                return false;
            }
        }
        System.err.println("jdk.incubator.vector not available: the CPU backend uses scalar loops; "
                + "run with --add-modules jdk.incubator.vector");
        return false;
    }

    /** True where the SIMD path runs (the module is present and not forced off). */
    public static boolean vectorized() {
        return VECTOR && !forceScalar;
    }

    public static void gemm(Gemm layout, float[] out, int outOff, float[] a, int aOff, float[] b, int bOff,
                            float[] bias, int biasOff, int m, int n, int k, boolean accumulate) {
        check(layout, out, outOff, a, aOff, b, bOff, bias, biasOff, m, n, k);
        if (m == 0 || n == 0) return;
        if (k == 0) { // empty sum: only bias and accumulate remain
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) {
                    int o = outOff + i * n + j;
                    float v = bias == null ? 0f : bias[biasOff + j];
                    out[o] = accumulate ? out[o] + v : v;
                }
            return;
        }
        if (vectorized()) CpuGemmVector.gemm(layout, out, outOff, a, aOff, b, bOff, bias, biasOff, m, n, k, accumulate);
        else scalar(layout, out, outOff, a, aOff, b, bOff, bias, biasOff, m, n, k, accumulate);
    }

    /** Fails before any write when a shape does not fit its array (a worker would fail half-way). */
    private static void check(Gemm layout, float[] out, int outOff, float[] a, int aOff, float[] b, int bOff,
                              float[] bias, int biasOff, int m, int n, int k) {
        if (m < 0 || n < 0 || k < 0)
            throw new IllegalArgumentException("gemm " + layout + ": negative shape m=" + m + " n=" + n + " k=" + k);
        range("out", out, outOff, (long) m * n, layout, m, n, k);
        range("a", a, aOff, (long) m * k, layout, m, n, k);
        range("b", b, bOff, (long) n * k, layout, m, n, k);
        if (bias != null) range("bias", bias, biasOff, n, layout, m, n, k);
    }

    private static void range(String what, float[] arr, int off, long len, Gemm layout, int m, int n, int k) {
        if (off < 0 || off + len > arr.length)
            throw new IllegalArgumentException("gemm " + layout + " m=" + m + " n=" + n + " k=" + k + ": " + what
                    + "[" + off + " .. " + (off + len) + ") exceeds its array of " + arr.length);
    }

    // ---- scalar path ----

    private static final int S_ROWS = 16, S_COLS = 256, S_KC = 256;

    private static final ThreadLocal<float[]> S_SCRATCH = ThreadLocal.withInitial(() -> new float[S_KC * S_COLS]);

    /**
     * Tasks of S_ROWS × S_COLS outputs; each output row segment is updated by axpy over k
     * (out[i, j0:j1] += op(a)[i,p] · op(b)[p, j0:j1]), an inner loop the JIT auto-vectorizes. For NT
     * a k-block of b is transposed into scratch first so that its rows are contiguous too.
     */
    private static void scalar(Gemm layout, float[] out, int outOff, float[] a, int aOff, float[] b, int bOff,
                               float[] bias, int biasOff, int m, int n, int k, boolean accumulate) {
        int rowTasks = (m + S_ROWS - 1) / S_ROWS, colTasks = (n + S_COLS - 1) / S_COLS;
        Parallel.forEach(rowTasks * colTasks, t -> {
            int i0 = t / colTasks * S_ROWS, i1 = Math.min(m, i0 + S_ROWS);
            int j0 = t % colTasks * S_COLS, j1 = Math.min(n, j0 + S_COLS), w = j1 - j0;
            for (int i = i0; i < i1; i++) {
                int o = outOff + i * n + j0;
                for (int j = 0; j < w; j++) {
                    float v = bias == null ? 0f : bias[biasOff + j0 + j];
                    out[o + j] = accumulate ? out[o + j] + v : v;
                }
            }
            float[] bt = S_SCRATCH.get();
            for (int k0 = 0; k0 < k; k0 += S_KC) {
                int kc = Math.min(S_KC, k - k0);
                float[] rows;
                int rowOff, ld;
                if (layout == Gemm.NT) { // bt[p][j] = b[j0 + j][k0 + p]
                    for (int j = 0; j < w; j++) {
                        int src = bOff + (j0 + j) * k + k0;
                        for (int p = 0; p < kc; p++) bt[p * w + j] = b[src + p];
                    }
                    rows = bt;
                    rowOff = 0;
                    ld = w;
                } else {
                    rows = b;
                    rowOff = bOff + k0 * n + j0;
                    ld = n;
                }
                for (int i = i0; i < i1; i++) {
                    int o = outOff + i * n + j0;
                    for (int p = 0; p < kc; p++) {
                        float x = layout == Gemm.TN ? a[aOff + (k0 + p) * m + i] : a[aOff + i * k + k0 + p];
                        int r = rowOff + p * ld;
                        for (int j = 0; j < w; j++) out[o + j] += x * rows[r + j];
                    }
                }
            }
        });
    }
}
