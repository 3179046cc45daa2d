package io.hintgrpo.engine.cpu;

import io.hintgrpo.engine.Buf;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.SplittableRandom;

import static io.hintgrpo.engine.Check.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The GRPO ops of the cpu backend against an independent double-precision reference written
 * here: advantages from E[r²] − mean² (not the kernel's two passes), the clipped surrogate as
 * max(−ρA, −clip(ρ)A), the clip flag from the sign of A and the side of the range, and the
 * weight against central finite differences of the reference's per-token loss w.r.t. logp.
 * Ratios are kept ≥ 0.01 away from the clip edges, so no difference straddles a kink.
 */
public class CpuGrpoTest extends CpuOpsTest {
    private static final double TOL = 1e-5;

    // ---------------- advantages ----------------

    @ParameterizedTest
    @CsvSource({"1,1,false", "1,1,true", "4,1,false", "3,8,false", "3,8,true", "5,7,false", "2,33,true", "2,33,false"})
    void advantages(int groups, int g, boolean drGrpo) {
        SplittableRandom rng = new SplittableRandom(groups * 100L + g);
        float eps = 1e-4f;
        float[] r = new float[groups * g];
        for (int i = 0; i < r.length; i++) r[i] = (float) (rng.nextBoolean() ? rng.nextInt(3) * 0.5 : rng.nextDouble());
        if (groups > 1) for (int i = 0; i < g; i++) r[g + i] = 0.7f; // an all-equal group
        Buf adv = poisoned(r.length), stats = poisoned(2 * groups);
        k.grpoAdvantages(adv, stats, up(r), groups, g, drGrpo, eps);

        double[] wantA = new double[r.length], wantStats = new double[2 * groups];
        for (int q = 0; q < groups; q++) {
            double s = 0, s2 = 0;
            for (int i = 0; i < g; i++) {
                s += r[q * g + i];
                s2 += (double) r[q * g + i] * r[q * g + i];
            }
            double mean = s / g, std = Math.sqrt(Math.max(0, s2 / g - mean * mean));
            wantStats[2 * q] = mean;
            wantStats[2 * q + 1] = std;
            for (int i = 0; i < g; i++) wantA[q * g + i] = drGrpo ? r[q * g + i] - mean : (r[q * g + i] - mean) / (std + eps);
        }
        float[] a = down(adv), st = down(stats);
        assertClose("advantages", a, wantA, TOL);
        assertClose("stats", st, wantStats, TOL);
        for (int q = 0; q < groups; q++) {
            boolean allEqual = g == 1 || (groups > 1 && q == 1);
            if (!allEqual) continue;
            assertEquals(0f, st[2 * q + 1], "an all-equal group has std exactly 0 (group " + q + ")");
            for (int i = 0; i < g; i++) assertEquals(0f, a[q * g + i], "an all-equal group has zero advantages");
        }
    }

    // ---------------- policy loss ----------------

    /** −min(ρA, clip(ρ)A) + β·k3 in double, written as a max; k3 = 0 without a reference. */
    static double lossRef(double logp, double logpOld, Double ref, double a, double epsLow, double epsHigh, double beta) {
        double rho = Math.exp(logp - logpOld);
        double clippedRho = rho < 1 - epsLow ? 1 - epsLow : rho > 1 + epsHigh ? 1 + epsHigh : rho;
        double surrogate = Math.max(-rho * a, -clippedRho * a);
        double k3 = ref == null ? 0 : Math.exp(ref - logp) - (ref - logp) - 1;
        return surrogate + beta * k3;
    }

    /** Inputs of one policy-loss case: index 0 logp, 1 logpOld, 2 ref, 3 advantage, 4 scale. */
    public static float[][] policyInputs(SplittableRandom rng, int m, float epsLow, float epsHigh) {
        float[] logp = new float[m], old = new float[m], ref = new float[m], adv = new float[m], scale = new float[m];
        for (int t = 0; t < m; t++) {
            logp[t] = (float) (-3 * Math.abs(rng.nextGaussian()) - 0.01);
            double logRatio;
            do logRatio = t % 5 == 0 ? 0 : 0.3 * rng.nextGaussian();
            while (Math.abs(Math.exp(logRatio) - (1 - epsLow)) < 0.01 || Math.abs(Math.exp(logRatio) - (1 + epsHigh)) < 0.01);
            old[t] = (float) (logp[t] - logRatio);
            ref[t] = (float) (logp[t] + (t % 7 == 3 ? 1e-3 : 0.4) * rng.nextGaussian());
            adv[t] = t % 11 == 4 ? 0f : (float) (1.5 * rng.nextGaussian());
            scale[t] = t % 6 == 1 ? 0f : (float) (0.05 + rng.nextDouble() * 0.2);
        }
        return new float[][]{logp, old, ref, adv, scale};
    }

    @ParameterizedTest
    @CsvSource({
            "1, 0.2, 0.2, 0.04, true",
            "37, 0.2, 0.2, 0.04, true",
            "1001, 0.2, 0.28, 0.04, true",
            "37, 0.2, 0.28, 0.0, false",
            "257, 0.2, 0.2, 0.0, false",
            "64, 0.1, 0.3, 0.0, true",
            "99, 0.2, 0.28, 0.5, true"})
    void policyLoss(int m, float epsLow, float epsHigh, float beta, boolean withRef) {
        SplittableRandom rng = new SplittableRandom(m * 7L + (withRef ? 1 : 0));
        float[][] in = policyInputs(rng, m, epsLow, epsHigh);
        float[] logp = in[0], old = in[1], ref = in[2], adv = in[3], scale = in[4];
        Buf loss = poisoned(m), weight = poisoned(m), clipped = poisoned(m), kl = poisoned(m);
        k.grpoPolicyLoss(loss, weight, clipped, kl, up(logp), up(old), withRef ? up(ref) : null, up(adv), up(scale),
                m, epsLow, epsHigh, beta);

        double[] wantLoss = new double[m], wantWeight = new double[m], wantClipped = new double[m], wantKl = new double[m];
        int clippedCount = 0;
        for (int t = 0; t < m; t++) {
            Double r = withRef ? (double) ref[t] : null;
            double lp = logp[t], lo = old[t], a = adv[t];
            wantLoss[t] = scale[t] * lossRef(lp, lo, r, a, epsLow, epsHigh, beta);
            double h = 1e-6;
            double dL = (lossRef(lp + h, lo, r, a, epsLow, epsHigh, beta) - lossRef(lp - h, lo, r, a, epsLow, epsHigh, beta)) / (2 * h);
            wantWeight[t] = -scale[t] * dL;
            double rho = Math.exp(lp - lo);
            boolean clip = (a > 0 && rho > 1 + epsHigh) || (a < 0 && rho < 1 - epsLow);
            wantClipped[t] = clip ? 1 : 0;
            clippedCount += clip ? 1 : 0;
            wantKl[t] = withRef ? Math.exp(ref[t] - lp) - (ref[t] - lp) - 1 : 0;
        }
        assertClose("loss", down(loss), wantLoss, TOL);
        assertClose("weight vs finite differences", down(weight), wantWeight, TOL);
        assertArrayEquals(f(wantClipped), down(clipped), "clip flags");
        assertClose("kl", down(kl), wantKl, TOL);
        if (m > 30) assertTrue(clippedCount > 0 && clippedCount < m, "the case exercises both sides of the clip");
        if (!withRef) for (float x : down(kl)) assertEquals(0f, x, "no reference: k3 = 0");
    }

    /** With ρ = 1 (the first pass) and β = 0 the weight is scale·A exactly, the loss −scale·A. */
    @Test
    void firstPassWeightIsScaledAdvantage() {
        int m = 9;
        SplittableRandom rng = new SplittableRandom(3);
        float[] logp = randn(rng, m, 1), adv = randn(rng, m, 1), scale = new float[m];
        for (int t = 0; t < m; t++) scale[t] = 1f / (t + 1);
        Buf loss = poisoned(m), weight = poisoned(m), clipped = poisoned(m), kl = poisoned(m);
        k.grpoPolicyLoss(loss, weight, clipped, kl, up(logp), up(logp), null, up(adv), up(scale), m, 0.2f, 0.2f, 0f);
        float[] w = down(weight), l = down(loss), c = down(clipped);
        for (int t = 0; t < m; t++) {
            assertEquals((float) ((double) scale[t] * adv[t]), w[t], 0f);
            assertEquals((float) (-(double) scale[t] * adv[t]), l[t], 0f);
            assertEquals(0f, c[t]);
        }
    }

    @Test
    void nullReferenceNeedsBetaZero() {
        Buf x = up(new float[]{-1f});
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> k.grpoPolicyLoss(x, x, x, x, x, x, null, x, x, 1, 0.2f, 0.2f, 0.04f));
        assertTrue(e.getMessage().contains("ref is null"), e.getMessage());
    }

    private static float[] f(double[] v) {
        float[] out = new float[v.length];
        for (int i = 0; i < v.length; i++) out[i] = (float) v[i];
        return out;
    }
}
