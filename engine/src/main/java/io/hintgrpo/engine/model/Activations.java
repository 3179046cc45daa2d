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
    final Buf lora; // the adapters' scratch [m · loraPerRow] (forward and backward alike), null without LoRA
    private final Kernels k;
    private final Buf floats, ints;

    Activations(Kernels k, ModelConfig cfg, int b, int t, long loraPerRow, boolean recompute) {
        this.k = k;
        this.recompute = recompute;
        this.b = b;
        this.t = t;
        this.m = b * t;
        this.loraPerRow = loraPerRow;
        int layers = cfg.numLayers(), c = cfg.hiddenSize(), inter = cfg.intermediateSize();
        // rows of LM-head logits materialised at once: full-vocabulary logits for a whole batch never exist
        chunkRows = (int) Math.max(1, Math.min(m, k.logitChunkFloats() / cfg.vocabSize()));
        long mc = (long) m * c;
        long perLayer = perLayerFloats(cfg, b, t);
        long total = (layers + 1) * mc + (recompute ? 1 : layers) * perLayer
                + mc + m + m + m + m + m /* lnf, rstdf, logprob, entropy, weights, logZ */
                + (long) chunkRows * cfg.vocabSize()
                + mc + mc + (long) m * cfg.qkvDim() + (long) m * cfg.qDim() + 2L * m * inter + (long) m * inter
                + m * loraPerRow;
        floats = k.allocF32(total);
        ints = k.allocI32(3L * m + b);
        long[] at = {0};
        x = new Buf[layers + 1];
        for (int l = 0; l <= layers; l++) x[l] = take(at, mc);
        ln1 = new Buf[layers]; rstd1 = new Buf[layers]; qkv = new Buf[layers]; att = new Buf[layers];
        lse = new Buf[layers]; xmid = new Buf[layers]; ln2 = new Buf[layers]; rstd2 = new Buf[layers];
        gateUp = new Buf[layers]; act = new Buf[layers];
        for (int l = 0; l < layers; l++) {
            if (recompute && l > 0) { // one slot for every layer
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
        dx = take(at, mc);
        dln = take(at, mc);
        dqkv = take(at, (long) m * cfg.qkvDim());
        datt = take(at, (long) m * cfg.qDim());
        dgateUp = take(at, 2L * m * inter);
        dact = take(at, (long) m * inter);
        lora = loraPerRow > 0 ? take(at, m * loraPerRow) : null;
        embedIds = ints.slice(0, m);
        positions = ints.slice(m, m);
        targets = ints.slice(2L * m, m);
        lengths = ints.slice(3L * m, b);
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
