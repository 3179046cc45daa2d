package io.hintgrpo.engine.cpu;

import io.hintgrpo.engine.Kernels.Gemm;

import java.util.function.IntConsumer;

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

    /**
     * w [n, k] arranged once for {@link #gemmPrepared} (NT with w as b), or null where that gains
     * nothing (the scalar path). A weight used by many GEMMs in a row (decode steps) then is never
     * repacked per call.
     */
    public static float[] prepareNT(float[] w, int wOff, int n, int k) {
        if (!vectorized() || n == 0 || k == 0) return null;
        range("w", w, wOff, (long) n * k, Gemm.NT, 0, n, k);
        return CpuGemmVector.prepareNT(w, wOff, n, k);
    }

    /** {@link #gemm} NT with b given as {@link #prepareNT} arranged it; rounding as gemm's for m ≥ 16 rows. */
    public static void gemmPrepared(float[] out, int outOff, float[] a, int aOff, float[] prepared, float[] bias, int biasOff,
                                    int m, int n, int k, boolean accumulate) {
        if (m < 0 || n <= 0 || k <= 0)
            throw new IllegalArgumentException("gemmPrepared: shape m=" + m + " n=" + n + " k=" + k);
        range("out", out, outOff, (long) m * n, Gemm.NT, m, n, k);
        range("a", a, aOff, (long) m * k, Gemm.NT, m, n, k);
        if (prepared.length != CpuGemmVector.preparedLength(n, k))
            throw new IllegalArgumentException("gemmPrepared: " + prepared.length + " prepared floats do not hold an n=" + n + " k=" + k + " matrix");
        if (bias != null) range("bias", bias, biasOff, n, Gemm.NT, m, n, k);
        if (m == 0) return;
        CpuGemmVector.gemmPrepared(out, outOff, a, aOff, prepared, bias, biasOff, m, n, k, accumulate);
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

    private static final int S_ROWS = 16, S_COLS = 256;

    /** Per thread: S_ROWS accumulator rows and one row of op(b), each at offset 0 (see scalar). */
    private static final ThreadLocal<float[][]> S_SCRATCH = ThreadLocal.withInitial(() -> new float[S_ROWS + 1][S_COLS]);

    /**
     * Tasks of S_ROWS × S_COLS outputs. For each k, row k of op(b) (its task's columns) is copied to
     * scratch, then every row's accumulator gets acc[j] += op(a)[i,k] · brow[j]. Both arrays are
     * indexed by j alone: that is the form the JIT auto-vectorizes (with two offsets it cannot rule
     * out overlap and stays scalar).
     */
    private static void scalar(Gemm layout, float[] out, int outOff, float[] a, int aOff, float[] b, int bOff,
                               float[] bias, int biasOff, int m, int n, int k, boolean accumulate) {
        int rowTasks = (m + S_ROWS - 1) / S_ROWS, colTasks = (n + S_COLS - 1) / S_COLS;
        boolean parallel = 2L * m * n * k >= (1L << 22);
        IntConsumer task = t -> {
            int i0 = t / colTasks * S_ROWS, rows = Math.min(m, i0 + S_ROWS) - i0;
            int j0 = t % colTasks * S_COLS, w = Math.min(n, j0 + S_COLS) - j0;
            float[][] s = S_SCRATCH.get();
            float[] brow = s[S_ROWS];
            for (int r = 0; r < rows; r++) {
                float[] acc = s[r];
                int o = outOff + (i0 + r) * n + j0;
                for (int j = 0; j < w; j++)
                    acc[j] = (accumulate ? out[o + j] : 0f) + (bias == null ? 0f : bias[biasOff + j0 + j]);
            }
            for (int p = 0; p < k; p++) {
                if (layout == Gemm.NT) for (int j = 0; j < w; j++) brow[j] = b[bOff + (j0 + j) * k + p];
                else System.arraycopy(b, bOff + p * n + j0, brow, 0, w);
                for (int r = 0; r < rows; r++) {
                    float x = layout == Gemm.TN ? a[aOff + p * m + i0 + r] : a[aOff + (i0 + r) * k + p];
                    float[] acc = s[r];
                    for (int j = 0; j < w; j++) acc[j] += x * brow[j];
                }
            }
            for (int r = 0; r < rows; r++) System.arraycopy(s[r], 0, out, outOff + (i0 + r) * n + j0, w);
        };
        if (parallel) Parallel.forEach(rowTasks * colTasks, task);
        else for (int t = 0; t < rowTasks * colTasks; t++) task.accept(t);
    }
}
