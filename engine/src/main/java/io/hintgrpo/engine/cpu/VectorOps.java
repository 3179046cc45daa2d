package io.hintgrpo.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * SIMD dot product and axpy for the row-wise kernels (attention), and their 4-row forms that
 * share loads between query rows while keeping each element's sum exactly as the 1-row forms
 * compute it. Only touched when {@link CpuGemm#vectorized()} says the module is present, so a
 * JVM without it never loads this.
 */
final class VectorOps {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    private VectorOps() {}

    static float dot(float[] a, int ao, float[] b, int bo, int n) {
        FloatVector acc = FloatVector.zero(S);
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += S.length())
            acc = FloatVector.fromArray(S, a, ao + i).fma(FloatVector.fromArray(S, b, bo + i), acc);
        float s = acc.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) s += a[ao + i] * b[bo + i];
        return s;
    }

    /** y += alpha · x. */
    static void axpy(float alpha, float[] x, int xo, float[] y, int yo, int n) {
        FloatVector va = FloatVector.broadcast(S, alpha);
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += S.length())
            FloatVector.fromArray(S, x, xo + i).fma(va, FloatVector.fromArray(S, y, yo + i)).intoArray(y, yo + i);
        for (; i < n; i++) y[yo + i] += alpha * x[xo + i];
    }

    /**
     * out[oo + r·os] = dot(a at ao + r·as, b at bo) for the 4 rows r, each summed exactly as
     * {@link #dot} sums it; the rows share the loads of b.
     */
    static void dot4(float[] a, int ao, int as, float[] b, int bo, int n, float[] out, int oo, int os) {
        FloatVector c0 = FloatVector.zero(S), c1 = c0, c2 = c0, c3 = c0;
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += S.length()) {
            FloatVector vb = FloatVector.fromArray(S, b, bo + i);
            c0 = FloatVector.fromArray(S, a, ao + i).fma(vb, c0);
            c1 = FloatVector.fromArray(S, a, ao + as + i).fma(vb, c1);
            c2 = FloatVector.fromArray(S, a, ao + 2 * as + i).fma(vb, c2);
            c3 = FloatVector.fromArray(S, a, ao + 3 * as + i).fma(vb, c3);
        }
        float s0 = c0.reduceLanes(VectorOperators.ADD), s1 = c1.reduceLanes(VectorOperators.ADD);
        float s2 = c2.reduceLanes(VectorOperators.ADD), s3 = c3.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            float bi = b[bo + i];
            s0 += a[ao + i] * bi;
            s1 += a[ao + as + i] * bi;
            s2 += a[ao + 2 * as + i] * bi;
            s3 += a[ao + 3 * as + i] * bi;
        }
        out[oo] = s0;
        out[oo + os] = s1;
        out[oo + 2 * os] = s2;
        out[oo + 3 * os] = s3;
    }

    /**
     * y_r (n elements at yo + r·ys, overwritten) = Σ_{j < m} w[wo + r·ws + j] · x_j (x_j at
     * xo + j·xs) for the 4 rows r: exactly what m calls of {@link #axpy} in ascending j give on
     * zeroed rows, but the rows share the loads of x_j and stay in registers over j.
     */
    static void weightedSum4(float[] w, int wo, int ws, float[] x, int xo, int xs, int m, float[] y, int yo, int ys, int n) {
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += S.length()) {
            FloatVector y0 = FloatVector.zero(S), y1 = y0, y2 = y0, y3 = y0;
            for (int j = 0; j < m; j++) {
                FloatVector vx = FloatVector.fromArray(S, x, xo + j * xs + i);
                y0 = vx.fma(FloatVector.broadcast(S, w[wo + j]), y0);
                y1 = vx.fma(FloatVector.broadcast(S, w[wo + ws + j]), y1);
                y2 = vx.fma(FloatVector.broadcast(S, w[wo + 2 * ws + j]), y2);
                y3 = vx.fma(FloatVector.broadcast(S, w[wo + 3 * ws + j]), y3);
            }
            y0.intoArray(y, yo + i);
            y1.intoArray(y, yo + ys + i);
            y2.intoArray(y, yo + 2 * ys + i);
            y3.intoArray(y, yo + 3 * ys + i);
        }
        for (; i < n; i++) {
            float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
            for (int j = 0; j < m; j++) {
                float xj = x[xo + j * xs + i];
                s0 += w[wo + j] * xj;
                s1 += w[wo + ws + j] * xj;
                s2 += w[wo + 2 * ws + j] * xj;
                s3 += w[wo + 3 * ws + j] * xj;
            }
            y[yo + i] = s0;
            y[yo + ys + i] = s1;
            y[yo + 2 * ys + i] = s2;
            y[yo + 3 * ys + i] = s3;
        }
    }

    /** y_r (at yo + r·ys) += a[r] · x for the 4 rows r, each exactly as {@link #axpy}; the rows share the loads of x. */
    static void axpy4(float[] a, float[] x, int xo, float[] y, int yo, int ys, int n) {
        FloatVector a0 = FloatVector.broadcast(S, a[0]), a1 = FloatVector.broadcast(S, a[1]);
        FloatVector a2 = FloatVector.broadcast(S, a[2]), a3 = FloatVector.broadcast(S, a[3]);
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += S.length()) {
            FloatVector vx = FloatVector.fromArray(S, x, xo + i);
            vx.fma(a0, FloatVector.fromArray(S, y, yo + i)).intoArray(y, yo + i);
            vx.fma(a1, FloatVector.fromArray(S, y, yo + ys + i)).intoArray(y, yo + ys + i);
            vx.fma(a2, FloatVector.fromArray(S, y, yo + 2 * ys + i)).intoArray(y, yo + 2 * ys + i);
            vx.fma(a3, FloatVector.fromArray(S, y, yo + 3 * ys + i)).intoArray(y, yo + 3 * ys + i);
        }
        for (; i < n; i++) {
            float xi = x[xo + i];
            y[yo + i] += a[0] * xi;
            y[yo + ys + i] += a[1] * xi;
            y[yo + 2 * ys + i] += a[2] * xi;
            y[yo + 3 * ys + i] += a[3] * xi;
        }
    }

    /**
     * y += a[0] · x_0, then a[1] · x_1, a[2] · x_2, a[3] · x_3 (x_r at xo + r·xs): exactly four
     * {@link #axpy} calls in that order, with y loaded and stored once.
     */
    static void axpyChain4(float[] a, float[] x, int xo, int xs, float[] y, int yo, int n) {
        FloatVector a0 = FloatVector.broadcast(S, a[0]), a1 = FloatVector.broadcast(S, a[1]);
        FloatVector a2 = FloatVector.broadcast(S, a[2]), a3 = FloatVector.broadcast(S, a[3]);
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += S.length()) {
            FloatVector vy = FloatVector.fromArray(S, y, yo + i);
            vy = FloatVector.fromArray(S, x, xo + i).fma(a0, vy);
            vy = FloatVector.fromArray(S, x, xo + xs + i).fma(a1, vy);
            vy = FloatVector.fromArray(S, x, xo + 2 * xs + i).fma(a2, vy);
            vy = FloatVector.fromArray(S, x, xo + 3 * xs + i).fma(a3, vy);
            vy.intoArray(y, yo + i);
        }
        for (; i < n; i++) {
            float v = y[yo + i];
            v += a[0] * x[xo + i];
            v += a[1] * x[xo + xs + i];
            v += a[2] * x[xo + 2 * xs + i];
            v += a[3] * x[xo + 3 * xs + i];
            y[yo + i] = v;
        }
    }
}
