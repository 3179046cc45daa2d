package io.hintgrpo.engine.cuda;

import io.hintgrpo.engine.cuda.EmuDriver.ThreadOrder;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The emulator's plumbing on planted kernels (native/emu/tests/basics.cu). */
class EmuBasicsTest extends EmuTest {
    @Test
    void describesItselfAndListsItsKernels() {
        assertEquals("CUDA emulator (cpu)", emu.describe());
        assertEquals(16L << 30, emu.totalMemory());
        assertTrue(Arrays.asList(emu.kernelNames()).contains("emu_axpy"));
        assertEquals("ppfil", emu.signature("emu_axpy"));
    }

    @Test
    void coordinatesOfEveryThreadAndBlock() {
        int gx = 3, gy = 2, gz = 2, bx = 5, by = 3, bz = 2, threads = gx * gy * gz * bx * by * bz;
        long out = emu.malloc(24L * threads);
        emu.launch("emu_coords", gx, gy, gz, bx, by, bz, 0, out);
        int[] r = t.ints(out, 6 * threads);
        int i = 0;
        for (int z = 0; z < gz; z++) for (int y = 0; y < gy; y++) for (int x = 0; x < gx; x++)
            for (int tz = 0; tz < bz; tz++) for (int ty = 0; ty < by; ty++) for (int tx = 0; tx < bx; tx++, i++)
                assertArrayEquals(new int[] {tx, ty, tz, x, y, z}, Arrays.copyOfRange(r, 6 * i, 6 * i + 6));
        emu.free(out);
    }

    @Test
    void scalarArgumentsInEightByteSlots() {
        int n = 1000;
        float[] x = EmuTesting.gaussian(1, n), y = EmuTesting.gaussian(2, n);
        long px = t.upload(x), py = t.upload(y);
        emu.launch("emu_axpy", 3, 1, 1, 128, 1, 1, 0, py, px, 2.5f, n, 7L);
        float[] r = t.floats(py, n);
        for (int i = 0; i < n; i++) assertEquals(2.5f * x[i] + y[i] + 7f, r[i], 0f);
        emu.free(px);
        emu.free(py);
    }

