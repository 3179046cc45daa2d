package io.hintgrpo.engine.model;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Where each parameter lives in the one contiguous parameter buffer, by its Hugging Face Qwen2
 * name. Gradients, AdamW moments and master weights use the same offsets. A LoRA adapter's
 * buffer has a layout of this kind too ({@link #ParamLayout(ModelConfig, LoraConfig)}).
 *
 * <p>Order is ours (a checkpoint is read by name): every matrix first, then every vector, so
 * weight decay (matrices only) is one optimizer pass over [0, decayEnd) and one without decay
 * after it; within a layer q|k|v weights are adjacent (one GEMM computes the packed qkv), their
 * biases too, and gate|up are adjacent (one GEMM computes both). Offsets are aligned to 16 floats.
 */
public final class ParamLayout {
    public record Entry(String name, long offset, int[] shape, boolean decay) {
        public long size() {
            long n = 1;
            for (int d : shape) n *= d;
            return n;
        }
    }

    private static final int ALIGN = 16;

    private final Map<String, Entry> byName = new LinkedHashMap<>();
    private final long decayEnd;
    private final long size;

    public ParamLayout(ModelConfig cfg) {
        int c = cfg.hiddenSize(), inter = cfg.intermediateSize();
        int q = cfg.qDim(), kv = cfg.kvDim();
        long[] cursor = {0};
        add(cursor, "model.embed_tokens.weight", true, cfg.vocabSize(), c);
        for (int l = 0; l < cfg.numLayers(); l++) {
            String p = "model.layers." + l + ".";
            // q, k, v weights back to back: rows of the packed [qkvDim, c] matrix
            add(cursor, p + "self_attn.q_proj.weight", false, q, c);
            add(cursor, p + "self_attn.k_proj.weight", false, kv, c);
            add(cursor, p + "self_attn.v_proj.weight", true, kv, c);
            add(cursor, p + "self_attn.o_proj.weight", true, c, q);
            add(cursor, p + "mlp.gate_proj.weight", false, inter, c);
            add(cursor, p + "mlp.up_proj.weight", true, inter, c);
            add(cursor, p + "mlp.down_proj.weight", true, c, inter);
        }
        if (!cfg.tieWordEmbeddings()) add(cursor, "lm_head.weight", true, cfg.vocabSize(), c);
        if (cfg.hasAudio()) projectorMatrices(cursor, cfg, "audio", cfg.audioFeatureSize());
        if (cfg.hasVision()) projectorMatrices(cursor, cfg, "vision", cfg.visionFeatureSize());
        decayEnd = cursor[0];
        for (int l = 0; l < cfg.numLayers(); l++) {
            String p = "model.layers." + l + ".";
            add(cursor, p + "self_attn.q_proj.bias", false, q);
            add(cursor, p + "self_attn.k_proj.bias", false, kv);
            add(cursor, p + "self_attn.v_proj.bias", true, kv);
            add(cursor, p + "input_layernorm.weight", true, c);
            add(cursor, p + "post_attention_layernorm.weight", true, c);
        }
        add(cursor, "model.norm.weight", true, c);
        if (cfg.hasAudio()) projectorVectors(cursor, cfg, "audio");
        if (cfg.hasVision()) projectorVectors(cursor, cfg, "vision");
        size = cursor[0];
        markDecay();
    }

    /**
     * The trainable set of a LoRA model, in a buffer of its own (see {@link Lora}): per layer and
     * target an A [r, in] and a B [out, r] under PEFT's names ({@link #loraA}, {@link #loraB}), and
     * the modality projectors under their base names (they train fully beside the adapters).
     * Matrices first, as in the base layout, so weight decay stays one pass over [0, decayEnd).
     */
    public ParamLayout(ModelConfig cfg, LoraConfig lora) {
        long[] cursor = {0};
        for (int l = 0; l < cfg.numLayers(); l++) {
            for (LoraConfig.Target t : lora.targets()) {
                add(cursor, loraA(l, t), true, lora.rank(), t.in(cfg));
                add(cursor, loraB(l, t), true, t.out(cfg), lora.rank());
            }
        }
        if (cfg.hasAudio()) projectorMatrices(cursor, cfg, "audio", cfg.audioFeatureSize());
        if (cfg.hasVision()) projectorMatrices(cursor, cfg, "vision", cfg.visionFeatureSize());
        decayEnd = cursor[0];
        if (cfg.hasAudio()) projectorVectors(cursor, cfg, "audio");
        if (cfg.hasVision()) projectorVectors(cursor, cfg, "vision");
        size = cursor[0];
        markDecay();
    }

    /** PEFT's key of the A matrix of target t in layer l: base_model.model.model.layers.{l}.self_attn.q_proj.lora_A.weight. */
    public static String loraA(int layer, LoraConfig.Target t) {
        return "base_model.model." + t.path(layer) + ".lora_A.weight";
    }

    public static String loraB(int layer, LoraConfig.Target t) {
        return "base_model.model." + t.path(layer) + ".lora_B.weight";
    }

    /** Weight decay on the matrices (they come first, before decayEnd), none on vectors. */
    private void markDecay() {
        for (Entry e : byName.values()) {
            boolean isMatrix = e.shape.length == 2;
            byName.put(e.name, new Entry(e.name, e.offset, e.shape, isMatrix));
        }
    }

    private void projectorMatrices(long[] cursor, ModelConfig cfg, String modality, int featureSize) {
        String p = "multi_modal_projector." + modality + ".";
        add(cursor, p + "linear_1.weight", true, cfg.hiddenSize(), featureSize);
        if (cfg.mlpProjector()) add(cursor, p + "linear_2.weight", true, cfg.hiddenSize(), cfg.hiddenSize());
    }

    private void projectorVectors(long[] cursor, ModelConfig cfg, String modality) {
        String p = "multi_modal_projector." + modality + ".";
        add(cursor, p + "linear_1.bias", true, cfg.hiddenSize());
        if (cfg.mlpProjector()) add(cursor, p + "linear_2.bias", true, cfg.hiddenSize());
    }

    /** Appends a tensor; alignEnd = false keeps the next tensor adjacent (packed q|k|v, gate|up). */
    private void add(long[] cursor, String name, boolean alignEnd, int... shape) {
        Entry e = new Entry(name, cursor[0], shape.clone(), false);
        byName.put(name, e);
        cursor[0] += e.size();
        if (alignEnd) cursor[0] = (cursor[0] + ALIGN - 1) / ALIGN * ALIGN;
    }

    public Entry get(String name) {
        Entry e = byName.get(name);
        if (e == null) throw new IllegalArgumentException("no parameter named " + name);
        return e;
    }

    public boolean has(String name) {
        return byName.containsKey(name);
    }

    public long offset(String name) {
        return get(name).offset;
    }

    public List<Entry> entries() {
        return Collections.unmodifiableList(new ArrayList<>(byName.values()));
    }

    /** Parameters with weight decay (the matrices) occupy [0, decayEnd). */
    public long decayEnd() {
        return decayEnd;
    }

    /** Total floats, padding included. */
    public long size() {
        return size;
    }

    /** Number of parameters, padding excluded. */
    public long count() {
        long n = 0;
        for (Entry e : byName.values()) n += e.size();
        return n;
    }
}
