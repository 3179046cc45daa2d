package io.hintgrpo.engine.cpu;

import io.hintgrpo.engine.Bf16;
import io.hintgrpo.engine.Buf;
import org.junit.jupiter.api.Test;

import java.math.BigDecimal;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The cpu backend's fp32 ↔ bf16 casts bit for bit against a reference that rounds by comparing
 * exact distances (BigDecimal) to the two neighbouring bf16 values, not by the carry trick of
 * {@link Bf16#fromFloat}; the widening cast and the round trip over every bf16 pattern.
 */
class CpuCastTest {
    private final CpuKernels cpu = new CpuKernels();

    /** The magnitude of bf16 pattern b in [0, 0x7f80]; 0x7f80 (inf) stands for 2^128, one ulp past the largest finite. */
    static BigDecimal magnitude(int b) {
        return b == 0x7f80 ? new BigDecimal(2).pow(128) : new BigDecimal(Float.intBitsToFloat(b << 16));
    }

    /** Nearest bf16 of a non-NaN float, ties to the even pattern; ±inf and ±0 keep their sign. */
    static int reference(float x) {
        int bits = Float.floatToRawIntBits(x);
        int sign = (bits >>> 16) & 0x8000;
        if (Float.isInfinite(x)) return sign | 0x7f80;
        BigDecimal m = new BigDecimal(Math.abs(x));
        int lo = (bits & 0x7fffffff) >>> 16; // largest bf16 magnitude ≤ |x| (truncation)
        assertTrue(magnitude(lo).compareTo(m) <= 0 && magnitude(lo + 1).compareTo(m) > 0);
        int c = m.subtract(magnitude(lo)).compareTo(magnitude(lo + 1).subtract(m));
        int r = c < 0 ? lo : c > 0 ? lo + 1 : (lo & 1) == 0 ? lo : lo + 1;
        return sign | r;
    }

    /** Hand-checked cases: {float bits, bf16 bits}. */
    static final int[][] CASES = {
            {0x3F800000, 0x3F80}, // 1.0 exact
            {0x3F808000, 0x3F80}, // tie, even lsb: down
            {0x3F818000, 0x3F82}, // tie, odd lsb: up to even
            {0x3F807FFF, 0x3F80}, // just below a tie
            {0x3F808001, 0x3F81}, // just above a tie
            {0x3F817FFF, 0x3F81}, // just below a tie, odd
            {0x3F818001, 0x3F82}, // just above a tie, odd
            {0xBF818000, 0xBF82}, // negative tie, odd
            {0xBF808000, 0xBF80}, // negative tie, even
            {0xBF808001, 0xBF81}, // negative, just above a tie in magnitude
            {0x3FFFFFFF, 0x4000}, // carries into the exponent
            {0x00000000, 0x0000}, // +0
            {0x80000000, 0x8000}, // -0
            {0x00000001, 0x0000}, // smallest subnormal rounds to +0
            {0x80000001, 0x8000}, // ... and to -0
            {0x00008000, 0x0000}, // subnormal tie, even
            {0x00018000, 0x0002}, // subnormal tie, odd
            {0x00008001, 0x0001}, // subnormal just above a tie
            {0x00010000, 0x0001}, // smallest bf16 subnormal, exact
            {0x007FFFFF, 0x0080}, // largest float subnormal rounds up to the smallest normal
            {0x807F8000, 0x8080}, // negative subnormal tie, odd: up into the normals
            {0x7F7F0000, 0x7F7F}, // largest finite bf16, exact
            {0x7F7F7FFF, 0x7F7F}, // below its upper tie: stays finite
            {0x7F7F8000, 0x7F80}, // the tie above it (odd lsb): overflows to +inf
            {0x7F7FFFFF, 0x7F80}, // largest float: +inf
            {0xFF7FFFFF, 0xFF80}, // -largest float: -inf
            {0x7F7E8000, 0x7F7E}, // tie below the largest finite (even): stays
            {0x7F800000, 0x7F80}, // +inf
            {0xFF800000, 0xFF80}, // -inf
    };

    static final int[] NANS = {0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FFFFFFF, 0xFFC12345, 0x7FA00000};

    @Test
    void handCheckedCasesAndTheReferenceAgree() {
        for (int[] c : CASES) {
            float x = Float.intBitsToFloat(c[0]);
            assertEquals(c[1], reference(x), () -> String.format("reference of 0x%08X", c[0]));
            assertEquals(c[1], castOne(x), () -> String.format("castF32ToBf16 of 0x%08X", c[0]));
        }
    }

    @Test
    void nanStaysNanWithSignAndHighPayload() {
        for (int b : NANS) {
            int got = castOne(Float.intBitsToFloat(b));
            String what = String.format("0x%08X -> 0x%04X", b, got);
            assertTrue(Float.isNaN(Bf16.toFloat((short) got)), what + " is NaN");
            assertEquals((b >>> 16) | 0x0040, got, what + ": sign and high payload kept, quiet");
        }
    }

    @Test
    void randomBitsInEveryClassMatchTheReference() {
        SplittableRandom rng = new SplittableRandom(7);
        int n = 300_001; // many parallel tasks, odd
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            int bits = rng.nextInt();
            // a third of them land on or next to a tie
            if (i % 3 == 1) bits = (bits & 0xFFFF0000) | 0x8000 + rng.nextInt(-1, 2);
            x[i] = Float.intBitsToFloat(bits);
        }
        Buf src = cpu.allocF32(n), dst = cpu.allocBf16(n);
        cpu.upload(src, x);
        cpu.fill(dst, 3f);
        cpu.castF32ToBf16(dst, src, n);
        short[] got = new short[n];
        cpu.download(dst, got);
        for (int i = 0; i < n; i++) {
            if (Float.isNaN(x[i])) {
                assertEquals((Float.floatToRawIntBits(x[i]) >>> 16) | 0x0040, got[i] & 0xFFFF);
                continue;
            }
            int ii = i;
            assertEquals(reference(x[i]), got[i] & 0xFFFF,
                    () -> String.format("element %d: 0x%08X", ii, Float.floatToRawIntBits(x[ii])));
        }
    }

    @Test
    void everyBf16PatternWidensExactlyAndRoundTrips() {
        int n = 1 << 16;
        short[] all = new short[n];
        for (int h = 0; h < n; h++) all[h] = (short) h;
        Buf b = cpu.allocBf16(n), f = cpu.allocF32(n), back = cpu.allocBf16(n);
        cpu.upload(b, all);
        cpu.castBf16ToF32(f, b, n);
        cpu.castF32ToBf16(back, f, n);
        float[] wide = new float[n];
        short[] again = new short[n];
        cpu.download(f, wide);
        cpu.download(back, again);
        for (int h = 0; h < n; h++) {
            assertEquals(h << 16, Float.floatToRawIntBits(wide[h]), "widening is the pattern and 16 zero bits");
            boolean nan = (h & 0x7FFF) > 0x7F80;
            int want = nan ? h | 0x0040 : h; // a NaN stays NaN (quieted); everything else is identity
            assertEquals(want, again[h] & 0xFFFF, String.format("round trip of 0x%04X", h));
        }
    }

    @Test
    void slicesFillAndCopyLeaveTheirNeighboursAlone() {
        int n = 37;
        Buf whole = cpu.allocBf16(n + 4), src = cpu.allocF32(n);
        cpu.fill(whole, 1.5f);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = i - 18.3f;
        cpu.upload(src, x);
        cpu.castF32ToBf16(whole.slice(2, n), src, n);
        short[] got = new short[n + 4];
        cpu.download(whole, got);
        for (int i : new int[]{0, 1, n + 2, n + 3}) assertEquals((short) 0x3FC0, got[i], "neighbour " + i);
        for (int i = 0; i < n; i++) assertEquals(reference(x[i]), got[i + 2] & 0xFFFF);

        Buf copy = cpu.allocBf16(n);
        cpu.copy(copy, whole.slice(2, n));
        short[] c = new short[n];
        cpu.download(copy, c);
        for (int i = 0; i < n; i++) assertEquals(got[i + 2], c[i]);

        Buf wide = cpu.allocF32(n);
        cpu.castBf16ToF32(wide, copy, n);
        float[] w = new float[n];
        cpu.download(wide, w);
        for (int i = 0; i < n; i++) assertEquals(Bf16.toFloat(c[i]), w[i]);

        assertThrows(IllegalArgumentException.class, () -> cpu.copy(wide, copy), "copy needs the same type");
        assertThrows(IllegalArgumentException.class, () -> cpu.castF32ToBf16(copy, src, n + 1), "n past the buffers");
        assertThrows(IllegalArgumentException.class, () -> cpu.castF32ToBf16(src, copy, n), "types swapped");
    }

    private int castOne(float x) {
        Buf src = cpu.allocF32(1), dst = cpu.allocBf16(1);
        cpu.upload(src, new float[]{x});
        cpu.castF32ToBf16(dst, src, 1);
        short[] out = new short[1];
        cpu.download(dst, out);
        return out[0] & 0xFFFF;
    }
}
