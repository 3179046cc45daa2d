package io.hintgrpo.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * SIMD dot product and axpy (decode attention), the fp32 exp and the row pieces built on it
 * (softmax rows of {@link Softmax} and of attention, SwiGLU), each lane computing exactly what the
 * scalar twin computes. Only touched when {@link CpuGemm#vectorized()} says the module is present,
 * so a JVM without it never loads this.
 */
final class VectorOps {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    private VectorOps() {}

    /**
     * The lanes' sum in lane order. Not reduceLanes(ADD): its association is unspecified and may
     * differ between the interpreter and compiled code, which would make a result depend on when
     * the JIT compiled the loop (see CpuGemmVector's lane sums).
     */
    static float sum(FloatVector v) {
        float[] lanes = new float[S.length()];
        v.intoArray(lanes, 0);
        float s = 0f;
        for (float x : lanes) s += x;
        return s;
    }

    static float dot(float[] a, int ao, float[] b, int bo, int n) {
        FloatVector acc = FloatVector.zero(S);
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += S.length())
            acc = FloatVector.fromArray(S, a, ao + i).fma(FloatVector.fromArray(S, b, bo + i), acc);
        float s = sum(acc);
        for (; i < n; i++) s += a[ao + i] * b[bo + i];
        return s;
    }

    /** Cached positions scored together in {@link #attendRow}: their lane sums interleave instead of forming one chain each. */
    private static final int SCORE_BLOCK = 16;

    /**
     * One decode-attention row, bit for bit what {@code dot} per cached position, the softmax, and
     * {@code axpy} per position compute (CpuKernels.decodeAttention's plain form): the same fma
     * chains, the same lane-order sums, the same per-element order over positions. Faster because
     * the lane sums of a block of positions run side by side (independent chains), and each output
     * vector stays in a register across the positions instead of a load and a store per position.
     * q: the query at x[q, q + d); position j's key at kc[k + j·d], value at vc[v + j·d].
     */
    static void attendRow(float[] x, int q, float[] kc, int k, float[] vc, int v, int n, int d, float scale, float[] o, int orow) {
        int bound = S.loopBound(d), lanes = S.length();
        float[] scores = new float[n], block = new float[SCORE_BLOCK * lanes];
        float max = Float.NEGATIVE_INFINITY;
        for (int j0 = 0; j0 < n; j0 += SCORE_BLOCK) {
            int jn = Math.min(SCORE_BLOCK, n - j0);
            int jj = 0;
            for (; jj + 4 <= jn; jj += 4) { // four positions at a time: four independent fma chains
                int kr = k + (j0 + jj) * d;
                FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
                for (int i = 0; i < bound; i += lanes) {
                    FloatVector xq = FloatVector.fromArray(S, x, q + i);
                    a0 = xq.fma(FloatVector.fromArray(S, kc, kr + i), a0);
                    a1 = xq.fma(FloatVector.fromArray(S, kc, kr + d + i), a1);
                    a2 = xq.fma(FloatVector.fromArray(S, kc, kr + 2 * d + i), a2);
                    a3 = xq.fma(FloatVector.fromArray(S, kc, kr + 3 * d + i), a3);
                }
                a0.intoArray(block, jj * lanes);
                a1.intoArray(block, (jj + 1) * lanes);
                a2.intoArray(block, (jj + 2) * lanes);
                a3.intoArray(block, (jj + 3) * lanes);
            }
            for (; jj < jn; jj++) {
                int kr = k + (j0 + jj) * d;
                FloatVector acc = FloatVector.zero(S);
                for (int i = 0; i < bound; i += lanes) acc = FloatVector.fromArray(S, x, q + i).fma(FloatVector.fromArray(S, kc, kr + i), acc);
                acc.intoArray(block, jj * lanes);
            }
            for (int i = 0; i < lanes; i++)
                for (jj = 0; jj < jn; jj++) scores[j0 + jj] += block[jj * lanes + i];
            for (jj = 0; jj < jn; jj++) {
                int kr = k + (j0 + jj) * d;
                float sc = scores[j0 + jj];
                for (int i = bound; i < d; i++) sc += x[q + i] * kc[kr + i];
                scores[j0 + jj] = sc * scale;
                max = Math.max(max, scores[j0 + jj]);
            }
        }
        float sum = Softmax.expInPlace(scores, 0, n, 1f, max);
        for (int j = 0; j < n; j++) scores[j] = scores[j] / sum;
        int i = 0;
        for (; i + 4 * lanes <= bound; i += 4 * lanes) { // four output vectors at a time: four independent fma chains
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
            for (int j = 0; j < n; j++) {
                FloatVector p = FloatVector.broadcast(S, scores[j]);
                int vr = v + j * d + i;
                a0 = FloatVector.fromArray(S, vc, vr).fma(p, a0);
                a1 = FloatVector.fromArray(S, vc, vr + lanes).fma(p, a1);
                a2 = FloatVector.fromArray(S, vc, vr + 2 * lanes).fma(p, a2);
                a3 = FloatVector.fromArray(S, vc, vr + 3 * lanes).fma(p, a3);
            }
            a0.intoArray(o, orow + i);
            a1.intoArray(o, orow + i + lanes);
            a2.intoArray(o, orow + i + 2 * lanes);
            a3.intoArray(o, orow + i + 3 * lanes);
        }
        for (; i < bound; i += lanes) {
            FloatVector acc = FloatVector.zero(S);
            for (int j = 0; j < n; j++) acc = FloatVector.fromArray(S, vc, v + j * d + i).fma(FloatVector.broadcast(S, scores[j]), acc);
            acc.intoArray(o, orow + i);
        }
        for (i = bound; i < d; i++) {
            float y = 0f;
            for (int j = 0; j < n; j++) y += scores[j] * vc[v + j * d + i];
            o[orow + i] = y;
        }
    }

    /** y += alpha · x. */
    static void axpy(float alpha, float[] x, int xo, float[] y, int yo, int n) {
        FloatVector va = FloatVector.broadcast(S, alpha);
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += S.length())
            FloatVector.fromArray(S, x, xo + i).fma(va, FloatVector.fromArray(S, y, yo + i)).intoArray(y, yo + i);
        for (; i < n; i++) y[yo + i] += alpha * x[xo + i];
    }

    // ---- softmax rows (Softmax's SIMD side; each lane computes exactly what Softmax's scalar loops do) ----

    private static final FloatVector C7 = FloatVector.broadcast(S, Softmax.C7), C6 = FloatVector.broadcast(S, Softmax.C6),
            C5 = FloatVector.broadcast(S, Softmax.C5), C4 = FloatVector.broadcast(S, Softmax.C4),
            C3 = FloatVector.broadcast(S, Softmax.C3), C2 = FloatVector.broadcast(S, Softmax.C2), ONE = FloatVector.broadcast(S, 1f);
    private static final FloatVector NEG_LN2_HI = FloatVector.broadcast(S, -Softmax.LN2_HI), NEG_LN2_LO = FloatVector.broadcast(S, -Softmax.LN2_LO);
    private static final int EXP_BITS_BIAS = Float.floatToRawIntBits(Softmax.ROUNDER) - 127;

    /** {@link Softmax#exp} lane by lane, bit for bit. */
    static FloatVector exp(FloatVector x) {
        VectorMask<Float> under = x.lt(Softmax.EXP_LO);
        x = x.min(Softmax.EXP_HI);
        FloatVector t = x.fma(Softmax.LOG2E, Softmax.ROUNDER);
        FloatVector n = t.sub(Softmax.ROUNDER);
        FloatVector r = n.fma(NEG_LN2_HI, x);
        r = n.fma(NEG_LN2_LO, r);
        FloatVector p = C7.fma(r, C6);
        p = p.fma(r, C5);
        p = p.fma(r, C4);
        p = p.fma(r, C3);
        p = p.fma(r, C2);
        p = p.fma(r, ONE);
        p = p.fma(r, ONE);
        FloatVector scale = t.reinterpretAsInts().sub(EXP_BITS_BIAS).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        return p.mul(scale).blend(FloatVector.zero(S), under);
    }

    static float max(float[] z, int o, int n) {
        FloatVector acc = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        int j = 0;
        for (int bound = S.loopBound(n); j < bound; j += S.length()) acc = acc.max(FloatVector.fromArray(S, z, o + j));
        return Softmax.maxScalar(z, o + j, n - j, acc.reduceLanes(VectorOperators.MAX));
    }

    /** {@link Softmax#expSums}: fp32 lanes within blocks of {@link Softmax#SUM_BLOCK}, the blocks' sums in double. */
    static void expSums(float[] z, int o, int n, float invT, float shift, double[] sums) {
        double s = 0, sx = 0;
        int j = 0, bound = S.loopBound(n);
        while (j < bound) {
            FloatVector vs = FloatVector.zero(S), vsx = vs;
            for (int end = Math.min(bound, j + Softmax.SUM_BLOCK); j < end; j += S.length()) {
                FloatVector x = FloatVector.fromArray(S, z, o + j).mul(invT).sub(shift);
                FloatVector e = exp(x);
                vs = vs.add(e);
                vsx = e.fma(x, vsx);
            }
            s += sum(vs);
            sx += sum(vsx);
        }
        sums[0] = s;
        sums[1] = sx;
        Softmax.expSumsScalar(z, o + j, n - j, invT, shift, sums);
    }

    /** {@link Softmax#gradientScalar}: z ← scale · e^{z·invT − logZ}. */
    static void softmaxGradient(float[] z, int o, int n, float scale, float logZ, float invT) {
        int j = 0;
        for (int bound = S.loopBound(n); j < bound; j += S.length())
            exp(FloatVector.fromArray(S, z, o + j).mul(invT).sub(logZ)).mul(scale).intoArray(z, o + j);
        Softmax.gradientScalar(z, o + j, n - j, scale, logZ, invT);
    }

    /** {@link Softmax#expInPlace}. */
    static float expInPlace(float[] z, int o, int n, float scale, float shift) {
        FloatVector sum = FloatVector.zero(S);
        int j = 0;
        for (int bound = S.loopBound(n); j < bound; j += S.length()) {
            FloatVector e = exp(FloatVector.fromArray(S, z, o + j).mul(scale).sub(shift));
            e.intoArray(z, o + j);
            sum = sum.add(e);
        }
        return Softmax.expInPlaceScalar(z, o + j, n - j, scale, shift, sum(sum));
    }

    /** The SIMD side of {@link Softmax#causalBackwardRow} over the visible keys [0, keys). */
    static void causalBackwardRow(float[] p, float[] dp, int o, int keys, float scale, float lse) {
        FloatVector sum = FloatVector.zero(S);
        int j = 0, bound = S.loopBound(keys);
        for (; j < bound; j += S.length()) {
            FloatVector pj = exp(FloatVector.fromArray(S, p, o + j).mul(scale).sub(lse));
            pj.intoArray(p, o + j);
            sum = pj.fma(FloatVector.fromArray(S, dp, o + j), sum);
        }
        float delta = Softmax.expDotScalar(p, dp, o + j, keys - j, scale, lse, sum(sum));
        for (j = 0; j < bound; j += S.length())
            FloatVector.fromArray(S, p, o + j).mul(FloatVector.fromArray(S, dp, o + j).sub(delta)).mul(scale).intoArray(dp, o + j);
        Softmax.scoreGradientScalar(p, dp, o + j, keys - j, scale, delta);
    }

    // ---- AdamW ----

    /**
     * AdamW over the whole vectors of n elements (p, g, m, v each from its offset), lane for lane the
     * operations of CpuKernels.adamwScalar in its order (separate multiply and add, no fma; the
     * float square root is the correctly rounded one, as (float) Math.sqrt of a float is): bit for
     * bit. Returns how many elements it did; the caller does the rest with the scalar loop.
     */
    static int adamw(float[] p, int po, float[] g, int go, float[] m, int mo, float[] v, int vo, int n,
                     float lr, float beta1, float beta2, float eps, float weightDecay, float gradScale, float c1, float c2) {
        FloatVector b1 = FloatVector.broadcast(S, beta1), b2 = FloatVector.broadcast(S, beta2);
        FloatVector ob1 = FloatVector.broadcast(S, 1f - beta1), ob2 = FloatVector.broadcast(S, 1f - beta2);
        FloatVector scale = FloatVector.broadcast(S, gradScale), vc1 = FloatVector.broadcast(S, c1), vc2 = FloatVector.broadcast(S, c2);
        FloatVector veps = FloatVector.broadcast(S, eps), vlr = FloatVector.broadcast(S, lr), wd = FloatVector.broadcast(S, weightDecay);
        int bound = S.loopBound(n);
        for (int j = 0; j < bound; j += S.length()) {
            FloatVector gj = FloatVector.fromArray(S, g, go + j).mul(scale);
            FloatVector mj = b1.mul(FloatVector.fromArray(S, m, mo + j)).add(ob1.mul(gj));
            FloatVector vj = b2.mul(FloatVector.fromArray(S, v, vo + j)).add(ob2.mul(gj).mul(gj));
            mj.intoArray(m, mo + j);
            vj.intoArray(v, vo + j);
            FloatVector update = mj.div(vc1).div(vj.div(vc2).sqrt().add(veps));
            FloatVector pj = FloatVector.fromArray(S, p, po + j);
            pj.sub(vlr.mul(update.add(wd.mul(pj)))).intoArray(p, po + j);
        }
        return bound;
    }

    // ---- SwiGLU rows (CpuKernels' scalar loops lane by lane, bit for bit) ----

    static void swiglu(float[] gu, int g, float[] o, int y, int inter) {
        int j = 0;
        for (int bound = S.loopBound(inter); j < bound; j += S.length()) {
            FloatVector gj = FloatVector.fromArray(S, gu, g + j);
            gj.div(exp(gj.neg()).add(ONE)).mul(FloatVector.fromArray(S, gu, g + inter + j)).intoArray(o, y + j);
        }
        CpuKernels.swigluScalar(gu, g, o, y, j, inter);
    }

    static void swigluBackward(float[] gu, int g, float[] d, int dy, float[] dgu, int dg, int inter) {
        int j = 0;
        for (int bound = S.loopBound(inter); j < bound; j += S.length()) {
            FloatVector gj = FloatVector.fromArray(S, gu, g + j), u = FloatVector.fromArray(S, gu, g + inter + j);
            FloatVector dyj = FloatVector.fromArray(S, d, dy + j);
            FloatVector sig = ONE.div(exp(gj.neg()).add(ONE));
            dyj.mul(u).mul(sig).mul(gj.mul(ONE.sub(sig)).add(ONE)).intoArray(dgu, dg + j);
            dyj.mul(gj).mul(sig).intoArray(dgu, dg + inter + j);
        }
        CpuKernels.swigluBackwardScalar(gu, g, d, dy, dgu, dg, j, inter);
    }
}
