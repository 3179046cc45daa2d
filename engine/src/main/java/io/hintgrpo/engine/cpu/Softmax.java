package io.hintgrpo.engine.cpu;

/**
 * The row pieces of a softmax over a long row (the LM head's vocabulary): its maximum, Σ exp and
 * Σ exp·(z − max) in one pass, and ∂L/∂z in place. SIMD where the vector module is present
 * ({@link VectorOps}), plain loops otherwise.
 *
 * <p>exp here is {@link #exp}, fp32 built from +, ×, fma and bit operations only, so the SIMD lanes,
 * their scalar tails, the scalar fallback, the interpreter and every JIT tier give the same bits
 * for the same input on any JDK (a library exp — Math.exp, or the Vector API's EXP, an intrinsic
 * on some JDKs — is not specified to agree with itself across those). Within 2 ulp of the true
 * value for x in [−87.3, 88]; exactly 0 below −87.3 (where e^x leaves the normal floats), NaN for
 * NaN. {@code SoftmaxTest} checks all of this, with compiled against interpreted (-Xint) runs.
 */
final class Softmax {
    private Softmax() {}

    static final float LOG2E = 1.44269504f;
    /** ln 2 split in two so n·LN2_HI is exact for |n| ≤ 2^9 and the reduction x − n·ln 2 loses nothing. */
    static final float LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    /** 1.5·2^23: adding it rounds x·log2(e) to an integer that then sits in the low mantissa bits. */
    static final float ROUNDER = 12582912f;
    static final float EXP_LO = -87.3f, EXP_HI = 88f;
    /** Taylor coefficients 1/k! of e^r for k = 7 … 2; |r| ≤ ln2/2 keeps the remainder r^8/8! below 6e-9 relative. */
    static final float C7 = 1f / 5040, C6 = 1f / 720, C5 = 1f / 120, C4 = 1f / 24, C3 = 1f / 6, C2 = 0.5f;
    /** Rows are summed in fp32 lanes over blocks of this many elements, the blocks' sums in double. */
    static final int SUM_BLOCK = 1024;

    static float exp(float x) {
        if (x < EXP_LO) return 0f;
        x = Math.min(x, EXP_HI);
        float t = Math.fma(x, LOG2E, ROUNDER);
        float n = t - ROUNDER;
        float r = Math.fma(n, -LN2_HI, x);
        r = Math.fma(n, -LN2_LO, r);
        float p = Math.fma(C7, r, C6);
        p = Math.fma(p, r, C5);
        p = Math.fma(p, r, C4);
        p = Math.fma(p, r, C3);
        p = Math.fma(p, r, C2);
        p = Math.fma(p, r, 1f);
        p = Math.fma(p, r, 1f);
        int scale = (Float.floatToRawIntBits(t) - Float.floatToRawIntBits(ROUNDER) + 127) << 23; // 2^n
        return p * Float.intBitsToFloat(scale);
    }

    /** max of z[o, o + n). */
    static float max(float[] z, int o, int n) {
        if (CpuGemm.vectorized()) return VectorOps.max(z, o, n);
        return maxScalar(z, o, n, Float.NEGATIVE_INFINITY);
    }

    static float maxScalar(float[] z, int o, int n, float max) {
        for (int j = 0; j < n; j++) max = Math.max(max, z[o + j]);
        return max;
    }

    /**
     * With x_j = z_j·invT − shift: sums[0] = Σ e^{x_j}, sums[1] = Σ e^{x_j}·x_j. With shift the
     * row's maximum, log Σ = logZ − shift and entropy = log sums[0] − sums[1]/sums[0] (no
     * cancellation against the maximum).
     */
    static void expSums(float[] z, int o, int n, float invT, float shift, double[] sums) {
        if (CpuGemm.vectorized()) VectorOps.expSums(z, o, n, invT, shift, sums);
        else {
            sums[0] = sums[1] = 0;
            expSumsScalar(z, o, n, invT, shift, sums);
        }
    }

    /** Adds the sums of {@link #expSums} over z[o, o + n) to sums. */
    static void expSumsScalar(float[] z, int o, int n, float invT, float shift, double[] sums) {
        double s = 0, sx = 0;
        for (int j = 0; j < n; j++) {
            float x = z[o + j] * invT - shift;
            float e = exp(x);
            s += e;
            sx += e * x;
        }
        sums[0] += s;
        sums[1] += sx;
    }

    /** z[o + j] ← scale · (e^{z_j·invT − logZ} − [j = target]), in place. */
    static void gradient(float[] z, int o, int n, int target, float scale, float logZ, float invT) {
        float zt = z[o + target];
        if (CpuGemm.vectorized()) VectorOps.softmaxGradient(z, o, n, scale, logZ, invT);
        else gradientScalar(z, o, n, scale, logZ, invT);
        z[o + target] = scale * (exp(zt * invT - logZ) - 1f);
    }

    static void gradientScalar(float[] z, int o, int n, float scale, float logZ, float invT) {
        for (int j = 0; j < n; j++) z[o + j] = scale * exp(z[o + j] * invT - logZ);
    }

    /** z[o + j] ← e^{z_j·scale − shift} for j in [0, n); returns their fp32 sum (SIMD lanes, then the tail). */
    static float expInPlace(float[] z, int o, int n, float scale, float shift) {
        if (CpuGemm.vectorized()) return VectorOps.expInPlace(z, o, n, scale, shift);
        return expInPlaceScalar(z, o, n, scale, shift, 0f);
    }

    /** {@link #expInPlace} over z[o, o + n), its sum added to sum. */
    static float expInPlaceScalar(float[] z, int o, int n, float scale, float shift, float sum) {
        for (int j = 0; j < n; j++) {
            float e = exp(z[o + j] * scale - shift);
            z[o + j] = e;
            sum += e;
        }
        return sum;
    }
}
