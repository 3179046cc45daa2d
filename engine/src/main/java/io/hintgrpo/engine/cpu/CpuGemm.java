package io.hintgrpo.engine.cpu;

import io.hintgrpo.engine.Kernels.Gemm;

/**
 * The CPU matmul family behind {@code Kernels.gemm}: out[m,n] (+)= op(a)·op(b) (+ bias).
 * Straightforward first form: one task per block of output rows, fixed summation order along k.
 */
public final class CpuGemm {
    private CpuGemm() {}

    public static void gemm(Gemm layout, float[] out, int outOff, float[] a, int aOff, float[] b, int bOff,
                            float[] bias, int biasOff, int m, int n, int k, boolean accumulate) {
        int rowsPerTask = Math.max(1, (int) Math.min(m, 16384L / Math.max(1, n) + 1));
        int tasks = (m + rowsPerTask - 1) / rowsPerTask;
        Parallel.forEach(tasks, task -> {
            int i0 = task * rowsPerTask, i1 = Math.min(m, i0 + rowsPerTask);
            for (int i = i0; i < i1; i++) {
                for (int j = 0; j < n; j++) {
                    float s = 0f;
                    switch (layout) {
                        case NT -> { for (int p = 0; p < k; p++) s += a[aOff + i * k + p] * b[bOff + j * k + p]; }
                        case NN -> { for (int p = 0; p < k; p++) s += a[aOff + i * k + p] * b[bOff + p * n + j]; }
                        case TN -> { for (int p = 0; p < k; p++) s += a[aOff + p * m + i] * b[bOff + p * n + j]; }
                    }
                    if (bias != null) s += bias[biasOff + j];
                    int o = outOff + i * n + j;
                    out[o] = accumulate ? out[o] + s : s;
                }
            }
        });
    }
}
