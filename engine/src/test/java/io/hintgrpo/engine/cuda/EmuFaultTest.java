package io.hintgrpo.engine.cuda;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Planted bugs (native/emu/tests/faults.cu): each launch fails with a message naming the kernel
 * (and where it applies the block and thread), never crashes or hangs, and the emulator keeps
 * working afterwards.
 */
class EmuFaultTest extends EmuTest {
    static long out;

    @BeforeAll
    static void plant() {
        out = emu.malloc(4L * 64);
    }

    @AfterEach
    void stillWorks() { // after every failure a good launch runs and the guard zones are intact
        float[] x = EmuTesting.gaussian(51, 100), y = new float[100];
        long px = t.upload(x), py = t.upload(y);
        emu.launch("emu_axpy", 1, 1, 1, 128, 1, 1, 0, py, px, 2f, 100, 0L);
        float[] r = t.floats(py, 100);
        for (int i = 0; i < 100; i++) assertEquals(2 * x[i], r[i], 0f);
        emu.free(px);
        emu.free(py);
        emu.synchronize();
    }

    static String failure(String kernel, int gx, int bx, int shared, Object... args) {
        return assertThrows(EmuException.class, () -> emu.launch(kernel, gx, 1, 1, bx, 1, 1, shared, args)).getMessage();
    }

    static void assertContains(String message, String... parts) {
        for (String p : parts) assertTrue(message.contains(p), () -> "«" + p + "» not in: " + message);
    }

    @Test
    void aStoreJustPastTheEndIsFoundInTheGuardZone() {
        long small = emu.malloc(4L * 10);
        String m = failure("emu_store_past_end", 1, 32, 0, small, 10);
        assertContains(m, "kernel emu_store_past_end: out-of-bounds write: bytes 0 to 3 past the end of allocation");
        emu.free(small);
    }

    @Test
    void aStoreFarPastTheEndFaultsAtOnceNamingTheThread() {
        long small = emu.malloc(4L * 10);
        String m = failure("emu_store_far_past_end", 1, 32, 0, small, 10);
        assertContains(m, "kernel emu_store_far_past_end: block (0,0,0), thread (5,0,0): out-of-bounds access at 0x",
                "past the end of the allocation");
        emu.free(small);
    }

    @Test
    void aStrayWriteIntoAnotherAllocationsGuardIsFoundAtSynchronize() {
        long a = emu.malloc(4L * 10), b = emu.malloc(4L * 10);
        // a kernel given only `a` stores into b's head guard: the launch checks a only
        emu.launch("emu_store_at", 1, 1, 1, 1, 1, 1, 0, a, (b - 8 - a) / 4);
        String m = assertThrows(EmuException.class, emu::synchronize).getMessage();
        assertContains(m, "out-of-bounds write found at synchronize: bytes -8 to -5 before the start of allocation 0x"
                + Long.toHexString(b));
        emu.free(a);
        emu.free(b);
    }

    @Test
    void nullPointer() {
        assertContains(failure("emu_null_store", 1, 32, 0, 0L), "kernel emu_null_store: block (0,0,0), thread (0,0,0): null pointer access");
    }

    @Test
    void deviceAssert() {
        int[] x = new int[32];
        java.util.Arrays.fill(x, 1);
        x[17] = -4;
        long px = t.upload(x);
        String m = failure("emu_assert_positive", 1, 32, 0, px);
        assertContains(m, "kernel emu_assert_positive: block (0,0,0), thread (17,0,0): device assert `x[threadIdx.x] > 0` failed at native/emu/tests/faults.cu:");
        emu.free(px);
    }

    @Test
    void trap() {
        assertContains(failure("emu_trap", 2, 64, 0, 40), "kernel emu_trap: block (0,0,0), thread (40,0,0): __trap()");
    }

    @Test
    void fiberStackOverflow() {
        String m = failure("emu_stack_overflow", 1, 4, 0, out, 100000);
        assertContains(m, "kernel emu_stack_overflow: block (0,0,0), thread (0,0,0): fiber stack overflow", "HG_EMU_STACK_KB");
        emu.launch("emu_stack_overflow", 1, 4, 1, 4, 1, 1, 0, out, 10); // shallow recursion is fine
    }

    @Test
    void aSpinWaitOnAnotherBlockIsStoppedByTheWatchdog() {
        emu.setWatchdogSeconds(0.3);
        try {
            long flag = t.upload(new int[1]);
            assertContains(failure("emu_spin_on_other_block", 2, 1, 0, flag),
                    "kernel emu_spin_on_other_block: block (0,0,0), thread (0,0,0): no progress for 0.3 s", "spin-wait on another block");
            assertContains(failure("emu_sleepy_spin_on_other_block", 2, 1, 0, flag), // yields: stopped between fibers or in one
                    "kernel emu_sleepy_spin_on_other_block: block (0,0,0)", "no progress for 0.3 s", "spin-wait on another block");
            emu.free(flag);
        } finally {
            emu.setWatchdogSeconds(60);
        }
    }

    @Test
    void aSpinWaitWithinABlockProgressesThroughNanosleep() {
        emu.launch("emu_spin_within_block", 1, 1, 1, 2, 1, 1, 0, out);
        assertEquals(7, t.ints(out, 1)[0]);
    }

    @Test
    void integerDivisionByZero() {
        assertContains(failure("emu_divide", 1, 8, 0, out, 0), "kernel emu_divide: block (0,0,0), thread (0,0,0): arithmetic exception");
    }

    @Test
    void dynamicSharedMemoryOverflow() {
        assertContains(failure("emu_dynamic_shared_overflow", 1, 32, 4 * 32, out, 32),
                "kernel emu_dynamic_shared_overflow: block (0,0,0) wrote past the end of its 128 bytes of dynamic shared memory");
    }

    @Test
    void unsupportedFeaturesFailLoudly() {
        assertContains(failure("emu_hopper_only", 1, 32, 0, out),
                "kernel emu_hopper_only: block (0,0,0), thread (0,0,0): not supported by the CUDA emulator: emu_hopper_only needs sm_90 (wgmma)");
        assertContains(failure("emu_grid_sync", 2, 32, 0, out), "grid-wide sync (cooperative_groups::grid_group::sync) cannot be emulated");
        assertContains(failure("emu_empty", 1, 32, 300 * 1024), "kernel emu_empty: 307200 bytes of dynamic shared memory: more than any GPU");
    }
}
