package io.hintgrpo.engine.cuda;

import org.junit.jupiter.api.Test;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Reports what the emulator costs (printed, never asserted: speed targets live in benchmarks):
 * an empty launch through JNI, RMSNorm on 256×1024 with 256 threads, a shared-memory tiled 256³
 * matmul and a 128³ bf16 tensor-core GEMM (cp.async + ldmatrix + mma.sync). Checks the results.
 * Each line gives wall time and the launching thread's CPU time (the one to trust on a busy machine).
 */
class EmuSpeedTest extends EmuTest {
    static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();

    /** Runs r reps times after a warm-up and prints wall and CPU time per run. */
    static void report(String what, Runnable r, int reps) {
        r.run();
        long cpu0 = THREADS.getCurrentThreadCpuTime(), t0 = System.nanoTime();
        for (int i = 0; i < reps; i++) r.run();
        double wall = (System.nanoTime() - t0) / 1e6 / reps, cpu = (THREADS.getCurrentThreadCpuTime() - cpu0) / 1e6 / reps;
        System.out.printf(Locale.ROOT, "EmuSpeedTest: %-46s %10.4f ms wall %10.4f ms cpu%n", what, wall, cpu);
    }

    @Test
    void emptyLaunch() {
        for (int i = 0; i < 20000; i++) emu.launch("emu_empty", 1, 1, 1, 1, 1, 1, 0);
        report("empty launch (1 thread) through JNI", () -> emu.launch("emu_empty", 1, 1, 1, 1, 1, 1, 0), 100000);
        report("empty launch (1 block of 256 threads)", () -> emu.launch("emu_empty", 1, 1, 1, 256, 1, 1, 0), 20000);
    }

    @Test
    void rmsnorm256x1024() {
        int rows = 256, c = 1024;
        float[] x = EmuTesting.gaussian(61, rows * c), w = EmuTesting.gaussian(62, c);
        long px = t.upload(x), pw = t.upload(w), out = emu.malloc(4L * rows * c);
        report("RMSNorm 256x1024, 256 threads",
                () -> emu.launch("emu_rmsnorm", rows, 1, 1, 256, 1, 1, 0, out, px, pw, c, 1e-6f), 10);
        float[] r = t.floats(out, rows * c);
        for (int row = 0; row < rows; row += 51) {
            double ss = 0;
            for (int j = 0; j < c; j++) ss += (double) x[row * c + j] * x[row * c + j];
            double inv = 1 / Math.sqrt(ss / c + 1e-6);
            for (int j = 0; j < c; j += 97) assertEquals(w[j] * x[row * c + j] * inv, r[row * c + j], 1e-4);
        }
        for (long p : new long[] {px, pw, out}) emu.free(p);
    }

    @Test
    void tiledMatmul256() {
        int n = 256;
        float[] a = EmuTesting.gaussian(63, n * n), b = EmuTesting.gaussian(64, n * n);
        long pa = t.upload(a), pb = t.upload(b), pc = emu.malloc(4L * n * n);
        report("tiled fp32 matmul 256^3, 16x16 threads",
                () -> emu.launch("emu_matmul_tiled", n / 16, n / 16, 1, 16, 16, 1, 0, pc, pa, pb, n), 3);
        float[] c = t.floats(pc, n * n);
        double s = 0;
        for (int k = 0; k < n; k++) s += (double) a[17 * n + k] * b[k * n + 33];
        assertEquals(s, c[17 * n + 33], 1e-3);
        for (long p : new long[] {pa, pb, pc}) emu.free(p);
    }

    @Test
    void tensorCoreGemm128() {
        int n = 128;
        short[] a = new short[n * n], b = new short[n * n];
        float[] fa = EmuTesting.gaussian(65, n * n), fb = EmuTesting.gaussian(66, n * n);
        for (int i = 0; i < n * n; i++) {
            a[i] = (short) (Float.floatToRawIntBits(fa[i]) >>> 16);
            b[i] = (short) (Float.floatToRawIntBits(fb[i]) >>> 16);
        }
        long pa = t.upload(a), pb = t.upload(b), pc = emu.malloc(4L * n * n);
        report("bf16 mma.sync GEMM 128^3, 4 warps per 32x32 tile",
                () -> emu.launch("emu_gemm_bf16", n / 32, n / 32, 1, 128, 1, 1, 0, pc, pa, pb, n, n, n), 5);
        float[] c = t.floats(pc, n * n);
        double s = 0;
        for (int k = 0; k < n; k++)
            s += (double) Float.intBitsToFloat((a[5 * n + k] & 0xffff) << 16) * Float.intBitsToFloat((b[k * n + 77] & 0xffff) << 16);
        assertEquals(s, c[5 * n + 77], 1e-4);
        for (long p : new long[] {pa, pb, pc}) emu.free(p);
    }
}
