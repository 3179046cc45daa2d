package io.hintgrpo.engine.cuda;

import io.hintgrpo.engine.cuda.EmuDriver.ThreadOrder;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The emulator's plumbing on planted kernels (native/emu/tests/basics.cu). */
class EmuBasicsTest {
    static final String TEST_LIBRARY = "/native/linux-x86_64/libhintgrpo_emu_test.so";
    static EmuDriver emu;

    @BeforeAll
    static void load() {
        emu = new EmuDriver(TEST_LIBRARY);
    }

    @AfterAll
    static void close() {
        emu.close();
    }

    static long upload(float[] v) {
        long p = emu.malloc(4L * v.length);
        emu.copyHostToDevice(p, v, 0, v.length);
        return p;
    }

    static long upload(int[] v) {
        long p = emu.malloc(4L * v.length);
        emu.copyHostToDevice(p, v, 0, v.length);
        return p;
    }

    static float[] floats(long p, int n) {
        float[] r = new float[n];
        emu.copyDeviceToHost(r, 0, p, n);
        return r;
    }

    static int[] ints(long p, int n) {
        int[] r = new int[n];
        emu.copyDeviceToHost(r, 0, p, n);
        return r;
    }

    @Test
    void describesItself() {
        assertEquals("CUDA emulator (cpu)", emu.describe());
        assertEquals(16L << 30, emu.totalMemory());
    }

    @Test
    void coordinatesOfEveryThreadAndBlock() {
        int gx = 3, gy = 2, gz = 2, bx = 5, by = 3, bz = 2;
        int threads = gx * gy * gz * bx * by * bz;
        long out = emu.malloc(24L * threads);
        emu.launch("emu_coords", gx, gy, gz, bx, by, bz, 0, out);
        int[] r = ints(out, 6 * threads);
        int i = 0;
        for (int z = 0; z < gz; z++) for (int y = 0; y < gy; y++) for (int x = 0; x < gx; x++)
            for (int tz = 0; tz < bz; tz++) for (int ty = 0; ty < by; ty++) for (int tx = 0; tx < bx; tx++, i++)
                assertArrayEquals(new int[] {tx, ty, tz, x, y, z}, java.util.Arrays.copyOfRange(r, 6 * i, 6 * i + 6));
        emu.free(out);
    }

    @Test
    void scalarArgumentsInEightByteSlots() {
        int n = 1000;
        SplittableRandom rng = new SplittableRandom(1);
        float[] x = new float[n], y = new float[n];
        for (int i = 0; i < n; i++) { x[i] = (float) rng.nextGaussian(); y[i] = (float) rng.nextGaussian(); }
        long px = upload(x), py = upload(y);
        emu.launch("emu_axpy", 3, 1, 1, 128, 1, 1, 0, py, px, 2.5f, n, 7L);
        float[] r = floats(py, n);
        for (int i = 0; i < n; i++) assertEquals(2.5f * x[i] + y[i] + 7f, r[i], 0f);
        emu.free(px);
        emu.free(py);
    }

    @Test
    void rowSumWithBarriersInEveryOrder() {
        int rows = 7, c = 1000;
        float[] x = new float[rows * c];
        SplittableRandom rng = new SplittableRandom(2);
        for (int i = 0; i < x.length; i++) x[i] = (float) rng.nextGaussian();
        long px = upload(x), out = emu.malloc(4L * rows);
        for (ThreadOrder order : ThreadOrder.values()) {
            emu.setThreadOrder(order, 42);
            emu.launch("emu_row_sum", rows, 1, 1, 256, 1, 1, 0, out, px, c);
            float[] r = floats(out, rows);
            for (int row = 0; row < rows; row++) {
                double s = 0;
                for (int j = 0; j < c; j++) s += x[row * c + j];
                assertEquals(s, r[row], 1e-3, order + " row " + row);
            }
        }
        emu.setThreadOrder(ThreadOrder.FORWARD, 0);
        emu.free(px);
        emu.free(out);
    }
}
