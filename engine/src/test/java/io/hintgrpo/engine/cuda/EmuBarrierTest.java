package io.hintgrpo.engine.cuda;

import io.hintgrpo.engine.cuda.EmuDriver.ThreadOrder;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * __syncthreads as a real barrier (native/emu/tests/barrier.cu): a missing one shows in some thread
 * order, and deadlocks are reported with every thread's state instead of hanging.
 */
class EmuBarrierTest extends EmuTest {
    static final int ROWS = 3, THREADS = 256;
    static float[] x;
    static long px, out;

    @BeforeAll
    static void plant() {
        x = EmuTesting.gaussian(21, ROWS * THREADS);
        for (int i = 0; i < x.length; i++) x[i] = Math.abs(x[i]) + 0.1f;
        px = t.upload(x);
        out = emu.malloc(4L * x.length);
    }

    @AfterEach
    void forward() {
        emu.setThreadOrder(ThreadOrder.FORWARD, 0);
    }

    boolean normalized(String kernel, ThreadOrder order, long seed) {
        emu.setThreadOrder(order, seed);
        emu.launch(kernel, ROWS, 1, 1, THREADS, 1, 1, 0, out, px);
        float[] r = t.floats(out, x.length);
        for (int row = 0; row < ROWS; row++) {
            double s = 0;
            for (int i = 0; i < THREADS; i++) s += x[row * THREADS + i];
            for (int i = 0; i < THREADS; i++)
                if (!(Math.abs(r[row * THREADS + i] - x[row * THREADS + i] / s) <= 1e-6)) return false;
        }
        return true;
    }

    @Test
    void theReductionIsRightInEveryOrder() {
        for (ThreadOrder order : ThreadOrder.values())
            for (long seed = 0; seed < 3; seed++) assertTrue(normalized("emu_normalize", order, seed), order + " " + seed);
    }

    @Test
    void aMissingBarrierShowsWhenTheOrderChanges() {
        assertTrue(normalized("emu_normalize_missing_sync", ThreadOrder.FORWARD, 0), "thread 0 runs first: looks right");
        assertFalse(normalized("emu_normalize_missing_sync", ThreadOrder.REVERSE, 0), "reverse order must expose it");
        assertFalse(normalized("emu_normalize_missing_sync", ThreadOrder.SHUFFLED, 1), "a shuffled order must expose it");
    }

    @Test
    void blockVotes() {
        emu.launch("emu_block_votes", ROWS, 1, 1, THREADS, 1, 1, 0, out, px);
        int[] r = t.ints(out, 3 * ROWS);
        for (int row = 0; row < ROWS; row++) {
            assertEquals(THREADS, r[3 * row]);
            assertEquals(1, r[3 * row + 1]);
            assertEquals(1, r[3 * row + 2]);
        }
    }

    @Test
    void threadsThatExitBeforeABarrierDeadlockTheOthers() {
        for (ThreadOrder order : ThreadOrder.values()) {
            emu.setThreadOrder(order, 5);
            EmuException e = assertThrows(EmuException.class, () -> emu.launch("emu_barrier_after_exit", 2, 1, 1, 64, 1, 1, 0, out));
            String m = e.getMessage();
            assertTrue(m.startsWith("kernel emu_barrier_after_exit: block (0,0,0): deadlock, no thread can continue: "), m);
            assertTrue(m.contains("threads 0-31: waiting at __syncthreads (native/emu/tests/barrier.cu:"), m);
            assertTrue(m.contains("threads 32-63: exited"), m);
            assertTrue(m.contains("Every thread of a block must reach each barrier"), m);
        }
    }

    @Test
    void threadsAtDifferentBarriersAreReported() {
        EmuException e = assertThrows(EmuException.class, () -> emu.launch("emu_divergent_barriers", 1, 1, 1, 64, 1, 1, 0, out));
        assertTrue(e.getMessage().contains("threads at different barriers"), e.getMessage());
    }

    @Test
    void aBarrierAgainstAWarpCollectiveDeadlocks() {
        EmuException e = assertThrows(EmuException.class, () -> emu.launch("emu_barrier_vs_syncwarp", 1, 1, 1, 32, 1, 1, 0, out));
        String m = e.getMessage();
        assertTrue(m.contains("thread 0: waiting at __syncthreads"), m);
        assertTrue(m.contains("threads 1-31: waiting in __syncwarp (mask 0xffffffff)"), m);
    }

    @Test
    void theEmulatorStillWorksAfterADeadlock() {
        assertThrows(EmuException.class, () -> emu.launch("emu_barrier_after_exit", 1, 1, 1, 64, 1, 1, 0, out));
        assertTrue(normalized("emu_normalize", ThreadOrder.SHUFFLED, 9));
    }
}
