package io.hintgrpo.engine.model;

import io.hintgrpo.engine.BadInputException;

import java.util.Locale;

/**
 * What the model's GEMMs multiply (see {@link Model#setPrecision}). Everything else is fp32 in
 * both: master weights, gradients, AdamW moments, norms, attention and softmax statistics, loss.
 */
public enum Precision {
    /** fp32 operands ({@code Kernels.gemm}): the reference, and the default. */
    FP32,
    /**
     * bf16 operands with fp32 accumulation ({@code Kernels.gemmBf16}): weight matrices read a bf16
     * copy of the fp32 master weights, activations and activation gradients are rounded to bf16
     * right before each GEMM.
     */
    BF16;

    /** "fp32" or "bf16" (any case); anything else is a {@link BadInputException} naming --precision. */
    public static Precision parse(String name) {
        for (Precision p : values()) if (p.name().equalsIgnoreCase(name)) return p;
        throw new BadInputException("--precision", "unknown precision \"" + name + "\"; available: fp32, bf16");
    }

    /** The lowercase name, as {@link #parse} takes it. */
    public String flag() {
        return name().toLowerCase(Locale.ROOT);
    }
}
