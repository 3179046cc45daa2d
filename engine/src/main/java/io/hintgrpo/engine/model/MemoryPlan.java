package io.hintgrpo.engine.model;

import io.hintgrpo.engine.model.LoraConfig.Target;

import java.util.ArrayList;
import java.util.List;

/**
 * Device memory of training and generation, component by component, computed from the sizes the
 * engine allocates (not estimated from parameter counts): weights, their bf16 copy, gradients,
 * optimizer moments, the LoRA adapter, the activation arena (with or without recompute), the LM
 * head's logits chunk, the bf16 operand scratch, the modality projectors' buffers, the KV cache
 * and decode buffers of generation, and the backend's workspace. What a phase needs at its peak is
 * the run's state (what lives for the whole run) plus the phase's own buffers; a test checks each
 * against the peak {@code DeviceMemory} measures on cuda-emu.
 *
 * <p>Only the CUDA backends' numbers are meant: the cpu backend's memory is the JVM heap.
 */
public final class MemoryPlan {
    private MemoryPlan() {}

    /**
     * The model and how it trains. lora null: full training. A LoRA run at {@link Precision#BF16}
     * has a {@link Model#frozenBf16} base (as the trainer loads it). training false: a model that
     * only generates (no gradients, no optimizer). logitChunkFloats: the backend's
     * ({@code Kernels.logitChunkFloats()}; 2^26 on cuda).
     */
    public record Setup(ModelConfig config, LoraConfig lora, Precision precision, boolean recompute, boolean training,
                        long logitChunkFloats) {
        public boolean frozenBf16() {
            return lora != null && precision == Precision.BF16;
        }

        long loraPerRow() {
            return lora == null ? 0 : Lora.scratchPerRow(config, lora);
        }
    }

    /** Feature rows per batch a modality projector maps (0: none), with the model's feature sizes. */
    public record Features(int audioRows, int visionRows) {
        public static final Features NONE = new Features(0, 0);
    }

    public record Item(String component, long bytes) {}

    public record Phase(String name, List<Item> items) {
        public long total() {
            long n = 0;
            for (Item i : items) n += i.bytes();
            return n;
        }
    }

    /** What lives for the whole run: weights (and their bf16 copy), with training the gradients, adapter and optimizer moments. */
    public static List<Item> state(Setup s) {
        ParamLayout layout = new ParamLayout(s.config());
        List<Item> out = new ArrayList<>();
        if (s.frozenBf16()) {
            out.add(new Item("weights (frozen base: matrices bf16, vectors fp32)", 2 * layout.decayEnd() + 4 * (layout.size() - layout.decayEnd())));
        } else {
            out.add(new Item("weights (fp32)", 4 * layout.size()));
            if (s.precision() == Precision.BF16) out.add(new Item("weights' bf16 copy", 2 * Math.max(1, layout.decayEnd())));
        }
        if (s.lora() != null) {
            long adapter = new ParamLayout(s.config(), s.lora()).size();
            out.add(new Item("LoRA adapter and projectors (fp32)", 4 * adapter));
            if (s.training()) {
                out.add(new Item("gradients (adapter and projectors)", 4 * adapter));
                out.add(new Item("AdamW moments (adapter and projectors)", 8 * adapter));
            }
        } else if (s.training()) {
            out.add(new Item("gradients", 4 * layout.size()));
            out.add(new Item("AdamW moments", 8 * layout.size()));
        }
        return out;
    }

    /**
     * One training step (forward, backward, AdamW) on b sequences of t positions: an SFT step, or a
     * GRPO update's minibatch. The state plus the activation arena, the logits chunk, the bf16
     * operand scratch, the projectors' buffers at their backward, the workspace.
     */
    public static Phase trainingStep(Setup s, int b, int t, Features f) {
        ModelConfig cfg = s.config();
        List<Item> out = new ArrayList<>(state(s));
        long m = (long) b * t;
        long arena = Activations.floats(cfg, b, t, s.loraPerRow(), s.recompute(), true, s.logitChunkFloats());
        long logits = (long) Activations.chunkRows(cfg, (int) m, s.logitChunkFloats()) * cfg.vocabSize();
        out.add(new Item("activations" + (s.recompute() ? " (recompute: layer inputs and one layer)" : ""),
                4 * (arena - logits) + 4 * Activations.ints(b, t)));
        out.add(new Item("LM-head logits chunk", 4 * logits));
        if (s.precision() == Precision.BF16) out.add(new Item("bf16 operand scratch", 2 * castScratch(s, m, true)));
        long projectors = projectorBytes(cfg, f, true);
        if (projectors > 0) out.add(new Item("modality projectors", projectors));
        out.add(new Item("workspace (norm reduction)", workspace(s)));
        return new Phase("training step, " + b + " × " + t, out);
    }

