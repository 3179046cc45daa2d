package io.hintgrpo.engine.model;

import io.hintgrpo.engine.Bf16;
import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.Kernels.Gemm;

import java.util.SplittableRandom;

import static io.hintgrpo.engine.model.LoraConfig.Target.*;

/**
 * The Qwen2-style multimodal decoder: its config, the one contiguous parameter buffer on a
 * backend, the gradients that mirror it, and the explicit forward and backward (no autograd:
 * the forward saves in the activation arena what the backward reads).
 *
 * <p>Precision ({@link #setPrecision}): every GEMM goes through {@link #gemm}, the one place that
 * runs it on fp32 or bf16 operands, and the training forward's attention picks its kernel in one
 * place too; the rest of the forward and backward is the same code in both.
 *
 * <p>LoRA ({@link #attachLora}): adapters on the q/k/v/o/gate/up/down Linears and a trainable copy
 * of the projectors, in a {@link Lora} buffer of their own; the base is frozen. The forward adds
 * each adapter's delta beside its base GEMM (training and decode alike), the backward writes only
 * the adapter's gradients, and {@link #trainable()} hands the adapter to the optimizer.
 *
 * <p>A frozen bf16 base ({@link #frozenBf16}): the LoRA way to a large model on one card. The
 * matrices exist only as bf16 (no fp32 copy, no gradients, no optimizer state), the vectors
 * (biases, norm weights) stay fp32, and the GEMMs run in {@link Precision#BF16}; only an attached
 * adapter trains. Merging it happens on the host, tensor by tensor ({@link #downloadMerged}).
 */
public final class Model implements Trainable, AutoCloseable {
    /** Standard deviation of the normal initialisation of matrices (HF initializer_range). */
    public static final double INIT_STD = 0.02;

    public final ModelConfig config;
    public final ParamLayout layout;
    public final Kernels kernels;
    /**
     * The fp32 parameters in {@link #layout}; in a frozen bf16 base only the vectors, [decayEnd,
     * size) at offset − decayEnd (the matrices live in the bf16 copy). Read tensors through {@link #param}.
     */
    public final Buf params;
    // a frozen bf16 base: paramsBf16 is the only copy of the matrices, precision stays BF16, nothing of the base trains
    private final boolean frozenBf16;
    private Buf grads;
    private Activations acts;
    private int forwardPasses; // counts forwards, so a loss head knows when its activations were overwritten
    private Precision precision = Precision.FP32;
    // BF16 only: the matrices [0, decayEnd) of params as bf16, recast lazily after params change
    private Buf paramsBf16;
    private boolean paramsBf16Stale;
    // BF16 only: bf16 copies of a GEMM's activation operands (a, and b of TN) and of attention's qkv, grown on demand
    private final Buf[] castScratch = new Buf[3];
    private boolean recompute; // keep only each layer's input; the backward recomputes the rest
    private Lora lora; // null: no adapter, every parameter trains
    private boolean adaptersEnabled = true;

    /** Allocates zeroed parameters; call {@link #initialize} or load a checkpoint into them. */
    public Model(Kernels kernels, ModelConfig config) {
        this(kernels, config, false);
    }

    private Model(Kernels kernels, ModelConfig config, boolean frozenBf16) {
        this.config = config;
        this.layout = new ParamLayout(config);
        this.kernels = kernels;
        this.frozenBf16 = frozenBf16;
        this.params = kernels.allocF32(frozenBf16 ? Math.max(1, layout.size() - layout.decayEnd()) : layout.size());
        kernels.fill(params, 0f);
        if (frozenBf16) {
            precision = Precision.BF16;
            paramsBf16 = kernels.allocBf16(Math.max(1, layout.decayEnd()));
            kernels.fill(paramsBf16, 0f);
        }
    }

    /**
     * A model whose base is frozen and stored in bf16 (zeroed; load a checkpoint into it): the
     * matrices [0, decayEnd) only as bf16 (2 bytes each instead of 4 for the fp32 master and 2 more
     * for its bf16 copy), the vectors fp32, every GEMM in {@link Precision#BF16}. It trains only
     * through a LoRA adapter ({@link #attachLora}); {@link #grads()}, {@link #mergeLora} and
     * {@code setPrecision(FP32)} are refused. {@link #upload} rounds matrices to bf16 (round to nearest even).
     */
    public static Model frozenBf16(Kernels kernels, ModelConfig config) {
        return new Model(kernels, config, true);
    }

    /** Whether this is a {@link #frozenBf16} base. */
    public boolean isFrozenBf16() {
        return frozenBf16;
    }

    /** Every tensor from the seed: matrices N(0, 0.02), biases 0, norm weights 1. */
    public void initialize(long seed) {
        for (ParamLayout.Entry e : layout.entries()) initialize(e.name(), seed);
    }

    /** One tensor from the seed; the values depend only on (seed, name), never on the others. */
    public void initialize(String name, long seed) {
        upload(name, initialValues(layout.get(name), seed));
    }

    /**
     * The values {@link #initialize} gives one tensor, without a model: init writes a model too
     * large for memory tensor by tensor from these.
     */
    public static float[] initialValues(ParamLayout.Entry e, long seed) {
        String name = e.name();
        float[] v = new float[Math.toIntExact(e.size())];
        if (name.endsWith("layernorm.weight") || name.equals("model.norm.weight")) {
            java.util.Arrays.fill(v, 1f);
        } else if (e.shape().length == 2) {
            SplittableRandom rng = initRandom(seed, name);
            for (int i = 0; i < v.length; i += 2) {
                // Box-Muller: two normals per pair of uniforms
                double u1 = 1.0 - rng.nextDouble(), u2 = rng.nextDouble();
                double r = Math.sqrt(-2.0 * Math.log(u1)) * INIT_STD;
                v[i] = (float) (r * Math.cos(2 * Math.PI * u2));
                if (i + 1 < v.length) v[i + 1] = (float) (r * Math.sin(2 * Math.PI * u2));
            }
        }
        return v;
    }

