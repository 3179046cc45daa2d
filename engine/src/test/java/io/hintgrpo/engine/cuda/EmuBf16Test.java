package io.hintgrpo.engine.cuda;

import org.junit.jupiter.api.Test;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * bf16 conversions of the emulator (native/emu/tests/bf16.cu) bit for bit against a Java reference
 * that rounds by comparing exact distances (BigDecimal), not by CUDA's bit trick: round to nearest
 * even with ties, NaN to the canonical 0x7fff as CUDA does, overflow to infinity, subnormals.
 */
class EmuBf16Test extends EmuTest {
    static final BigDecimal TWO_128 = new BigDecimal(2).pow(128);

    /** The value of bf16 bits b ≥ 0 (magnitude), with the one past the largest finite as 2^128. */
    static BigDecimal magnitude(int b) {
        return b >= 0x7f80 ? TWO_128 : new BigDecimal(Float.intBitsToFloat(b << 16));
    }

    /** Nearest bf16 to the exact value v (finite, not NaN), ties to even; mode: 0 nearest, 1 zero, 2 up, 3 down. */
    static int round(BigDecimal v, int mode) {
        int sign = v.signum() < 0 ? 0x8000 : 0;
        BigDecimal m = v.abs();
        int lo = 0;
        for (int step = 1 << 14; step > 0; step >>= 1) // largest magnitude ≤ m
            if (lo + step <= 0x7f80 && magnitude(lo + step).compareTo(m) <= 0) lo += step;
        if (lo >= 0x7f80) return sign | 0x7f80; // beyond 2^128: infinity
        int hi = lo + 1;
        boolean exact = magnitude(lo).compareTo(m) == 0;
        int r;
        if (exact) r = lo;
        else if (mode == 1) r = lo;
        else if (mode == 2) r = sign == 0 ? hi : lo;
        else if (mode == 3) r = sign == 0 ? lo : hi;
        else {
            int c = m.subtract(magnitude(lo)).compareTo(magnitude(hi).subtract(m));
            r = c < 0 ? lo : c > 0 ? hi : (lo & 1) == 0 ? lo : hi;
        }
        return sign | r;
    }

    static int expected(float f, int mode) {
        if (Float.isNaN(f)) return 0x7fff;
        if (Float.isInfinite(f)) return f > 0 ? 0x7f80 : 0xff80;
        if (f == 0) return Float.floatToRawIntBits(f) >>> 16; // keeps the sign of zero
        return round(new BigDecimal(f), mode);
    }

    static float[] inputs() {
        List<Integer> bits = new ArrayList<>();
        SplittableRandom rng = new SplittableRandom(31);
        for (int i = 0; i < 20000; i++) bits.add(rng.nextInt()); // every class: NaN, inf, subnormal, normal
        for (int hiBits : new int[] {0x3f80, 0x3f81, 0x4049, 0x0000, 0x0001, 0x007f, 0x0080, 0x7f7f, 0x7f7e, 0xbf80, 0xbf81, 0x8000, 0x8001})
            for (int low : new int[] {0x0000, 0x0001, 0x7fff, 0x8000, 0x8001, 0xffff})
                bits.add(hiBits << 16 | low); // ties (0x8000) on even and odd, just below and above
        for (int b : new int[] {0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x7f800001, 0x7fffffff, 0x80000000, 0x7f7fffff, 0x00000001})
            bits.add(b);
        float[] x = new float[bits.size()];
        for (int i = 0; i < x.length; i++) x[i] = Float.intBitsToFloat(bits.get(i));
        return x;
    }

    @Test
    void floatToBf16BitExactInEveryRoundingMode() {
        float[] x = inputs();
        int n = x.length;
        long px = t.upload(x), out = emu.malloc(16L * n), back = emu.malloc(4L * n);
        emu.launch("emu_f32_to_bf16", (n + 255) / 256, 1, 1, 256, 1, 1, 0, out, back, px, n);
        int[] r = t.ints(out, 4 * n);
        float[] b = t.floats(back, n);
        String[] modes = {"rn", "rz", "ru", "rd"};
        for (int i = 0; i < n; i++) {
            for (int mode = 0; mode < 4; mode++) {
                String what = modes[mode] + " of " + Integer.toHexString(Float.floatToRawIntBits(x[i]));
                assertEquals(expected(x[i], mode), r[4 * i + mode], what);
            }
            assertEquals(r[4 * i] << 16, Float.floatToRawIntBits(b[i]), "bf16 → float is exact");
        }
        for (long p : new long[] {px, out, back}) emu.free(p);
    }

    @Test
    void doubleToBf16RoundsOnce() {
        SplittableRandom rng = new SplittableRandom(32);
        int n = 4096;
        float[] hi = new float[n], lo = new float[n];
        for (int i = 0; i < n; i++) {
            if (i % 2 == 0) { // a bf16 tie plus a tiny nudge: rounding through float first would lose it
                int b = rng.nextInt(0x0080, 0x7f7f) | (rng.nextBoolean() ? 0x8000 : 0);
                hi[i] = Float.intBitsToFloat(b << 16 | 0x8000);
                lo[i] = (i % 4 == 0 ? 1 : -1) * Math.abs(hi[i]) * 0x1p-40f * (float) (1 + rng.nextDouble());
            } else {
                hi[i] = (float) (rng.nextGaussian() * Math.pow(2, rng.nextInt(-30, 30)));
                lo[i] = hi[i] * (float) (rng.nextGaussian() * 0x1p-20);
            }
        }
        long ph = t.upload(hi), pl = t.upload(lo), out = emu.malloc(4L * n), out2 = emu.malloc(4L * n);
        emu.launch("emu_f64_to_bf16", n / 256, 1, 1, 256, 1, 1, 0, out, out2, ph, pl, n);
        int[] r = t.ints(out, n), r2 = t.ints(out2, n);
        for (int i = 0; i < n; i++) {
            BigDecimal exact = new BigDecimal((double) hi[i]).add(new BigDecimal((double) lo[i]));
            int want = exact.signum() == 0 ? 0 : round(exact, 0);
            int ii = i;
            assertEquals(want, r[i], () -> "double " + exact + " (pair " + ii + ")");
            assertEquals(expected(hi[i], 0) | expected(lo[i], 0) << 16, r2[i], "__floats2bfloat162_rn packs the first value low");
        }
        for (long p : new long[] {ph, pl, out, out2}) emu.free(p);
    }
}
