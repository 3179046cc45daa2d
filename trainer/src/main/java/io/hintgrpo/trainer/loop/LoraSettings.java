package io.hintgrpo.trainer.loop;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.model.LoraConfig;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.Precision;
import io.hintgrpo.trainer.config.Setting;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * LoRA, SFT and GRPO alike (docs/lora.md): rank 0 trains every parameter; rank ≥ 1 freezes the
 * base and trains rank-r adapters on the target Linears of every layer plus the modality
 * projectors. The targets are kept in layer order, so the same set is one fingerprint however it
 * was written.
 */
public record LoraSettings(
        @Setting(value = "0", doc = "LoRA rank r: 0 trains every parameter; ≥ 1 freezes the base and trains rank-r adapters "
                + "on lora_targets plus the projectors (docs/lora.md)") int loraRank,
        @Setting(value = "16", doc = "LoRA alpha: an adapter adds (lora_alpha / lora_rank) · B·A·x") double loraAlpha,
        @Setting(value = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
                doc = "the Linears of every layer that get adapters (comma-separated; a list in a config file)") String loraTargets) {

    public LoraSettings {
        if (loraRank < 0) bad("lora_rank must be ≥ 0 (0 = no LoRA), got " + loraRank);
        if (!(loraAlpha > 0) || !Double.isFinite(loraAlpha)) bad("lora_alpha must be a positive number, got " + loraAlpha);
        List<String> names = new ArrayList<>();
        for (String n : loraTargets.split(",")) if (!n.isBlank()) names.add(n.strip());
        if (names.isEmpty()) bad("lora_targets names no module (e.g. q_proj,v_proj)");
        try {
            loraTargets = String.join(",", LoraConfig.of(1, 1, names).targetNames());
        } catch (IllegalArgumentException e) {
            bad("lora_targets: " + e.getMessage());
        }
    }

    public boolean enabled() {
        return loraRank > 0;
    }

    /**
     * Whether the base loads as a {@link Model#frozenBf16} base: with
     * LoRA and bf16 GEMMs its matrices are needed only in bf16, so no fp32 copy is kept.
     */
    public boolean frozenBf16Base(Precision precision) {
        return enabled() && precision == Precision.BF16;
    }

    /** The adapter's shape; only when {@link #enabled}. */
    public LoraConfig config() {
        if (!enabled()) throw new IllegalStateException("LoRA is off (lora_rank 0)");
        return LoraConfig.of(loraRank, loraAlpha, Arrays.asList(loraTargets.split(",")));
    }

    private static void bad(String reason) {
        throw new BadInputException("lora settings", reason);
    }
}
