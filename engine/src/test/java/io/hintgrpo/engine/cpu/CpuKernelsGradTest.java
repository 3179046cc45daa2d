package io.hintgrpo.engine.cpu;

import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.Kernels.Gemm;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static io.hintgrpo.engine.Check.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Every op of the cpu backend against an independent double-precision reference written here:
 * forwards compared directly, backwards against central finite differences of that reference.
 * Shapes are odd on purpose; inputs random; outputs poisoned with NaN before each call.
 */
class CpuKernelsGradTest extends CpuOpsTest {
    private static final double FWD = 1e-5, BWD = 1e-4;

    private static float[] f(double[] v) {
        float[] out = new float[v.length];
        for (int i = 0; i < v.length; i++) out[i] = (float) v[i];
        return out;
    }

    // ---------------- Linear: gemm NT forward, NN/TN/bias backward ----------------

    static double[] linearRef(double[] x, double[] w, double[] bias, int m, int n, int kk) {
        double[] out = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double s = bias == null ? 0 : bias[j];
                for (int p = 0; p < kk; p++) s += x[i * kk + p] * w[j * kk + p];
                out[i * n + j] = s;
            }
        return out;
    }

    @ParameterizedTest
    @CsvSource({"1,1,1", "7,5,3", "13,17,11", "33,9,40"})
    void linearForwardAndBackward(int m, int n, int kk) {
        SplittableRandom rng = new SplittableRandom(m * 31L + n);
        float[] x = randn(rng, m * kk, 1), w = randn(rng, n * kk, 1), bias = randn(rng, n, 1), r = randn(rng, m * n, 1);
        Buf out = poisoned(m * n);
        k.gemm(Gemm.NT, out, up(x), up(w), up(bias), m, n, kk, false);
        double[] xd = toDouble(x), wd = toDouble(w), bd = toDouble(bias), rd = toDouble(r);
        assertClose("linear forward", down(out), linearRef(xd, wd, bd, m, n, kk), FWD);

        // backward: dx = dout·W (NN), dW += doutᵀ·x (TN), db += column sums; gradients accumulate onto a base
        float[] base = randn(rng, n * kk, 1), baseB = randn(rng, n, 1);
        Buf dx = poisoned(m * kk), dw = up(base), db = up(baseB);
        k.gemm(Gemm.NN, dx, up(r), up(w), null, m, kk, n, false);
        k.gemm(Gemm.TN, dw, up(r), up(x), null, n, kk, m, true);
        k.biasBackward(db, up(r), m, n);
        assertClose("linear dx", down(dx), fdGrad(v -> linearRef(v, wd, bd, m, n, kk), xd, rd), BWD);
        double[] gw = fdGrad(v -> linearRef(xd, v, bd, m, n, kk), wd, rd);
        for (int i = 0; i < gw.length; i++) gw[i] += base[i];
        assertClose("linear dW", down(dw), gw, BWD);
        double[] gb = fdGrad(v -> linearRef(xd, wd, v, m, n, kk), bd, rd);
        for (int i = 0; i < gb.length; i++) gb[i] += baseB[i];
        assertClose("linear dbias", down(db), gb, BWD);
    }

    /** addBlock: an m × n block between two row strides, added with alpha; everything outside the block untouched. */
    @ParameterizedTest
    @CsvSource({"1,1,1,1", "7,5,9,5", "4,3,11,8", "13,17,17,40"})
    void addBlock(int m, int n, int ldDst, int ldSrc) {
        SplittableRandom rng = new SplittableRandom(m * 13L + n);
        int col = ldDst - n; // the block ends at the row's end: the last column block of a packed output
        float[] dst = randn(rng, m * ldDst, 1), src = randn(rng, m * ldSrc, 1);
        float alpha = -1.75f;
        Buf d = up(dst);
        k.addBlock(d.slice(col, (long) (m - 1) * ldDst + n), ldDst, up(src), ldSrc, m, n, alpha);
        double[] want = toDouble(dst);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) want[i * ldDst + col + j] += alpha * (double) src[i * ldSrc + j];
        assertClose("addBlock", down(d), want, FWD);
        float[] got = down(d);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < col; j++) assertEquals(dst[i * ldDst + j], got[i * ldDst + j], 0f, "outside the block");
    }

    // ---------------- RMSNorm ----------------

    static double[] rmsnormRef(double[] x, double[] w, int m, int c, double eps) {
        double[] out = new double[m * c];
        for (int i = 0; i < m; i++) {
            double ss = 0;
            for (int j = 0; j < c; j++) ss += x[i * c + j] * x[i * c + j];
            double inv = 1 / Math.sqrt(ss / c + eps);
            for (int j = 0; j < c; j++) out[i * c + j] = w[j] * x[i * c + j] * inv;
        }
        return out;
    }

    @ParameterizedTest
    @CsvSource({"1,2", "5,7", "9,64", "3,129"})
    void rmsnorm(int m, int c) {
        SplittableRandom rng = new SplittableRandom(m * 7L + c);
        float eps = 1e-5f;
        float[] x = randn(rng, m * c, 1.5), w = randn(rng, c, 1), r = randn(rng, m * c, 1);
        Buf out = poisoned(m * c), rstd = poisoned(m), xb = up(x), wb = up(w);
        k.rmsnorm(out, rstd, xb, wb, m, c, eps);
        double[] xd = toDouble(x), wd = toDouble(w), rd = toDouble(r);
        assertClose("rmsnorm forward", down(out), rmsnormRef(xd, wd, m, c, eps), FWD);

        float[] baseX = randn(rng, m * c, 1), baseW = randn(rng, c, 1);
        Buf dx = up(baseX), dw = up(baseW);
        k.rmsnormBackward(dx, dw, up(r), xb, wb, rstd, m, c);
        double[] gx = fdGrad(v -> rmsnormRef(v, wd, m, c, eps), xd, rd);
        for (int i = 0; i < gx.length; i++) gx[i] += baseX[i];
        assertClose("rmsnorm dx (accumulated)", down(dx), gx, BWD);
        double[] gw = fdGrad(v -> rmsnormRef(xd, v, m, c, eps), wd, rd);
        for (int i = 0; i < gw.length; i++) gw[i] += baseW[i];
        assertClose("rmsnorm dw (accumulated)", down(dw), gw, BWD);

        // a frozen norm (dweight null): the same dx
        Buf dxOnly = up(baseX);
        k.rmsnormBackward(dxOnly, null, up(r), xb, wb, rstd, m, c);
        assertArrayEquals(down(dx), down(dxOnly), 0f, "dx without dweight");
    }

    // ---------------- SwiGLU, GELU ----------------

    static double[] swigluRef(double[] gu, int m, int inter) {
        double[] out = new double[m * inter];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < inter; j++) {
                double g = gu[i * 2 * inter + j], u = gu[i * 2 * inter + inter + j];
                out[i * inter + j] = g / (1 + Math.exp(-g)) * u;
            }
        return out;
    }

    @ParameterizedTest
    @CsvSource({"1,1", "6,11", "4,40"})
    void swiglu(int m, int inter) {
        SplittableRandom rng = new SplittableRandom(m + 100L * inter);
        float[] gu = randn(rng, m * 2 * inter, 2), r = randn(rng, m * inter, 1);
        Buf out = poisoned(m * inter), gub = up(gu);
        k.swiglu(out, gub, m, inter);
        double[] gd = toDouble(gu);
        assertClose("swiglu forward", down(out), swigluRef(gd, m, inter), FWD);
        Buf dgu = poisoned(m * 2 * inter);
        k.swigluBackward(dgu, up(r), gub, m, inter);
        assertClose("swiglu backward", down(dgu), fdGrad(v -> swigluRef(v, m, inter), gd, toDouble(r)), BWD);
    }

    static double[] geluRef(double[] x) {
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double v = x[i];
            out[i] = 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
        }
        return out;
    }

    @Test
    void gelu() {
        SplittableRandom rng = new SplittableRandom(3);
        int n = 257;
        float[] x = randn(rng, n, 2), r = randn(rng, n, 1);
        Buf out = poisoned(n), xb = up(x);
        k.gelu(out, xb, n);
        assertClose("gelu forward", down(out), geluRef(toDouble(x)), FWD);
        Buf dx = poisoned(n);
        k.geluBackward(dx, up(r), xb, n);
        assertClose("gelu backward", down(dx), fdGrad(CpuKernelsGradTest::geluRef, toDouble(x), toDouble(r)), BWD);
    }

    // ---------------- RoPE ----------------

    static double[] ropeRef(double[] x, int[] pos, int m, int heads, int kvHeads, int d, float theta) {
        double[] out = x.clone();
        int width = (heads + 2 * kvHeads) * d, half = d / 2;
        for (int r = 0; r < m; r++)
            for (int h = 0; h < heads + kvHeads; h++)
                for (int i = 0; i < half; i++) {
                    float invFreq = (float) (1.0 / Math.pow(theta, (float) (2 * i) / d));
                    double angle = (float) pos[r] * invFreq; // fp32 product, as HF computes it
                    int a = r * width + h * d + i;
                    out[a] = x[a] * Math.cos(angle) - x[a + half] * Math.sin(angle);
                    out[a + half] = x[a + half] * Math.cos(angle) + x[a] * Math.sin(angle);
                }
        return out;
    }

    @ParameterizedTest
    @CsvSource({"5,2,1,4", "7,4,2,6", "3,6,3,16"})
    void rope(int m, int heads, int kvHeads, int d) {
        SplittableRandom rng = new SplittableRandom(m * 13L + d);
        int width = (heads + 2 * kvHeads) * d;
        float theta = 10000f;
        int[] pos = new int[m];
        for (int i = 0; i < m; i++) pos[i] = rng.nextInt(300);
        float[] x = randn(rng, m * width, 1), r = randn(rng, m * width, 1);
        Buf xb = up(x), pb = upInts(pos);
        k.rope(xb, pb, m, heads, kvHeads, d, theta, false);
        double[] xd = toDouble(x);
        assertClose("rope forward", down(xb), ropeRef(xd, pos, m, heads, kvHeads, d, theta), FWD);
        Buf g = up(r);
        k.rope(g, pb, m, heads, kvHeads, d, theta, true);
        assertClose("rope backward (inverse rotation)", down(g),
                fdGrad(v -> ropeRef(v, pos, m, heads, kvHeads, d, theta), xd, toDouble(r)), BWD);
    }

    // ---------------- attention ----------------

    /** Causal GQA attention over a right-padded batch; padding rows give zeros. Also returns lse. */
    static double[][] attentionRef(double[] qkv, int[] lengths, int b, int t, int heads, int kvHeads, int d) {
        int width = (heads + 2 * kvHeads) * d, group = heads / kvHeads;
        double[] out = new double[b * t * heads * d], lse = new double[b * heads * t];
        double scale = 1 / Math.sqrt(d);
        for (int s = 0; s < b; s++)
            for (int h = 0; h < heads; h++) {
                int g = h / group;
                for (int i = 0; i < lengths[s]; i++) {
                    double[] sc = new double[i + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j <= i; j++) {
                        double dot = 0;
                        for (int e = 0; e < d; e++)
                            dot += qkv[(s * t + i) * width + h * d + e] * qkv[(s * t + j) * width + (heads + g) * d + e];
                        sc[j] = dot * scale;
                        max = Math.max(max, sc[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j <= i; j++) sum += Math.exp(sc[j] - max);
                    lse[(s * heads + h) * t + i] = max + Math.log(sum);
                    for (int j = 0; j <= i; j++) {
                        double p = Math.exp(sc[j] - max) / sum;
                        for (int e = 0; e < d; e++)
                            out[(s * t + i) * heads * d + h * d + e] += p * qkv[(s * t + j) * width + (heads + kvHeads + g) * d + e];
                    }
                }
            }
        return new double[][]{out, lse};
    }

    @ParameterizedTest
    @CsvSource({"1,4,1,1,2", "2,5,4,2,4", "3,7,6,2,6", "2,9,3,3,8"})
    void attention(int b, int t, int heads, int kvHeads, int d) {
        SplittableRandom rng = new SplittableRandom(b * 1000L + t * 10L + heads);
        int width = (heads + 2 * kvHeads) * d;
        int[] lengths = new int[b];
        for (int s = 0; s < b; s++) lengths[s] = s == 0 ? t : 1 + rng.nextInt(t);
        float[] qkv = randn(rng, b * t * width, 1);
        float[] r = randn(rng, b * t * heads * d, 1);
        for (int s = 0; s < b; s++) // the loss never reads padding rows
            for (int i = lengths[s]; i < t; i++)
                for (int e = 0; e < heads * d; e++) r[(s * t + i) * heads * d + e] = 0;
        Buf out = poisoned(b * t * heads * d), lse = poisoned(b * heads * t), qb = up(qkv), lb = upInts(lengths);
        k.attention(out, lse, qb, lb, b, t, heads, kvHeads, d);
        double[] qd = toDouble(qkv);
        double[][] ref = attentionRef(qd, lengths, b, t, heads, kvHeads, d);
        assertClose("attention out", down(out), ref[0], FWD);
        float[] lseK = down(lse);
        for (int s = 0; s < b; s++) // lse is only defined on real rows
            for (int h = 0; h < heads; h++)
                for (int i = lengths[s]; i < t; i++) lseK[(s * heads + h) * t + i] = (float) ref[1][(s * heads + h) * t + i];
        assertClose("attention lse", lseK, ref[1], FWD);

        Buf dqkv = poisoned(b * t * width);
        k.attentionBackward(dqkv, up(r), qb, out, lse, lb, b, t, heads, kvHeads, d);
        double[] g = fdGrad(v -> attentionRef(v, lengths, b, t, heads, kvHeads, d)[0], qd, toDouble(r));
        assertClose("attention dqkv", down(dqkv), g, BWD);
    }

    // ---------------- embedding, rows ----------------

    @Test
    void embeddingAndScatterGather() {
        SplittableRandom rng = new SplittableRandom(11);
        int vocab = 9, c = 5, m = 7;
        int[] ids = {3, -1, 0, 8, 3, -1, 2};
        float[] table = randn(rng, vocab * c, 1), r = randn(rng, m * c, 1);
        Buf out = poisoned(m * c), ib = upInts(ids);
        k.embedding(out, ib, up(table), m, c);
        double[] ref = new double[m * c];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < c; j++) ref[i * c + j] = ids[i] < 0 ? 0 : table[ids[i] * c + j];
        assertClose("embedding", down(out), ref, 0);

        float[] base = randn(rng, vocab * c, 1);
        Buf dt = up(base);
        k.embeddingBackward(dt, up(r), ib, m, c);
        double[] g = toDouble(base);
        for (int i = 0; i < m; i++)
            if (ids[i] >= 0) for (int j = 0; j < c; j++) g[ids[i] * c + j] += r[i * c + j];
        assertClose("embedding backward", down(dt), g, FWD);

        int[] rows = {5, 1};
        float[] src = randn(rng, 2 * c, 1);
        Buf x = up(down(out)), rb = upInts(rows);
        k.scatterRows(x, up(src), rb, 2, c);
        float[] xs = down(x);
        for (int j = 0; j < c; j++) {
            assertEquals(src[j], xs[5 * c + j]);
            assertEquals(src[c + j], xs[c + j]);
        }
        Buf gathered = poisoned(2 * c);
        k.gatherRows(gathered, x, rb, 2, c);
        assertClose("gather", down(gathered), toDouble(src), 0);
    }

    // ---------------- cross-entropy ----------------

    /** logprob of target and entropy per row at temperature 1/invT; loss = −Σ w·logprob. */
    static double[][] crossEntropyRef(double[] z, int[] targets, int m, int v, double invT) {
        double[] lp = new double[m], ent = new double[m];
        for (int i = 0; i < m; i++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < v; j++) max = Math.max(max, z[i * v + j] * invT);
            double sum = 0;
            for (int j = 0; j < v; j++) sum += Math.exp(z[i * v + j] * invT - max);
            double logZ = max + Math.log(sum);
            double h = 0;
            for (int j = 0; j < v; j++) {
                double lpj = z[i * v + j] * invT - logZ;
                h -= Math.exp(lpj) * lpj;
            }
            ent[i] = h;
            lp[i] = targets[i] < 0 ? 0 : z[i * v + targets[i]] * invT - logZ;
        }
        return new double[][]{lp, ent};
    }

    /** log Σ_j exp(z[i,j]·invT) per row, in double. */
    private static double[] logPartitions(double[] z, int m, int v, float invT) {
        double[] out = new double[m];
        for (int i = 0; i < m; i++) {
            double max = Double.NEGATIVE_INFINITY, sum = 0;
            for (int j = 0; j < v; j++) max = Math.max(max, z[i * v + j] * invT);
            for (int j = 0; j < v; j++) sum += Math.exp(z[i * v + j] * invT - max);
            out[i] = max + Math.log(sum);
        }
        return out;
    }

    @ParameterizedTest
    @CsvSource({"1,2,1.0", "6,13,1.0", "5,100,0.7", "4,257,1.3"})
    void crossEntropy(int m, int v, float temperature) {
        SplittableRandom rng = new SplittableRandom(m * 17L + v);
        float invT = 1f / temperature;
        float[] z = randn(rng, m * v, 3);
        int[] targets = new int[m];
        float[] w = new float[m];
        for (int i = 0; i < m; i++) {
            targets[i] = i == 1 ? -1 : rng.nextInt(v);
            w[i] = (float) rng.nextGaussian(); // signed weights
        }
        Buf zb = up(z), lp = poisoned(m), ent = poisoned(m), lz = poisoned(m), tb = upInts(targets), wb = up(w);
        k.crossEntropy(zb, lp, ent, lz, tb, wb, m, v, invT, false);
        double[] zd = toDouble(z);
        double[][] ref = crossEntropyRef(zd, targets, m, v, invT);
        assertClose("logprob", down(lp), ref[0], FWD);
        assertClose("entropy", down(ent), ref[1], FWD);
        assertClose("log-partition", down(lz), logPartitions(zd, m, v, invT), FWD);
        assertClose("forward leaves logits alone", down(zb), zd, 0);

        double[] negW = new double[m];
        for (int i = 0; i < m; i++) negW[i] = -w[i];
        double[] g = fdGrad(x -> crossEntropyRef(x, targets, m, v, invT)[0], zd, negW);
        k.crossEntropyBackward(zb, lz, tb, wb, m, v, invT);
        assertClose("dlogits of the backward pass", down(zb), g, BWD);
        Buf fused = up(z);
        k.crossEntropy(fused, lp, ent, null, tb, wb, m, v, invT, true);
        assertClose("dlogits of the fused pass", down(fused), g, BWD);
        assertArrayEquals(down(fused), down(zb), "the two backwards give the same bits");
    }

    // ---------------- optimizer ----------------

    @Test
    void adamwAndSumSquares() {
        SplittableRandom rng = new SplittableRandom(5);
        int n = 1031;
        float[] p = randn(rng, n, 1), g = randn(rng, n, 1), m = randn(rng, n, 0.1), v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) Math.abs(rng.nextGaussian() * 0.01);
        float lr = 1e-2f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f, scale = 0.5f;
        int t = 3;
        Buf pb = up(p), gb = up(g), mb = up(m), vb = up(v);
        assertEquals(dot(toDouble(g), toDouble(g)), k.sumSquares(gb, n), 1e-9 * n);
        k.adamw(pb, gb, mb, vb, n, lr, b1, b2, eps, wd, scale, t);
        double[] pr = new double[n], mr = new double[n], vr = new double[n];
        for (int i = 0; i < n; i++) {
            double gi = g[i] * (double) scale;
            mr[i] = b1 * (double) m[i] + (1 - b1) * gi;
            vr[i] = b2 * (double) v[i] + (1 - b2) * gi * gi;
            double mh = mr[i] / (1 - Math.pow(b1, t)), vh = vr[i] / (1 - Math.pow(b2, t));
            pr[i] = p[i] - lr * (mh / (Math.sqrt(vh) + eps) + wd * p[i]);
        }
        assertClose("adamw m", down(mb), mr, FWD);
        assertClose("adamw v", down(vb), vr, FWD);
        assertClose("adamw params", down(pb), pr, FWD);
        // the SIMD loop computes each lane as the scalar loop does: the same bits (n = 1031 leaves a tail)
        boolean was = CpuGemm.forceScalar;
        try {
            CpuGemm.forceScalar = true;
            Buf ps = up(p), ms = up(m), vs = up(v);
            k.adamw(ps, up(g), ms, vs, n, lr, b1, b2, eps, wd, scale, t);
            assertArrayEquals(down(ps), down(pb), "adamw params: SIMD and scalar");
            assertArrayEquals(down(ms), down(mb), "adamw m: SIMD and scalar");
            assertArrayEquals(down(vs), down(vb), "adamw v: SIMD and scalar");
        } finally {
            CpuGemm.forceScalar = was;
        }
    }
}
