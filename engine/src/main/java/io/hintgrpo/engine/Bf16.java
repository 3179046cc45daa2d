package io.hintgrpo.engine;

/**
 * bfloat16 as a raw 16-bit pattern in a short: the top half of an IEEE fp32 (sign, 8 exponent
 * bits, 7 mantissa bits). The one definition of the engine's fp32 ↔ bf16 conversions: checkpoints
 * ({@code io.Safetensors}), the cpu backend's casts and, bit for bit, the CUDA cast kernels.
 */
public final class Bf16 {
    private Bf16() {}

    /** bf16 → fp32: the pattern followed by 16 zero bits, exact for every value (NaN payload kept). */
    public static float toFloat(short h) {
        return Float.intBitsToFloat((h & 0xFFFF) << 16);
    }

    /**
     * fp32 → bf16, round to nearest, ties to even: ±0, ±inf and subnormals as IEEE rounding gives
     * them, a value at or past the tie above the largest finite bf16 to ±inf. NaN stays NaN with its
     * sign and high payload bits, quiet bit set (so a payload only in the low bits cannot become inf).
     */
    public static short fromFloat(float x) {
        int bits = Float.floatToRawIntBits(x);
        if (Float.isNaN(x)) return (short) ((bits >>> 16) | 0x0040);
        // adding 0x7FFF + lsb carries into the upper half exactly when the dropped half is above a tie, or a tie with odd lsb
        int lsb = (bits >>> 16) & 1;
        return (short) ((bits + 0x7FFF + lsb) >>> 16);
    }
}
