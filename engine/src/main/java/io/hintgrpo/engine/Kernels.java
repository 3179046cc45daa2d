package io.hintgrpo.engine;

/**
 * Every op the model, the optimizer and the RL losses need, at the granularity of the fused GPU
 * kernels, so each CUDA kernel has an exact CPU twin. A backend implements this one interface:
 * {@code cpu} in pure Java, {@code cuda} and {@code cuda-emu} on top of a driver.
 *
 * <p>Conventions: matrices are row-major; {@code m} counts rows (tokens), other sizes name their
 * dimension. "+=" in a comment means the op accumulates into that output, which is how gradients
 * of shared inputs (residual stream, tied embeddings, gradient accumulation) add up. Ops are
 * asynchronous on a GPU backend; host-visible results come back through {@link #download} or the
 * ops that return a value, which synchronise.
 *
 * <p>Indices out of range (a token id ≥ vocabulary, a target ≥ v, a cache position ≥ maxT, a row
 * index outside its buffer, a banned id ≥ v): {@code cpu} throws; a device cannot, so {@code cuda}
 * writes NaN rows for lookups (embedding, gather, cross-entropy log-prob with a zero gradient row)
 * and skips the row for writes (scatter, KV cache) or ignores it (banned ids). Callers validate
 * indices on the host (e.g. {@code Batch.validate}) before they reach a kernel.
 */
public interface Kernels extends AutoCloseable {

    /** Layouts of {@link #gemm}; names say which operand is transposed (N = as stored, T = transposed). */
    enum Gemm {
        /** out[m,n] = a[m,k] · b[n,k]ᵀ — a Linear forward (weights stored [out, in]). */
        NT,
        /** out[m,n] = a[m,k] · b[k,n] — gradient of a Linear's input. */
        NN,
        /** out[m,n] = a[k,m]ᵀ · b[k,n] — gradient of a Linear's weight (a = dOut, b = input). */
        TN
    }

    String name();

    // ---- memory ----

    Buf allocF32(long n);

    Buf allocI32(long n);

    /** n bf16 elements; the host sees them as raw bit patterns in a short[] ({@link Bf16}). */
    Buf allocBf16(long n);

    void free(Buf buf);

    void upload(Buf dst, float[] src);

    void upload(Buf dst, int[] src);

    /** bf16 bit patterns into a BF16 buffer. */
    void upload(Buf dst, short[] src);

    void download(Buf src, float[] dst);

    void download(Buf src, int[] dst);

    void download(Buf src, short[] dst);

    /** Every element of dst = value in dst's type: (int) value for I32, {@link Bf16#fromFloat} for BF16. */
    void fill(Buf dst, float value);

    /** dst = src, buffers of the same type and length. */
    void copy(Buf dst, Buf src);

    /** Waits until every op issued so far has finished. */
    void synchronize();

    /**
     * How many fp32 logits one LM-head chunk may hold (the model never materialises more): small
     * enough to stay in cache on {@code cpu}; on a GPU large enough that a chunk's GEMM has
     * hundreds of rows even at a 152k vocabulary.
     */
    default long logitChunkFloats() {
        return 1L << 22;
    }

    // ---- graphs ----

    /** Whether {@link #captureGraph} works: {@code cuda} and {@code cuda-emu} replay CUDA graphs, {@code cpu} has none. */
    default boolean supportsGraphs() {
        return false;
    }

    /**
     * Records the ops that {@code work} issues into a graph, without running them; {@link Graph#launch}
     * replays them in order, ordered with the ops issued around it. Every argument is baked in at
     * capture (buffer addresses and scalars alike) while buffer contents are read at replay, so
     * whatever changes between replays must live in a buffer, updated outside the graph. Only ops
     * that run on the device may be issued inside: allocation, free, upload, download,
     * synchronisation and ops that return a host value fail, naming the op. The buffers a graph
     * uses must stay allocated while it lives.
     */
    default Graph captureGraph(Runnable work) {
        throw new UnsupportedOperationException("the " + name() + " backend has no graphs (see supportsGraphs)");
    }

    /** A captured graph ({@link #captureGraph}); close it before freeing the buffers it uses. */
    interface Graph extends AutoCloseable {
        void launch();

        @Override
        void close();
    }

    @Override
    void close();

    // ---- precision ----

