package io.hintgrpo.engine.cpu;

import io.hintgrpo.engine.Buf;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The fp32 exp and its users (the LM head's softmax rows, SwiGLU): accuracy, edges, SIMD = scalar bit for bit. */
class SoftmaxTest {
    @AfterEach
    void vectorBackOn() {
        CpuGemm.forceScalar = false;
    }

    @Test
    void expIsWithinTwoUlpOfTheTrueValueOverItsRange() {
        double worstUlps = 0;
        for (float x = -87.29f; x <= 88f; x = Math.nextUp(x + 1e-3f)) {
            float got = Softmax.exp(x);
            double want = Math.exp(x);
            double ulps = Math.abs(got - want) / Math.ulp((float) want);
            worstUlps = Math.max(worstUlps, ulps);
        }
        assertTrue(worstUlps <= 2, "worst error " + worstUlps + " ulp");
        assertEquals(1f, Softmax.exp(0f));
        assertEquals(0f, Softmax.exp(-87.31f), "below the normal floats: exactly 0");
        assertEquals(0f, Softmax.exp(Float.NEGATIVE_INFINITY));
        assertTrue(Float.isNaN(Softmax.exp(Float.NaN)));
        assertTrue(Float.isFinite(Softmax.exp(1000f)), "clamped at 88, never inf");
    }

    @Test
    void simdLanesGiveTheScalarBits() {
        var species = FloatVector.SPECIES_PREFERRED;
        SplittableRandom rng = new SplittableRandom(3);
        float[] x = new float[species.length() * 4096];
        for (int i = 0; i < x.length; i++) x[i] = (float) (rng.nextDouble() * 200 - 110);
        float[] edges = {0f, -0f, -87.3f, -87.31f, 88f, 88.5f, 1000f, Float.NEGATIVE_INFINITY, Float.NaN, Float.MIN_VALUE, 1e-30f, -1e-30f};
        System.arraycopy(edges, 0, x, 0, edges.length);
        float[] simd = new float[x.length];
        for (int i = 0; i < x.length; i += species.length())
            VectorOps.exp(FloatVector.fromArray(species, x, i)).intoArray(simd, i);
        for (int i = 0; i < x.length; i++)
            assertEquals(Float.floatToIntBits(Softmax.exp(x[i])), Float.floatToIntBits(simd[i]), "exp(" + x[i] + ")");
    }

    /** Long rows (several sum blocks and a tail) against a double-precision reference, on both paths. */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void crossEntropyOnLongRowsMatchesDouble(boolean scalar) {
        CpuGemm.forceScalar = scalar;
        int m = 3, v = 5003;
        float invT = 1f / 0.8f;
        SplittableRandom rng = new SplittableRandom(11);
        float[] z = new float[m * v];
        for (int i = 0; i < z.length; i++) z[i] = (float) (rng.nextGaussian() * 4);
        int[] targets = {17, 4999, -1};
        float[] w = {0.5f, -1.5f, 2f};
        CpuKernels k = new CpuKernels();
        Buf zb = k.allocF32(z.length), lp = k.allocF32(m), en = k.allocF32(m), lz = k.allocF32(m), tb = k.allocI32(m), wb = k.allocF32(m);
        k.upload(zb, z);
        k.upload(tb, targets);
        k.upload(wb, w);
        k.crossEntropy(zb, lp, en, lz, tb, wb, m, v, invT, true);
        float[] logprob = new float[m], entropy = new float[m], logZ = new float[m], grad = new float[z.length];
        k.download(lp, logprob);
        k.download(en, entropy);
        k.download(lz, logZ);
        k.download(zb, grad);
        for (int r = 0; r < m; r++) {
            double max = Double.NEGATIVE_INFINITY, sum = 0, sumPz = 0;
            for (int j = 0; j < v; j++) max = Math.max(max, (double) z[r * v + j] * invT);
            for (int j = 0; j < v; j++) sum += Math.exp((double) z[r * v + j] * invT - max);
            double lse = max + Math.log(sum);
            for (int j = 0; j < v; j++) {
                double zj = (double) z[r * v + j] * invT, p = Math.exp(zj - lse);
                sumPz += p * zj;
                double want = targets[r] < 0 ? 0 : w[r] * invT * (p - (j == targets[r] ? 1 : 0));
                assertEquals(want, grad[r * v + j], 1e-6 * Math.abs(w[r] * invT), "row " + r + " dlogit " + j);
            }
            assertEquals(lse, logZ[r], 2e-6 * Math.abs(lse), "row " + r + " logZ");
            assertEquals(lse - sumPz, entropy[r], 2e-5, "row " + r + " entropy");
            if (targets[r] >= 0)
                assertEquals((double) z[r * v + targets[r]] * invT - lse, logprob[r], 2e-5, "row " + r + " logprob");
        }
    }

    @Test
    void crossEntropyIsDeterministic() {
        int m = 4, v = 3001;
        SplittableRandom rng = new SplittableRandom(5);
        float[] z = new float[m * v];
        for (int i = 0; i < z.length; i++) z[i] = (float) (rng.nextGaussian() * 3);
        float[][] runs = new float[2][];
        for (int run = 0; run < 2; run++) {
            CpuKernels k = new CpuKernels();
            Buf zb = k.allocF32(z.length), lp = k.allocF32(m), en = k.allocF32(m), tb = k.allocI32(m), wb = k.allocF32(m);
            k.upload(zb, z);
            k.upload(tb, new int[]{1, 2, 3, 4});
            k.fill(wb, 1f);
            k.crossEntropy(zb, lp, en, null, tb, wb, m, v, 1f, true);
            runs[run] = new float[z.length];
            k.download(zb, runs[run]);
        }
        assertArrayEquals(runs[0], runs[1]);
    }

    @Test
    void swigluSimdGivesTheScalarBits() {
        int m = 3, inter = 16 * 5 + 7; // whole vectors and a tail
        SplittableRandom rng = new SplittableRandom(9);
        float[] gu = new float[m * 2 * inter], dy = new float[m * inter];
        for (int i = 0; i < gu.length; i++) gu[i] = (float) (rng.nextGaussian() * 6);
        gu[0] = 100f;
        gu[1] = -100f;
        for (int i = 0; i < dy.length; i++) dy[i] = (float) rng.nextGaussian();
        float[][] fwd = new float[2][], bwd = new float[2][];
        for (int path = 0; path < 2; path++) {
            CpuGemm.forceScalar = path == 1;
            CpuKernels k = new CpuKernels();
            Buf g = k.allocF32(gu.length), out = k.allocF32(dy.length), d = k.allocF32(dy.length), dg = k.allocF32(gu.length);
            k.upload(g, gu);
            k.upload(d, dy);
            k.swiglu(out, g, m, inter);
            k.swigluBackward(dg, d, g, m, inter);
            fwd[path] = new float[dy.length];
            bwd[path] = new float[gu.length];
            k.download(out, fwd[path]);
            k.download(dg, bwd[path]);
        }
        assertArrayEquals(fwd[1], fwd[0], "forward");
        assertArrayEquals(bwd[1], bwd[0], "backward");
        for (float x : fwd[0]) assertTrue(Float.isFinite(x));
    }

    /** The same bits compiled (after a warm-up that gets the loops through C2) and interpreted (-Xint, in a child JVM). */
    @Test
    void resultsDoNotDependOnTheJit() throws Exception {
        int compiled = 0;
        for (int i = 0; i < 300; i++) compiled = JitIndependenceMain.hash();
        String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        Process p = new ProcessBuilder(javaBin, "-Xint", "--add-modules", "jdk.incubator.vector", "-cp", cp, JitIndependenceMain.class.getName())
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "child JVM timed out");
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), err);
        assertEquals(Integer.toHexString(compiled), out, "interpreted vs compiled; " + err);
    }
}
