package io.hintgrpo.engine.cuda;

import java.util.SplittableRandom;

/** Shared by the emulator's tests: the test library (planted kernels) and copy helpers. */
final class EmuTesting {
    /** Built by native/build.sh from native/emu/tests/*.cu plus kernels/. */
    static final String TEST_LIBRARY = "/native/linux-x86_64/libhintgrpo_emu_test.so";

    final EmuDriver emu = new EmuDriver(TEST_LIBRARY);

    long upload(float[] v) {
        long p = emu.malloc(4L * v.length);
        emu.copyHostToDevice(p, v, 0, v.length);
        return p;
    }

    long upload(int[] v) {
        long p = emu.malloc(4L * v.length);
        emu.copyHostToDevice(p, v, 0, v.length);
        return p;
    }

    long upload(short[] v) {
        long p = emu.malloc(2L * v.length);
        emu.copyHostToDevice(p, v, 0, v.length);
        return p;
    }

    float[] floats(long p, int n) {
        float[] r = new float[n];
        emu.copyDeviceToHost(r, 0, p, n);
        return r;
    }

    int[] ints(long p, int n) {
        int[] r = new int[n];
        emu.copyDeviceToHost(r, 0, p, n);
        return r;
    }

    static float[] gaussian(long seed, int n) {
        SplittableRandom rng = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) rng.nextGaussian();
        return v;
    }
}