    /**
     * Generation of b sequences from prompts padded to promptT positions, up to maxNew tokens each:
     * the state, the KV cache, the prefill's activation arena and projector buffers, one decode
     * step's buffers, the bf16 scratch. GRPO's rollouts, the reference's and logp_old's forwards
     * are smaller than its update when the update's minibatch holds every rollout.
     */
    public static Phase generation(Setup s, int b, int promptT, int maxNew, Features f) {
        return generation(s, b, promptT, maxNew, f, castScratch(s, (long) b * promptT, false));
    }

    /** generation with the bf16 scratch at scratch elements (a GRPO run's is the size its update grew it to: it never shrinks). */
    private static Phase generation(Setup s, int b, int promptT, int maxNew, Features f, long scratch) {
        ModelConfig cfg = s.config();
        List<Item> out = new ArrayList<>(state(s));
        long maxT = (long) promptT + maxNew;
        out.add(new Item("KV cache (fp32)", 2L * cfg.numLayers() * b * cfg.numKvHeads() * maxT * cfg.headDim() * 4
                + 2L * 4 * b * promptT /* prefill's row targets */));
        out.add(new Item("prefill activations (forward only)", 4 * Activations.floats(cfg, b, promptT, s.loraPerRow(), false, false, s.logitChunkFloats())
                + 4 * Activations.ints(b, promptT)));
        long projectors = projectorBytes(cfg, f, false);
        if (projectors > 0) out.add(new Item("modality projectors (prefill)", projectors));
        int c = cfg.hiddenSize(), inter = cfg.intermediateSize();
        long stepFloats = (long) b * cfg.vocabSize() + 5L * b * c + 5L * b + (long) b * cfg.qkvDim() + (long) b * cfg.qDim()
                + 3L * b * inter + b * s.loraPerRow();
        int banned = (cfg.hasAudio() ? 1 : 0) + (cfg.hasVision() ? 1 : 0);
        long stepInts = Math.max(1, banned) + b /* seq ids */ + 3L * b /* inputs */ + 2L * b /* stream keys */ + b /* tokens */;
        out.add(new Item("decode step (logits, one layer's rows)", 4 * (stepFloats + stepInts)));
        if (s.precision() == Precision.BF16) out.add(new Item("bf16 operand scratch", 2 * scratch));
        return new Phase("generation, " + b + " × (" + promptT + " + " + maxNew + ")", out);
    }

    /**
     * The shape of a GRPO step: prompts × G rollouts of up to promptTokens + completionTokens
     * positions, updated in minibatches; klTerm: β > 0, so the update reads reference log-probs
     * (from a separate reference model without LoRA; with LoRA from the policy with its adapters off).
     */
    public record Grpo(int prompts, int groupSize, int promptTokens, int completionTokens, int minibatches, boolean klTerm) {
        int rollouts() {
            return prompts * groupSize;
        }

        int positions() {
            return promptTokens + completionTokens;
        }

        int minibatchRows() {
            return (rollouts() + minibatches - 1) / minibatches;
        }
    }

