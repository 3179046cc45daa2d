package io.hintgrpo.engine.model;

import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.Kernels.Gemm;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Batched generation with a KV cache: one prefill forward over the right-padded prompts stores
 * every layer's k and v, then each step feeds one token per sequence through the layers with
 * attention over the cache, so a step costs the weights plus the cache read, not the prefix.
 * Sampling happens on the backend ({@link Kernels#sample}); the log-prob of each drawn token at
 * the sampling temperature comes back with it.
 *
 * <p>A decode step is the same ops every token, a few per layer, so where the backend has graphs
 * ({@link Kernels#supportsGraphs}) the first step is captured once per generate call (fixed batch
 * size and cache length) and replayed for every later token: one launch instead of hundreds. The
 * step reads everything that changes per token from one device buffer (positions, lengths, the
 * sampler's step index), uploaded before each step, and the tokens it feeds back are the ones
 * the previous step's sampler left on the device. Graph and eager decode run the same ops on the
 * same buffers, so they give identical tokens and log-probs. System property
 * {@code hintgrpo.cudaGraphs=false} (or {@link #Generator(Model, boolean)}) turns graphs off, e.g.
 * to see a failing kernel at its own launch.
 */
public final class Generator {
    /**
     * temperature 0 = greedy; topK ≤ 0 = off; topP 1 = off. Generation of a sequence ends at the
     * first stop token (kept in the completion) or after maxNewTokens. With logprobs, every step
     * also takes the log-prob of each drawn token (a full-vocabulary softmax per step, so off unless
     * asked: the trainer recomputes log-probs in its own forward).
     */
    public record Options(int maxNewTokens, float temperature, int topK, float topP, long seed, int[] stopTokens, boolean logprobs) {
        public Options {
            if (maxNewTokens < 1) throw new IllegalArgumentException("maxNewTokens must be ≥ 1, got " + maxNewTokens);
            if (!(temperature >= 0) || !Float.isFinite(temperature)) throw new IllegalArgumentException("temperature must be ≥ 0, got " + temperature);
            if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("topP must be in (0, 1], got " + topP);
            stopTokens = stopTokens == null ? new int[0] : stopTokens.clone();
        }

        /** Without log-probs. */
        public Options(int maxNewTokens, float temperature, int topK, float topP, long seed, int[] stopTokens) {
            this(maxNewTokens, temperature, topK, topP, seed, stopTokens, false);
        }

        /** These options with the drawn tokens' log-probs taken. */
        public Options withLogprobs() {
            return new Options(maxNewTokens, temperature, topK, topP, seed, stopTokens, true);
        }
    }

    /**
     * Generated tokens, the log-prob of each under the sampling distribution's temperature (null
     * unless {@link Options#logprobs()}), and whether a stop token ended it.
     */
    public record Completion(int[] tokens, float[] logprobs, boolean stopped) {}

    /** System property that turns graph replay off when "false". */
    public static final String GRAPHS_PROPERTY = "hintgrpo.cudaGraphs";

    private final Model model;
    private final boolean graphs;

    /** Replays decode steps as graphs where the backend can, unless {@value #GRAPHS_PROPERTY} is "false". */
    public Generator(Model model) {
        this(model, !"false".equalsIgnoreCase(System.getProperty(GRAPHS_PROPERTY, "true").trim()));
    }

    /** With graphs false every decode step launches its kernels one by one, whatever the backend. */
    public Generator(Model model, boolean graphs) {
        this.model = model;
        this.graphs = graphs;
    }

    /** K and V caches of every layer for b sequences of up to maxT positions: [b, kvHeads, maxT, headDim]. */
    final class Cache {
        final int b, maxT;
        final Buf[] k, v;
        Buf rowSeq, rowPos;
        int rows;

        Cache(int b, int maxT) {
            this.b = b;
            this.maxT = maxT;
            ModelConfig cfg = model.config;
            k = new Buf[cfg.numLayers()];
            v = new Buf[cfg.numLayers()];
            long size = (long) b * cfg.numKvHeads() * maxT * cfg.headDim();
            for (int l = 0; l < k.length; l++) {
                k[l] = model.kernels.allocF32(size);
                v[l] = model.kernels.allocF32(size);
            }
        }

        /** Which sequence and position each of the next writes' rows goes to (−1 = skip). */
        void target(int[] seq, int[] pos) {
            Kernels kk = model.kernels;
            if (rowSeq != null) { kk.free(rowSeq); kk.free(rowPos); }
            rows = seq.length;
            rowSeq = kk.allocI32(rows);
            rowPos = kk.allocI32(rows);
            kk.upload(rowSeq, seq);
            kk.upload(rowPos, pos);
        }

        /** The prefill's rows, as {@link #target} set them. */
        void write(int layer, Buf qkv) {
            write(layer, qkv, rowSeq, rowPos, rows);
        }

        void write(int layer, Buf qkv, Buf seq, Buf pos, int m) {
            ModelConfig cfg = model.config;
            model.kernels.kvCacheWrite(k[layer], v[layer], qkv, seq, pos, m, maxT, cfg.numHeads(), cfg.numKvHeads(), cfg.headDim());
        }

        void free() {
            Kernels kk = model.kernels;
            for (int l = 0; l < k.length; l++) { kk.free(k[l]); kk.free(v[l]); }
            if (rowSeq != null) { kk.free(rowSeq); kk.free(rowPos); }
        }
    }

    /** Draws with {@code (opt.seed, row in this batch, step)}: a prompt's tokens depend on where it sits in the batch. */
    public List<Completion> generate(List<Sequence> prompts, Options opt) {
        return generate(prompts, opt, null);
    }

    /**
     * With keys (one per prompt, e.g. {@link Kernels#streamKey}(seed, request)), prompt s draws from
     * its own stream (keys[s], its own step): its tokens do not depend on the batch it is in, its
     * position there, or the other prompts ({@link Kernels#sampleRows}). Null: as {@link #generate(List, Options)}.
     */
    public List<Completion> generate(List<Sequence> prompts, Options opt, long[] keys) {
        if (keys != null && keys.length != prompts.size())
            throw new IllegalArgumentException(keys.length + " stream keys for " + prompts.size() + " prompts");
        ModelConfig cfg = model.config;
        Kernels k = model.kernels;
        int b = prompts.size(), c = cfg.hiddenSize(), vocab = cfg.vocabSize();
        Batch batch = Batch.pack(cfg, prompts);
        int maxT = batch.t + opt.maxNewTokens();
        if (maxT > cfg.maxPositionEmbeddings())
            throw new IllegalArgumentException("prompt length " + batch.t + " + " + opt.maxNewTokens()
                    + " new tokens exceed max_position_embeddings " + cfg.maxPositionEmbeddings());
        model.freeActivations(); // a training step's arena would otherwise sit beside the cache until the prefill
        Cache cache = new Cache(b, maxT);
        Step step = new Step(b, cache, opt, keys);
        Kernels.Graph graph = null;
        model.holdWeights(); // the weights stay fixed until the last token: NT GEMMs read them prepared
        try {
            // prefill: the training forward over the prompts, storing k and v of every real row
            int[] seq = new int[batch.rows()], pos = new int[batch.rows()];
            for (int r = 0; r < seq.length; r++) {
                seq[r] = r / batch.t;
                pos[r] = r % batch.t < batch.lengths[r / batch.t] ? r % batch.t : -1;
            }
            cache.target(seq, pos);
            model.forwardLayers(batch, cache, false).free();
            int[] last = new int[b];
            for (int s = 0; s < b; s++) last[s] = s * batch.t + batch.lengths[s] - 1;
            Buf lastRows = k.allocI32(b);
            k.upload(lastRows, last);
            k.gatherRows(step.hidden, model.finalHidden(), lastRows, b, c);
            k.free(lastRows);

            boolean replay = graphs && k.supportsGraphs();
            int[] lengths = batch.lengths.clone();
            List<int[]> tokens = new ArrayList<>();
            List<float[]> logprobs = new ArrayList<>();
            boolean[] stopped = new boolean[b];
            int[] generated = new int[b];
            int[] stepOf = new int[b]; // every row draws its n-th token at step n
            for (int n = 0; n < opt.maxNewTokens(); n++) {
                Arrays.fill(stepOf, n);
                step.setInputs(lengths, stepOf);
                if (n == 0) {
                    step.head(0, b); // the prefill's last hidden rows
                } else {
                    // feed the tokens drawn at n - 1 at each sequence's next position, then draw
                    if (!replay) {
                        step.run();
                    } else {
                        if (graph == null) graph = k.captureGraph(step::run);
                        graph.launch();
                    }
                    for (int s = 0; s < b; s++) lengths[s]++;
                }
                int[] drawn = new int[b];
                k.download(step.tokens, drawn);
                tokens.add(drawn);
                if (opt.logprobs()) {
                    float[] lp = new float[b];
                    k.download(step.logprob, lp);
                    logprobs.add(lp);
                }
                boolean all = true;
                for (int s = 0; s < b; s++) {
                    if (stopped[s] || generated[s] == opt.maxNewTokens()) continue;
                    generated[s]++;
                    for (int t : opt.stopTokens()) if (drawn[s] == t) stopped[s] = true;
                    all &= stopped[s];
                }
                if (all) break;
            }
            List<Completion> out = new ArrayList<>();
            for (int s = 0; s < b; s++) {
                int[] t = new int[generated[s]];
                float[] l = opt.logprobs() ? new float[generated[s]] : null;
                for (int n = 0; n < generated[s]; n++) {
                    t[n] = tokens.get(n)[s];
                    if (l != null) l[n] = logprobs.get(n)[s];
                }
                out.add(new Completion(t, l, stopped[s]));
            }
            return out;
        } finally {
            if (graph != null) graph.close(); // before the buffers it uses go
            step.free();
            cache.free();
            model.releaseWeights();
        }
    }

    /** One generated token of a {@link DecodeBatch} row: its log-prob (NaN unless asked), and whether the row ended with it. */
    public record Token(int slot, int token, float logprob, boolean last, boolean stopped) {}

    /**
     * A decode batch that admits and retires rows between steps (continuous batching): a request
     * joins as soon as a slot is free instead of waiting for a running batch to end. Each slot has
     * its own KV cache rows (up to maxT positions), stream key, step count, token budget and stop
     * tokens; the sampling settings (temperature, top-k, top-p, log-probs) are the batch's. A row's
     * tokens depend only on its prompt, key and settings: the same alone, in any slot, beside any
     * other rows ({@link Kernels#sampleRows}; a test shows it).
     *
     * <p>{@link #admit} runs the prompt's prefill on its own (one forward over its rows, k and v into
     * the slot's cache) and draws its first token; {@link #step} feeds every active row's last token
     * through the layers at once and draws the next. Free slots ride along on the step (position 0
     * of their own cache; results ignored): the step's shape never changes, so on a backend with
     * graphs it is captured once and replayed. Not thread-safe: one caller drives it.
     */
    public final class DecodeBatch implements AutoCloseable {
        private final int capacity, maxT;
        private final Options opt;
        private final Cache cache;
        private final Step step;
        private final Kernels.Graph[] graph = new Kernels.Graph[1];
        private final boolean[] active;
        private final int[] lengths, generated, budget;
        private final int[][] stops;
        private final int[] drawn, at, stepOf;
        private final float[] logprobs;

        /** capacity rows of up to maxT positions (prompt + new tokens) each; opt's maxNewTokens, seed and stop tokens are unused (per row instead). */
        public DecodeBatch(int capacity, int maxT, Options opt) {
            if (capacity < 1) throw new IllegalArgumentException("capacity must be ≥ 1, got " + capacity);
            if (maxT < 2 || maxT > model.config.maxPositionEmbeddings())
                throw new IllegalArgumentException("maxT must be in [2, max_position_embeddings " + model.config.maxPositionEmbeddings() + "], got " + maxT);
            this.capacity = capacity;
            this.maxT = maxT;
            this.opt = opt;
            cache = new Cache(capacity, maxT);
            step = new Step(capacity, cache, opt, new long[capacity]);
            model.holdWeights(); // until close: the weights do not change while the batch decodes
            active = new boolean[capacity];
            lengths = new int[capacity];
            generated = new int[capacity];
            budget = new int[capacity];
            stops = new int[capacity][];
            drawn = new int[capacity];
            at = new int[capacity];
            stepOf = new int[capacity];
            logprobs = new float[capacity];
        }

        public int capacity() {
            return capacity;
        }

        /** Rows in use. */
        public int active() {
            int n = 0;
            for (boolean a : active) if (a) n++;
            return n;
        }

        /** A free slot, or −1. */
        public int freeSlot() {
            for (int s = 0; s < capacity; s++) if (!active[s]) return s;
            return -1;
        }

        /**
         * Starts a row in a free slot: prefill, then its first token (step 0 of stream key). The row
         * ends after maxNewTokens tokens or at the first of stopTokens (kept). Refused when no slot
         * is free or prompt + maxNewTokens exceeds maxT.
         */
        public Token admit(Sequence prompt, long key, int maxNewTokens, int[] stopTokens) {
            int slot = freeSlot();
            if (slot < 0) throw new IllegalStateException("no free slot (capacity " + capacity + ")");
            if (maxNewTokens < 1) throw new IllegalArgumentException("maxNewTokens must be ≥ 1, got " + maxNewTokens);
            int len = prompt.length();
            if (len + maxNewTokens > maxT)
                throw new IllegalArgumentException("prompt length " + len + " + " + maxNewTokens + " new tokens exceed the batch's " + maxT + " positions");
            Kernels k = model.kernels;
            ModelConfig cfg = model.config;
            int c = cfg.hiddenSize();
            Batch batch = Batch.pack(cfg, List.of(prompt));
            int[] seq = new int[len], pos = new int[len];
            for (int i = 0; i < len; i++) { seq[i] = slot; pos[i] = i; }
            cache.target(seq, pos);
            model.forwardLayers(batch, cache, false).free();
            Buf last = k.allocI32(1);
            k.upload(last, new int[]{len - 1});
            k.gatherRows(step.hidden.slice((long) slot * c, c), model.finalHidden(), last, 1, c);
            k.free(last);
            k.upload(step.keys.slice(2L * slot, 2), Kernels.keyWords(new long[]{key}));
            k.upload(step.steps.slice(slot, 1), new int[]{0});
            step.head(slot, 1); // the first token: the head on this row alone
            float lp = Float.NaN;
            if (opt.logprobs()) {
                float[] out = new float[1];
                k.download(step.logprob.slice(slot, 1), out);
                lp = out[0];
            }
            int[] t = new int[1];
            k.download(step.tokens.slice(slot, 1), t);
            active[slot] = true;
            lengths[slot] = len;
            generated[slot] = 1;
            budget[slot] = maxNewTokens;
            stops[slot] = stopTokens == null ? new int[0] : stopTokens.clone();
            return finish(slot, t[0], lp);
        }

        /** The row's end when token ends it (a stop token or the budget); frees the slot then. */
        private Token finish(int slot, int token, float lp) {
            boolean stopped = false;
            for (int st : stops[slot]) stopped |= token == st;
            boolean last = stopped || generated[slot] >= budget[slot];
            if (last) active[slot] = false;
            return new Token(slot, token, lp, last, stopped);
        }

        /** Frees a slot now (a cancelled request); its next tokens are never drawn. */
        public void retire(int slot) {
            active[slot] = false;
        }

        /** One token for every active row; empty when none is active. */
        public List<Token> step() {
            List<Token> out = new ArrayList<>();
            if (active() == 0) return out;
            Kernels k = model.kernels;
            for (int s = 0; s < capacity; s++) {
                // active rows feed their last token at position lengths + generated − 1; free ones sit at 0
                at[s] = active[s] ? lengths[s] + generated[s] - 1 : 0;
                stepOf[s] = active[s] ? generated[s] : 0;
            }
            step.setInputs(at, stepOf);
            if (graphs && k.supportsGraphs()) {
                if (graph[0] == null) graph[0] = k.captureGraph(step::run);
                graph[0].launch();
            } else {
                step.run();
            }
            k.download(step.tokens, drawn);
            if (opt.logprobs()) k.download(step.logprob, logprobs);
            for (int s = 0; s < capacity; s++) {
                if (!active[s]) continue;
                generated[s]++;
                out.add(finish(s, drawn[s], opt.logprobs() ? logprobs[s] : Float.NaN));
            }
            return out;
        }

        @Override
        public void close() {
            if (graph[0] != null) graph[0].close();
            step.free();
            cache.free();
            model.releaseWeights();
        }
    }

    /**
     * Buffers and ops of one decode step over b rows. Nothing here allocates, uploads or downloads
     * between {@link #setInputs} and the caller's downloads, so {@link #run} can be captured.
     */
    private final class Step {
        final int b;
        final Cache cache;
        final Options opt;
        final Buf hidden, logits, tokens, logprob, entropy, weights, banned, seqIds;
        // per-step inputs in one buffer, one upload: positions [b] | lengths [b] | each row's sampler step [b]
        final Buf inputs, positions, lengths, steps, stepIndex;
        final Buf keys; // per-row stream keys (I32 pairs), or null: one stream per batch row
        final int[] hostInputs;
        final int nBanned;
        final Model.LayerBufs[] bufs = new Model.LayerBufs[2];
        final Buf rstd, ln, qkv, att, xmid, ln2, rstd2, gateUp, act;
        final Buf lora; // the adapters' scratch when the model has LoRA (allocated here: a captured step cannot allocate)
        final Buf[] x = new Buf[2];

        Step(int b, Cache cache, Options opt, long[] rowKeys) {
            this.b = b;
            this.cache = cache;
            this.opt = opt;
            ModelConfig cfg = model.config;
            Kernels k = model.kernels;
            int c = cfg.hiddenSize(), inter = cfg.intermediateSize();
            // modality placeholders stand for feature rows: a completion can never contain them
            int[] placeholders = java.util.stream.IntStream.of(cfg.hasAudio() ? cfg.audioTokenId() : -1,
                    cfg.hasVision() ? cfg.visionTokenId() : -1).filter(id -> id >= 0).toArray();
            nBanned = placeholders.length;
            banned = k.allocI32(Math.max(1, nBanned));
            if (nBanned > 0) k.upload(banned.slice(0, nBanned), placeholders);
            seqIds = k.allocI32(b); // a decode step writes row s to sequence s's cache
            k.upload(seqIds, java.util.stream.IntStream.range(0, b).toArray());
            inputs = k.allocI32(3L * b);
            positions = inputs.slice(0, b);
            lengths = inputs.slice(b, b);
            steps = inputs.slice(2L * b, b);
            stepIndex = inputs.slice(2L * b, 1); // every row is at the same step here
            hostInputs = new int[3 * b];
            if (rowKeys != null) {
                keys = k.allocI32(2L * b);
                k.upload(keys, Kernels.keyWords(rowKeys));
            } else {
                keys = null;
            }
            k.fill(inputs, 0f); // rows that never get inputs (a DecodeBatch's free slots) read position 0
            hidden = k.allocF32((long) b * c);
            logits = k.allocF32((long) b * cfg.vocabSize());
            tokens = k.allocI32(b);
            logprob = k.allocF32(b);
            entropy = k.allocF32(b);
            weights = k.allocF32(b);
            rstd = k.allocF32(b);
            ln = k.allocF32((long) b * c);
            qkv = k.allocF32((long) b * cfg.qkvDim());
            att = k.allocF32((long) b * cfg.qDim());
            xmid = k.allocF32((long) b * c);
            ln2 = k.allocF32((long) b * c);
            rstd2 = k.allocF32(b);
            gateUp = k.allocF32(2L * b * inter);
            act = k.allocF32((long) b * inter);
            x[0] = k.allocF32((long) b * c);
            x[1] = k.allocF32((long) b * c);
            long loraPerRow = model.loraScratchPerRow();
            lora = loraPerRow > 0 ? k.allocF32(b * loraPerRow) : null;
            // layers alternate between the two residual buffers
            bufs[0] = new Model.LayerBufs(x[0], ln, rstd, qkv, att, xmid, ln2, rstd2, gateUp, act, x[1], lora);
            bufs[1] = new Model.LayerBufs(x[1], ln, rstd, qkv, att, xmid, ln2, rstd2, gateUp, act, x[0], lora);
        }

        /** Row s feeds its token at position pos[s] (its cache then holds pos[s] + 1) and draws with sampler step stepOf[s]. */
        void setInputs(int[] pos, int[] stepOf) {
            for (int s = 0; s < b; s++) {
                hostInputs[s] = pos[s];
                hostInputs[b + s] = pos[s] + 1;
                hostInputs[2 * b + s] = stepOf[s];
            }
            model.kernels.upload(inputs, hostInputs);
        }

        /** The step after the first: the last drawn tokens through the layers, then the head. */
        void run() {
            body();
            head(0, b);
        }

        /** One token per sequence through every layer with cache attention, ending in the final norm. */
        void body() {
            ModelConfig cfg = model.config;
            Kernels k = model.kernels;
            int c = cfg.hiddenSize();
            k.embedding(x[0], tokens, model.param("model.embed_tokens.weight"), b, c);
            for (int l = 0; l < cfg.numLayers(); l++) {
                model.layerForward(l, bufs[l % 2], b, positions, (layer, q, out) -> {
                    cache.write(layer, q, seqIds, positions, b);
                    k.decodeAttention(out, q, cache.k[layer], cache.v[layer], lengths, b, cache.maxT,
                            cfg.numHeads(), cfg.numKvHeads(), cfg.headDim());
                });
            }
            k.rmsnorm(hidden, rstd, x[cfg.numLayers() % 2], model.param("model.norm.weight"), b, c, cfg.rmsNormEps());
        }

        /**
         * Rows [r0, r0 + n) of the final-normed hidden: LM head, a draw into tokens, and, when asked,
         * the log-prob of each drawn token at the sampling temperature (1 when greedy) into logprob.
         * Without per-row keys only the whole batch (r0 = 0, n = b): its streams are the batch rows.
         */
        void head(int r0, int n) {
            ModelConfig cfg = model.config;
            Kernels k = model.kernels;
            int c = cfg.hiddenSize(), v = cfg.vocabSize();
            Buf lg = logits.slice((long) r0 * v, (long) n * v), tok = tokens.slice(r0, n);
            model.gemm(Gemm.NT, lg, hidden.slice((long) r0 * c, (long) n * c), model.param(model.lmHeadName()), null, n, v, c, false);
            if (keys != null)
                k.sampleRows(tok, lg, n, v, opt.temperature(), opt.topK(), opt.topP(), keys.slice(2L * r0, 2L * n), steps.slice(r0, n),
                        banned, nBanned);
            else
                k.sample(tok, lg, n, v, opt.temperature(), opt.topK(), opt.topP(), opt.seed(), stepIndex, banned, nBanned);
            if (!opt.logprobs()) return;
            float t = opt.temperature() == 0f ? 1f : opt.temperature();
            Buf w = weights.slice(r0, n);
            k.fill(w, 0f);
            k.crossEntropy(lg, logprob.slice(r0, n), entropy.slice(r0, n), null, tok, w, n, v, 1f / t, false);
        }

        void free() {
            Kernels k = model.kernels;
            for (Buf buf : Arrays.asList(banned, seqIds, inputs, hidden, logits, tokens, logprob, entropy, weights, rstd, ln,
                    qkv, att, xmid, ln2, rstd2, gateUp, act, x[0], x[1])) k.free(buf);
            if (keys != null) k.free(keys);
            if (lora != null) k.free(lora);
        }
    }
}
