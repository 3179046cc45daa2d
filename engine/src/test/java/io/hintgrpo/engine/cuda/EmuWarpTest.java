package io.hintgrpo.engine.cuda;

import io.hintgrpo.engine.cuda.EmuDriver.ThreadOrder;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Warp shuffles, votes, match and reduce (native/emu/tests/warp.cu) against a Java reference
 * written from the CUDA programming guide's description, and the shfl.sync rule breaks the emulator
 * must report.
 */
class EmuWarpTest extends EmuTest {
    static int idx(int[] v, int base, int lane, int src, int width) {
        return v[base + lane / width * width + (src & (width - 1))];
    }

    static int up(int[] v, int base, int lane, int delta, int width) {
        return lane % width >= delta ? v[base + lane - delta] : v[base + lane];
    }

    static int down(int[] v, int base, int lane, int delta, int width) {
        return lane % width + delta < width ? v[base + lane + delta] : v[base + lane];
    }

    static int xor(int[] v, int base, int lane, int mask, int width) {
        int src = lane ^ mask;
        return src / width > lane / width ? v[base + lane] : v[base + src]; // later groups: own value
    }

    @Test
    void shufflesVotesMatchAndReduceInEveryOrder() {
        int threads = 96;
        int[] x = new int[threads];
        SplittableRandom rng = new SplittableRandom(11);
        for (int i = 0; i < threads; i++) x[i] = rng.nextInt(1, 20);
        x[40] = 7;
        long px = t.upload(x), out = emu.malloc(64L * threads);
        for (ThreadOrder order : ThreadOrder.values()) {
            emu.setThreadOrder(order, 3);
            emu.launch("emu_shuffles", 1, 1, 1, threads, 1, 1, 0, out, px);
            int[] r = t.ints(out, 16 * threads);
            for (int i = 0; i < threads; i++) {
                int lane = i % 32, base = i - lane;
                int ballot = 0, sum = 0, match = 0;
                boolean any = false, all = true;
                for (int l = 0; l < 32; l++) {
                    int v = x[base + l];
                    ballot |= (v & 1) << l;
                    any |= v == 7;
                    all &= v > 0;
                    sum += v;
                    if (v % 3 == x[i] % 3) match |= 1 << l;
                }
                int[] want = {
                    idx(x, base, lane, 5, 32), idx(x, base, lane, lane + 3, 8), up(x, base, lane, 3, 32),
                    up(x, base, lane, 2, 16), down(x, base, lane, 4, 32), down(x, base, lane, 1, 4),
                    xor(x, base, lane, 1, 32), xor(x, base, lane, 12, 8), ballot, any ? 1 : 0, all ? 1 : 0, sum, match,
                    lane < 16 ? down(x, base, lane, 2, 16) : xor(x, base, lane, 1, 32),
                    x[base + 31 - lane], x[base + (lane ^ 3)]};
                int[] got = java.util.Arrays.copyOfRange(r, 16 * i, 16 * i + 16);
                assertArrayEquals(want, got, order + " thread " + i);
            }
        }
        emu.setThreadOrder(ThreadOrder.FORWARD, 0);
        emu.free(px);
        emu.free(out);
    }

    @Test
    void exitedLanesDoNotTakePart() {
        long out = emu.malloc(4L * 32);
        emu.launch("emu_shfl_with_exited", 1, 1, 1, 32, 1, 1, 0, out);
        int[] r = t.ints(out, 16);
        for (int lane = 0; lane < 16; lane++) assertEquals(120, r[lane]); // Σ 0..15
        emu.free(out);
    }

    @Test
    void readingALaneOutsideTheMaskFails() {
        long out = emu.malloc(4L * 32);
        EmuException e = assertThrows(EmuException.class, () -> emu.launch("emu_shfl_outside_mask", 1, 1, 1, 32, 1, 1, 0, out));
        assertTrue(e.getMessage().startsWith("kernel emu_shfl_outside_mask: block (0,0,0), thread ("), e.getMessage());
        assertTrue(e.getMessage().contains("__shfl_sync at native/emu/tests/warp.cu:"), e.getMessage());
        assertTrue(e.getMessage().contains("lane 0 reads lane 16, which is not in the mask (mask 0x0000ffff)"), e.getMessage());
        e = assertThrows(EmuException.class, () -> emu.launch("emu_shfl_not_in_own_mask", 1, 1, 1, 32, 1, 1, 0, out));
        assertTrue(e.getMessage().contains("lane 3 calls it with mask 0x00000001, which does not contain the lane itself"), e.getMessage());
        e = assertThrows(EmuException.class, () -> emu.launch("emu_shfl_from_exited", 1, 1, 1, 32, 1, 1, 0, out));
        assertTrue(e.getMessage().contains("lane 0 reads lane 16, which has exited"), e.getMessage());
        long big = emu.malloc(64L * 48), in = emu.malloc(4L * 48);
        e = assertThrows(EmuException.class, () -> emu.launch("emu_shuffles", 1, 1, 1, 48, 1, 1, 0, big, in));
        assertTrue(e.getMessage().contains("names lanes that do not exist (the block has 48 threads)"), e.getMessage());
        emu.free(big);
        emu.free(in);
        emu.free(out);
    }
}
