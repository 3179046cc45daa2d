package io.hintgrpo.engine.cpu;

import io.hintgrpo.engine.Buf;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Prints one hash over the bits of the SIMD row kernels' results (cross-entropy forward and
 * backward, attention forward and backward, SwiGLU) on fixed inputs. {@link SoftmaxTest} runs it
 * in-process after the JIT has compiled everything and in a child JVM with -Xint: equal hashes
 * mean the result does not depend on when (or whether) a loop got compiled.
 */
public final class JitIndependenceMain {
    public static void main(String[] args) {
        System.out.println(Integer.toHexString(hash()));
    }

    static int hash() {
        CpuKernels k = new CpuKernels();
        SplittableRandom rng = new SplittableRandom(21);
        int h = 0;
        // cross-entropy over a row longer than one sum block, with a tail
        int m = 2, v = 1043;
        float[] z = gaussians(rng, m * v, 4);
        Buf zb = up(k, z), lp = k.allocF32(m), en = k.allocF32(m), lz = k.allocF32(m), tb = k.allocI32(m), wb = up(k, new float[]{0.5f, -2f});
        k.upload(tb, new int[]{3, 1040});
        k.crossEntropy(zb, lp, en, lz, tb, wb, m, v, 1.25f, true);
        h = mix(h, down(k, zb), down(k, lp), down(k, en), down(k, lz));
        // attention, one sequence with padding, GQA
        int b = 1, t = 23, heads = 4, kvHeads = 2, d = 32, width = (heads + 2 * kvHeads) * d;
        float[] x = gaussians(rng, b * t * width, 1.5);
        Buf qkv = up(k, x), out = k.allocF32((long) b * t * heads * d), lse = k.allocF32((long) b * heads * t), len = k.allocI32(1);
        k.upload(len, new int[]{20});
        k.attention(out, lse, qkv, len, b, t, heads, kvHeads, d);
        Buf dqkv = k.allocF32(x.length);
        k.attentionBackward(dqkv, up(k, gaussians(rng, b * t * heads * d, 1)), qkv, out, lse, len, b, t, heads, kvHeads, d);
        h = mix(h, down(k, out), down(k, lse), down(k, dqkv));
        // SwiGLU forward and backward
        int rows = 3, inter = 53;
        Buf gu = up(k, gaussians(rng, rows * 2 * inter, 5)), y = k.allocF32(rows * inter), dgu = k.allocF32(rows * 2 * inter);
        k.swiglu(y, gu, rows, inter);
        k.swigluBackward(dgu, up(k, gaussians(rng, rows * inter, 1)), gu, rows, inter);
        return mix(h, down(k, y), down(k, dgu));
    }

    private static float[] gaussians(SplittableRandom rng, int n, double sd) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (rng.nextGaussian() * sd);
        return x;
    }

    private static Buf up(CpuKernels k, float[] x) {
        Buf b = k.allocF32(x.length);
        k.upload(b, x);
        return b;
    }

    private static float[] down(CpuKernels k, Buf b) {
        float[] x = new float[(int) b.length];
        k.download(b, x);
        return x;
    }

    private static int mix(int h, float[]... parts) {
        for (float[] p : parts) h = 31 * h + Arrays.hashCode(p);
        return h;
    }
}
