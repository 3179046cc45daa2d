package io.hintgrpo.engine.cuda;

import io.hintgrpo.engine.Bf16;
import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.Kernels.Gemm;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The bf16 tensor-core GEMM (kernels/gemm_bf16.cu, {@code Kernels.gemmBf16}) against its cpu twin,
 * in the style of {@link CudaParityTest} (same driver choice, thread orders and report): every
 * layout, with and without bias, written and accumulated, on sizes that do not divide the
 * 128×128×32 tile. Inputs are random non-zero bf16 values, device outputs are poisoned with NaN,
 * every device buffer is a slice between guard elements that must survive.
 *
 * <p>Each case runs twice: with the bf16 slices 16-byte aligned (guard of 8 elements), so operands
 * whose rows are a multiple of 8 elements take the cp.async path, and misaligned (guard of 5
 * elements, a 10-byte offset), which forces the plain-load path for every operand. Sizes with an
 * odd k (or m, n not a multiple of 8) misalign the rows themselves.
 *
 * <p>Errors: ‖out − ref‖/‖ref‖ ≤ 1e-4 (the products are exact; only the summation order differs).
 * On small-integer inputs every sum is exact in fp32 whatever the order, so there the results
 * must match bit for bit: a fragment-level check that catches any misplaced element.
 */
class CudaGemmBf16ParityTest extends GuardedTwins {

    private static final Suite SUITE = new Suite("CudaGemmBf16ParityTest");

    /**
     * m, n, k: tile edges on every dimension, odd k, one whole tile, rows that are all a multiple of
     * 8 elements (cp.async with zero-filled edge chunks), one operand aligned and the other not
     * (40×67×48 in NN and TN), and a 3×3 grid of blocks.
     */
    private static final int[][] SHAPES = {{1, 1, 1}, {17, 33, 45}, {130, 70, 95}, {64, 128, 256}, {136, 200, 40},
            {40, 67, 48}, {257, 264, 96}};

    static List<String> orders() {
        return CudaParityTest.orders();
    }

    @AfterAll
    static void closeAndReport() {
        SUITE.closeAndReport();
    }

    CudaGemmBf16ParityTest() {
        super(SUITE);
    }

    /** n non-zero integers in [-8, 8] as bf16 (exact). */
    private short[] smallIntsBf16(int n) {
        short[] v = new short[n];
        for (int i = 0; i < n; i++) {
            int x = rng.nextInt(16) - 8;
            v[i] = Bf16.fromFloat(x >= 0 ? x + 1 : x);
        }
        return v;
    }

    private static String kernel(Gemm layout) {
        return "gemm_bf16_" + layout.name().toLowerCase(java.util.Locale.ROOT);
    }

    @ParameterizedTest
    @MethodSource("orders")
    void everyLayoutBiasAndAccumulate(String order) {
        begin(order, 31);
        for (int g : new int[]{8, 5}) { // 16-byte aligned slices (cp.async where rows allow), then misaligned
            guard = g;
            for (Gemm layout : Gemm.values()) {
                for (int[] s : SHAPES) {
                    int m = s[0], n = s[1], k = s[2];
                    for (int variant = 0; variant < 4; variant++) {
                        boolean bias = (variant & 1) != 0, accumulate = (variant & 2) != 0;
                        Buf[] a = twin(randomBf16(m * k)), b = twin(randomBf16(n * k));
                        Buf[] bi = bias ? twin(random(n)) : new Buf[]{null, null};
                        Buf[] out = accumulate ? twin(random(m * n)) : output(m * n);
                        cpu.gemmBf16(layout, out[0], a[0], b[0], bi[0], m, n, k, accumulate);
                        gpu.gemmBf16(layout, out[1], a[1], b[1], bi[1], m, n, k, accumulate);
                        check(kernel(layout), out, 1e-4, m + "x" + n + "x" + k + (bias ? " bias" : "")
                                + (accumulate ? " accumulate" : "") + " guard " + g);
                    }
                }
            }
            end();
        }
    }

    /** Small integers: every partial sum is exact, so the device must match the cpu twin bit for bit. */
    @ParameterizedTest
    @MethodSource("orders")
    void exactOnSmallIntegers(String order) {
        begin(order, 32);
        for (int g : new int[]{8, 5}) {
            guard = g;
            for (Gemm layout : Gemm.values()) {
                for (int[] s : new int[][]{{64, 128, 256}, {136, 200, 40}, {130, 70, 95}}) {
                    int m = s[0], n = s[1], k = s[2];
                    float[] biasValues = new float[n];
                    for (int j = 0; j < n; j++) biasValues[j] = rng.nextInt(100) - 50;
                    Buf[] a = twin(smallIntsBf16(m * k)), b = twin(smallIntsBf16(n * k)), bi = twin(biasValues);
                    Buf[] out = output(m * n);
                    cpu.gemmBf16(layout, out[0], a[0], b[0], bi[0], m, n, k, false);
                    gpu.gemmBf16(layout, out[1], a[1], b[1], bi[1], m, n, k, false);
                    float[] ref = read(out[0]), got = read(out[1]);
                    for (int i = 0; i < ref.length; i++) {
                        int ii = i;
                        assertEquals(ref[i], got[i], () -> kernel(layout) + " " + m + "x" + n + "x" + k + " guard " + g
                                + ": out[" + ii / n + "][" + ii % n + "]");
                    }
                }
            }
            end();
        }
    }

    /** Wrong buffer types and short buffers fail on the host, naming the op and the buffer. */
    @ParameterizedTest
    @MethodSource("orders")
    void argumentChecks(String order) {
        begin(order, 33);
        guard = 8;
        Buf f = twin(random(12))[1], h = twin(randomBf16(12))[1];
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> gpu.gemmBf16(Gemm.NT, f, f, h, null, 2, 3, 4, false));
        assertTrue(e.getMessage().contains("gemmBf16 NT: a must be BF16"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> gpu.gemmBf16(Gemm.TN, f, h, h, null, 3, 5, 4, false));
        assertTrue(e.getMessage().contains("gemmBf16 TN: out holds 12 elements, needs 15"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> gpu.gemmBf16(Gemm.NN, f, h, h, h, 2, 3, 4, false));
        assertTrue(e.getMessage().contains("gemmBf16 NN: bias must be F32"), e.getMessage());
        end();
    }
}
