package io.hintgrpo.engine;

import java.util.SplittableRandom;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Test helpers: random inputs, relative errors, finite differences in double precision. */
public final class Check {
    private Check() {}

    public static float[] randn(SplittableRandom rng, int n, double std) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (rng.nextGaussian() * std);
        return v;
    }

    public static double[] toDouble(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) d[i] = v[i];
        return d;
    }

    /** ‖a − b‖ / ‖b‖ (‖a − b‖ when b is all zeros). */
    public static double relError(float[] a, double[] b) {
        double num = 0, den = 0;
        for (int i = 0; i < a.length; i++) {
            num += (a[i] - b[i]) * (a[i] - b[i]);
            den += b[i] * b[i];
        }
        return den == 0 ? Math.sqrt(num) : Math.sqrt(num / den);
    }

    public static double relError(float[] a, float[] b) {
        return relError(a, toDouble(b));
    }

    public static void assertClose(String what, float[] actual, double[] expected, double tol) {
        if (actual.length != expected.length) throw new AssertionError(what + ": length " + actual.length + " vs " + expected.length);
        for (float x : actual) assertTrue(Float.isFinite(x), what + ": non-finite value");
        double e = relError(actual, expected);
        assertTrue(e <= tol, what + ": relative error " + e + " > " + tol);
    }

    /**
     * ∂(Σ r·f(x))/∂x by central differences in double precision: the exact reference the fp32
     * backward kernels are checked against.
     */
    public static double[] fdGrad(Function<double[], double[]> f, double[] x, double[] r) {
        double[] g = new double[x.length];
        double[] xp = x.clone();
        for (int i = 0; i < x.length; i++) {
            double h = 1e-6 * Math.max(1, Math.abs(x[i]));
            xp[i] = x[i] + h;
            double up = dot(r, f.apply(xp));
            xp[i] = x[i] - h;
            double down = dot(r, f.apply(xp));
            xp[i] = x[i];
            g[i] = (up - down) / (2 * h);
        }
        return g;
    }

    public static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += a[i] * b[i];
        return s;
    }
}
