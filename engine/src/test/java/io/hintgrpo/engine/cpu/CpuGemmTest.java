package io.hintgrpo.engine.cpu;

import io.hintgrpo.engine.Kernels.Gemm;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CpuGemmTest {

    private static final int THREADS = Parallel.threads();

    @AfterEach
    void restore() {
        CpuGemm.forceScalar = false;
        Parallel.setThreads(THREADS);
    }

    /** m, n, k: odd sizes, edges of every block (MR 12, NR 32, MC 96, KC 256), the dot path (NT, m < 16). */
    private static final int[][] SHAPES = {
            {1, 1, 1}, {1, 7, 33}, {2, 3, 5}, {3, 1, 17}, {4, 4, 4}, {5, 33, 7}, {7, 127, 33}, {8, 64, 257},
            {11, 13, 128}, {12, 32, 16}, {13, 31, 100}, {15, 65, 513}, {16, 16, 16}, {17, 33, 1},
            {23, 1, 31}, {24, 64, 64}, {33, 7, 127}, {47, 95, 3}, {95, 97, 260}, {96, 96, 96},
            {97, 129, 255}, {127, 33, 600}, {128, 128, 128}, {193, 200, 300}, {200, 1, 70}, {1, 300, 700},
            {64, 513, 33}, {300, 41, 513},
    };

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void matchesDoubleReference(boolean scalar) {
        CpuGemm.forceScalar = scalar;
        SplittableRandom rnd = new SplittableRandom(42);
        for (Gemm layout : Gemm.values())
            for (int[] s : SHAPES)
                for (boolean bias : new boolean[]{false, true})
                    for (boolean acc : new boolean[]{false, true})
                        checkOne(layout, s[0], s[1], s[2], bias, acc, rnd);
    }

    /** Operands big enough that packed A or packed B (4M floats a chunk) is built in more than one chunk. */
    @Test
    void packedInChunks() {
        SplittableRandom rnd = new SplittableRandom(7);
        checkOne(Gemm.NT, 97, 880, 5000, true, true, rnd);   // B: 26 panels a chunk, 28 panels
        checkOne(Gemm.NN, 800, 40, 5000, false, false, rnd); // A: 8 row blocks a chunk, 9 row blocks
    }

    @Test
    void decodeShapes() {
        SplittableRandom rnd = new SplittableRandom(3);
        for (int m = 1; m <= 20; m++) checkOne(Gemm.NT, m, 704, 256, m % 2 == 0, m % 3 == 0, rnd);
    }

    private static void checkOne(Gemm layout, int m, int n, int k, boolean withBias, boolean acc, SplittableRandom rnd) {
        int aOff = 3 + rnd.nextInt(5), bOff = 1 + rnd.nextInt(5), oOff = 2 + rnd.nextInt(5), biasOff = 5;
        float[] a = random(aOff + m * k + 2, rnd), b = random(bOff + n * k + 3, rnd);
        float[] bias = withBias ? random(biasOff + n + 1, rnd) : null;
        float[] out = random(oOff + m * n + 4, rnd);
        if (!acc) Arrays.fill(out, oOff, oOff + m * n, Float.NaN);
        float[] before = out.clone();
        double[] ref = reference(layout, before, oOff, a, aOff, b, bOff, bias, biasOff, m, n, k, acc);

        CpuGemm.gemm(layout, out, oOff, a, aOff, b, bOff, bias, biasOff, m, n, k, acc);

        double num = 0, den = 0;
        for (int i = 0; i < m * n; i++) {
            double d = out[oOff + i] - ref[i];
            num += d * d;
            den += ref[i] * ref[i];
        }
        double rel = Math.sqrt(num / den);
        String what = layout + " m=" + m + " n=" + n + " k=" + k + " bias=" + withBias + " acc=" + acc
                + (CpuGemm.vectorized() ? " vector" : " scalar");
        assertTrue(rel <= 1e-5, what + ": relative error " + rel);
        // nothing outside out[oOff, oOff + m·n) is touched
        for (int i = 0; i < oOff; i++) assertEquals(before[i], out[i], what);
        for (int i = oOff + m * n; i < out.length; i++) assertEquals(before[i], out[i], what);
    }

    private static float[] random(int len, SplittableRandom rnd) {
        float[] x = new float[len];
        for (int i = 0; i < len; i++) {
            float v = (float) (0.1 + 0.9 * rnd.nextDouble());
            x[i] = rnd.nextBoolean() ? v : -v;
        }
        return x;
    }

    private static double[] reference(Gemm layout, float[] out, int oOff, float[] a, int aOff, float[] b, int bOff,
                                      float[] bias, int biasOff, int m, int n, int k, boolean acc) {
        // element (i, p) of op(a) at aOff + i·ai + p·ap; (p, j) of op(b) at bOff + p·bp + j·bj
        int ai = layout == Gemm.TN ? 1 : k, ap = layout == Gemm.TN ? m : 1;
        int bp = layout == Gemm.NT ? 1 : n, bj = layout == Gemm.NT ? k : 1;
        double[] r = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double s = 0;
                int x = aOff + i * ai, y = bOff + j * bj;
                for (int p = 0; p < k; p++) s += (double) a[x + p * ap] * b[y + p * bp];
                if (bias != null) s += bias[biasOff + j];
                if (acc) s += out[oOff + i * n + j];
                r[i * n + j] = s;
            }
        return r;
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void bitIdenticalForAnyThreadCount(boolean scalar) {
        CpuGemm.forceScalar = scalar;
        int[][] shapes = {{300, 257, 513}, {7, 1000, 300}, {1024, 96, 64}, {97, 129, 255}, {40, 2000, 33}};
        for (Gemm layout : Gemm.values())
            for (int[] s : shapes) {
                int m = s[0], n = s[1], k = s[2];
                SplittableRandom rnd = new SplittableRandom(m * 31 + n);
                float[] a = random(m * k + 1, rnd), b = random(n * k + 1, rnd), bias = random(n + 1, rnd);
                float[] init = random(m * n + 1, rnd);
                float[] first = null;
                for (int threads : new int[]{1, 2, 3, 1}) {
                    Parallel.setThreads(threads);
                    float[] out = init.clone();
                    CpuGemm.gemm(layout, out, 1, a, 1, b, 1, bias, 1, m, n, k, true);
                    if (first == null) first = out;
                    else assertArrayEquals(first, out, 0f, layout + " " + Arrays.toString(s) + " threads=" + threads);
                }
            }
    }

    /**
     * A prepared weight gives gemm's result bit for bit where gemm packs (m ≥ 16 rows), within fp32
     * rounding of the exact product where gemm takes dot products (fewer rows), for any thread count;
     * bias, accumulation, ragged panels and several k-blocks included.
     */
    @Test
    void preparedWeightsGiveGemmsResult() {
        int[][] shapes = {{16, 257, 513}, {300, 96, 64}, {97, 129, 255}, {1, 1000, 300}, {8, 2048, 256}, {15, 33, 700}};
        for (int[] s : shapes) {
            int m = s[0], n = s[1], k = s[2];
            SplittableRandom rnd = new SplittableRandom(m * 7 + n);
            float[] a = random(m * k + 3, rnd), w = random(n * k + 5, rnd), bias = random(n + 1, rnd), init = random(m * n + 2, rnd);
            float[] prepared = CpuGemm.prepareNT(w, 5, n, k);
            float[] want = init.clone();
            CpuGemm.gemm(Gemm.NT, want, 2, a, 3, w, 5, bias, 1, m, n, k, true);
            double[] exact = reference(Gemm.NT, init, 2, a, 3, w, 5, bias, 1, m, n, k, true);
            for (int threads : new int[]{1, 2, 3}) {
                Parallel.setThreads(threads);
                float[] got = init.clone();
                CpuGemm.gemmPrepared(got, 2, a, 3, prepared, bias, 1, m, n, k, true);
                if (m >= CpuGemmVector.DOT_M) assertArrayEquals(want, got, 0f, Arrays.toString(s) + " threads=" + threads);
                for (int i = 0; i < m * n; i++)
                    assertEquals(exact[i], got[2 + i], 1e-5 * (1 + Math.abs(exact[i])) * Math.sqrt(k), Arrays.toString(s) + " element " + i);
                assertEquals(init[0], got[0]);
                assertEquals(init[1], got[1], "nothing before outOff is touched");
            }
            Parallel.setThreads(THREADS);
        }
        assertThrows(IllegalArgumentException.class, () -> CpuGemm.gemmPrepared(new float[4], 0, new float[4], 0, new float[3], null, 0, 2, 2, 2, false),
                "a prepared array of another shape");
        CpuGemm.forceScalar = true;
        assertEquals(null, CpuGemm.prepareNT(new float[4], 0, 2, 2), "the scalar path prepares nothing");
    }

    /**
     * Every micro-kernel (12 rows, 4 rows, 4 rows over two panels at once) sums an element the same
     * way, so with a prepared weight a row's result does not depend on how many rows share the call
     * or which kernel got it: each row of a batch equals that row alone, bit for bit.
     */
    @Test
    void preparedRowsDoNotDependOnTheirNeighbours() {
        int n = 200, k = 300; // 6 whole panels and a ragged one, two k-blocks
        SplittableRandom rnd = new SplittableRandom(11);
        float[] w = random(n * k, rnd), bias = random(n, rnd);
        float[] prepared = CpuGemm.prepareNT(w, 0, n, k);
        for (int m : new int[]{2, 5, 8, 16, 17, 29, 40, 101}) {
            float[] a = random(m * k, rnd), init = random(m * n, rnd);
            float[] all = init.clone();
            CpuGemm.gemmPrepared(all, 0, a, 0, prepared, bias, 0, m, n, k, true);
            for (int i = 0; i < m; i++) {
                float[] one = Arrays.copyOfRange(init, i * n, (i + 1) * n);
                CpuGemm.gemmPrepared(one, 0, a, i * k, prepared, bias, 0, 1, n, k, true);
                assertArrayEquals(one, Arrays.copyOfRange(all, i * n, (i + 1) * n), 0f, "row " + i + " of " + m);
            }
        }
    }

    @Test
    void emptyAndDegenerateShapes() {
        float[] out = {1f, 2f, 3f, 4f};
        CpuGemm.gemm(Gemm.NN, out, 0, new float[0], 0, new float[0], 0, null, 0, 0, 4, 0, false);
        assertArrayEquals(new float[]{1f, 2f, 3f, 4f}, out);
        // k = 0: out = bias (+ out)
        CpuGemm.gemm(Gemm.NT, out, 0, new float[0], 0, new float[0], 0, new float[]{10f, 20f}, 0, 2, 2, 0, true);
        assertArrayEquals(new float[]{11f, 22f, 13f, 24f}, out);
        CpuGemm.gemm(Gemm.NT, out, 0, new float[0], 0, new float[0], 0, null, 0, 2, 2, 0, false);
        assertArrayEquals(new float[4], out);
    }

    @Test
    void rejectsShapesThatOverrunArrays() {
        float[] x = new float[10];
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CpuGemm.gemm(Gemm.NN, x, 0, x, 0, new float[5], 0, null, 0, 2, 3, 2, false));
        assertTrue(e.getMessage().contains("b["), e.getMessage());
    }

    @Test
    void vectorPathIsOnUnderTheBuild() {
        // surefire runs with --add-modules jdk.incubator.vector (parent pom, vector.module)
        assertTrue(CpuGemm.vectorized());
    }

    /** A JVM without the module: the scalar path runs, one warning, no crash. */
    @Test
    void withoutVectorModule() throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> cmd = new ArrayList<>(List.of(java, "-cp", cp, NoVectorModuleMain.class.getName()));
        Process p = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "child JVM timed out");
        String stdout = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String stderr = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), stdout + stderr);
        assertEquals("ok", stdout.strip(), stderr);
        String warning = "jdk.incubator.vector not available: the CPU backend uses scalar loops; "
                + "run with --add-modules jdk.incubator.vector";
        assertEquals(1, stderr.split(Pattern.quote(warning), -1).length - 1, stderr);
        assertFalse(stderr.contains("Exception"), stderr);
    }
}