    /** The random stream of one tensor's initial values: a function of (seed, name) only. */
    static SplittableRandom initRandom(long seed, String name) {
        return new SplittableRandom(seed * 0x9E3779B97F4A7C15L + name.hashCode());
    }

    /** One tensor where the forward reads it: an F32 slice of {@link #params}, or in a frozen bf16 base a matrix's BF16 slice. */
    public Buf param(String name) {
        ParamLayout.Entry e = layout.get(name);
        return stored(e.offset(), e.size());
    }

    /** The parameters [offset, offset + n) of the layout, which never straddle the matrices' end. */
    private Buf stored(long offset, long n) {
        if (!frozenBf16) return params.slice(offset, n);
        return offset < layout.decayEnd() ? paramsBf16.slice(offset, n) : params.slice(offset - layout.decayEnd(), n);
    }

    /** One tensor's values (a frozen bf16 base's matrices widened exactly). */
    public float[] download(String name) {
        Buf b = param(name);
        float[] v = new float[Math.toIntExact(b.length)];
        if (b.type == Buf.Type.BF16) {
            short[] h = new short[v.length];
            kernels.download(b, h);
            for (int i = 0; i < v.length; i++) v[i] = Bf16.toFloat(h[i]);
        } else {
            kernels.download(b, v);
        }
        return v;
    }

    /** Writes one tensor (a frozen bf16 base's matrices rounded to bf16). */
    public void upload(String name, float[] values) {
        Buf b = param(name);
        if (values.length != b.length)
            throw new IllegalArgumentException(name + ": expected " + b.length + " values, got " + values.length);
        if (b.type == Buf.Type.BF16) {
            short[] h = new short[values.length];
            for (int i = 0; i < h.length; i++) h[i] = Bf16.fromFloat(values[i]);
            kernels.upload(b, h);
        } else {
            kernels.upload(b, values);
        }
        paramsChanged();
    }

    /**
     * One tensor of base + the attached adapter merged, computed on the host (as {@link #download}
     * without an adapter): a target's weight gets s·B·A added, a projector tensor is the adapter's
     * trained copy. What {@link #mergeLora} writes and a merged model directory holds.
     */
    public float[] downloadMerged(String name) {
        float[] base = download(name);
        return lora == null ? base : lora.merged(name, base);
    }

    // ---- precision ----

    public Precision precision() {
        return precision;
    }

    /**
     * FP32 (the default): every GEMM on fp32 operands, results bit-identical to a model without
     * this setting. BF16: GEMMs on bf16 operands with fp32 accumulation ({@link Kernels#gemmBf16}),
     * and the training forward's attention on bf16 q/k/v where the head dim is a multiple of 16
     * ({@link Kernels#attentionBf16}, its backward {@link Kernels#attentionBackwardBf16} on the same bf16 q/k/v); master weights, gradients, AdamW state, norms, softmax and loss stay fp32, and checkpoints
     * save the fp32 master weights. May be switched at any time between steps.
     */
    public void setPrecision(Precision p) {
        if (p == precision) return;
        if (frozenBf16) throw new IllegalStateException("a frozen bf16 base computes in bf16 only (its matrices have no fp32 copy)");
        precision = p;
        if (p == Precision.BF16) {
            paramsBf16 = kernels.allocBf16(Math.max(1, layout.decayEnd()));
            paramsBf16Stale = true;
        } else {
            freeBf16();
        }
    }

    /**
     * Marks the bf16 weight copy stale after the fp32 master weights changed; the next bf16 GEMM
     * recasts it (one cast pass over the matrices). {@link #upload} and {@link AdamW#step} call it;
     * code that writes {@link #params} through the kernels directly must too.
     */
    @Override
    public void paramsChanged() {
        paramsBf16Stale = !frozenBf16; // a frozen base's bf16 matrices are the weights themselves
        dropPrepared();
    }

    // ---- activation recompute ----

    /**
     * Recompute (off by default): the training forward keeps only each layer's input; the backward
     * runs each layer's forward again just before that layer's backward. Saved activations shrink
     * from layers × (one layer's) to one layer's, for one more forward per step; the kernels are
     * deterministic, so gradients are bit for bit those without it. May change between steps.
     */
    public void setRecompute(boolean recompute) {
        this.recompute = recompute;
    }

    public boolean recompute() {
        return recompute;
    }

    // ---- prepared weights (generation) ----

    /** Weight offset → its arrangement for {@link Kernels#gemmPrepared}, while {@link #holdWeights} holds; null otherwise. */
    private java.util.Map<Long, Buf> prepared;
    private int weightHolds;

    /**
     * Generation says the weights stay fixed until {@link #releaseWeights}: NT GEMMs on a weight
     * then use its prepared arrangement, made once on first use ({@link Kernels#prepareWeight}; the
     * cpu backend packs it, so a decode step no longer repacks every weight per call). Holds nest
     * (a server's decode batches overlap); {@link #paramsChanged} drops the arrangements anyway.
     * Costs a second copy of the weights used while held.
     */
    public void holdWeights() {
        if (weightHolds++ == 0) prepared = new java.util.HashMap<>();
    }

    public void releaseWeights() {
        if (weightHolds == 0) throw new IllegalStateException("releaseWeights without holdWeights");
        if (--weightHolds == 0) {
            dropPrepared();
            prepared = null;
        }
    }

    private void dropPrepared() {
        if (prepared == null) return;
        for (Buf p : prepared.values()) if (p != null) kernels.free(p);
        prepared.clear();
    }

    /** The prepared arrangement of weight b [n, k], made on first use; null where the backend prepares none. */
    private Buf preparedWeight(Buf b, int n, int k) {
        Long at = b.offset;
        Buf p = prepared.get(at);
        if (p == null && !prepared.containsKey(at)) {
            p = kernels.prepareWeight(b, n, k);
            prepared.put(at, p); // null too: asked once
        }
        return p;
    }

