package io.hintgrpo.engine.cpu;

import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.Kernels;

/** Shared plumbing of the cpu op tests: buffers from arrays, NaN-poisoned outputs, results back. */
abstract class CpuOpsTest {
    final Kernels k = new CpuKernels();

    Buf up(float[] v) {
        Buf b = k.allocF32(v.length);
        k.upload(b, v);
        return b;
    }

    Buf upInts(int[] v) {
        Buf b = k.allocI32(v.length);
        k.upload(b, v);
        return b;
    }

    Buf poisoned(int n) {
        Buf b = k.allocF32(n);
        k.fill(b, Float.NaN);
        return b;
    }

    float[] down(Buf b) {
        float[] v = new float[(int) b.length];
        k.download(b, v);
        return v;
    }

    int[] downInts(Buf b) {
        int[] v = new int[(int) b.length];
        k.download(b, v);
        return v;
    }
}
