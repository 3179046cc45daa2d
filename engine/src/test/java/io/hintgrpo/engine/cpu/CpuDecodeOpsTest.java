package io.hintgrpo.engine.cpu;

import io.hintgrpo.engine.Buf;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static io.hintgrpo.engine.Check.*;
import static org.junit.jupiter.api.Assertions.*;

/** KV cache, decode attention and sampling on the cpu backend, against the training attention and the stated semantics. */
class CpuDecodeOpsTest extends CpuOpsTest {

    /** Writing every row into the cache and attending from each position equals full causal attention. */
    @Test
    void cacheAttentionEqualsCausalAttentionRowByRow() {
        int b = 2, t = 7, heads = 6, kvHeads = 2, d = 4, maxT = 9;
        int width = (heads + 2 * kvHeads) * d;
        SplittableRandom rng = new SplittableRandom(1);
        int[] lengths = {7, 4};
        float[] qkv = randn(rng, b * t * width, 1);
        Buf out = k.allocF32((long) b * t * heads * d), lse = k.allocF32((long) b * heads * t);
        k.attention(out, lse, up(qkv), upInts(lengths), b, t, heads, kvHeads, d);
        float[] full = down(out);

        Buf kc = k.allocF32((long) b * kvHeads * maxT * d), vc = k.allocF32((long) b * kvHeads * maxT * d);
        k.fill(kc, Float.NaN);
        k.fill(vc, Float.NaN);
        int[] seq = new int[b * t], pos = new int[b * t];
        for (int r = 0; r < b * t; r++) { seq[r] = r / t; pos[r] = r % t < lengths[r / t] ? r % t : -1; }
        k.kvCacheWrite(kc, vc, up(qkv), upInts(seq), upInts(pos), b * t, maxT, heads, kvHeads, d);
        for (int i = 0; i < t; i++) {
            // query row i of each sequence (clamped to its length) against the first i+1 cached positions
            float[] rows = new float[b * width];
            int[] len = new int[b];
            for (int s = 0; s < b; s++) {
                int row = Math.min(i, lengths[s] - 1);
                System.arraycopy(qkv, (s * t + row) * width, rows, s * width, width);
                len[s] = row + 1;
            }
            Buf o = k.allocF32((long) b * heads * d);
            k.decodeAttention(o, up(rows), kc, vc, upInts(len), b, maxT, heads, kvHeads, d);
            float[] got = down(o);
            for (int s = 0; s < b; s++) {
                int row = Math.min(i, lengths[s] - 1);
                double[] want = new double[heads * d];
                for (int e = 0; e < want.length; e++) want[e] = full[(s * t + row) * heads * d + e];
                float[] mine = java.util.Arrays.copyOfRange(got, s * heads * d, (s + 1) * heads * d);
                assertClose("sequence " + s + " row " + row, mine, want, 1e-5);
            }
        }
    }

    /**
     * The SIMD decode attention (blocks of scored positions, outputs kept in registers) gives bit
     * for bit what a dot product per position, the softmax and an axpy per position give: head dims
     * with and without a scalar tail, context lengths across several score blocks.
     */
    @Test
    void decodeAttentionIsBitForBitThePerPositionForm() {
        SplittableRandom rng = new SplittableRandom(5);
        for (int d : new int[]{64, 24, 20, 128, 3}) {
            int b = 3, heads = 4, kvHeads = 2, maxT = 40, width = (heads + 2 * kvHeads) * d, group = heads / kvHeads;
            float[] rows = randn(rng, b * width, 1), kc = randn(rng, b * kvHeads * maxT * d, 1), vc = randn(rng, b * kvHeads * maxT * d, 1);
            int[] len = {40, 17, 1};
            Buf o = k.allocF32((long) b * heads * d);
            k.decodeAttention(o, up(rows), up(kc), up(vc), upInts(len), b, maxT, heads, kvHeads, d);
            float[] got = down(o);
            float scale = (float) (1.0 / Math.sqrt(d));
            for (int s = 0; s < b; s++) {
                for (int h = 0; h < heads; h++) {
                    int n = len[s], q = s * width + h * d, cache = ((s * kvHeads + h / group) * maxT) * d;
                    float[] scores = new float[n];
                    float max = Float.NEGATIVE_INFINITY;
                    for (int j = 0; j < n; j++) {
                        scores[j] = CpuKernels.dot(rows, q, kc, cache + j * d, d) * scale;
                        max = Math.max(max, scores[j]);
                    }
                    float sum = Softmax.expInPlace(scores, 0, n, 1f, max);
                    float[] want = new float[d];
                    for (int j = 0; j < n; j++) CpuKernels.axpy(scores[j] / sum, vc, cache + j * d, want, 0, d);
                    for (int i = 0; i < d; i++)
                        assertEquals(Float.floatToRawIntBits(want[i]), Float.floatToRawIntBits(got[(s * heads + h) * d + i]),
                                "d " + d + ", sequence " + s + ", head " + h + ", element " + i);
                }
            }
        }
    }

