package io.hintgrpo.engine.cpu;

import io.hintgrpo.engine.Buf;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The GEMM form of attention (scores and weighted sums per head as matrix products over gathered
 * rows) against the plain per-row form, forward and backward: the same values within fp32
 * rounding (the sums run in another order), zeros past each length, and SIMD = scalar paths alike.
 */
class CpuAttentionTest extends CpuOpsTest {

    @AfterEach
    void vectorBackOn() {
        CpuGemm.forceScalar = false;
    }

    @ParameterizedTest(name = "scalar path {0}")
    @ValueSource(booleans = {false, true})
    void gemmFormEqualsTheRowAtATimeForm(boolean scalar) {
        CpuGemm.forceScalar = scalar;
        // (b, t, heads, kvHeads, headDim, lengths…): head dims on and off the SIMD width, padding, t not a multiple of 4
        int[][] cases = {{2, 37, 6, 2, 64, 37, 30}, {1, 21, 4, 4, 19, 18}, {3, 9, 2, 1, 128, 9, 4, 1}, {1, 6, 7, 1, 8, 6}};
        SplittableRandom rng = new SplittableRandom(17);
        for (int[] cs : cases) {
            int b = cs[0], t = cs[1], heads = cs[2], kvHeads = cs[3], d = cs[4];
            int[] lengths = Arrays.copyOfRange(cs, 5, 5 + b);
            int width = (heads + 2 * kvHeads) * d;
            float[] x = new float[b * t * width];
            for (int i = 0; i < x.length; i++) x[i] = (float) rng.nextDouble(-2, 2);
            Buf out = poisoned(b * t * heads * d), lse = poisoned(b * heads * t);
            k.attention(out, lse, up(x), upInts(lengths), b, t, heads, kvHeads, d);
            float[][] want = rowAtATime(x, lengths, b, t, heads, kvHeads, d);
            String what = Arrays.toString(cs);
            assertClose(want[0], down(out), what + " out");
            assertClose(want[1], down(lse), what + " lse");
            float[] dy = new float[b * t * heads * d];
            for (int i = 0; i < dy.length; i++) dy[i] = (float) rng.nextDouble(-2, 2);
            Buf dqkv = poisoned(x.length);
            k.attentionBackward(dqkv, up(dy), up(x), out, lse, upInts(lengths), b, t, heads, kvHeads, d);
            assertClose(backwardRowAtATime(x, dy, want[0], want[1], lengths, b, t, heads, kvHeads, d), down(dqkv), what + " dqkv");
        }
    }

    /** fp32 sums in another order: within 2e-5 of the value's scale; exact zeros stay exact (padding rows). */
    private static void assertClose(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++) {
            if (want[i] == 0f) assertEquals(0f, got[i], 1e-5f, what + " [" + i + "]");
            else assertEquals(want[i], got[i], 2e-5f * (1 + Math.abs(want[i])), what + " [" + i + "]");
        }
    }

    /** The backward as it was written before the row blocks: per query head, row, then key. */
    private static float[] backwardRowAtATime(float[] x, float[] dy, float[] o, float[] l, int[] len,
                                              int b, int t, int heads, int kvHeads, int headDim) {
        float[] dx = new float[x.length];
        int width = (heads + 2 * kvHeads) * headDim, group = heads / kvHeads;
        float scale = (float) (1.0 / Math.sqrt(headDim));
        for (int s = 0; s < b; s++)
            for (int g = 0; g < kvHeads; g++) {
                int kCol = (heads + g) * headDim, vCol = (heads + kvHeads + g) * headDim;
                for (int h = g * group; h < (g + 1) * group; h++)
                    for (int row = 0; row < len[s]; row++) {
                        int q = (s * t + row) * width + h * headDim;
                        int dyRow = (s * t + row) * heads * headDim + h * headDim;
                        float rowLse = l[(s * heads + h) * t + row];
                        float delta = CpuKernels.dot(dy, dyRow, o, dyRow, headDim);
                        for (int j = 0; j <= row; j++) {
                            int k = (s * t + j) * width + kCol, v = (s * t + j) * width + vCol;
                            float dp = CpuKernels.dot(dy, dyRow, x, v, headDim);
                            float p = (float) Math.exp(CpuKernels.dot(x, q, x, k, headDim) * scale - rowLse);
                            float ds = p * (dp - delta) * scale;
                            CpuKernels.axpy(ds, x, k, dx, q, headDim);
                            CpuKernels.axpy(ds, x, q, dx, k, headDim);
                            CpuKernels.axpy(p, dy, dyRow, dx, v, headDim);
                        }
                    }
            }
        return dx;
    }

    /** The forward as it was written before the row blocks, through the same dot and axpy. */
    private static float[][] rowAtATime(float[] x, int[] len, int b, int t, int heads, int kvHeads, int headDim) {
        float[] o = new float[b * t * heads * headDim], l = new float[b * heads * t];
        int width = (heads + 2 * kvHeads) * headDim, group = heads / kvHeads;
        float scale = (float) (1.0 / Math.sqrt(headDim));
        float[] scores = new float[t];
        for (int s = 0; s < b; s++)
            for (int h = 0; h < heads; h++) {
                int g = h / group;
                for (int row = 0; row < len[s]; row++) {
                    int orow = (s * t + row) * heads * headDim + h * headDim;
                    int q = (s * t + row) * width + h * headDim;
                    float max = Float.NEGATIVE_INFINITY;
                    for (int j = 0; j <= row; j++) {
                        scores[j] = CpuKernels.dot(x, q, x, (s * t + j) * width + (heads + g) * headDim, headDim) * scale;
                        max = Math.max(max, scores[j]);
                    }
                    float sum = 0f;
                    for (int j = 0; j <= row; j++) {
                        scores[j] = (float) Math.exp(scores[j] - max);
                        sum += scores[j];
                    }
                    float inv = 1f / sum;
                    for (int j = 0; j <= row; j++)
                        CpuKernels.axpy(scores[j] * inv, x, (s * t + j) * width + (heads + kvHeads + g) * headDim, o, orow, headDim);
                    l[(s * heads + h) * t + row] = max + (float) Math.log(sum);
                }
            }
        return new float[][]{o, l};
    }
}