    @Test
    void rowSumWithBarriersInEveryOrder() {
        int rows = 7, c = 1000;
        float[] x = EmuTesting.gaussian(3, rows * c);
        long px = t.upload(x), out = emu.malloc(4L * rows);
        for (ThreadOrder order : ThreadOrder.values()) {
            emu.setThreadOrder(order, 42);
            emu.launch("emu_row_sum", rows, 1, 1, 256, 1, 1, 0, out, px, c);
            float[] r = t.floats(out, rows);
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

    @Test
    void dynamicSharedMemory() {
        int blocks = 3, n = 300;
        float[] x = EmuTesting.gaussian(4, blocks * n);
        long px = t.upload(x), out = emu.malloc(4L * x.length);
        emu.launch("emu_dynamic_reverse", blocks, 1, 1, 64, 1, 1, 4 * n, out, px, n);
        float[] r = t.floats(out, x.length);
        for (int b = 0; b < blocks; b++)
            for (int i = 0; i < n; i++) assertEquals(x[b * n + n - 1 - i], r[b * n + i], 0f);
        emu.free(px);
        emu.free(out);
    }

    @Test
    void sharedMemoryHoldsPoisonAtTheStartOfEveryBlock() {
        int blocks = 4, threads = 64, n = 16;
        long out = emu.malloc(8L * blocks * threads);
        emu.launch("emu_read_poison", blocks, 1, 1, threads, 1, 1, 4 * n, out, n);
        for (int v : t.ints(out, 2 * blocks * threads)) assertEquals(0xffffffff, v);
        emu.free(out);
        long out3 = emu.malloc(12L * blocks * threads);
        for (int launch = 0; launch < 2; launch++) {
            emu.launch("emu_read_poison_templates", blocks, 1, 1, threads, 1, 1, 0, out3);
            for (int v : t.ints(out3, 3 * blocks * threads)) assertEquals(0xffffffff, v, "templates and inline functions");
        }
        emu.free(out3);
    }

    @Test
    void atomics() {
        int n = 1000;
        float[] x = EmuTesting.gaussian(5, n);
        long counters = t.upload(new int[] {0, 0, -1, 0}), sums = t.upload(new float[1]);
        long maxes = t.upload(new int[] {Integer.MIN_VALUE, Integer.MAX_VALUE}), bits = t.upload(new int[32]);
        long px = t.upload(x);
        emu.setThreadOrder(ThreadOrder.SHUFFLED, 7);
        emu.launch("emu_atomics", 8, 1, 1, 128, 1, 1, 0, counters, sums, maxes, bits, px, n);
        emu.setThreadOrder(ThreadOrder.FORWARD, 0);
        int[] c = t.ints(counters, 4);
        assertEquals(n, c[0]);
        assertEquals(2 * n, c[1]);
        assertTrue(c[2] >= 0 && c[2] < n);
        assertEquals(n, c[3]);
        double s = 0;
        for (float v : x) s += v;
        assertEquals(s, t.floats(sums, 1)[0], 1e-3);
        assertArrayEquals(new int[] {n - 1, -(n - 1)}, t.ints(maxes, 2));
        int[] b = t.ints(bits, 32);
        for (int i = 0; i < 32 * 32; i++) assertEquals(i < n, (b[i / 32] >>> (i % 32) & 1) == 1, "bit " + i);
        for (long p : new long[] {counters, sums, maxes, bits, px}) emu.free(p);
    }

    @Test
    void argumentsAreCheckedAgainstTheKernelsParameters() {
        long y = emu.malloc(64);
        EmuException e = assertThrows(EmuException.class, () -> emu.launch("emu_axpy", 1, 1, 1, 32, 1, 1, 0, y, y, 1, 16, 0L));
        assertTrue(e.getMessage().contains("kernel emu_axpy: argument 2 is a Integer, but the parameter is a float"), e.getMessage());
        e = assertThrows(EmuException.class, () -> emu.launch("emu_axpy", 1, 1, 1, 32, 1, 1, 0, y, y, 1f, 16));
        assertTrue(e.getMessage().contains("takes 5 arguments, got 4"), e.getMessage());
        e = assertThrows(EmuException.class, () -> emu.launch("emu_axpy", 1, 1, 1, 32, 1, 1, 0, y, 12345L, 1f, 16, 0L));
        assertTrue(e.getMessage().contains("pointer argument 1 (0x3039) is not a device address"), e.getMessage());
        e = assertThrows(EmuException.class, () -> emu.launch("emu_axpy", 1, 1, 1, 32, 1, 1, 0, y, y + 128, 1f, 16, 0L));
        assertTrue(e.getMessage().contains("lies outside its allocation"), e.getMessage());
        e = assertThrows(EmuException.class, () -> emu.launch("no_such_kernel", 1, 1, 1, 1, 1, 1, 0));
        assertTrue(e.getMessage().contains("no kernel named no_such_kernel"), e.getMessage());
        e = assertThrows(EmuException.class, () -> emu.launch("emu_empty", 1, 1, 1, 33, 33, 1, 0));
        assertTrue(e.getMessage().contains("not a CUDA block shape"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> emu.launch("emu_empty", 1, 1, 1, 1, 1, 1, 0, 1.0));
        emu.free(y);
    }

    @Test
    void copiesAndAllocationsAreChecked() {
        long p = emu.malloc(40);
        EmuException e = assertThrows(EmuException.class, () -> emu.copyHostToDevice(p, new float[11], 0, 11));
        assertTrue(e.getMessage().contains("runs outside its allocation"), e.getMessage());
        assertThrows(EmuException.class, () -> emu.copyDeviceToHost(new int[4], 0, p + 32, 4));
        assertThrows(IndexOutOfBoundsException.class, () -> emu.copyHostToDevice(p, new float[4], 2, 4));
        long q = emu.malloc(40);
        emu.copyHostToDevice(p, new float[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0, 10);
        emu.copyDeviceToDevice(q, p + 8, 32);
        assertArrayEquals(new float[] {3, 4, 5, 6, 7, 8, 9, 10}, t.floats(q, 8));
        assertThrows(EmuException.class, () -> emu.free(p + 4));
        e = assertThrows(EmuException.class, () -> emu.malloc(emu.totalMemory()));
        assertTrue(e.getMessage().contains("device allocation of 17179869184 bytes fails"), e.getMessage());
        emu.free(p);
        emu.free(q);
    }

    @Test
    void freshAllocationsHoldPoison() {
        long p = emu.malloc(16);
        for (int v : t.ints(p, 4)) assertEquals(-1, v);
        emu.free(p);
    }

    static int depth(int n) {
        return n == 0 ? 0 : depth(n - 1) + 1;
    }

    static int hash(Object o) {
        return o.hashCode();
    }

    /** The emulator's signal handlers pass the JVM's own SIGSEGVs on (null checks, stack banging). */
    @Test
    void theJvmsOwnSignalsStillWork() {
        emu.launch("emu_empty", 1, 1, 1, 1, 1, 1, 0); // handlers and this thread's alternate stack are in place
        int npe = 0;
        for (int i = 0; i < 200_000; i++) {
            try {
                npe += hash(i % 1000 == 0 ? null : "x") == 0 ? 1 : 0;
            } catch (NullPointerException e) {
                npe++;
            }
        }
        assertEquals(200, npe);
        assertThrows(StackOverflowError.class, () -> depth(Integer.MAX_VALUE));
        emu.launch("emu_empty", 1, 1, 1, 32, 1, 1, 0);
    }
}
