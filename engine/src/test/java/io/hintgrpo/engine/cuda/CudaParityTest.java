package io.hintgrpo.engine.cuda;

import io.hintgrpo.engine.Bf16;
import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.Kernels.Gemm;
import io.hintgrpo.engine.cpu.CpuKernels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Every {@link Kernels} op of {@link CudaKernels} against {@link CpuKernels} on random inputs
 * (never zeros), odd sizes, outputs poisoned with NaN first, every device buffer a slice with
 * guard elements on both sides that must survive the op. Errors are ‖out − ref‖ / ‖ref‖: ≤ 1e-5
 * for elementwise and norm ops, ≤ 1e-4 where the summation order differs; integer outputs and
 * the fp32 ↔ bf16 casts bit-exact.
 *
 * <p>The driver comes from {@link #openDriver}: {@code -Dhintgrpo.test.driver=emu} (default, the
 * CUDA emulator, run in more than one thread order) or {@code cuda} (a real GPU: the GPU check
 * runs these same classes). {@code -Dhintgrpo.test.report=FILE} appends each op's largest error.
 */
class CudaParityTest {

    // ---- driver selection: the one place the CUDA tests choose a device ----

    /** The driver kind of this run: "emu" or "cuda". */
    static String driverKind() {
        return System.getProperty("hintgrpo.test.driver", "emu");
    }

    /** Thread orders to run each kernel in: the emulator's several, one on a GPU. */
    static List<String> orders() {
        return driverKind().equals("emu") ? List.of("forward", "reverse", "shuffled") : List.of("device");
    }

    /**
     * A fresh driver of this run's kind; on the emulator, with its threads in the given order
     * (the order is global to the emulator library, so {@link #kernels} sets it again on each use).
     */
    static Driver openDriver(String order) {
        String kind = driverKind();
        switch (kind) {
            case "emu" -> {
                EmuDriver emu = new EmuDriver();
                setOrder(emu, order);
                return emu;
            }
            case "cuda" -> {
                try { // by name: the JCuda driver is built on another branch
                    return (Driver) Class.forName("io.hintgrpo.engine.cuda.JCudaDriver").getConstructor().newInstance();
                } catch (ReflectiveOperationException e) {
                    throw new IllegalStateException("cannot open the cuda driver", e);
                }
            }
            default -> throw new IllegalArgumentException("hintgrpo.test.driver must be emu or cuda, got " + kind);
        }
    }

    private static void setOrder(Driver driver, String order) {
        if (driver instanceof EmuDriver emu)
            emu.setThreadOrder(EmuDriver.ThreadOrder.valueOf(order.toUpperCase(java.util.Locale.ROOT)), 20240611L);
    }

    /** The backend under test for one thread order; one per order for the whole class. */
    static CudaKernels kernels(String order) {
        CudaKernels k = OPEN.computeIfAbsent(order, o -> new CudaKernels(openDriver(o), driverKind().equals("cuda") ? "cuda" : "cuda-emu"));
        setOrder(k.driver(), order);
        return k;
    }

    private static final Map<String, CudaKernels> OPEN = new HashMap<>();
    private static final Map<String, Double> WORST = new TreeMap<>();

    @AfterAll
    static void closeAndReport() {
        OPEN.values().forEach(CudaKernels::close);
        OPEN.clear();
        report(WORST, "CudaParityTest");
    }

