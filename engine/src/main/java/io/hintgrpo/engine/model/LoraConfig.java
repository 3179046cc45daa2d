package io.hintgrpo.engine.model;

import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * A LoRA adapter's shape, with PEFT's meaning: rank r, lora_alpha (scaling = alpha / r) and the
 * target modules, each a Linear of every decoder layer that gets y += scaling · B·A·x beside
 * its frozen weight.
 */
public record LoraConfig(int rank, double alpha, Set<LoraConfig.Target> targets) {

    /**
     * The Linears an adapter can sit on, by their Hugging Face module names. Each knows its input
     * and output size, and where its output sits in the GEMM that computes it: q|k|v and gate|up
     * are one packed GEMM each (see {@link ParamLayout}), so an adapter's delta goes into a column
     * block of that output.
     */
    public enum Target {
        Q_PROJ("self_attn"), K_PROJ("self_attn"), V_PROJ("self_attn"), O_PROJ("self_attn"),
        GATE_PROJ("mlp"), UP_PROJ("mlp"), DOWN_PROJ("mlp");

        private final String block;

        Target(String block) {
            this.block = block;
        }

        /** The module name, as PEFT's target_modules writes it: q_proj, …, down_proj. */
        public String moduleName() {
            return name().toLowerCase(Locale.ROOT);
        }

        /** The module's path inside layer l: self_attn.q_proj, mlp.down_proj, … */
        public String path(int layer) {
            return "model.layers." + layer + "." + block + "." + moduleName();
        }

        public int in(ModelConfig c) {
            return switch (this) {
                case Q_PROJ, K_PROJ, V_PROJ, GATE_PROJ, UP_PROJ -> c.hiddenSize();
                case O_PROJ -> c.qDim();
                case DOWN_PROJ -> c.intermediateSize();
            };
        }

        public int out(ModelConfig c) {
            return switch (this) {
                case Q_PROJ -> c.qDim();
                case K_PROJ, V_PROJ -> c.kvDim();
                case O_PROJ, DOWN_PROJ -> c.hiddenSize();
                case GATE_PROJ, UP_PROJ -> c.intermediateSize();
            };
        }

        /** The first column of this module's output in the (packed) GEMM output that holds it. */
        int column(ModelConfig c) {
            return switch (this) {
                case Q_PROJ, O_PROJ, GATE_PROJ, DOWN_PROJ -> 0;
                case K_PROJ -> c.qDim();
                case V_PROJ -> c.qDim() + c.kvDim();
                case UP_PROJ -> c.intermediateSize();
            };
        }

        /** The row width of that GEMM output: qkvDim, hidden, or 2 · intermediate. */
        int packedWidth(ModelConfig c) {
            return switch (this) {
                case Q_PROJ, K_PROJ, V_PROJ -> c.qkvDim();
                case O_PROJ, DOWN_PROJ -> c.hiddenSize();
                case GATE_PROJ, UP_PROJ -> 2 * c.intermediateSize();
            };
        }

        /** The target of a module name (q_proj, …); an unknown name fails naming it and the known ones. */
        public static Target of(String moduleName) {
            for (Target t : values()) if (t.moduleName().equals(moduleName)) return t;
            List<String> known = new ArrayList<>();
            for (Target t : values()) known.add(t.moduleName());
            throw new IllegalArgumentException("unknown LoRA target module '" + moduleName + "' (known: " + String.join(", ", known) + ")");
        }
    }

    public LoraConfig {
        if (rank < 1) throw new IllegalArgumentException("LoRA rank must be ≥ 1, got " + rank);
        if (!(alpha > 0) || !Double.isFinite(alpha)) throw new IllegalArgumentException("LoRA alpha must be > 0, got " + alpha);
        if (targets == null || targets.isEmpty()) throw new IllegalArgumentException("LoRA needs at least one target module");
        targets = Collections.unmodifiableSet(EnumSet.copyOf(targets));
    }

    /** From module names (PEFT's target_modules), e.g. {@code of(16, 32, List.of("q_proj", "v_proj"))}. */
    public static LoraConfig of(int rank, double alpha, List<String> moduleNames) {
        Set<Target> ts = EnumSet.noneOf(Target.class);
        for (String n : moduleNames) ts.add(Target.of(n.trim()));
        return new LoraConfig(rank, alpha, ts);
    }

    /** alpha / r, the factor of B·A·x (PEFT's default, not rsLoRA's alpha / √r), as the fp32 the kernels take. */
    public float scaling() {
        return (float) (alpha / rank);
    }

    /** The target module names in layer order (q, k, v, o, gate, up, down). */
    public List<String> targetNames() {
        List<String> names = new ArrayList<>();
        for (Target t : targets) names.add(t.moduleName());
        return names;
    }
}