    /**
     * dst[i] (BF16) = src[i] (F32) rounded to bf16 over n elements, exactly {@link Bf16#fromFloat}:
     * round to nearest, ties to even; ±0, ±inf and subnormals kept as rounding gives them; at or
     * past the tie above the largest finite bf16 → ±inf; NaN stays NaN (sign and high payload kept,
     * quiet bit set).
     */
    void castF32ToBf16(Buf dst, Buf src, long n);

    /** dst[i] (F32) = src[i] (BF16) widened over n elements: exact, {@link Bf16#toFloat}. */
    void castBf16ToF32(Buf dst, Buf src, long n);

    // ---- embedding and modality rows ----

    /**
     * out[i,:] = table[ids[i],:]; a negative id (a modality placeholder) writes zeros. The table is
     * F32, or BF16 (a frozen bf16 base) whose elements are widened exactly; out is F32.
     */
    void embedding(Buf out, Buf ids, Buf table, int m, int c);

    /** dtable[ids[i],:] += dout[i,:] for ids[i] ≥ 0. */
    void embeddingBackward(Buf dtable, Buf dout, Buf ids, int m, int c);

    /** out[rows[i],:] = src[i,:] for i < n: modality projector outputs replace placeholder rows. */
    void scatterRows(Buf out, Buf src, Buf rows, int n, int c);

    /** out[i,:] = src[rows[i],:] for i < n. */
    void gatherRows(Buf out, Buf src, Buf rows, int n, int c);

    // ---- dense ----

    /**
     * out = op(a) · op(b) (+ bias[n] broadcast over rows, when bias is non-null), written or,
     * with accumulate, added to out. Shapes per {@link Gemm}; out is [m, n].
     */
    void gemm(Gemm layout, Buf out, Buf a, Buf b, Buf bias, int m, int n, int k, boolean accumulate);

    /**
     * A copy of the weight w [n, k] arranged for {@link #gemmPrepared}, for a weight that many NT
     * GEMMs read while it does not change (decode steps); null where the backend gains nothing
     * from it (the default: cuda reads weights in place). The caller frees it.
     */
    default Buf prepareWeight(Buf w, int n, int k) {
        return null;
    }

    /** {@link #gemm} NT with b = the weight {@link #prepareWeight} arranged into prepared. */
    default void gemmPrepared(Buf out, Buf a, Buf prepared, Buf bias, int m, int n, int k, boolean accumulate) {
        throw new UnsupportedOperationException("this backend prepares no weights");
    }

    /**
     * {@link #gemm} on bf16 operands with fp32 accumulation: out[m,n] (F32) = op(a)·op(b)
     * (+ bias[n] (F32) broadcast over rows, when bias is non-null), written or, with accumulate,
     * added to out. a and b are BF16 buffers shaped per {@link Gemm} (a: m·k elements, b: n·k).
     * Every product of two bf16 values is exact in fp32; only the summation order differs between
     * backends ({@code cpu} widens the operands exactly and runs {@link #gemm}; {@code cuda} sums
     * on tensor cores), so results agree to fp32 rounding of the sum (≤ 1e-4 relative). Any
     * m, n, k ≥ 0; k = 0 leaves bias (or zeros), added to out with accumulate.
     */
    void gemmBf16(Gemm layout, Buf out, Buf a, Buf b, Buf bias, int m, int n, int k, boolean accumulate);

    /** dbias[j] += Σ_i dout[i,j]. */
    void biasBackward(Buf dbias, Buf dout, int m, int n);

    /** out = a + b, elementwise over n. */
    void add(Buf out, Buf a, Buf b, long n);

    /**
     * dst[i·ldDst + j] += alpha · src[i·ldSrc + j] for i < m, j < n: an m × n block of two row-major
     * matrices with their own row strides (ld ≥ n). With slices at a column offset this adds a LoRA
     * delta into its column block of a packed GEMM output (q|k|v, gate|up), and, into zeros, gathers
     * a column block out of a packed gradient.
     */
    void addBlock(Buf dst, int ldDst, Buf src, int ldSrc, int m, int n, float alpha);

    // ---- norm, activations ----

    /** out[i,:] = w · x[i,:] / sqrt(mean(x[i,:]²) + eps); rstd[i] saves 1/sqrt(…) for the backward. */
    void rmsnorm(Buf out, Buf rstd, Buf x, Buf weight, int m, int c, float eps);

    /** dx += ∂L/∂x and dweight += ∂L/∂w, from dout, the saved x and rstd; dweight null (a frozen norm): dx only. */
    void rmsnormBackward(Buf dx, Buf dweight, Buf dout, Buf x, Buf weight, Buf rstd, int m, int c);