    /**
     * A GRPO step's two peaks: generating every rollout (the run's state, the reference model when
     * it is separate, the generation buffers) and the update (one minibatch's training step, every
     * rollout's per-token loss inputs, the reference with the activation arena of its forward).
     * Features: rows per rollout.
     */
    public static List<Phase> grpo(Setup s, Grpo g, Features perRollout) {
        Features batch = new Features(perRollout.audioRows() * g.rollouts(), perRollout.visionRows() * g.rollouts());
        Features minibatch = new Features(perRollout.audioRows() * g.minibatchRows(), perRollout.visionRows() * g.minibatchRows());
        List<Item> reference = new ArrayList<>();
        if (g.klTerm() && s.lora() == null) {
            for (Item i : state(new Setup(s.config(), null, s.precision(), false, false, s.logitChunkFloats())))
                reference.add(new Item("reference model: " + i.component(), i.bytes()));
            reference.add(new Item("reference model: activations of its forward", 4 * Activations.floats(s.config(), g.minibatchRows(),
                    g.positions(), 0, false, false, s.logitChunkFloats()) + 4 * Activations.ints(g.minibatchRows(), g.positions())));
        }
        long scratch = Math.max(castScratch(s, (long) g.rollouts() * g.promptTokens(), false),
                castScratch(s, (long) g.minibatchRows() * g.positions(), true));
        List<Item> genItems = new ArrayList<>(generation(s, g.rollouts(), g.promptTokens(), g.completionTokens(), batch, scratch).items());
        genItems.addAll(reference);
        Phase step = trainingStep(s, g.minibatchRows(), g.positions(), minibatch);
        List<Item> updateItems = new ArrayList<>(step.items());
        long perToken = g.klTerm() ? 7 : 6; // advantage, scale, logp_old, loss, clipped, kl (+ reference log-probs)
        updateItems.add(new Item("GRPO loss inputs (" + perToken + " floats per rollout position)", 4 * perToken * g.rollouts() * g.positions()));
        updateItems.addAll(reference);
        return List.of(new Phase("GRPO generation, " + g.rollouts() + " rollouts × (" + g.promptTokens() + " + " + g.completionTokens() + ")", genItems),
                new Phase("GRPO update, minibatch " + g.minibatchRows() + " × " + g.positions(), updateItems));
    }

    /**
     * bf16 elements of Model's three cast scratch slots at their largest over the GEMMs of a
     * forward (and backward) on m rows: slot 0 the a operands, slot 1 the b operands that are not
     * weights (TN's activations, LoRA's A and B), slot 2 the attention's q|k|v.
     */
    private static long castScratch(Setup s, long m, boolean backward) {
        ModelConfig cfg = s.config();
        long c = cfg.hiddenSize(), q = cfg.qDim(), qkv = cfg.qkvDim(), inter = cfg.intermediateSize();
        long rows = backward ? Activations.chunkRows(cfg, (int) m, s.logitChunkFloats()) : 0;
        long a = Math.max(Math.max(m * c, m * q), m * inter), b = 0;
        if (backward) {
            a = Math.max(a, Math.max(Math.max(m * qkv, 2 * m * inter), rows * cfg.vocabSize()));
            if (s.lora() == null) b = Math.max(Math.max(m * c, m * q), Math.max(m * inter, rows * c));
        }
        if (s.lora() != null) {
            long r = s.lora().rank();
            for (Target t : s.lora().targets()) {
                long in = t.in(cfg), out = t.out(cfg);
                a = Math.max(a, m * in);
                b = Math.max(b, Math.max(r * in, out * r));
                if (backward) {
                    a = Math.max(a, Math.max(m * out, r * m));
                    b = Math.max(b, Math.max(r * m, in * m));
                }
            }
        }
        long attention = Model.tensorCoreHeadDim(cfg.headDim()) ? m * qkv : 0;
        return Math.max(1, a) + b + attention;
    }

    /** The projectors' buffers for the batch's feature rows: forward ones, and with backward its temporaries at their peak. */
    private static long projectorBytes(ModelConfig cfg, Features f, boolean backward) {
        long bytes = 0;
        if (cfg.hasAudio() && f.audioRows() > 0) bytes += projector(cfg, f.audioRows(), cfg.audioFeatureSize());
        if (cfg.hasVision() && f.visionRows() > 0) bytes += projector(cfg, f.visionRows(), cfg.visionFeatureSize());
        // the backward's temporaries exist for one projector at a time: the larger one counts, once
        if (backward) {
            long audio = cfg.hasAudio() ? temporaries(cfg, f.audioRows()) : 0, vision = cfg.hasVision() ? temporaries(cfg, f.visionRows()) : 0;
            bytes += 4 * Math.max(audio, vision);
        }
        return bytes;
    }

    private static long projector(ModelConfig cfg, long n, long dim) {
        long c = cfg.hiddenSize();
        return 4 * (n * dim + n /* rows */ + n * c + (cfg.mlpProjector() ? 2 * n * c : 0));
    }

    private static long temporaries(ModelConfig cfg, long n) {
        long c = cfg.hiddenSize();
        return n * c + (cfg.mlpProjector() ? 2 * n * c : 0); // dout, and dact + dhidden
    }

    /** The cuda backend's sumSquares partials: one double per 2^k-element chunk of the trained set. */
    private static long workspace(Setup s) {
        long n = s.lora() != null ? new ParamLayout(s.config(), s.lora()).size() : new ParamLayout(s.config()).size();
        return io.hintgrpo.engine.cuda.CudaKernels.sumSquaresScratchBytes(n);
    }
}