    /**
     * out = op(a)·op(b) (+ bias), written or accumulated, as {@link Kernels#gemm}: every GEMM of
     * the model (and of {@link Generator}) goes through here, and this is the one place that
     * decides its precision. BF16: a weight matrix (a slice of the parameter matrices) is read from
     * the bf16 copy at the same offset; any other operand (activations, activation gradients) is
     * cast to bf16 just before the GEMM — one cast per operand per GEMM, so an operand shared by
     * two GEMMs (dOut of the input and weight gradients) is cast twice: a first form, simple and
     * correct.
     */
    void gemm(Gemm layout, Buf out, Buf a, Buf b, Buf bias, int m, int n, int k, boolean accumulate) {
        if (precision == Precision.FP32) {
            // a weight (a slice of the parameter matrices) while generation holds them: its prepared form
            Buf p = prepared != null && layout == Gemm.NT && b.memory == params.memory && b.length == (long) n * k
                    ? preparedWeight(b, n, k) : null;
            if (p != null) kernels.gemmPrepared(out, a, p, bias, m, n, k, accumulate);
            else kernels.gemm(layout, out, a, b, bias, m, n, k, accumulate);
            return;
        }
        kernels.gemmBf16(layout, out, bf16(a, (long) m * k, 0), bf16(b, (long) n * k, 1), bias, m, n, k, accumulate);
    }

    /**
     * The training forward's attention (out and lse as {@link Kernels#attention}). BF16 with a head
     * dim that is a multiple of 16 ({@link #tensorCoreAttention}): q, k and v are cast to bf16
     * (scratch slot 2) and run through {@link Kernels#attentionBf16} (tensor cores on cuda); other
     * head dims stay on the fp32 kernel.
     */
    private void attention(Buf out, Buf lse, Buf qkv, Buf lengths, int b, int t, int heads, int kvHeads, int d) {
        if (!tensorCoreAttention(d)) {
            kernels.attention(out, lse, qkv, lengths, b, t, heads, kvHeads, d);
            return;
        }
        Buf q16 = bf16(qkv, (long) b * t * (heads + 2 * kvHeads) * d, 2);
        kernels.attentionBf16(out, lse, q16, lengths, b, t, heads, kvHeads, d);
    }

    /**
     * The backward of {@link #attention}, on the same operands: where the forward ran on bf16 q, k, v,
     * the saved fp32 qkv is cast again (the same round-to-nearest-even, so the same bf16 values) and
     * {@link Kernels#attentionBackwardBf16} recomputes p from them; else the fp32
     * {@link Kernels#attentionBackward}.
     */
    private void attentionBackward(Buf dqkv, Buf dout, Buf qkv, Buf out, Buf lse, Buf lengths,
                                   int b, int t, int heads, int kvHeads, int d) {
        if (!tensorCoreAttention(d)) {
            kernels.attentionBackward(dqkv, dout, qkv, out, lse, lengths, b, t, heads, kvHeads, d);
            return;
        }
        Buf q16 = bf16(qkv, (long) b * t * (heads + 2 * kvHeads) * d, 2);
        kernels.attentionBackwardBf16(dqkv, dout, q16, out, lse, lengths, b, t, heads, kvHeads, d);
    }

    /** BF16 with a head dim the tensor-core attention kernels take. */
    private boolean tensorCoreAttention(int d) {
        return precision == Precision.BF16 && tensorCoreHeadDim(d);
    }

    /** Head dims the bf16 tensor-core attention kernels take: multiples of 16, at most 128 (others stay fp32). */
    static boolean tensorCoreHeadDim(int d) {
        return d % 16 == 0 && d <= 128;
    }

    /** The first n elements of x as bf16: the weight copy when x is a parameter matrix, else a cast into scratch. */
    private Buf bf16(Buf x, long n, int slot) {
        if (x.type == Buf.Type.BF16) return x.slice(0, n); // a frozen bf16 base's matrix
        if (x.memory == params.memory) { // a slice of the parameter allocation: a weight (grads and activations live elsewhere)
            long at = x.offset - params.offset;
            if (at < 0 || at + n > layout.decayEnd())
                throw new IllegalStateException("a GEMM operand outside the parameter matrices: " + x);
            if (paramsBf16Stale) {
                kernels.castF32ToBf16(paramsBf16, params, layout.decayEnd());
                paramsBf16Stale = false;
            }
            return paramsBf16.slice(at, n);
        }
        Buf s = castScratch[slot];
        if (s == null || s.length < n) {
            if (s != null) kernels.free(s);
            s = castScratch[slot] = kernels.allocBf16(Math.max(1, n));
        }
        Buf dst = s.slice(0, n);
        kernels.castF32ToBf16(dst, x, n);
        return dst;
    }

    /** Frees the bf16 weight copy (never a frozen base's matrices before close) and the cast scratch. */
    private void freeBf16() {
        if (paramsBf16 != null && !frozenBf16) {
            kernels.free(paramsBf16);
            paramsBf16 = null;
        }
        for (int i = 0; i < castScratch.length; i++) {
            if (castScratch[i] != null) kernels.free(castScratch[i]);
            castScratch[i] = null;
        }
    }

    /** The LM head matrix: lm_head.weight, or the embedding when tied. */
    public String lmHeadName() {
        return config.tieWordEmbeddings() ? "model.embed_tokens.weight" : "lm_head.weight";
    }

    // ---- the trainable set, LoRA ----

    // the model as the trainable set of full training: its fields layout and params
    @Override
    public ParamLayout layout() {
        return layout;
    }

    @Override
    public Buf params() {
        return params;
    }

    /** What training updates: this model's every parameter, or with LoRA attached the adapter (adapters and projectors). */
    public Trainable trainable() {
        if (lora == null && frozenBf16) throw new IllegalStateException("a frozen bf16 base trains only through a LoRA adapter (attachLora)");
        return lora != null ? lora : this;
    }

