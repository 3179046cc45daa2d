package io.hintgrpo.engine.cuda;

import io.hintgrpo.engine.cuda.EmuDriver.ThreadOrder;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The tensor-core wrappers of kernels/common/ptx.cuh under the emulator (native/emu/tests/tensor_core.cu):
 * fragment layouts of mma.sync (bf16 m16n8k16, tf32 m16n8k8) and ldmatrix (x1/x2/x4, .trans) as
 * the PTX ISA documents them, a cp.async + ldmatrix + mma GEMM against a reference, and a missing
 * cp.async wait that must read stale shared memory.
 */
class EmuTensorCoreTest extends EmuTest {
    /** Random values that bf16 holds exactly, as bits. */
    static short[] bf16s(SplittableRandom rng, int n) {
        short[] v = new short[n];
        for (int i = 0; i < n; i++) v[i] = (short) (Float.floatToRawIntBits((float) rng.nextGaussian()) >>> 16);
        return v;
    }

    static double bf16(short b) {
        return Float.intBitsToFloat((b & 0xffff) << 16);
    }

    @Test
    void mmaBf16MatchesTheDocumentedLayout() {
        SplittableRandom rng = new SplittableRandom(41);
        short[] a = bf16s(rng, 16 * 16), b = bf16s(rng, 16 * 8);
        float[] c = EmuTesting.gaussian(42, 16 * 8);
        long pa = t.upload(a), pb = t.upload(b), pc = t.upload(c), pd = emu.malloc(4L * 128);
        for (ThreadOrder order : ThreadOrder.values()) {
            emu.setThreadOrder(order, 1);
            emu.launch("emu_mma_bf16_probe", 1, 1, 1, 32, 1, 1, 0, pd, pa, pb, pc);
            float[] d = t.floats(pd, 128);
            for (int i = 0; i < 16; i++)
                for (int j = 0; j < 8; j++) {
                    double s = c[i * 8 + j];
                    for (int k = 0; k < 16; k++) s += bf16(a[i * 16 + k]) * bf16(b[k * 8 + j]);
                    assertEquals(s, d[i * 8 + j], 1e-6 * (1 + Math.abs(s)), order + " D[" + i + "][" + j + "]");
                }
        }
        emu.setThreadOrder(ThreadOrder.FORWARD, 0);
        for (long p : new long[] {pa, pb, pc, pd}) emu.free(p);
    }

    static double tf32(float x) { // cvt.rna.tf32.f32
        int u = Float.floatToRawIntBits(x);
        return Float.intBitsToFloat((u + 0x1000) & 0xffffe000);
    }

    @Test
    void mmaTf32MatchesTheDocumentedLayout() {
        float[] a = EmuTesting.gaussian(43, 16 * 8), b = EmuTesting.gaussian(44, 8 * 8), c = EmuTesting.gaussian(45, 16 * 8);
        long pa = t.upload(a), pb = t.upload(b), pc = t.upload(c), pd = emu.malloc(4L * 128);
        emu.launch("emu_mma_tf32_probe", 1, 1, 1, 32, 1, 1, 0, pd, pa, pb, pc);
        float[] d = t.floats(pd, 128);
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 8; j++) {
                double s = c[i * 8 + j];
                for (int k = 0; k < 8; k++) s += tf32(a[i * 8 + k]) * tf32(b[k * 8 + j]);
                assertEquals(s, d[i * 8 + j], 1e-6 * (1 + Math.abs(s)), "D[" + i + "][" + j + "]");
            }
        for (long p : new long[] {pa, pb, pc, pd}) emu.free(p);
    }

    @Test
    void ldmatrixMatchesTheDocumentedLayout() {
        short[] m = new short[256];
        for (int i = 0; i < 256; i++) m[i] = (short) (0x1000 + i); // row·16 + col, recognisable
        long pm = t.upload(m), out = emu.malloc(4L * 128);
        for (int mode = 0; mode < 6; mode++) {
            int count = 1 << (mode % 3);
            boolean trans = mode >= 3;
            emu.launch("emu_ldmatrix_probe", 1, 1, 1, 32, 1, 1, 0, out, pm, mode);
            int[] r = t.ints(out, 128);
            for (int lane = 0; lane < 32; lane++) {
                int g = lane >> 2, tt = lane & 3;
                int[] want = new int[4];
                for (int i = 0; i < count; i++) { // matrix i: rows (i % 2)·8.., columns (i / 2)·8..
                    int r0 = (i % 2) * 8, c0 = (i / 2) * 8;
                    int lo = trans ? m[(r0 + 2 * tt) * 16 + c0 + g] : m[(r0 + g) * 16 + c0 + 2 * tt];
                    int hi = trans ? m[(r0 + 2 * tt + 1) * 16 + c0 + g] : m[(r0 + g) * 16 + c0 + 2 * tt + 1];
                    want[i] = (hi & 0xffff) << 16 | (lo & 0xffff);
                }
                int[] got = java.util.Arrays.copyOfRange(r, 4 * lane, 4 * lane + 4);
                assertArrayEquals(want, got, "mode " + mode + " lane " + lane);
            }
        }
        emu.free(pm);
        emu.free(out);
    }

    @Test
    void gemmThroughCpAsyncLdmatrixAndMma() {
        int mm = 64, nn = 96, kk = 128;
        SplittableRandom rng = new SplittableRandom(46);
        short[] a = bf16s(rng, mm * kk), b = bf16s(rng, kk * nn);
        long pa = t.upload(a), pb = t.upload(b), pc = emu.malloc(4L * mm * nn);
        for (ThreadOrder order : ThreadOrder.values()) {
            emu.setThreadOrder(order, 2);
            emu.launch("emu_gemm_bf16", nn / 32, mm / 32, 1, 128, 1, 1, 0, pc, pa, pb, mm, nn, kk);
            float[] c = t.floats(pc, mm * nn);
            for (int i = 0; i < mm; i++)
                for (int j = 0; j < nn; j++) {
                    double s = 0;
                    for (int k = 0; k < kk; k++) s += bf16(a[i * kk + k]) * bf16(b[k * nn + j]);
                    assertEquals(s, c[i * nn + j], 1e-5 * (1 + Math.abs(s)), order + " C[" + i + "][" + j + "]");
                }
        }
        emu.setThreadOrder(ThreadOrder.FORWARD, 0);
        for (long p : new long[] {pa, pb, pc}) emu.free(p);
    }

    @Test
    void readingBeforeTheCpAsyncWaitSeesStaleSharedMemory() {
        float[] x = EmuTesting.gaussian(47, 128);
        long px = t.upload(x), out = emu.malloc(4L * 64);
        emu.launch("emu_cp_async_without_wait", 1, 1, 1, 32, 1, 1, 0, out, px);
        int[] r = t.ints(out, 64);
        for (int i = 0; i < 32; i++) {
            assertEquals(0xffffffff, r[i], "before the wait: the poison");
            assertEquals(Float.floatToRawIntBits(x[4 * i]), r[32 + i], "after the wait: the data");
        }
        emu.free(px);
        emu.free(out);
    }
}
