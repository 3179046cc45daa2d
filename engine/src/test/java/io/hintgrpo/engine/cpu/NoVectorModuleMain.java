package io.hintgrpo.engine.cpu;

import io.hintgrpo.engine.Kernels.Gemm;

/** Run by {@link CpuGemmTest} in a JVM without jdk.incubator.vector: prints "ok" if gemm works there. */
public final class NoVectorModuleMain {
    public static void main(String[] args) {
        if (CpuGemm.vectorized()) throw new AssertionError("vector path on without the module");
        int m = 37, n = 45, k = 300;
        float[] a = new float[m * k], b = new float[k * n], out = new float[m * n];
        for (int i = 0; i < a.length; i++) a[i] = (i % 7) - 3.5f;
        for (int i = 0; i < b.length; i++) b[i] = (i % 5) - 2.25f;
        for (Gemm layout : Gemm.values()) {
            CpuGemm.gemm(layout, out, 0, a, 0, b, 0, null, 0, m, n, k, false);
            CpuGemm.gemm(layout, out, 0, a, 0, b, 0, null, 0, m, n, k, true); // second call: no second warning
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) {
                    double s = 0;
                    for (int p = 0; p < k; p++) {
                        float x = layout == Gemm.TN ? a[p * m + i] : a[i * k + p];
                        float y = layout == Gemm.NT ? b[j * k + p] : b[p * n + j];
                        s += (double) x * y;
                    }
                    if (Math.abs(out[i * n + j] - 2 * s) > 1e-3 * (1 + Math.abs(s)))
                        throw new AssertionError(layout + " (" + i + "," + j + "): " + out[i * n + j] + " vs " + 2 * s);
                }
        }
        System.out.println("ok");
    }
}