    /**
     * Freezes the base and attaches a LoRA adapter (see {@link Lora}): A from the seed, B = 0 (so
     * the model computes what it did), the projectors copied into the adapter's buffer where they
     * train. Any base gradient buffer is freed; from here {@link #forwardBackward} and
     * {@link #lossHead} write only {@link Lora#grads()}, and {@link #grads()} refuses. Adapters start enabled.
     */
    public Lora attachLora(LoraConfig config, long seed) {
        if (lora != null) throw new IllegalStateException("a LoRA adapter is already attached (merge or detach it first)");
        lora = new Lora(this, config, seed);
        adaptersEnabled = true;
        if (grads != null) kernels.free(grads);
        grads = null;
        return lora;
    }

    /** The attached adapter, or null. */
    public Lora lora() {
        return lora;
    }

    /**
     * With adapters off the model is exactly its base (the projectors too are read from the base
     * buffer): the starting model, e.g. GRPO's reference policy without a second model. Forwards
     * only: a backward with adapters off is refused. A decode already running (a captured graph) keeps what it started with.
     */
    public void setAdaptersEnabled(boolean enabled) {
        if (lora == null) throw new IllegalStateException("no LoRA adapter attached");
        adaptersEnabled = enabled;
    }

    public boolean adaptersEnabled() {
        return lora != null && adaptersEnabled;
    }

    /**
     * Folds the adapter into the base, W += (alpha/r)·B·A per target (fp32 on the host, {@link
     * #downloadMerged}), copies the trained projectors back into the base, and detaches the
     * adapter: the model then computes what base + adapter did, and trains fully again. Refused
     * on a frozen bf16 base (rounding the merge into bf16 would lose most of the adapter's
     * update): write its merged tensors with {@code ModelDir.saveMerged} instead.
     */
    public void mergeLora() {
        if (lora == null) throw new IllegalStateException("no LoRA adapter attached");
        if (frozenBf16)
            throw new IllegalStateException("a frozen bf16 base cannot hold the merged weights; save them merged (ModelDir.saveMerged)");
        for (String name : lora.mergedNames()) upload(name, downloadMerged(name));
        detachLora();
    }

    /** Drops the adapter unmerged: the model is its base again. */
    public void detachLora() {
        if (lora == null) throw new IllegalStateException("no LoRA adapter attached");
        lora.free();
        lora = null;
        adaptersEnabled = true;
    }

    /** A projector tensor as the forward reads it: the adapter's trainable copy while adapters are on, else the base's. */
    private Buf projectorParam(String name) {
        return adaptersEnabled() ? lora.param(name) : param(name);
    }

    private Buf projectorGrad(String name) {
        return lora != null ? lora.grad(name) : grad(name);
    }

    // ---- gradients ----

    /** Whether the base gradient buffer exists (it never does while LoRA is attached). */
    public boolean hasGrads() {
        return grads != null;
    }

    /**
     * The gradient buffer (same layout as params), allocated zeroed on first use. Refused while
     * LoRA is attached: the base is frozen and has none ({@link Lora#grads()} instead).
     */
    @Override
    public Buf grads() {
        if (frozenBf16) throw new IllegalStateException("a frozen bf16 base has no gradients (it trains only through a LoRA adapter)");
        if (lora != null) throw new IllegalStateException("the base is frozen while LoRA is attached: its gradients are lora().grads()");
        if (grads == null) {
            grads = kernels.allocF32(layout.size());
            kernels.fill(grads, 0f);
        }
        return grads;
    }

    /** Zeroes the trainable set's gradients: every parameter's, or with LoRA the adapter's. */
    public void zeroGrad() {
        kernels.fill(trainable().grads(), 0f);
    }

    public float[] downloadGrad(String name) {
        ParamLayout.Entry e = layout.get(name);
        float[] v = new float[Math.toIntExact(e.size())];
        kernels.download(grads().slice(e.offset(), e.size()), v);
        return v;
    }

    private Buf grad(String name) {
        ParamLayout.Entry e = layout.get(name);
        return grads().slice(e.offset(), e.size());
    }

    // ---- forward / backward ----

    /** Per-row results of a forward: log-prob of each row's target and the entropy of its distribution. */
    public record ForwardResult(Batch batch, double loss, float[] logprobs, float[] entropy) {
        /** Log-probs of tokens 1..len−1 of sequence s given their prefixes. */
        public float[] logprobs(int s) {
            return java.util.Arrays.copyOfRange(logprobs, s * batch.t, s * batch.t + batch.lengths[s] - 1);
        }

        public float[] entropy(int s) {
            return java.util.Arrays.copyOfRange(entropy, s * batch.t, s * batch.t + batch.lengths[s] - 1);
        }
    }

    /** Forward only: per-token log-probs and entropies at the temperature, and the weighted loss. */
    public ForwardResult forward(Batch batch, float temperature) {
        Modalities mods = forwardLayers(batch, null, false);
        mods.free();
        lmHead(temperature, false);
        return hostResult(batch);
    }

    /**
     * Forward and backward of L = −Σ weights·logprob at the temperature; gradients are added to
     * the trainable set's ({@link #trainable()}: {@link #grads()}, or with LoRA {@link Lora#grads()};
     * call {@link #zeroGrad()} between steps). Returns the loss and per-row results.
     */
    public ForwardResult forwardBackward(Batch batch, float temperature) {
        checkBackward();
        Modalities mods = forwardLayers(batch, null, true);
        lmHead(temperature, true);
        ForwardResult result = hostResult(batch);
        backwardLayers(mods);
        mods.free();
        return result;
    }

    /**
     * Forward only, with every row's log-prob at the temperature copied into {@code out} [b·t] on
     * the backend and nothing brought to the host (the GRPO reference and logp_old).
     */
    public void logprobs(Batch batch, float temperature, Buf out) {
        Modalities mods = forwardLayers(batch, null, false);
        mods.free();
        lmHead(temperature, false);
        kernels.copy(out, acts.logprob.slice(0, acts.m));
    }