    /** out[i,j] = silu(gateUp[i,j]) · gateUp[i, inter + j]: gate and up are one [m, 2·inter] GEMM output. */
    void swiglu(Buf out, Buf gateUp, int m, int inter);

    /** dgateUp (written, [m, 2·inter]) from dout [m, inter] and the saved gateUp. */
    void swigluBackward(Buf dgateUp, Buf dout, Buf gateUp, int m, int inter);

    /** out = gelu_tanh(x) (PyTorch's approximate='tanh'), elementwise over n. */
    void gelu(Buf out, Buf x, long n);

    /** dx (written) = dout · gelu_tanh'(x). */
    void geluBackward(Buf dx, Buf dout, Buf x, long n);

    // ---- attention ----

    /**
     * Rotary embedding in place on the q and k heads of a packed qkv buffer [m, (heads + 2·kvHeads)·headDim]
     * (v is left alone). HF rotate-half: element i pairs with i + headDim/2, inverse frequency
     * theta^(-2i/headDim), angle = positions[row] · invFreq in fp32. inverse = true rotates by the
     * negative angle, which is the backward.
     */
    void rope(Buf qkv, Buf positions, int m, int heads, int kvHeads, int headDim, float theta, boolean inverse);

    /**
     * Causal grouped-query attention over a right-padded batch: qkv is [b·t, (heads + 2·kvHeads)·headDim]
     * (rope applied), query head h reads kv head h / (heads / kvHeads), row i of sequence s sees
     * keys j ≤ i with j < lengths[s], scale 1/sqrt(headDim). out is [b·t, heads·headDim]; lse
     * [b, heads, t] saves each row's log-sum-exp of the scaled scores. Padding rows get zeros.
     */
    void attention(Buf out, Buf lse, Buf qkv, Buf lengths, int b, int t, int heads, int kvHeads, int headDim);

    /**
     * {@link #attention} on bf16 operands: qkvBf16 is a BF16 buffer in the same packed layout
     * [b·t, (heads + 2·kvHeads)·headDim]; out [b·t, heads·headDim] and lse [b, heads, t] are F32 with
     * exactly the semantics of {@link #attention} (padding rows get zeros). headDim must be a
     * multiple of 16 (one tensor-core k-step) and ≤ 128; other head dims throw
     * IllegalArgumentException on every backend. {@code cpu} widens q, k and v exactly to fp32 and
     * runs {@link #attention}; {@code cuda} computes scores, softmax statistics and lse in fp32 but
     * rounds the softmax weights p to bf16 before P·V (tensor cores), so out agrees to bf16
     * rounding (≤ 1e-2 relative; 5e-4 measured on the emulator) and lse to fp32 summation order.
     */
    void attentionBf16(Buf out, Buf lse, Buf qkvBf16, Buf lengths, int b, int t, int heads, int kvHeads, int headDim);

    /** dqkv (written, same packing as qkv; padding rows zero) from dout, the saved qkv, out and lse. */
    void attentionBackward(Buf dqkv, Buf dout, Buf qkv, Buf out, Buf lse, Buf lengths,
                           int b, int t, int heads, int kvHeads, int headDim);

    /**
     * {@link #attentionBackward} on bf16 operands: qkvBf16 is the BF16 qkv the forward
     * ({@link #attentionBf16}) read; dqkv, dout, out and lse are F32 with exactly the semantics of
     * {@link #attentionBackward} (same packing, padding rows zero, GQA: dk/dv of a kv head summed
     * over its query heads). headDim as {@link #attentionBf16} (a multiple of 16, ≤ 128; others throw
     * IllegalArgumentException on every backend). {@code cpu} widens q, k and v exactly to fp32 and
     * runs {@link #attentionBackward}; {@code cuda} computes S and dP on tensor cores with dout
     * rounded to bf16, p, ds and every statistic in fp32, and rounds p and ds to bf16 only as mma
     * operands (D uses that bf16 dout too, so Σ_j ds_ij cancels as in exact arithmetic), so dqkv
     * agrees to bf16 rounding (≤ 1e-2 relative; 2.8e-3 measured on the emulator).
     */
    void attentionBackwardBf16(Buf dqkv, Buf dout, Buf qkvBf16, Buf out, Buf lse, Buf lengths,
                               int b, int t, int heads, int kvHeads, int headDim);

    // ---- decode ----

