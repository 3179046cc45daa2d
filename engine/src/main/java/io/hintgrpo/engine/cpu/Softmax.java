package io.hintgrpo.engine.cpu;

import java.util.Arrays;

/**
 * The cpu backend's softmax rows: over the LM head's vocabulary (the maximum, Σ exp and
 * Σ exp·(z − max) in one pass, ∂L/∂z in place) and over attention's causally masked score rows
 * (forward weights with the log-sum-exp, and the backward to ∂L/∂score). SIMD where the vector
 * module is present ({@link VectorOps}), plain loops otherwise; a SIMD piece runs its tail through
 * the scalar piece on the rest of the row.
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

    /**
     * Attention's score row p[o, o + n) with the first `keys` visible: those ← softmax(score·scale),
     * the rest ← 0; returns the log-sum-exp of the scaled scores.
     */
    static float causalRow(float[] p, int o, int keys, int n, float scale) {
        float max = max(p, o, keys) * scale; // = max of score·scale: rounding keeps the order
        float sum = expInPlace(p, o, keys, scale, max);
        float inv = 1f / sum;
        for (int j = 0; j < keys; j++) p[o + j] *= inv;
        Arrays.fill(p, o + keys, o + n, 0f);
        return max + (float) Math.log(sum);
    }

    /**
     * The backward of {@link #causalRow}, in place: p ← e^{score·scale − lse} (the forward's
     * weights), dp ← p·(dp − δ)·scale (= ∂L/∂score) with δ = Σ_j p_j·dp_j (= Σ_d dout·out, from the
     * same p and dp, so a row whose weights are one-hot gets an exact zero); masked keys get 0 in both.
     */
    static void causalBackwardRow(float[] p, float[] dp, int o, int keys, int n, float scale, float lse) {
        if (CpuGemm.vectorized()) VectorOps.causalBackwardRow(p, dp, o, keys, scale, lse);
        else scoreGradientScalar(p, dp, o, keys, scale, expDotScalar(p, dp, o, keys, scale, lse, 0f));
        Arrays.fill(p, o + keys, o + n, 0f);
        Arrays.fill(dp, o + keys, o + n, 0f);
    }

    /** p[o + j] ← e^{p_j·scale − lse} over [o, o + n); returns sum + Σ p_j·dp_j over them. */
    static float expDotScalar(float[] p, float[] dp, int o, int n, float scale, float lse, float sum) {
        for (int j = 0; j < n; j++) {
            float pj = exp(p[o + j] * scale - lse);
            p[o + j] = pj;
            sum += pj * dp[o + j];
        }
        return sum;
    }

    /** dp[o + j] ← p_j·(dp_j − delta)·scale over [o, o + n). */
    static void scoreGradientScalar(float[] p, float[] dp, int o, int n, float scale, float delta) {
        for (int j = 0; j < n; j++) dp[o + j] = p[o + j] * (dp[o + j] - delta) * scale;
    }
}