    static synchronized void report(Map<String, Double> worst, String suite) {
        StringBuilder sb = new StringBuilder();
        worst.forEach((op, err) -> sb.append(String.format("%s\t%s\t%.3e%n", driverKind(), op, err)));
        System.out.print("[" + suite + "] max relative error per op\n" + sb);
        String file = System.getProperty("hintgrpo.test.report");
        if (file != null) {
            try {
                Files.writeString(Path.of(file), sb.toString(), java.nio.charset.StandardCharsets.UTF_8,
                        java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    // ---- twin buffers: the same values on cpu and on the device ----

    static final int GUARD = 5;
    static final float GUARD_VALUE = 12345.678f;

    private final CpuKernels cpu = new CpuKernels();
    private final List<Buf[]> guarded = new ArrayList<>();
    private CudaKernels gpu;
    private SplittableRandom rng;

    private void begin(String order, long seed) {
        gpu = kernels(order);
        rng = new SplittableRandom(seed);
        guarded.clear();
    }

    /** A device slice [GUARD, GUARD + n) of an allocation whose guard elements hold GUARD_VALUE. */
    private Buf deviceF32(float[] values) {
        Buf whole = gpu.allocF32(values.length + 2L * GUARD);
        float[] init = new float[values.length + 2 * GUARD];
        Arrays.fill(init, GUARD_VALUE);
        System.arraycopy(values, 0, init, GUARD, values.length);
        gpu.upload(whole, init);
        guarded.add(new Buf[]{whole});
        return whole.slice(GUARD, values.length);
    }

    private Buf deviceI32(int[] values) {
        Buf whole = gpu.allocI32(values.length + 2L * GUARD);
        int[] init = new int[values.length + 2 * GUARD];
        Arrays.fill(init, (int) GUARD_VALUE);
        System.arraycopy(values, 0, init, GUARD, values.length);
        gpu.upload(whole, init);
        guarded.add(new Buf[]{whole});
        return whole.slice(GUARD, values.length);
    }

    /** A guarded device slice of bf16 patterns, like {@link #deviceF32}; the guards hold bf16(GUARD_VALUE). */
    private Buf deviceBf16(short[] values) {
        Buf whole = gpu.allocBf16(values.length + 2L * GUARD);
        short[] init = new short[values.length + 2 * GUARD];
        Arrays.fill(init, Bf16.fromFloat(GUARD_VALUE));
        System.arraycopy(values, 0, init, GUARD, values.length);
        gpu.upload(whole, init);
        guarded.add(new Buf[]{whole});
        return whole.slice(GUARD, values.length);
    }

    /** Twin F32 buffers holding the same values: [0] cpu, [1] device. */
    private Buf[] twin(float[] values) {
        Buf c = cpu.allocF32(values.length);
        cpu.upload(c, values);
        return new Buf[]{c, deviceF32(values)};
    }

    private Buf[] twin(int[] values) {
        Buf c = cpu.allocI32(values.length);
        cpu.upload(c, values);
        return new Buf[]{c, deviceI32(values)};
    }

    private Buf[] twin(short[] values) {
        Buf c = cpu.allocBf16(values.length);
        cpu.upload(c, values);
        return new Buf[]{c, deviceBf16(values)};
    }

    /** A BF16 output: zeros on cpu, NaN poison (0xffff) on the device. */
    private Buf[] outputBf16(int n) {
        short[] poison = new short[n];
        Arrays.fill(poison, (short) 0xFFFF);
        return new Buf[]{cpu.allocBf16(n), deviceBf16(poison)};
    }

    /** An output: zeros on cpu (written before read), NaN poison on the device. */
    private Buf[] output(int n) {
        float[] poison = new float[n];
        Arrays.fill(poison, Float.NaN);
        Buf c = cpu.allocF32(n);
        return new Buf[]{c, deviceF32(poison)};
    }

    private float[] random(int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            float x = (float) rng.nextGaussian();
            v[i] = x == 0f ? 0.5f : x;
        }
        return v;
    }

    private float[] read(Buf b) {
        float[] v = new float[Math.toIntExact(b.length)];
        (b.memory instanceof float[] ? cpu : gpu).download(b, v);
        return v;
    }

    private int[] readInts(Buf b) {
        int[] v = new int[Math.toIntExact(b.length)];
        (b.memory instanceof int[] ? cpu : gpu).download(b, v);
        return v;
    }

    private short[] readShorts(Buf b) {
        short[] v = new short[Math.toIntExact(b.length)];
        (b.memory instanceof short[] ? cpu : gpu).download(b, v);
        return v;
    }

    /** Compares twin outputs bit for bit (raw bits, so NaN payloads and the sign of zero count), records 0 as the op's error. */
    private void checkBits(String op, Buf[] out) {
        int[] ref, got;
        if (out[0].type == Buf.Type.BF16) {
            ref = widen(readShorts(out[0]));
            got = widen(readShorts(out[1]));
        } else {
            ref = rawBits(read(out[0]));
            got = rawBits(read(out[1]));
        }
        for (int i = 0; i < ref.length; i++) {
            int ii = i;
            assertEquals(ref[i], got[i], () -> String.format("%s element %d of %d: got 0x%X, want 0x%X",
                    op, ii, ref.length, got[ii], ref[ii]));
        }
        synchronized (WORST) {
            WORST.merge(op, 0.0, Math::max);
        }
    }

    private static int[] widen(short[] v) {
        int[] r = new int[v.length];
        for (int i = 0; i < v.length; i++) r[i] = v[i] & 0xFFFF;
        return r;
    }

    private static int[] rawBits(float[] v) {
        int[] r = new int[v.length];
        for (int i = 0; i < v.length; i++) r[i] = Float.floatToRawIntBits(v[i]);
        return r;
    }

    /** Compares twin outputs by relative L2 error, records the op's worst, checks every guard, frees the device side. */
    private void check(String op, Buf[] out, double tolerance) {
        float[] ref = read(out[0]), got = read(out[1]);
        double err = relativeError(got, ref);
        synchronized (WORST) {
            WORST.merge(op, err, Math::max);
        }
        assertTrue(err <= tolerance, op + ": relative error " + err + " > " + tolerance
                + " (first values: got " + Arrays.toString(Arrays.copyOf(got, Math.min(6, got.length)))
                + ", want " + Arrays.toString(Arrays.copyOf(ref, Math.min(6, ref.length))) + ")");
    }

    static double relativeError(float[] got, float[] ref) {
        assertEquals(ref.length, got.length);
        double diff = 0, norm = 0;
        for (int i = 0; i < ref.length; i++) {
            if (Float.isNaN(got[i]) != Float.isNaN(ref[i])) return Double.POSITIVE_INFINITY;
            if (Float.isNaN(ref[i])) continue;
            diff += Math.pow((double) got[i] - ref[i], 2);
            norm += Math.pow(ref[i], 2);
        }
        return norm == 0 ? Math.sqrt(diff) : Math.sqrt(diff / norm);
    }

    /** Every guard element of every device allocation of this test still holds GUARD_VALUE; frees them. */
    private void end() {
        for (Buf[] g : guarded) {
            Buf whole = g[0];
            int n = Math.toIntExact(whole.length);
            if (whole.type == Buf.Type.F32) {
                float[] v = new float[n];
                gpu.download(whole, v);
                for (int i = 0; i < GUARD; i++) {
                    assertEquals(GUARD_VALUE, v[i], "guard before an allocation of " + (n - 2 * GUARD) + " was overwritten");
                    assertEquals(GUARD_VALUE, v[n - 1 - i], "guard after an allocation of " + (n - 2 * GUARD) + " was overwritten");
                }
            } else if (whole.type == Buf.Type.BF16) {
                short[] v = new short[n];
                gpu.download(whole, v);
                for (int i = 0; i < GUARD; i++) {
                    assertEquals(Bf16.fromFloat(GUARD_VALUE), v[i], "guard before a bf16 allocation was overwritten");
                    assertEquals(Bf16.fromFloat(GUARD_VALUE), v[n - 1 - i], "guard after a bf16 allocation was overwritten");
                }
            } else {
                int[] v = new int[n];
                gpu.download(whole, v);
                for (int i = 0; i < GUARD; i++) {
                    assertEquals((int) GUARD_VALUE, v[i], "guard before an int allocation was overwritten");
                    assertEquals((int) GUARD_VALUE, v[n - 1 - i], "guard after an int allocation was overwritten");
                }
            }
            gpu.free(whole);
        }
        guarded.clear();
    }

    // ---- memory ----

    @ParameterizedTest
    @MethodSource("orders")
    void memoryOps(String order) {
        begin(order, 1);
        for (int n : new int[]{1, 7, 33, 1000}) {
            Buf[] a = twin(random(n));
            assertArrayEquals(read(a[0]), read(a[1]));
            Buf[] b = output(n);
            cpu.copy(b[0], a[0]);
            gpu.copy(b[1], a[1]);
            check("copy", b, 0);
            cpu.fill(b[0], -2.5f);
            gpu.fill(b[1], -2.5f);
            check("fill_f32", b, 0);
            Buf[] ints = twin(new int[n]);
            cpu.fill(ints[0], 7f);
            gpu.fill(ints[1], 7f);
            assertArrayEquals(readInts(ints[0]), readInts(ints[1]), "fill_i32");
            Buf[] h = twin(bf16Inputs(n)), hOut = outputBf16(n);
            cpu.copy(hOut[0], h[0]);
            gpu.copy(hOut[1], h[1]);
            checkBits("copy bf16", hOut);
            cpu.fill(hOut[0], -2.5f);
            gpu.fill(hOut[1], -2.5f);
            checkBits("fill_u16", hOut);
            assertEquals((short) 0xC020, readShorts(hOut[1])[n - 1], "bf16(-2.5)");
        }
        end();
    }

    // ---- precision ----

    /** fp32 bits that stress rounding: ties (even and odd), next to ties, subnormals, ±0, ±inf, NaNs, the overflow edge. */
    private static final int[] CAST_SPECIALS = {
            0x3F808000, 0x3F818000, 0x3F807FFF, 0x3F808001, 0xBF818000, 0xBF808001, 0x3FFFFFFF,
            0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x00008000, 0x00018000, 0x00008001, 0x007FFFFF, 0x807F8000,
            0x7F7F0000, 0x7F7F7FFF, 0x7F7F8000, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F7E8000,
            0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FFFFFFF, 0xFFC12345,
    };

    /** n floats: the specials first, then Gaussians over many binades, a third of them moved onto or next to a bf16 tie. */
    private float[] castInputs(int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            if (i < CAST_SPECIALS.length) {
                x[i] = Float.intBitsToFloat(CAST_SPECIALS[i]);
                continue;
            }
            float g = (float) (rng.nextGaussian() * Math.pow(2, rng.nextInt(-140, 128)));
            int bits = Float.floatToRawIntBits(g == 0f ? 0.5f : g);
            if (i % 3 == 1) bits = (bits & 0xFFFF0000) | (0x8000 + rng.nextInt(-1, 2));
            x[i] = Float.intBitsToFloat(bits);
        }
        return x;
    }

    /** n bf16 patterns: all 65536 (a permutation, so short prefixes mix every class) while n allows, then random. */
    private short[] bf16Inputs(int n) {
        short[] h = new short[n];
        for (int i = 0; i < n; i++) h[i] = (short) (i < (1 << 16) ? i * 0x9E37 + 1 : rng.nextInt());
        return h;
    }

    @ParameterizedTest
    @MethodSource("orders")
    void castsBothWays(String order) {
        begin(order, 15);
        for (int n : new int[]{1, 7, 33, 1001, 70_001}) {
            Buf[] x = twin(castInputs(n)), h = outputBf16(n);
            cpu.castF32ToBf16(h[0], x[0], n);
            gpu.castF32ToBf16(h[1], x[1], n);
            checkBits("cast_f32_to_bf16", h);

            Buf[] p = twin(bf16Inputs(n)), wide = output(n);
            cpu.castBf16ToF32(wide[0], p[0], n);
            gpu.castBf16ToF32(wide[1], p[1], n);
            checkBits("cast_bf16_to_f32", wide);
        }
        // the first n elements of longer buffers: nothing past n is written
        Buf[] x = twin(castInputs(50)), h = outputBf16(50);
        cpu.castF32ToBf16(h[0], x[0], 41);
        gpu.castF32ToBf16(h[1], x[1], 41);
        short[] got = readShorts(h[1]);
        for (int i = 41; i < 50; i++) assertEquals((short) 0xFFFF, got[i], "element " + i + " past n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> gpu.castF32ToBf16(x[1], h[1], 5));
        assertTrue(e.getMessage().contains("castF32ToBf16: dst must be BF16"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> gpu.castBf16ToF32(x[1], h[1], 51));
        assertTrue(e.getMessage().contains("castBf16ToF32: dst holds 50 elements, needs 51"), e.getMessage());
        end();
    }

    /** Wrong buffers fail on the host with the op and the buffer named, before any launch. */
    @ParameterizedTest
    @MethodSource("orders")
    void argumentChecks(String order) {
        begin(order, 14);
        Buf small = deviceF32(random(5)), ints = deviceI32(new int[5]);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> gpu.gemm(Gemm.NT, small, small, small, null, 2, 3, 1, false));
        assertTrue(e.getMessage().contains("gemm NT: out holds 5 elements, needs 6"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> gpu.embedding(small, small, small, 1, 1));
        assertTrue(e.getMessage().contains("embedding: ids must be I32"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> gpu.add(small, small, cpu.allocF32(5), 5));
        assertTrue(e.getMessage().contains("not a device buffer"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> gpu.attention(small, small, small, ints, 1, 1, 3, 2, 4));
        assertTrue(e.getMessage().contains("multiple of kvHeads"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> gpu.attention(small, small, small, ints, 1, 1, 1, 1, CudaKernels.MAX_HEAD_DIM + 2));
        assertTrue(e.getMessage().contains("headDim"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> gpu.upload(small, new float[4]));
        assertTrue(e.getMessage().contains("upload"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> gpu.free(small));
        assertTrue(e.getMessage().contains("whole allocation"), e.getMessage());
        end();
    }

    // ---- embedding and modality rows ----

    @ParameterizedTest
    @MethodSource("orders")
    void embeddingForwardAndBackward(String order) {
        begin(order, 2);
        int vocab = 37;
        for (int[] mc : new int[][]{{1, 1}, {33, 7}, {7, 130}, {40, 300}}) {
            int m = mc[0], c = mc[1];
            int[] ids = new int[m];
            for (int i = 0; i < m; i++) ids[i] = rng.nextInt(8) == 0 ? -1 : rng.nextInt(vocab); // placeholders and repeats
            Buf[] idb = twin(ids), table = twin(random(vocab * c)), out = output(m * c);
            cpu.embedding(out[0], idb[0], table[0], m, c);
            gpu.embedding(out[1], idb[1], table[1], m, c);
            check("embedding_forward", out, 1e-6);
            // a bf16 table (a frozen bf16 base): the rows widened exactly, so bit for bit
            float[] wide = random(vocab * c);
            short[] table16 = new short[wide.length];
            for (int i = 0; i < wide.length; i++) table16[i] = Bf16.fromFloat(wide[i]);
            Buf[] t16 = twin(table16), out16 = output(m * c);
            cpu.embedding(out16[0], idb[0], t16[0], m, c);
            gpu.embedding(out16[1], idb[1], t16[1], m, c);
            check("embedding_forward_bf16", out16, 0);
            float[] host = read(out16[0]);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < c; j++)
                    assertEquals(ids[i] < 0 ? 0f : Bf16.toFloat(table16[ids[i] * c + j]), host[i * c + j], "bf16 row " + i);
            Buf[] dtable = twin(random(vocab * c)), dout = twin(random(m * c));
            cpu.embeddingBackward(dtable[0], dout[0], idb[0], m, c);
            gpu.embeddingBackward(dtable[1], dout[1], idb[1], m, c);
            check("embedding_backward", dtable, 1e-6);
        }
        end();
    }

    @ParameterizedTest
    @MethodSource("orders")
    void scatterAndGatherRows(String order) {
        begin(order, 3);
        for (int[] shape : new int[][]{{1, 1, 3}, {5, 33, 11}, {13, 130, 20}}) {
            int n = shape[0], c = shape[1], rows = shape[2];
            List<Integer> perm = new ArrayList<>();
            for (int i = 0; i < rows; i++) perm.add(i);
            java.util.Collections.shuffle(perm, new java.util.Random(rng.nextLong()));
            int[] idx = perm.subList(0, n).stream().mapToInt(Integer::intValue).toArray();
            Buf[] r = twin(idx), src = twin(random(n * c)), out = twin(random(rows * c));
            cpu.scatterRows(out[0], src[0], r[0], n, c);
            gpu.scatterRows(out[1], src[1], r[1], n, c);
            check("scatter_rows", out, 0);
            Buf[] from = twin(random(rows * c)), gathered = output(n * c);
            cpu.gatherRows(gathered[0], from[0], r[0], n, c);
            gpu.gatherRows(gathered[1], from[1], r[1], n, c);
            check("gather_rows", gathered, 0);
        }
        end();
    }

    // ---- dense ----

    @ParameterizedTest
    @MethodSource("orders")
    void gemmEveryLayout(String order) {
        begin(order, 4);
        int[][] shapes = {{1, 1, 1}, {7, 33, 130}, {65, 70, 17}, {130, 7, 33}, {3, 129, 64}};
        for (Gemm layout : Gemm.values()) {
            for (int[] s : shapes) {
                int m = s[0], n = s[1], k = s[2];
                for (int variant = 0; variant < 3; variant++) {
                    boolean bias = variant == 1, accumulate = variant == 2;
                    Buf[] a = twin(random(m * k)), b = twin(random(n * k));
                    Buf[] bi = bias ? twin(random(n)) : new Buf[]{null, null};
                    Buf[] out = accumulate ? twin(random(m * n)) : output(m * n);
                    cpu.gemm(layout, out[0], a[0], b[0], bi[0], m, n, k, accumulate);
                    gpu.gemm(layout, out[1], a[1], b[1], bi[1], m, n, k, accumulate);
                    check("gemm_" + layout.name().toLowerCase(), out, 1e-4);
                }
            }
        }
        end();
    }

    @ParameterizedTest
    @MethodSource("orders")
    void biasBackwardAndAdd(String order) {
        begin(order, 5);
        for (int[] s : new int[][]{{1, 1}, {130, 33}, {9, 300}}) {
            int m = s[0], n = s[1];
            Buf[] db = twin(random(n)), dout = twin(random(m * n));
            cpu.biasBackward(db[0], dout[0], m, n);
            gpu.biasBackward(db[1], dout[1], m, n);
            check("bias_backward", db, 1e-4);
        }
        for (int n : new int[]{1, 7, 4099}) {
            Buf[] a = twin(random(n)), b = twin(random(n)), out = output(n);
            cpu.add(out[0], a[0], b[0], n);
            gpu.add(out[1], a[1], b[1], n);
            check("add_f32", out, 1e-6);
        }
        end();
    }

    // ---- norm, activations ----

    @ParameterizedTest
    @MethodSource("orders")
    void rmsnormForwardAndBackward(String order) {
        begin(order, 6);
        for (int[] s : new int[][]{{1, 1}, {7, 33}, {5, 130}, {3, 300}}) {
            int m = s[0], c = s[1];
            float eps = 1e-5f;
            float[] xs = random(m * c);
            for (int i = 0; i < xs.length; i++) xs[i] = xs[i] * 3 + 0.5f; // not centred
            Buf[] x = twin(xs), w = twin(random(c)), out = output(m * c), rstd = output(m);
            cpu.rmsnorm(out[0], rstd[0], x[0], w[0], m, c, eps);
            gpu.rmsnorm(out[1], rstd[1], x[1], w[1], m, c, eps);
            check("rmsnorm_forward", out, 1e-5);
            check("rmsnorm_forward.rstd", rstd, 1e-5);
            Buf[] dx = twin(random(m * c)), dw = twin(random(c)), dy = twin(random(m * c));
            cpu.rmsnormBackward(dx[0], dw[0], dy[0], x[0], w[0], rstd[0], m, c);
            gpu.rmsnormBackward(dx[1], dw[1], dy[1], x[1], w[1], rstd[1], m, c);
            check("rmsnorm_backward_dx", dx, 1e-5);
            check("rmsnorm_backward_dweight", dw, 1e-4);
        }
        end();
    }

    @ParameterizedTest
    @MethodSource("orders")
    void activations(String order) {
        begin(order, 7);
        for (int[] s : new int[][]{{1, 1}, {7, 33}, {5, 130}}) {
            int m = s[0], inter = s[1];
            Buf[] gu = twin(scaled(random(2 * m * inter), 3f)), out = output(m * inter);
            cpu.swiglu(out[0], gu[0], m, inter);
            gpu.swiglu(out[1], gu[1], m, inter);
            check("swiglu_forward", out, 1e-5);
            Buf[] dy = twin(random(m * inter)), dgu = output(2 * m * inter);
            cpu.swigluBackward(dgu[0], dy[0], gu[0], m, inter);
            gpu.swigluBackward(dgu[1], dy[1], gu[1], m, inter);
            check("swiglu_backward", dgu, 1e-5);
        }
        for (int n : new int[]{1, 7, 4099}) {
            Buf[] x = twin(scaled(random(n), 3f)), out = output(n);
            cpu.gelu(out[0], x[0], n);
            gpu.gelu(out[1], x[1], n);
            check("gelu_forward", out, 1e-5);
            Buf[] dy = twin(random(n)), dx = output(n);
            cpu.geluBackward(dx[0], dy[0], x[0], n);
            gpu.geluBackward(dx[1], dy[1], x[1], n);
            check("gelu_backward", dx, 1e-5);
        }
        end();
    }

    private static float[] scaled(float[] v, float s) {
        for (int i = 0; i < v.length; i++) v[i] *= s;
        return v;
    }

    // ---- attention ----

    @ParameterizedTest
    @MethodSource("orders")
    void ropeBothDirections(String order) {
        begin(order, 8);
        for (int[] s : new int[][]{{1, 1, 1, 2}, {7, 6, 2, 8}, {5, 4, 4, 64}, {3, 2, 1, 256}}) {
            int m = s[0], heads = s[1], kvHeads = s[2], d = s[3];
            int[] pos = new int[m];
            for (int i = 0; i < m; i++) pos[i] = rng.nextInt(3000);
            Buf[] p = twin(pos);
            for (boolean inverse : new boolean[]{false, true}) {
                Buf[] qkv = twin(random(m * (heads + 2 * kvHeads) * d));
                cpu.rope(qkv[0], p[0], m, heads, kvHeads, d, 1e6f, inverse);
                gpu.rope(qkv[1], p[1], m, heads, kvHeads, d, 1e6f, inverse);
                check("rope_rotate", qkv, 1e-5);
            }
        }
        end();
    }

    /**
     * (b, t, heads, kvHeads, headDim, lengths…): GQA with several groups, padding, tiles of 32
     * crossed, odd head sizes; head dims 64 and 128 over several tiles; group sizes 1, 2, 3, 4, 7
     * (Qwen2.5-0.5B's 14/2) and 9 (two slices of a group per block, the second short).
     */
    static final int[][] ATTENTION_CASES = {
            {1, 1, 1, 1, 1, 1},
            {3, 13, 6, 2, 8, 13, 5, 1},
            {2, 40, 8, 2, 36, 40, 33},
            {2, 37, 4, 4, 64, 20, 37},
            {1, 9, 3, 1, 128, 7},
            {2, 45, 14, 2, 64, 45, 38},
            {2, 41, 6, 2, 128, 41, 35},
            {1, 70, 2, 1, 128, 67},
            {1, 35, 9, 1, 16, 33},
    };

    @ParameterizedTest
    @MethodSource("orders")
    void attentionForwardAndBackward(String order) {
        begin(order, 9);
        for (int[] cs : ATTENTION_CASES) {
            int b = cs[0], t = cs[1], heads = cs[2], kvHeads = cs[3], d = cs[4];
            int[] lengths = Arrays.copyOfRange(cs, 5, 5 + b);
            int width = (heads + 2 * kvHeads) * d, rows = b * t;
            Buf[] len = twin(lengths), qkv = twin(random(rows * width));
            Buf[] out = output(rows * heads * d), lse = output(b * heads * t);
            cpu.attention(out[0], lse[0], qkv[0], len[0], b, t, heads, kvHeads, d);
            gpu.attention(out[1], lse[1], qkv[1], len[1], b, t, heads, kvHeads, d);
            check("attention_forward", out, 1e-4);
            check("attention_forward.lse", lse, 1e-4);
            Buf[] dout = twin(random(rows * heads * d)), dqkv = output(rows * width);
            cpu.attentionBackward(dqkv[0], dout[0], qkv[0], out[0], lse[0], len[0], b, t, heads, kvHeads, d);
            gpu.attentionBackward(dqkv[1], dout[1], qkv[1], out[1], lse[1], len[1], b, t, heads, kvHeads, d);
            check("attention_backward", dqkv, 1e-4);
        }
        end();
    }

    // ---- decode ----

    @ParameterizedTest
    @MethodSource("orders")
    void kvCacheWriteAndDecodeAttention(String order) {
        begin(order, 10);
        int[][] cases = {{1, 1, 1, 1, 1}, {3, 40, 6, 2, 8}, {2, 37, 4, 4, 64}, {2, 5, 3, 1, 128},
                {2, 45, 14, 2, 64}, {3, 70, 4, 2, 128}, {2, 35, 9, 1, 16}};
        for (int[] cs : cases) {
            int b = cs[0], maxT = cs[1], heads = cs[2], kvHeads = cs[3], d = cs[4];
            int width = (heads + 2 * kvHeads) * d, cache = b * kvHeads * maxT * d;
            // prefill-like write: up to two distinct positions per sequence, then a padding row
            List<int[]> targets = new ArrayList<>();
            for (int q = 0; q < b; q++) {
                int first = rng.nextInt(maxT);
                targets.add(new int[]{q, first});
                if (maxT > 1) targets.add(new int[]{q, (first + 1 + rng.nextInt(maxT - 1)) % maxT});
            }
            targets.add(new int[]{0, -1});
            int m = targets.size();
            int[] seq = targets.stream().mapToInt(x -> x[0]).toArray(), pos = targets.stream().mapToInt(x -> x[1]).toArray();
            Buf[] kc = twin(random(cache)), vc = twin(random(cache)), rows = twin(random(m * width));
            Buf[] s = twin(seq), p = twin(pos);
            cpu.kvCacheWrite(kc[0], vc[0], rows[0], s[0], p[0], m, maxT, heads, kvHeads, d);
            gpu.kvCacheWrite(kc[1], vc[1], rows[1], s[1], p[1], m, maxT, heads, kvHeads, d);
            check("kv_cache_write.k", kc, 0);
            check("kv_cache_write.v", vc, 0);
            int[] lengths = new int[b];
            for (int i = 0; i < b; i++) lengths[i] = i == 0 ? maxT : 1 + rng.nextInt(maxT);
            Buf[] len = twin(lengths), q = twin(random(b * width)), out = output(b * heads * d);
            cpu.decodeAttention(out[0], q[0], kc[0], vc[0], len[0], b, maxT, heads, kvHeads, d);
            gpu.decodeAttention(out[1], q[1], kc[1], vc[1], len[1], b, maxT, heads, kvHeads, d);
            check("decode_attention", out, 1e-4);
        }
        end();
    }

    @ParameterizedTest
    @MethodSource("orders")
    void sampleTokens(String order) {
        begin(order, 11);
        int b = 5;
        int[] banned = {3, 17};
        for (int v : new int[]{1 + banned[1], 130, 1000}) {
            float[] logits = scaled(random(b * v), 2f);
            // row 1: heavy ties (quantised logits); row 2: one dominant token that is banned
            for (int j = 0; j < v; j++) logits[v + j] = Math.round(logits[v + j] * 2) / 2f;
            logits[2 * v + 3] = 50f;
            Buf[] lg = twin(logits), bn = twin(banned), tok = twin(new int[b]);
            // (temperature, topK, topP): greedy, plain, each filter alone and both, top-k 1 and v − 1
            float[][] settings = {{0f, 0, 1f}, {0f, 5, 0.3f}, {0.7f, 0, 1f}, {0.7f, 1, 1f}, {0.7f, 5, 1f},
                    {1.3f, v - 1, 1f}, {0.7f, 0, 0.9f}, {1.3f, 0, 0.3f}, {0.7f, 5, 0.9f}, {1.3f, v - 1, 0.3f}};
            for (float[] st : settings)
                for (long step = 0; step < 2; step++) {
                    float temperature = st[0], topP = st[2];
                    int topK = (int) st[1];
                    gpu.fill(tok[1], -7f);
                    cpu.sample(tok[0], lg[0], b, v, temperature, topK, topP, 42, step, bn[0], banned.length);
                    gpu.sample(tok[1], lg[1], b, v, temperature, topK, topP, 42, step, bn[1], banned.length);
                    int[] want = readInts(tok[0]), got = readInts(tok[1]);
                    assertArrayEquals(want, got, "v=" + v + " T=" + temperature + " topK=" + topK + " topP=" + topP + " step=" + step);
                }
            // a stream per row: keys as I32 pairs, a different step per row
            long[] keys = new long[b];
            int[] steps = new int[b];
            for (int r = 0; r < b; r++) {
                keys[r] = io.hintgrpo.engine.Kernels.streamKey(-5, 3 * r) ^ (r % 2 == 0 ? Long.MIN_VALUE : 0); // high bit set on some
                steps[r] = 7 * r;
            }
            Buf[] ks = twin(io.hintgrpo.engine.Kernels.keyWords(keys)), sts = twin(steps);
            for (float[] st : settings) {
                gpu.fill(tok[1], -7f);
                cpu.sampleRows(tok[0], lg[0], b, v, st[0], (int) st[1], st[2], ks[0], sts[0], bn[0], banned.length);
                gpu.sampleRows(tok[1], lg[1], b, v, st[0], (int) st[1], st[2], ks[1], sts[1], bn[1], banned.length);
                assertArrayEquals(readInts(tok[0]), readInts(tok[1]), "sampleRows v=" + v + " T=" + st[0] + " topK=" + st[1] + " topP=" + st[2]);
            }
            // no banned list at all
            cpu.sample(tok[0], lg[0], b, v, 0.9f, 0, 0.95f, 7, 0, bn[0], 0);
            gpu.sample(tok[1], lg[1], b, v, 0.9f, 0, 0.95f, 7, 0, bn[1], 0);
            assertArrayEquals(readInts(tok[0]), readInts(tok[1]), "v=" + v + " without banned tokens");
        }
        synchronized (WORST) {
            WORST.merge("sample_tokens", 0.0, Math::max);
        }
        end();
    }

    // ---- LM head loss ----

    @ParameterizedTest
    @MethodSource("orders")
    void crossEntropyForwardAndBackward(String order) {
        begin(order, 12);
        for (int[] s : new int[][]{{1, 2}, {7, 130}, {5, 1000}}) {
            int m = s[0], v = s[1];
            float[] logits = scaled(random(m * v), 3f);
            int[] targets = new int[m];
            for (int i = 0; i < m; i++) targets[i] = i == 2 ? -1 : rng.nextInt(v);
            Buf[] tg = twin(targets), w = twin(random(m));
            for (float invT : new float[]{1f, 1f / 0.7f}) {
                for (boolean backward : new boolean[]{false, true}) {
                    Buf[] lg = twin(logits), lp = output(m), en = output(m), lz = output(m);
                    cpu.crossEntropy(lg[0], lp[0], en[0], lz[0], tg[0], w[0], m, v, invT, backward);
                    gpu.crossEntropy(lg[1], lp[1], en[1], lz[1], tg[1], w[1], m, v, invT, backward);
                    check("cross_entropy.logprob", lp, 1e-5);
                    check("cross_entropy.entropy", en, 1e-5);
                    check("cross_entropy.log_z", lz, 1e-5);
                    check(backward ? "cross_entropy.dlogits" : "cross_entropy.logits_untouched", lg, 1e-5);
                    if (backward) continue;
                    // the backward as a pass of its own, after the weights are known (the GRPO loss head)
                    cpu.crossEntropyBackward(lg[0], lz[0], tg[0], w[0], m, v, invT);
                    gpu.crossEntropyBackward(lg[1], lz[1], tg[1], w[1], m, v, invT);
                    check("cross_entropy_backward.dlogits", lg, 1e-5);
                    Buf[] fused = twin(logits), lp2 = output(m), en2 = output(m);
                    gpu.crossEntropy(fused[1], lp2[1], en2[1], null, tg[1], w[1], m, v, invT, true);
                    assertArrayEquals(read(fused[1]), read(lg[1]), "on the device, forward then backward is the fused pass bit for bit");
                    cpu.crossEntropy(fused[0], lp2[0], en2[0], null, tg[0], w[0], m, v, invT, true);
                    assertArrayEquals(read(fused[0]), read(lg[0]), "on cpu too");
                }
            }
        }
        end();
    }

    // ---- optimizer ----

    @ParameterizedTest
    @MethodSource("orders")
    void sumSquaresAndAdamw(String order) {
        begin(order, 13);
        for (int n : new int[]{1, 7, 200_003}) {
            Buf[] x = twin(random(n));
            double want = cpu.sumSquares(x[0], n), got = gpu.sumSquares(x[1], n);
            double err = Math.abs(got - want) / want;
            synchronized (WORST) {
                WORST.merge("sum_squares_partials", err, Math::max);
            }
            assertTrue(err <= 1e-12, "sumSquares n=" + n + ": " + got + " vs " + want);
            assertEquals(got, gpu.sumSquares(x[1], n), "sumSquares is deterministic");
        }
        for (int n : new int[]{1, 1001}) {
            Buf[] p = twin(random(n)), g = twin(random(n)), m = twin(scaled(random(n), 0.1f)), v = twin(abs(scaled(random(n), 0.01f)));
            for (int t = 1; t <= 3; t++) {
                cpu.adamw(p[0], g[0], m[0], v[0], n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.7f, t);
                gpu.adamw(p[1], g[1], m[1], v[1], n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.7f, t);
            }
            check("adamw.params", p, 1e-5);
            check("adamw.m", m, 1e-5);
            check("adamw.v", v, 1e-5);
        }
        end();
    }

    private static float[] abs(float[] v) {
        for (int i = 0; i < v.length; i++) v[i] = Math.abs(v[i]);
        return v;
    }
}