    /**
     * Writes the k and v heads of m packed qkv rows (rope applied) into per-sequence caches laid
     * out [sequences, kvHeads, maxT, headDim]: row r goes to sequence rowSeq[r] at position
     * rowPos[r]; rows with rowPos[r] < 0 (padding) are skipped. Prefill passes every prompt row,
     * a decode step one row per sequence.
     */
    void kvCacheWrite(Buf kCache, Buf vCache, Buf qkv, Buf rowSeq, Buf rowPos, int m, int maxT,
                      int heads, int kvHeads, int headDim);

    /**
     * One query row per sequence against its cache: out[s] = softmax(q_s·K_s[0..lengths[s])ᵀ /
     * sqrt(headDim))·V_s per query head (GQA as in {@link #attention}); q comes from the packed
     * qkv rows [b, (heads + 2·kvHeads)·headDim]; out is [b, heads·headDim].
     */
    void decodeAttention(Buf out, Buf qkv, Buf kCache, Buf vCache, Buf lengths, int b, int maxT,
                         int heads, int kvHeads, int headDim);

    /**
     * Draws one token per row of logits [b, v] into tokens [b]. temperature 0 is greedy (argmax,
     * lowest index on ties). Otherwise z = logits/temperature; a token survives top-k (k > 0) when
     * fewer than k tokens have a strictly larger z, and top-p (p < 1) when the probability mass
     * of tokens strictly more likely than it is below p (ties survive together, so the result
     * does not depend on sort order); the draw inverts the CDF of the survivors in index order
     * with u = a counter-based uniform of (seed, row, step), so a seed reproduces the tokens on
     * every backend. The nBanned token ids in banned (e.g. modality placeholders, which stand for
     * feature rows and cannot be generated) are never drawn: they count as z = −∞ throughout.
     */
    void sample(Buf tokens, Buf logits, int b, int v, float temperature, int topK, float topP, long seed, long step,
                Buf banned, int nBanned);

    /**
     * {@link #sample} with the step index read from {@code step[0]} (I32) on the device rather than
     * passed in, so one captured graph draws with a new step on each replay. The default reads it
     * back to the host, which suits {@code cpu}; the CUDA backends read it in the kernel.
     */
    default void sample(Buf tokens, Buf logits, int b, int v, float temperature, int topK, float topP, long seed, Buf step,
                        Buf banned, int nBanned) {
        int[] at = new int[1];
        download(step.slice(0, 1), at);
        sample(tokens, logits, b, v, temperature, topK, topP, seed, at[0], banned, nBanned);
    }

    /**
     * {@link #sample} with a random stream per row: row r draws with u = uniform(key_r, 0, steps[r]),
     * key_r the 64-bit key in keys[2r] (low half) and keys[2r + 1] (high half), steps [b] each row's
     * own step count, both I32 on the device (so a captured graph reads new steps on each replay).
     * A row's tokens then depend only on its key and its own steps, never on its position in the
     * batch or on the other rows: a request gets the same tokens whoever shares its batch.
     * {@link #streamKey} makes keys.
     */
    void sampleRows(Buf tokens, Buf logits, int b, int v, float temperature, int topK, float topP, Buf keys, Buf steps,
                    Buf banned, int nBanned);

    /** The key of {@link #sampleRows} for stream `row` of a seed: splitmix64 of (seed, row), so nearby rows and seeds get unrelated streams. */
    static long streamKey(long seed, long row) {
        return splitmix64(seed + 0x9E3779B97F4A7C15L * (row + 1));
    }

    /** keys for {@link #sampleRows} as the I32 pairs (low, high) it reads. */
    static int[] keyWords(long[] keys) {
        int[] w = new int[2 * keys.length];
        for (int r = 0; r < keys.length; r++) {
            w[2 * r] = (int) keys[r];
            w[2 * r + 1] = (int) (keys[r] >>> 32);
        }
        return w;
    }

    /** The counter-based uniform in [0, 1) of {@link #sample}: splitmix64 of (seed, row, step), 24 bits. */
    static float uniform(long seed, long row, long step) {
        return (splitmix64(seed + 0x9E3779B97F4A7C15L * (row + 1) + 0xD1B54A32D192ED03L * (step + 1)) >>> 40) * 0x1.0p-24f;
    }

    /** splitmix64's output mix (the CUDA sampler has its twin in sampling.cu). */
    private static long splitmix64(long x) {
        x = (x ^ (x >>> 30)) * 0xBF58476D1CE4E5B9L;
        x = (x ^ (x >>> 27)) * 0x94D049BB133111EBL;
        return x ^ (x >>> 31);
    }

    // ---- LM head loss ----