    /**
     * sampleRows: a row's token depends only on its key and its own step — the same row at another
     * position, beside other rows, or alone gives the same token — and equals sample's draw with
     * that key as the seed at stream 0.
     */
    @Test
    void perRowStreamsDoNotDependOnTheBatch() {
        int b = 6, v = 40;
        SplittableRandom rng = new SplittableRandom(3);
        float[] logits = randn(rng, b * v, 1.5);
        long[] keys = new long[b];
        int[] steps = new int[b];
        for (int r = 0; r < b; r++) {
            keys[r] = io.hintgrpo.engine.Kernels.streamKey(11, r);
            steps[r] = rng.nextInt(50);
        }
        Buf none = k.allocI32(1);
        for (float[] st : new float[][]{{1f, 0, 1f}, {0.8f, 7, 0.9f}}) {
            Buf tok = k.allocI32(b);
            k.sampleRows(tok, up(logits), b, v, st[0], (int) st[1], st[2], upInts(io.hintgrpo.engine.Kernels.keyWords(keys)), upInts(steps), none, 0);
            int[] all = downInts(tok);
            // reversed order: row r of the reversed batch is row b-1-r of the original
            float[] rev = new float[b * v];
            long[] revKeys = new long[b];
            int[] revSteps = new int[b];
            for (int r = 0; r < b; r++) {
                System.arraycopy(logits, (b - 1 - r) * v, rev, r * v, v);
                revKeys[r] = keys[b - 1 - r];
                revSteps[r] = steps[b - 1 - r];
            }
            k.sampleRows(tok, up(rev), b, v, st[0], (int) st[1], st[2], upInts(io.hintgrpo.engine.Kernels.keyWords(revKeys)), upInts(revSteps), none, 0);
            int[] reversed = downInts(tok);
            for (int r = 0; r < b; r++) {
                assertEquals(all[r], reversed[b - 1 - r], "row " + r + " moved to the other end");
                Buf one = k.allocI32(1);
                float[] row = java.util.Arrays.copyOfRange(logits, r * v, (r + 1) * v);
                k.sampleRows(one, up(row), 1, v, st[0], (int) st[1], st[2], upInts(io.hintgrpo.engine.Kernels.keyWords(new long[]{keys[r]})),
                        upInts(new int[]{steps[r]}), none, 0);
                assertEquals(all[r], downInts(one)[0], "row " + r + " alone");
                assertEquals(all[r], draw(row, st[0], (int) st[1], st[2], keys[r], steps[r]), "row " + r + " as sample with its key as the seed");
            }
        }
    }

    private int draw(float[] logits, float temperature, int topK, float topP, long seed, long step, int... banned) {
        Buf tok = k.allocI32(1);
        k.sample(tok, up(logits), 1, logits.length, temperature, topK, topP, seed, step, upInts(banned.length == 0 ? new int[1] : banned), banned.length);
        return downInts(tok)[0];
    }

    @Test
    void greedyTopKAndTopPFollowTheirDefinitions() {
        float[] z = {0.5f, 2f, -1f, 2f, 1.9f, 0f};
        assertEquals(1, draw(z, 0f, 0, 1f, 0, 0), "greedy: lowest index among the tied maxima");
        assertEquals(3, draw(z, 0f, 0, 1f, 0, 0, 1), "greedy skips a banned token");
        for (int step = 0; step < 50; step++) {
            int t = draw(z, 1f, 1, 1f, 3, step); // top-1 keeps both tied maxima
            assertTrue(t == 1 || t == 3, "top-1 with a tie drew " + t);
            int p = draw(z, 1f, 0, 0.05f, 3, step); // the tie group alone already passes p
            assertTrue(p == 1 || p == 3, "top-p drew " + p);
            int b = draw(z, 0.7f, 0, 1f, 3, step, 1, 3, 4);
            assertTrue(b != 1 && b != 3 && b != 4, "banned token drawn: " + b);
        }
        assertEquals(draw(z, 1.3f, 4, 0.9f, 11, 5), draw(z, 1.3f, 4, 0.9f, 11, 5), "same seed and step, same token");
    }

    @Test
    void drawsFollowTheTruncatedSoftmax() {
        float[] z = {1f, 0.2f, -0.5f, 1.4f, 0f, -2f};
        float temperature = 0.9f;
        int topK = 4; // survivors: indices 3, 0, 1, 4
        double[] p = new double[z.length];
        double total = 0;
        for (int j : new int[]{0, 1, 3, 4}) { p[j] = Math.exp(z[j] / temperature); total += p[j]; }
        int n = 20000;
        int[] count = new int[z.length];
        Buf logits = up(z), tok = k.allocI32(1), none = k.allocI32(1);
        for (int step = 0; step < n; step++) {
            k.sample(tok, logits, 1, z.length, temperature, topK, 1f, 42, step, none, 0);
            count[downInts(tok)[0]]++;
        }
        for (int j = 0; j < z.length; j++)
            assertEquals(p[j] / total, count[j] / (double) n, 0.015, "token " + j);
    }
}
