package io.hintgrpo.engine.model;

import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.Kernels;

/**
 * The activation arena for one (batch, length) shape: one F32 and one I32 allocation, sliced into
 * what the forward saves for the backward and the backward's scratch. Sized once per shape and
 * reused across steps; a different shape gets a new arena.
 *
 * <p>With recompute, only each layer's input x[l] is kept: every layer's other saved tensors
 * (ln1 … act) share one slot, which the forward overwrites layer by layer and the backward refills
 * by running the layer's forward again just before its backward ({@link Model#setRecompute}).
 *
 * <p>A forward-only arena (log-probs, scoring, generation's prefill) keeps nothing for a backward:
 * the residual stream alternates between two buffers, every layer uses one slot, and the
 * backward's scratch (dx … dact) does not exist.
 */
final class Activations {
    final int b, t, m, chunkRows;
    final Buf[] x; // residual stream entering each layer, and after the last: [layers + 1][m, c]
    final Buf[] ln1, rstd1, qkv, att, lse, xmid, ln2, rstd2, gateUp, act;
    final Buf lnf, rstdf, logprob, entropy, weights, logZ, logits;
    final Buf dx, dln, dqkv, datt, dgateUp, dact;
    final Buf embedIds, positions, lengths, targets;
    final long loraPerRow;
    final boolean recompute;
    final boolean backward; // false: a forward-only arena (see the class comment)
    final Buf lora; // the adapters' scratch [m · loraPerRow] (forward and backward alike), null without LoRA
    private final Kernels k;
    private final Buf floats, ints;

    Activations(Kernels k, ModelConfig cfg, int b, int t, long loraPerRow, boolean recompute, boolean backward) {
        this.k = k;
        this.recompute = recompute;
        this.backward = backward;
        boolean oneSlot = recompute || !backward;
        this.b = b;
        this.t = t;
        this.m = b * t;
        this.loraPerRow = loraPerRow;
        int layers = cfg.numLayers(), c = cfg.hiddenSize(), inter = cfg.intermediateSize();
        chunkRows = chunkRows(cfg, m, k.logitChunkFloats());
        long mc = (long) m * c;
        floats = k.allocF32(floats(cfg, b, t, loraPerRow, recompute, backward, k.logitChunkFloats()));
        ints = k.allocI32(ints(b, t));
        long[] at = {0};
        x = new Buf[layers + 1];
        for (int l = 0; l <= layers; l++) x[l] = backward || l < 2 ? take(at, mc) : x[l % 2];
        ln1 = new Buf[layers]; rstd1 = new Buf[layers]; qkv = new Buf[layers]; att = new Buf[layers];
        lse = new Buf[layers]; xmid = new Buf[layers]; ln2 = new Buf[layers]; rstd2 = new Buf[layers];
        gateUp = new Buf[layers]; act = new Buf[layers];
        for (int l = 0; l < layers; l++) {
            if (oneSlot && l > 0) { // one slot for every layer
                ln1[l] = ln1[0]; rstd1[l] = rstd1[0]; qkv[l] = qkv[0]; att[l] = att[0]; lse[l] = lse[0];
                xmid[l] = xmid[0]; ln2[l] = ln2[0]; rstd2[l] = rstd2[0]; gateUp[l] = gateUp[0]; act[l] = act[0];
                continue;
            }
            ln1[l] = take(at, mc);
            rstd1[l] = take(at, m);
            qkv[l] = take(at, (long) m * cfg.qkvDim());
            att[l] = take(at, (long) m * cfg.qDim());
            lse[l] = take(at, (long) b * cfg.numHeads() * t);
            xmid[l] = take(at, mc);
            ln2[l] = take(at, mc);
            rstd2[l] = take(at, m);
            gateUp[l] = take(at, 2L * m * inter);
            act[l] = take(at, (long) m * inter);
        }
        lnf = take(at, mc);
        rstdf = take(at, m);
        logprob = take(at, m);
        entropy = take(at, m);
        weights = take(at, m);
        logZ = take(at, m);
        logits = take(at, (long) chunkRows * cfg.vocabSize());
        dx = backward ? take(at, mc) : null;
        dln = backward ? take(at, mc) : null;
        dqkv = backward ? take(at, (long) m * cfg.qkvDim()) : null;
        datt = backward ? take(at, (long) m * cfg.qDim()) : null;
        dgateUp = backward ? take(at, 2L * m * inter) : null;
        dact = backward ? take(at, (long) m * inter) : null;
        lora = loraPerRow > 0 ? take(at, m * loraPerRow) : null;
        embedIds = ints.slice(0, m);
        positions = ints.slice(m, m);
        targets = ints.slice(2L * m, m);
        lengths = ints.slice(3L * m, b);
    }

    /** Rows of LM-head logits materialised at once: full-vocabulary logits for a whole batch never exist. */
    static int chunkRows(ModelConfig cfg, int m, long logitChunkFloats) {
        return (int) Math.max(1, Math.min(m, logitChunkFloats / cfg.vocabSize()));
    }

    /** Floats of the arena's F32 allocation for b × t rows (what {@link MemoryPlan} counts). */
    static long floats(ModelConfig cfg, int b, int t, long loraPerRow, boolean recompute, boolean backward, long logitChunkFloats) {
        long m = (long) b * t, mc = m * cfg.hiddenSize(), inter = cfg.intermediateSize();
        int layers = cfg.numLayers();
        long head = mc + 5 * m /* lnf; rstdf, logprob, entropy, weights, logZ */ + (long) chunkRows(cfg, (int) m, logitChunkFloats) * cfg.vocabSize();
        if (!backward) return 2 * mc + perLayerFloats(cfg, b, t) + head + m * loraPerRow;
        return (layers + 1) * mc + (recompute ? 1 : layers) * perLayerFloats(cfg, b, t) + head
                + 2 * mc + m * cfg.qkvDim() + m * cfg.qDim() + 3 * m * inter /* dx, dln, dqkv, datt, dgateUp, dact */
                + m * loraPerRow;
    }

    /** Ints of the arena's I32 allocation: embedding ids, positions, targets [b·t] and lengths [b]. */
    static long ints(int b, int t) {
        return 3L * b * t + b;
    }

    /** Floats one layer saves for its backward besides its input (ln1, rstd1, qkv, att, lse, xmid, ln2, rstd2, gateUp, act). */
    static long perLayerFloats(ModelConfig cfg, int b, int t) {
        long m = (long) b * t, mc = m * cfg.hiddenSize(), inter = cfg.intermediateSize();
        return mc /* ln1 */ + m /* rstd1 */ + m * cfg.qkvDim() + m * cfg.qDim() + (long) b * cfg.numHeads() * t /* lse */
                + mc /* xmid */ + mc /* ln2 */ + m /* rstd2 */ + 2L * m * inter + m * inter;
    }

    Model.LayerBufs layer(int l) {
        return new Model.LayerBufs(x[l], ln1[l], rstd1[l], qkv[l], att[l], xmid[l], ln2[l], rstd2[l], gateUp[l], act[l], x[l + 1], lora);
    }

    private Buf take(long[] at, long n) {
        Buf s = floats.slice(at[0], n);
        at[0] += n;
        return s;
    }

    /** Floats of the arena's F32 allocation (what the memory plan counts). */
    long floatsLength() {
        return floats.length;
    }

    void free() {
        k.free(floats);
        k.free(ints);
    }
}