    /**
     * The training forward of a batch for a loss whose per-token weights depend on the log-probs
     * themselves (the GRPO loss: ρ and k3 are functions of logp), with the LM head left to the
     * caller as a visible sequence of chunks, the way llm.c seeds its loss gradient from the caller.
     * The layers' forward has run when this returns; then for each chunk c:
     * {@link LossHead#forward(int)} (the logits, one GEMM, and their log-probs and entropies), the
     * caller's weights for the chunk's rows into {@link LossHead#weights()}, and
     * {@link LossHead#backward(int)} (∂L/∂logits from the same logits, and the head's two backward
     * GEMMs); {@link LossHead#finish()} then runs the layers' backward. batch.weights is ignored.
     * The next forward of this model ends the head.
     */
    public LossHead lossHead(Batch batch, float temperature) {
        checkTemperature(temperature);
        checkBackward();
        return new LossHead(batch, forwardLayers(batch, null, true), temperature);
    }

    /** The LM head of one batch, chunk by chunk (see {@link #lossHead}). */
    public final class LossHead {
        private final Batch batch;
        private final Modalities mods;
        private final float invTemperature;
        private final Activations a = acts;
        private final int pass = forwardPasses; // the forward whose activations this head reads
        private int next; // the chunk to forward next, or whose backward is due while inChunk
        private boolean inChunk, finished;

        private LossHead(Batch batch, Modalities mods, float temperature) {
            this.batch = batch;
            this.mods = mods;
            this.invTemperature = 1f / temperature;
        }

        /** Chunks of rows the head runs in (the backend's logit chunk over the vocabulary). */
        public int chunks() {
            return (a.m + a.chunkRows - 1) / a.chunkRows;
        }

        /** The first row (position b·t + i) of chunk c. */
        public int rowStart(int c) {
            return c * a.chunkRows;
        }

        public int rows(int c) {
            return Math.min(a.chunkRows, a.m - rowStart(c));
        }

        /** Every row's log-prob of its target at the temperature [b·t], on the backend; a chunk's rows once it is forwarded. */
        public Buf logprob() {
            return a.logprob;
        }

        /** Every row's entropy [b·t], on the backend; a chunk's rows once it is forwarded. */
        public Buf entropy() {
            return a.entropy;
        }

        /** The rows' loss weights [b·t] the caller writes before each chunk's backward: L = −Σ weight·logprob. */
        public Buf weights() {
            return a.weights;
        }

        /** Chunk c's logits (one GEMM) and their log-probs, entropies and log-partitions. */
        public void forward(int c) {
            check(c, !inChunk, "forward");
            int r0 = rowStart(c), rows = rows(c), cc = config.hiddenSize(), v = config.vocabSize();
            gemm(Gemm.NT, logits(rows), a.lnf.slice((long) r0 * cc, (long) rows * cc), param(lmHeadName()), null, rows, v, cc, false);
            kernels.crossEntropy(logits(rows), a.logprob.slice(r0, rows), a.entropy.slice(r0, rows), a.logZ.slice(r0, rows),
                    a.targets.slice(r0, rows), a.weights.slice(r0, rows), rows, v, invTemperature, false);
            inChunk = true;
        }

        /** Chunk c's backward from the same logits with the weights now in {@link #weights()}: ∂L/∂logits, dlnf, the head's gradient. */
        public void backward(int c) {
            check(c, inChunk, "backward");
            int r0 = rowStart(c), rows = rows(c), cc = config.hiddenSize(), v = config.vocabSize();
            Buf logits = logits(rows);
            kernels.crossEntropyBackward(logits, a.logZ.slice(r0, rows), a.targets.slice(r0, rows), a.weights.slice(r0, rows), rows, v,
                    invTemperature);
            headBackward(logits, r0, rows);
            inChunk = false;
            next++;
        }

        /** The layers' backward (gradients added to the trainable set's) after every chunk's; the loss −Σ weight·logprob and per-row results. */
        public ForwardResult finish() {
            check(next, !inChunk && next == chunks(), "finish after chunk");
            finished = true;
            ForwardResult result = hostResult(batch);
            backwardLayers(mods);
            mods.free();
            return result;
        }

        private Buf logits(int rows) {
            return a.logits.slice(0, (long) rows * config.vocabSize());
        }

        private void check(int c, boolean inOrder, String what) {
            if (finished || acts != a || forwardPasses != pass)
                throw new IllegalStateException("the loss head ended (finished, or the model ran another forward)");
            if (c != next || !inOrder)
                throw new IllegalStateException(what + " " + c + " out of order: chunks run forward, weights, backward, in order ("
                        + chunks() + " chunks, next " + next + (inChunk ? ", its backward due" : "") + ")");
        }
    }

    /** Forwards over the layers run so far (training, log-prob and prefill forwards alike): what a run costs, for tests and benchmarks. */
    public int forwardPasses() {
        return forwardPasses;
    }

    /** Raw LM-head logits [b·t, vocab] (tests and oracle comparisons; materialises them all). */
    public float[] logits(Batch batch) {
        Modalities mods = forwardLayers(batch, null, false);
        mods.free();
        int m = batch.rows(), v = config.vocabSize();
        Buf out = kernels.allocF32((long) m * v);
        gemm(Gemm.NT, out, acts.lnf, param(lmHeadName()), null, m, v, config.hiddenSize(), false);
        float[] host = new float[Math.toIntExact((long) m * v)];
        kernels.download(out, host);
        kernels.free(out);
        return host;
    }

    /** The final norm's output of the last forward, [b·t, hidden] (prefill reads its last rows). */
    Buf finalHidden() {
        return acts.lnf;
    }

    /** The arena for batch's shape: kept while it serves (a backward arena serves forwards too), else a new one. */
    private Activations activations(Batch batch, boolean forBackward) {
        long loraPerRow = loraScratchPerRow();
        boolean serves = acts != null && acts.b == batch.b && acts.t == batch.t && acts.loraPerRow == loraPerRow
                && (!forBackward || acts.backward && acts.recompute == recompute);
        if (!serves) {
            freeActivations();
            acts = new Activations(kernels, config, batch.b, batch.t, loraPerRow, recompute, forBackward);
        }
        return acts;
    }