    /**
     * Softmax cross-entropy over one chunk of LM-head logits [m, v], at temperature 1/invTemperature.
     * For each row: logprob[i] = log softmax(logits[i,:]·invT)[targets[i]] (0 where targets[i] < 0),
     * entropy[i] = −Σ p log p of that softmax, logZ[i] = log Σ_j exp(logits[i,j]·invT) rounded to
     * fp32 (logZ may be null). With backward, logits are overwritten in place by ∂L/∂logits for
     * L = −Σ_i weights[i] · logprob[i], i.e. weights[i] · (p − onehot) · invT with
     * p = exp(logits·invT − logZ[i]) (rows with a negative target get zeros). weights are signed:
     * 1/0 masks for SFT, the policy gradient coefficient for GRPO.
     */
    void crossEntropy(Buf logits, Buf logprob, Buf entropy, Buf logZ, Buf targets, Buf weights,
                      int m, int v, float invTemperature, boolean backward);

    /**
     * The backward of {@link #crossEntropy} as a pass of its own, for weights known only once the
     * log-probs are (the GRPO loss): logits [m, v] (untouched since the forward) are overwritten in
     * place by weights[i] · (p − onehot) · invT with p = exp(logits·invT − logZ[i]) from the
     * forward's logZ; rows with a negative target get zeros. The forward and then this give the same
     * bits as the forward with backward.
     */
    void crossEntropyBackward(Buf logits, Buf logZ, Buf targets, Buf weights, int m, int v, float invTemperature);

    // ---- optimizer ----

    /** Σ x² over n elements, as a double on the host (deterministic for a given n on a backend). */
    double sumSquares(Buf x, long n);

    /**
     * One AdamW step over n parameters with bias correction for step t (1-based) and decoupled
     * weight decay: g = grads·gradScale; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
     * p −= lr·( (m/(1−β1ᵗ)) / (sqrt(v/(1−β2ᵗ)) + eps) + weightDecay·p ).
     */
    void adamw(Buf params, Buf grads, Buf m, Buf v, long n, float lr, float beta1, float beta2,
               float eps, float weightDecay, float gradScale, int t);

    // ---- GRPO ----

    /**
     * Group-relative advantages: rewards [groups·groupSize] holds groups of G = groupSize rollouts
     * of one prompt each, side by side. Per group, mean = Σ r / G and std = sqrt(Σ (r − mean)² / G)
     * (the population std), both in double; advantages[i] = (r_i − mean) / (std + eps), or with
     * drGrpo r_i − mean (eps unused). stats [groups·2] gets (mean, std) per group: a group whose
     * rewards are all equal has std exactly 0 and advantages exactly 0, which is how the trainer
     * counts zero-advantage groups.
     */
    void grpoAdvantages(Buf advantages, Buf stats, Buf rewards, int groups, int groupSize, boolean drGrpo, float eps);

    /**
     * The fused GRPO policy loss over m completion tokens (every array [m]), computed per token
     * in double and stored in fp32:
     * ρ = exp(logp − logpOld); L = −min(ρ·A, clip(ρ, 1 − epsLow, 1 + epsHigh)·A) + beta·k3 with
     * k3 = exp(ref − logp) − (ref − logp) − 1 and A = advantage[t] (the token's sequence advantage);
     * loss[t] = scale[t]·L, where scale carries the aggregation (token-mean 1/Σ|o_i|, sequence-mean
     * 1/(G'·|o_i|), Dr.GRPO 1/(G'·maxCompletionLength); 0 for prompt, hint and padding tokens), so
     * Σ loss is the minibatch loss. weight[t] = −scale[t]·∂L/∂logp is the signed weight of
     * {@link #crossEntropy}'s backward (whose loss −Σ weight·logprob has gradient −weight), with
     * ∂(−min)/∂logp = −ρ·A where the unclipped term is the min (ties count as unclipped, so inside
     * the clip range the gradient flows) and 0 where the clipped term is, and ∂(beta·k3)/∂logp =
     * beta·(1 − exp(ref − logp)). clipped[t] = 1 where the clipped term was strictly smaller (the
     * clip-fraction metric), else 0; kl[t] = k3. ref may be null only when beta = 0: then k3 = 0
     * and no reference log-probs exist (β = 0 skips the reference forward).
     */
    void grpoPolicyLoss(Buf loss, Buf weight, Buf clipped, Buf kl, Buf logp, Buf logpOld, Buf ref, Buf advantage,
                        Buf scale, int m, float epsLow, float epsHigh, float beta);
}
