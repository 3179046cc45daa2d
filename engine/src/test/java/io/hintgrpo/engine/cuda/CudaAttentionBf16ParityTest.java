package io.hintgrpo.engine.cuda;

import io.hintgrpo.engine.Buf;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The bf16 tensor-core attention forward (kernels/attention_bf16.cu, {@code Kernels.attentionBf16})
 * against its cpu twin (q, k, v widened exactly, then the fp32 attention), in the style of
 * {@link CudaGemmBf16ParityTest}: random non-zero bf16 inputs, NaN-poisoned outputs, device
 * buffers as slices between guards that must survive, every case with 16-byte aligned slices
 * (cp.async) and misaligned ones (a 10-byte offset: plain loads).
 *
 * <p>Tolerances. out: ≤ 1e-2 relative (DESIGN's bf16 rule). Scores and the softmax statistics are
 * fp32 on both sides, but the device rounds each weight p ≤ 1 to bf16 before P·V: a relative error
 * of at most 2⁻⁹ per weight, uncorrelated across keys, so the error of out is a few 1e-3 at most
 * (5.4e-4 measured on these cases). lse: ≤ 1e-5 relative (8e-8 measured): it is m + log(l) from unrounded
 * fp32 weights, so only the summation order of the scores (exact on the emulator's mma, fp32 dots
 * on the cpu) and of l differ.
 */
class CudaAttentionBf16ParityTest extends GuardedTwins {

    private static final Suite SUITE = new Suite("CudaAttentionBf16ParityTest");

    /**
     * (b, t, heads, kvHeads, headDim, lengths…): GQA ratios 1, 2 and 7 (Qwen2.5-0.5B's 14/2), head
     * dims 64 and 128 (and 16, 48 on the d64 kernel, 80 on the d128 one), t not a multiple of the
     * 64-row tile and over several tiles, padded sequences and an empty one.
     */
    static final int[][] CASES = {
            {1, 1, 1, 1, 16, 1},
            {2, 37, 2, 2, 64, 37, 20},
            {2, 70, 4, 2, 128, 70, 45},
            {1, 40, 14, 2, 64, 33},
            {1, 20, 7, 1, 128, 20},
            {2, 130, 2, 1, 64, 130, 100},
            {3, 9, 2, 1, 48, 9, 0, 4},
            {1, 67, 2, 1, 80, 66},
    };

    static List<String> orders() {
        return CudaParityTest.orders();
    }

    /** Inputs: Gaussians of standard deviation 2, so softmax rows are peaked as well as flat. */
    private static final double SIGMA = 2;

    @AfterAll
    static void closeAndReport() {
        SUITE.closeAndReport();
    }

    CudaAttentionBf16ParityTest() {
        super(SUITE);
    }

    @ParameterizedTest
    @MethodSource("orders")
    void forwardMatchesTheWidenedFp32Twin(String order) {
        begin(order, 41);
        for (int g : new int[]{8, 5}) { // 16-byte aligned slices (cp.async), then a 10-byte offset (plain loads)
            guard = g;
            for (int[] cs : CASES) {
                int b = cs[0], t = cs[1], heads = cs[2], kvHeads = cs[3], d = cs[4];
                int[] lengths = Arrays.copyOfRange(cs, 5, 5 + b);
                int width = (heads + 2 * kvHeads) * d, rows = b * t;
                Buf[] len = twin(lengths), qkv = twin(randomBf16(rows * width, SIGMA));
                Buf[] out = output(rows * heads * d), lse = output(b * heads * t);
                cpu.attentionBf16(out[0], lse[0], qkv[0], len[0], b, t, heads, kvHeads, d);
                gpu.attentionBf16(out[1], lse[1], qkv[1], len[1], b, t, heads, kvHeads, d);
                String what = Arrays.toString(cs) + " guard " + g;
                check("attention_forward_bf16", out, 1e-2, what);
                check("attention_forward_bf16.lse", lse, 1e-5, what);
            }
            end();
        }
    }

    /** Head dims that are not a multiple of 16 (or past 128) are refused on the host by both backends. */
    @ParameterizedTest
    @MethodSource("orders")
    void refusesHeadDimsOffTheMmaStep(String order) {
        begin(order, 42);
        guard = 8;
        for (int d : new int[]{8, 36, 144}) {
            Buf[] len = twin(new int[]{2}), qkv = twin(randomBf16(2 * 3 * d, SIGMA));
            Buf[] out = output(2 * d), lse = output(2);
            for (var k : List.of(cpu, gpu)) {
                int[] idx = {k == cpu ? 0 : 1};
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> k.attentionBf16(out[idx[0]], lse[idx[0]], qkv[idx[0]], len[idx[0]], 1, 2, 1, 1, d));
                assertTrue(e.getMessage().contains("attentionBf16") && e.getMessage().contains("headDim"), e.getMessage());
            }
        }
        end();
    }
}