    /**
     * Frees the activation arena of the last forward (the next forward makes one for its shape):
     * generation calls it before it allocates its KV cache, so a training step's arena does not
     * sit beside the cache until the prefill replaces it; a caller measuring a phase's memory may
     * call it first too.
     */
    public void freeActivations() {
        if (acts != null) acts.free();
        acts = null;
    }

    /** Floats per row of the adapters' scratch in {@link LayerBufs#lora()}; 0 without LoRA. */
    long loraScratchPerRow() {
        return lora == null ? 0 : lora.scratchPerRow();
    }

    /** Modality projector inputs and saved activations for one batch. */
    final class Modalities {
        final Projector audio, vision;

        Modalities(Batch batch) {
            audio = config.hasAudio() && batch.audio.n() > 0 ? new Projector("audio", batch.audio) : null;
            vision = config.hasVision() && batch.vision.n() > 0 ? new Projector("vision", batch.vision) : null;
        }

        void free() {
            if (audio != null) audio.free();
            if (vision != null) vision.free();
        }
    }

    /** Linear, or Linear-GELU-Linear, from feature rows to hidden rows that replace placeholders. */
    private final class Projector {
        final String prefix;
        final int n, dim;
        final Buf features, rows, hidden, activated, out;

        Projector(String modality, Batch.Modality in) {
            prefix = "multi_modal_projector." + modality + ".";
            n = in.n();
            dim = in.dim();
            int c = config.hiddenSize();
            features = kernels.allocF32((long) n * dim);
            kernels.upload(features, in.features());
            rows = kernels.allocI32(n);
            kernels.upload(rows, in.rows());
            hidden = kernels.allocF32((long) n * c);
            activated = config.mlpProjector() ? kernels.allocF32((long) n * c) : null;
            out = config.mlpProjector() ? kernels.allocF32((long) n * c) : hidden;
        }

        void forward(Buf x0) {
            int c = config.hiddenSize();
            gemm(Gemm.NT, hidden, features, projectorParam(prefix + "linear_1.weight"), projectorParam(prefix + "linear_1.bias"), n, c, dim, false);
            if (config.mlpProjector()) {
                kernels.gelu(activated, hidden, (long) n * c);
                gemm(Gemm.NT, out, activated, projectorParam(prefix + "linear_2.weight"), projectorParam(prefix + "linear_2.bias"), n, c, c, false);
            }
            kernels.scatterRows(x0, out, rows, n, c);
        }

        void backward(Buf dx0) {
            int c = config.hiddenSize();
            Buf dout = kernels.allocF32((long) n * c);
            kernels.gatherRows(dout, dx0, rows, n, c);
            Buf dhidden = dout;
            if (config.mlpProjector()) {
                gemm(Gemm.TN, projectorGrad(prefix + "linear_2.weight"), dout, activated, null, c, c, n, true);
                kernels.biasBackward(projectorGrad(prefix + "linear_2.bias"), dout, n, c);
                Buf dact = kernels.allocF32((long) n * c);
                gemm(Gemm.NN, dact, dout, projectorParam(prefix + "linear_2.weight"), null, n, c, c, false);
                dhidden = kernels.allocF32((long) n * c);
                kernels.geluBackward(dhidden, dact, hidden, (long) n * c);
                kernels.free(dact);
            }
            gemm(Gemm.TN, projectorGrad(prefix + "linear_1.weight"), dhidden, features, null, c, dim, n, true);
            kernels.biasBackward(projectorGrad(prefix + "linear_1.bias"), dhidden, n, c);
            if (dhidden != dout) kernels.free(dhidden);
            kernels.free(dout);
        }

        void free() {
            kernels.free(features);
            kernels.free(rows);
            kernels.free(hidden);
            if (activated != null) kernels.free(activated);
            if (out != hidden) kernels.free(out);
        }
    }

    /** What a layer does between rope and the O projection: full causal attention, or attention over a KV cache. */
    interface Attend {
        void run(int layer, Buf qkv, Buf att);
    }

    /**
     * Buffers of one layer's forward on m rows (x in, xOut out; the rest saved for the backward or
     * scratch); lora: the adapters' scratch, m · {@link #loraScratchPerRow} floats (null without LoRA).
     */
    record LayerBufs(Buf x, Buf ln1, Buf rstd1, Buf qkv, Buf att, Buf xmid, Buf ln2, Buf rstd2, Buf gateUp, Buf act, Buf xOut, Buf lora) {}

    /**
     * One decoder layer: RMSNorm → q|k|v (+bias) → RoPE → attend → O + residual → RMSNorm → SwiGLU
     * MLP + residual; with adapters on, each target's delta joins its base GEMM's output.
     */
    void layerForward(int l, LayerBufs b, int m, Buf positions, Attend attend) {
        Kernels k = kernels;
        ModelConfig cfg = config;
        int c = cfg.hiddenSize(), inter = cfg.intermediateSize();
        String p = "model.layers." + l + ".";
        k.rmsnorm(b.ln1(), b.rstd1(), b.x(), param(p + "input_layernorm.weight"), m, c, cfg.rmsNormEps());
        gemm(Gemm.NT, b.qkv(), b.ln1(), qkvWeight(l), qkvBias(l), m, cfg.qkvDim(), c, false);
        Lora lo = adaptersEnabled() ? lora : null;
        if (lo != null) lo.forward(l, b.ln1(), b.qkv(), m, b.lora(), Q_PROJ, K_PROJ, V_PROJ);
        k.rope(b.qkv(), positions, m, cfg.numHeads(), cfg.numKvHeads(), cfg.headDim(), cfg.ropeTheta(), false);
        attend.run(l, b.qkv(), b.att());
        // residual: xmid = x + o(att), as a copy then an accumulating GEMM
        k.copy(b.xmid(), b.x());
        gemm(Gemm.NT, b.xmid(), b.att(), param(p + "self_attn.o_proj.weight"), null, m, c, cfg.qDim(), true);
        if (lo != null) lo.forward(l, b.att(), b.xmid(), m, b.lora(), O_PROJ);
        k.rmsnorm(b.ln2(), b.rstd2(), b.xmid(), param(p + "post_attention_layernorm.weight"), m, c, cfg.rmsNormEps());
        gemm(Gemm.NT, b.gateUp(), b.ln2(), gateUpWeight(l), null, m, 2 * inter, c, false);
        if (lo != null) lo.forward(l, b.ln2(), b.gateUp(), m, b.lora(), GATE_PROJ, UP_PROJ);
        k.swiglu(b.act(), b.gateUp(), m, inter);
        k.copy(b.xOut(), b.xmid());
        gemm(Gemm.NT, b.xOut(), b.act(), param(p + "mlp.down_proj.weight"), null, m, c, inter, true);
        if (lo != null) lo.forward(l, b.act(), b.xOut(), m, b.lora(), DOWN_PROJ);
    }

