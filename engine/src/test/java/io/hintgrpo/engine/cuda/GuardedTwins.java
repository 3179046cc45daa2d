package io.hintgrpo.engine.cuda;

import io.hintgrpo.engine.Bf16;
import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.cpu.CpuKernels;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The harness of the per-family parity tests ({@link CudaGemmBf16ParityTest},
 * {@link CudaAttentionBf16ParityTest}, {@link CudaGrpoParityTest}), in the style of
 * {@link CudaParityTest}: twin buffers holding the same values on the cpu and on the device, every
 * device buffer a slice between {@link #guard} elements of {@link CudaParityTest#GUARD_VALUE}
 * that {@link #end} checks survived, outputs poisoned with NaN, and each op's worst relative
 * error recorded for the class's report.
 *
 * <p>A test extends this, passes its class's {@link Suite} to the constructor, calls
 * {@link #begin} first and {@link #end} last in each test, and {@code SUITE.closeAndReport()} in
 * its {@code @AfterAll}.
 */
abstract class GuardedTwins {

    /** One test class's state across its tests: a backend per thread order, and each op's worst error. */
    static final class Suite {
        private final String name;
        private final Map<String, CudaKernels> open = new HashMap<>();
        private final Map<String, Double> worst = new TreeMap<>();

        Suite(String name) {
            this.name = name;
        }

        /** The backend for one thread order; the order is global to the emulator, so it is set again on each use. */
        CudaKernels kernels(String order) {
            CudaKernels k = open.computeIfAbsent(order, o -> new CudaKernels(CudaParityTest.openDriver(o),
                    CudaParityTest.driverKind().equals("cuda") ? "cuda" : "cuda-emu"));
            if (k.driver() instanceof EmuDriver emu)
                emu.setThreadOrder(EmuDriver.ThreadOrder.valueOf(order.toUpperCase(java.util.Locale.ROOT)), 20240611L);
            return k;
        }

        void record(String op, double err) {
            synchronized (worst) {
                worst.merge(op, err, Math::max);
            }
        }

        void closeAndReport() {
            open.values().forEach(CudaKernels::close);
            open.clear();
            CudaParityTest.report(worst, name);
        }
    }

    private final Suite suite;
    private final List<Buf> guarded = new ArrayList<>();
    final CpuKernels cpu = new CpuKernels();
    CudaKernels gpu;
    SplittableRandom rng;
    /** Guard elements on each side of the next device buffers (a test may change it between buffers). */
    int guard;

    GuardedTwins(Suite suite) {
        this.suite = suite;
    }

    /** Opens (or reuses) the backend for this thread order; {@link #rng} stays unset. */
    void begin(String order) {
        gpu = suite.kernels(order);
        guard = CudaParityTest.GUARD;
        guarded.clear();
    }

    void begin(String order, long seed) {
        begin(order);
        rng = new SplittableRandom(seed);
    }

    /** Twin F32 buffers: [0] cpu, [1] a device slice between guards of {@link #guard} elements. */
    Buf[] twin(float[] values) {
        Buf c = cpu.allocF32(values.length);
        cpu.upload(c, values);
        Buf whole = gpu.allocF32(values.length + 2L * guard);
        float[] init = new float[values.length + 2 * guard];
        Arrays.fill(init, CudaParityTest.GUARD_VALUE);
        System.arraycopy(values, 0, init, guard, values.length);
        gpu.upload(whole, init);
        guarded.add(whole);
        return new Buf[]{c, whole.slice(guard, values.length)};
    }

    /** Twin BF16 buffers, like {@link #twin(float[])}: the device slice starts 2·guard bytes in. */
    Buf[] twin(short[] values) {
        Buf c = cpu.allocBf16(values.length);
        cpu.upload(c, values);
        Buf whole = gpu.allocBf16(values.length + 2L * guard);
        short[] init = new short[values.length + 2 * guard];
        Arrays.fill(init, Bf16.fromFloat(CudaParityTest.GUARD_VALUE));
        System.arraycopy(values, 0, init, guard, values.length);
        gpu.upload(whole, init);
        guarded.add(whole);
        return new Buf[]{c, whole.slice(guard, values.length)};
    }

    /** Twin I32 buffers, for inputs only (lengths): a whole device allocation, no guards, not freed by {@link #end}. */
    Buf[] twin(int[] values) {
        Buf c = cpu.allocI32(values.length);
        cpu.upload(c, values);
        Buf d = gpu.allocI32(values.length);
        gpu.upload(d, values);
        return new Buf[]{c, d};
    }

    /** An output: NaN poison on both sides (the cpu twin writes before it reads too). */
    Buf[] output(int n) {
        float[] poison = new float[n];
        Arrays.fill(poison, Float.NaN);
        return twin(poison);
    }

    /** n random non-zero floats (standard Gaussians, 0 replaced by 0.5). */
    float[] random(int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            float x = (float) rng.nextGaussian();
            v[i] = x == 0f ? 0.5f : x;
        }
        return v;
    }

    /** n random non-zero bf16 values (Gaussians rounded to bf16). */
    short[] randomBf16(int n) {
        return randomBf16(n, 1);
    }

    /** n random non-zero bf16 values: Gaussians of standard deviation sigma rounded to bf16, 0 replaced by 0.5. */
    short[] randomBf16(int n, double sigma) {
        short[] v = new short[n];
        for (int i = 0; i < n; i++) {
            short h = Bf16.fromFloat((float) (sigma * rng.nextGaussian()));
            v[i] = (h & 0x7FFF) == 0 ? Bf16.fromFloat(0.5f) : h;
        }
        return v;
    }

    float[] read(Buf b) {
        float[] v = new float[Math.toIntExact(b.length)];
        (b.memory instanceof float[] ? cpu : gpu).download(b, v);
        return v;
    }

    /** Records an op's relative error in the class's report. */
    void record(String op, double err) {
        suite.record(op, err);
    }

    /** Every element written, then ‖got − ref‖/‖ref‖ ≤ tolerance; the error is recorded before it is asserted, so a failing op still shows in the report. */
    void check(String op, Buf[] out, double tolerance, String what) {
        float[] ref = read(out[0]), got = read(out[1]);
        for (int i = 0; i < got.length; i++)
            assertFalse(Float.isNaN(got[i]), op + " " + what + ": element " + i + " left unwritten (NaN)");
        double err = CudaParityTest.relativeError(got, ref);
        record(op, err);
        assertTrue(err <= tolerance, op + " " + what + ": relative error " + err + " > " + tolerance
                + " (first values: got " + Arrays.toString(Arrays.copyOf(got, Math.min(6, got.length)))
                + ", want " + Arrays.toString(Arrays.copyOf(ref, Math.min(6, ref.length))) + ")");
    }

    /** Every guard element still holds its value; frees the guarded device allocations. */
    void end() {
        for (Buf whole : guarded) {
            int n = Math.toIntExact(whole.length);
            if (whole.type == Buf.Type.F32) {
                float[] v = new float[n];
                gpu.download(whole, v);
                for (int i = 0; i < guard; i++) {
                    assertEquals(CudaParityTest.GUARD_VALUE, v[i], "guard before an allocation was overwritten");
                    assertEquals(CudaParityTest.GUARD_VALUE, v[n - 1 - i], "guard after an allocation was overwritten");
                }
            } else {
                short[] v = new short[n];
                gpu.download(whole, v);
                for (int i = 0; i < guard; i++) {
                    assertEquals(Bf16.fromFloat(CudaParityTest.GUARD_VALUE), v[i], "guard before a bf16 allocation was overwritten");
                    assertEquals(Bf16.fromFloat(CudaParityTest.GUARD_VALUE), v[n - 1 - i], "guard after a bf16 allocation was overwritten");
                }
            }
            gpu.free(whole);
        }
        guarded.clear();
    }
}
