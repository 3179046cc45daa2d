package io.hintgrpo.engine.cuda;

import io.hintgrpo.engine.Buf;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The bf16 tensor-core attention backward (kernels/attention_bf16.cu, {@code Kernels.attentionBackwardBf16})
 * against its cpu twin (q, k, v widened exactly, then the fp32 attentionBackward), in the style of
 * {@link CudaAttentionBf16ParityTest}: random non-zero bf16 q/k/v and fp32 dout, out and lse from
 * the cpu forward on the same bf16 qkv (so p = exp(s − lse) is a softmax), NaN-poisoned dqkv,
 * device buffers between guards, 16-byte aligned and misaligned (plain loads) slices.
 *
 * <p>Tolerance: ≤ 1e-2 relative (DESIGN's bf16 rule) on each of dq, dk and dv. The device rounds
 * dout, p and ds to bf16 as mma operands (2⁻⁹ relative each, uncorrelated); the cpu's sums are
 * fp32 in another order. Measured on the emulator: 2.8e-3 dq, 2.7e-3 dk, 2.2e-3 dv.
 */
class CudaAttentionBackwardBf16ParityTest extends GuardedTwins {

    private static final Suite SUITE = new Suite("CudaAttentionBackwardBf16ParityTest");

    /**
     * (b, t, heads, kvHeads, headDim, lengths…): GQA ratios 1, 2 and 7, head dims 64 and 128 (and
     * 16 on the d64 kernels, 80 on the d128 ones), t not a multiple of the 64-row tile and over
     * several tiles, padded sequences and an empty one.
     */
    static final int[][] CASES = {
            {1, 1, 1, 1, 16, 1},
            {2, 37, 2, 2, 64, 37, 20},
            {2, 70, 4, 2, 128, 70, 45},
            {1, 40, 14, 2, 64, 33},
            {1, 20, 7, 1, 128, 20},
            {2, 130, 2, 1, 64, 130, 100},
            {3, 9, 2, 1, 64, 9, 0, 4},
            {1, 67, 2, 1, 80, 66},
    };

    /** q, k, v: Gaussians of standard deviation 2 (peaked and flat softmax rows), as the forward's test. */
    private static final double SIGMA = 2;

    static List<String> orders() {
        return CudaParityTest.orders();
    }

    @AfterAll
    static void closeAndReport() {
        SUITE.closeAndReport();
    }

    CudaAttentionBackwardBf16ParityTest() {
        super(SUITE);
    }

    @ParameterizedTest
    @MethodSource("orders")
    void backwardMatchesTheWidenedFp32Twin(String order) {
        begin(order, 43);
        for (int gd : new int[]{8, 5}) { // 16-byte aligned slices (cp.async), then a 10-byte offset (plain loads)
            guard = gd;
            for (int[] cs : CASES) {
                int b = cs[0], t = cs[1], heads = cs[2], kvHeads = cs[3], d = cs[4];
                int[] lengths = Arrays.copyOfRange(cs, 5, 5 + b);
                int width = (heads + 2 * kvHeads) * d, rows = b * t;
                short[] qkvValues = randomBf16(rows * width, SIGMA);
                Buf[] len = twin(lengths), qkv = twin(qkvValues);
                // the forward's out and lse, from the cpu on the same bf16 qkv, as inputs to both backends
                Buf out0 = cpu.allocF32((long) rows * heads * d), lse0 = cpu.allocF32((long) b * heads * t);
                cpu.attentionBf16(out0, lse0, qkv[0], len[0], b, t, heads, kvHeads, d);
                Buf[] out = twin(read(out0)), lse = twin(read(lse0)), dout = twin(random(rows * heads * d));
                Buf[] dqkv = output(rows * width);
                cpu.attentionBackwardBf16(dqkv[0], dout[0], qkv[0], out[0], lse[0], len[0], b, t, heads, kvHeads, d);
                gpu.attentionBackwardBf16(dqkv[1], dout[1], qkv[1], out[1], lse[1], len[1], b, t, heads, kvHeads, d);
                String what = Arrays.toString(cs) + " guard " + gd;
                check("attention_backward_bf16", dqkv, 1e-2, what);
                float[] ref = read(dqkv[0]), got = read(dqkv[1]);
                int[][] parts = {{0, heads * d}, {heads * d, (heads + kvHeads) * d}, {(heads + kvHeads) * d, width}};
                String[] names = {"dq", "dk", "dv"};
                for (int p = 0; p < 3; p++) {
                    float[] r = columns(ref, rows, width, parts[p]), g = columns(got, rows, width, parts[p]);
                    double err = CudaParityTest.relativeError(g, r);
                    record("attention_backward_bf16." + names[p], err);
                    assertTrue(err <= 1e-2, names[p] + " " + what + ": relative error " + err);
                }
                for (int s = 0; s < b; s++) // padding rows are exact zeros
                    for (int i = lengths[s]; i < t; i++)
                        for (int c = 0; c < width; c++)
                            assertEquals(0f, got[(s * t + i) * width + c], "padding row " + i + " of sequence " + s + " " + what);
            }
            end();
        }
    }

    private static float[] columns(float[] m, int rows, int width, int[] range) {
        int n = range[1] - range[0];
        float[] v = new float[rows * n];
        for (int r = 0; r < rows; r++) System.arraycopy(m, r * width + range[0], v, r * n, n);
        return v;
    }

    /** Head dims that are not a multiple of 16 (or past 128) are refused on the host by both backends. */
    @ParameterizedTest
    @MethodSource("orders")
    void refusesHeadDimsOffTheMmaStep(String order) {
        begin(order, 44);
        guard = 8;
        for (int d : new int[]{8, 36, 144}) {
            Buf[] len = twin(new int[]{2}), qkv = twin(randomBf16(2 * 3 * d, SIGMA));
            Buf[] dqkv = output(2 * 3 * d), dout = twin(random(2 * d)), out = twin(random(2 * d)), lse = twin(random(2));
            for (var k : List.of(cpu, gpu)) {
                int x = k == cpu ? 0 : 1;
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> k.attentionBackwardBf16(dqkv[x], dout[x], qkv[x], out[x], lse[x], len[x], 1, 2, 1, 1, d));
                assertTrue(e.getMessage().contains("attentionBackwardBf16") && e.getMessage().contains("headDim"), e.getMessage());
            }
        }
        end();
    }
}