    /**
     * The training forward over a packed batch; with a cache (prefill), every layer also stores its
     * k and v there. forBackward: keep what the backward reads; else a forward-only arena serves
     * (or the one already there, if it has this shape).
     */
    Modalities forwardLayers(Batch batch, Generator.Cache cache, boolean forBackward) {
        forwardPasses++;
        Activations a = activations(batch, forBackward);
        Kernels k = kernels;
        ModelConfig cfg = config;
        int m = a.m, c = cfg.hiddenSize();
        int heads = cfg.numHeads(), kvHeads = cfg.numKvHeads(), d = cfg.headDim();
        k.upload(a.embedIds, batch.embedIds);
        k.upload(a.positions, batch.positions);
        k.upload(a.targets, batch.targets);
        k.upload(a.lengths, batch.lengths);
        k.upload(a.weights, batch.weights);

        k.embedding(a.x[0], a.embedIds, param("model.embed_tokens.weight"), m, c); // F32, or BF16 in a frozen base
        Modalities mods = new Modalities(batch);
        if (mods.audio != null) mods.audio.forward(a.x[0]);
        if (mods.vision != null) mods.vision.forward(a.x[0]);

        for (int l = 0; l < cfg.numLayers(); l++) {
            Buf lse = a.lse[l];
            layerForward(l, a.layer(l), m, a.positions, (layer, qkv, att) -> {
                if (cache != null) cache.write(layer, qkv);
                attention(att, lse, qkv, a.lengths, batch.b, batch.t, heads, kvHeads, d);
            });
        }
        k.rmsnorm(a.lnf, a.rstdf, a.x[cfg.numLayers()], param("model.norm.weight"), m, c, cfg.rmsNormEps());
        return mods;
    }

    /**
     * LM head and cross-entropy chunk by chunk; with backward, each chunk's logits become
     * ∂L/∂logits in place and feed dlnf (into acts.dln) and the head's weight gradient at once.
     * Results stay on the backend (acts.logprob, acts.entropy); {@link #hostResult} brings them over.
     */
    private void lmHead(float temperature, boolean backward) {
        checkTemperature(temperature);
        Activations a = acts;
        Kernels k = kernels;
        int m = a.m, c = config.hiddenSize(), v = config.vocabSize();
        Buf head = param(lmHeadName());
        for (int r0 = 0; r0 < m; r0 += a.chunkRows) {
            int rows = Math.min(a.chunkRows, m - r0);
            Buf logits = a.logits.slice(0, (long) rows * v);
            gemm(Gemm.NT, logits, a.lnf.slice((long) r0 * c, (long) rows * c), head, null, rows, v, c, false);
            k.crossEntropy(logits, a.logprob.slice(r0, rows), a.entropy.slice(r0, rows), null, a.targets.slice(r0, rows),
                    a.weights.slice(r0, rows), rows, v, 1f / temperature, backward);
            if (backward) headBackward(logits, r0, rows);
        }
    }

    /** The LM head's backward GEMMs of one chunk whose logits now hold ∂L/∂logits: dlnf into acts.dln, and the head's gradient. */
    private void headBackward(Buf dlogits, int r0, int rows) {
        int c = config.hiddenSize(), v = config.vocabSize();
        Buf head = param(lmHeadName());
        gemm(Gemm.NN, acts.dln.slice((long) r0 * c, (long) rows * c), dlogits, head, null, rows, c, v, false);
        if (lora == null) // a frozen head has no gradient
            gemm(Gemm.TN, grad(lmHeadName()), dlogits, acts.lnf.slice((long) r0 * c, (long) rows * c), null, v, c, rows, true);
    }

    /** The per-row log-probs, entropies and the loss −Σ weight·logprob of the last head, brought to the host. */
    private ForwardResult hostResult(Batch batch) {
        Activations a = acts;
        int m = a.m;
        float[] logprobs = new float[m], entropy = new float[m], weights = new float[m];
        kernels.download(a.logprob, logprobs);
        kernels.download(a.entropy, entropy);
        kernels.download(a.weights, weights); // batch.weights, or what a loss head's caller wrote
        double loss = 0;
        for (int i = 0; i < m; i++) loss -= (double) weights[i] * logprobs[i];
        return new ForwardResult(batch, loss, logprobs, entropy);
    }

    /** With LoRA, gradients exist only for the adapter, so only its forward has a backward. */
    private void checkBackward() {
        if (lora != null && !adaptersEnabled)
            throw new IllegalStateException("adapters are off: the frozen base has no backward (setAdaptersEnabled(true) first)");
    }

    private static void checkTemperature(float temperature) {
        if (!(temperature > 0) || !Float.isFinite(temperature))
            throw new IllegalArgumentException("temperature must be a positive number, got " + temperature);
    }

    /**
     * The layers' backward from acts.dln (∂L/∂lnf). Every parameter's gradient into {@link #grads()};
     * with LoRA only the adapter's (the base's weight-gradient GEMMs, norm, bias and embedding
     * gradients are skipped, the activation gradients still flow through the frozen layers).
     */
    private void backwardLayers(Modalities mods) {
        Activations a = acts;
        Kernels k = kernels;
        ModelConfig cfg = config;
        Lora lo = lora;
        boolean full = lo == null;
        int m = a.m, c = cfg.hiddenSize(), inter = cfg.intermediateSize();
        int heads = cfg.numHeads(), kvHeads = cfg.numKvHeads(), d = cfg.headDim();
        int layers = cfg.numLayers();
        // dx carries ∂L/∂(residual stream) downwards; each rmsnorm backward adds its branch into it
        k.fill(a.dx, 0f);
        k.rmsnormBackward(a.dx, full ? grad("model.norm.weight") : null, a.dln, a.x[layers], param("model.norm.weight"), a.rstdf, m, c);
        for (int l = layers - 1; l >= 0; l--) {
            String p = "model.layers." + l + ".";
            if (a.recompute) { // refill the shared slot from x[l] (x[l+1] is rewritten with the same values)
                Buf lse = a.lse[l];
                layerForward(l, a.layer(l), m, a.positions, (layer, qkv, att) -> attention(att, lse, qkv, a.lengths, a.b, a.t, heads, kvHeads, d));
            }
            // x[l+1] = xmid + down(swiglu(gateUp(ln2)))
            gemm(Gemm.NN, a.dact, a.dx, param(p + "mlp.down_proj.weight"), null, m, inter, c, false);
            if (full) gemm(Gemm.TN, grad(p + "mlp.down_proj.weight"), a.dx, a.act[l], null, c, inter, m, true);
            else lo.backward(l, a.act[l], a.dx, a.dact, m, a.lora, DOWN_PROJ);
            k.swigluBackward(a.dgateUp, a.dact, a.gateUp[l], m, inter);
            gemm(Gemm.NN, a.dln, a.dgateUp, gateUpWeight(l), null, m, c, 2 * inter, false);
            if (full) gemm(Gemm.TN, gateUpGrad(l), a.dgateUp, a.ln2[l], null, 2 * inter, c, m, true);
            else lo.backward(l, a.ln2[l], a.dgateUp, a.dln, m, a.lora, GATE_PROJ, UP_PROJ);
            k.rmsnormBackward(a.dx, full ? grad(p + "post_attention_layernorm.weight") : null, a.dln, a.xmid[l],
                    param(p + "post_attention_layernorm.weight"), a.rstd2[l], m, c);
            // xmid = x + o(attention(rope(qkv(ln1))))
            gemm(Gemm.NN, a.datt, a.dx, param(p + "self_attn.o_proj.weight"), null, m, cfg.qDim(), c, false);
            if (full) gemm(Gemm.TN, grad(p + "self_attn.o_proj.weight"), a.dx, a.att[l], null, c, cfg.qDim(), m, true);
            else lo.backward(l, a.att[l], a.dx, a.datt, m, a.lora, O_PROJ);
            attentionBackward(a.dqkv, a.datt, a.qkv[l], a.att[l], a.lse[l], a.lengths, a.b, a.t, heads, kvHeads, d);
            k.rope(a.dqkv, a.positions, m, heads, kvHeads, d, cfg.ropeTheta(), true);
            gemm(Gemm.NN, a.dln, a.dqkv, qkvWeight(l), null, m, c, cfg.qkvDim(), false);
            if (full) {
                gemm(Gemm.TN, qkvGrad(l, false), a.dqkv, a.ln1[l], null, cfg.qkvDim(), c, m, true);
                k.biasBackward(qkvGrad(l, true), a.dqkv, m, cfg.qkvDim());
            } else {
                lo.backward(l, a.ln1[l], a.dqkv, a.dln, m, a.lora, Q_PROJ, K_PROJ, V_PROJ);
            }
            k.rmsnormBackward(a.dx, full ? grad(p + "input_layernorm.weight") : null, a.dln, a.x[l],
                    param(p + "input_layernorm.weight"), a.rstd1[l], m, c);
        }
        if (full) k.embeddingBackward(grad("model.embed_tokens.weight"), a.dx, a.embedIds, m, c);
        if (mods.audio != null) mods.audio.backward(a.dx);
        if (mods.vision != null) mods.vision.backward(a.dx);
    }

    // packed views: q|k|v and gate|up are adjacent in the layout (see ParamLayout)
    Buf qkvWeight(int l) {
        return stored(layout.offset("model.layers." + l + ".self_attn.q_proj.weight"), (long) config.qkvDim() * config.hiddenSize());
    }

    Buf qkvBias(int l) {
        return stored(layout.offset("model.layers." + l + ".self_attn.q_proj.bias"), config.qkvDim());
    }

    private Buf qkvGrad(int l, boolean bias) {
        String name = "model.layers." + l + ".self_attn.q_proj." + (bias ? "bias" : "weight");
        return grads().slice(layout.offset(name), bias ? config.qkvDim() : (long) config.qkvDim() * config.hiddenSize());
    }

    Buf gateUpWeight(int l) {
        return stored(layout.offset("model.layers." + l + ".mlp.gate_proj.weight"), 2L * config.intermediateSize() * config.hiddenSize());
    }

    private Buf gateUpGrad(int l) {
        return grads().slice(layout.offset("model.layers." + l + ".mlp.gate_proj.weight"), 2L * config.intermediateSize() * config.hiddenSize());
    }

    @Override
    public void close() {
        if (lora != null) lora.free();
        dropPrepared();
        freeBf16();
        if (paramsBf16 != null) kernels.free(paramsBf16); // a frozen base's matrices
        freeActivations();
        if (grads != null) kernels.free(grads);
        kernels.free(params);
    }
}
