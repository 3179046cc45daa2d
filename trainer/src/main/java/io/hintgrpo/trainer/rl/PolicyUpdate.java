package io.hintgrpo.trainer.rl;

import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.model.AdamW;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.Sequence;

import java.util.ArrayList;
import java.util.List;

/**
 * The optimisation half of a GRPO step: the rollout batch (prompt ++ hint ++ completion per row)
 * is split into minibatches; β > 0 computes the reference log-probs once per minibatch (β = 0
 * never runs the reference; with LoRA the reference is the policy with its adapters off); then
 * mu passes over the minibatches, one optimizer step each. In every forward the fused GRPO loss
 * kernel turns each LM-head chunk's log-probs into that chunk's per-token weights before its
 * backward ({@link Model.LossHead}); on the first pass logp_old is
 * that same forward's logp, detached, so ρ = 1 exactly there (DESIGN.md); with several
 * minibatches one no-grad forward per minibatch before the first update takes logp_old under θ
 * at the start of the step. Log-probs, advantages and scales stay on the backend for the whole step.
 */
public final class PolicyUpdate {
    private PolicyUpdate() {}

    /** Means over the optimizer steps (loss, gradient norm) and over loss-bearing tokens (kl, clip, entropy). */
    public record Stats(double loss, double gradNorm, double kl, double clipFraction, double entropy, int lossTokens,
                 int optimizerSteps, int nonFiniteSteps) {}

    /** One row of the rollout batch: the sequence to train on and its objective row. */
    public record Row(Sequence sequence, GrpoObjective.Row objective) {}

    /** The rows of groups with their advantages (one per rollout, group order); masked truncations get no loss. */
    public static List<Row> rows(List<Rollouts.Group> groups, float[] advantages, boolean maskTruncated) {
        List<Row> rows = new ArrayList<>();
        int i = 0;
        for (Rollouts.Group g : groups) {
            Sequence p = g.prompt.sequence();
            for (Rollouts.Rollout r : g.rollouts) {
                int completion = maskTruncated && r.truncated() ? 0 : r.tokens().length;
                rows.add(new Row(Rollouts.row(p, r.hint(), r.tokens()),
                        new GrpoObjective.Row(p.ids().length, r.hint().length, completion, advantages[i++])));
            }
        }
        return rows;
    }

    /**
     * One minibatch's inputs, on the backend for all of the step: the packed rows, the per-token
     * advantage and scale (uploaded once), the reference log-probs (β > 0), and logp_old, set on
     * the first pass from that pass's log-probs; none of them travels to the host and back.
     */
    private static final class Minibatch implements AutoCloseable {
        final Batch batch;
        final GrpoObjective.TokenInputs inputs;
        final Buf advantage, scale, ref, logpOld, loss, clipped, kl;
        boolean haveOld;
        private final Kernels k;

        Minibatch(Kernels k, Batch batch, GrpoObjective.TokenInputs inputs, Model reference, float temperature) {
            this.k = k;
            this.batch = batch;
            this.inputs = inputs;
            int m = batch.rows();
            advantage = upload(k, inputs.advantage());
            scale = upload(k, inputs.scale());
            logpOld = k.allocF32(m);
            loss = k.allocF32(m);
            clipped = k.allocF32(m);
            kl = k.allocF32(m);
            if (reference == null) {
                ref = null;
            } else {
                ref = k.allocF32(m);
                referenceLogprobs(reference, batch, temperature, ref);
            }
        }

        @Override
        public void close() {
            for (Buf b : new Buf[]{advantage, scale, ref, logpOld, loss, clipped, kl}) if (b != null) k.free(b);
        }
    }

    /**
     * The reference policy's log-probs: a model of its own, or, with LoRA, the policy itself with
     * its adapters off (its frozen base, exactly the starting model).
     */
    private static void referenceLogprobs(Model reference, Batch batch, float temperature, Buf out) {
        if (reference.lora() == null) {
            reference.logprobs(batch, temperature, out);
            return;
        }
        reference.setAdaptersEnabled(false);
        try {
            reference.logprobs(batch, temperature, out);
        } finally {
            reference.setAdaptersEnabled(true);
        }
    }

    public static Stats apply(Model policy, Model reference, AdamW opt, List<Row> rows, GrpoConfig cfg, float lr) {
        GrpoConfig.Update u = cfg.update();
        if (u.beta() > 0 && reference == null) throw new IllegalArgumentException("beta > 0 needs a reference model");
        float temperature = cfg.sampling().temperature();
        int n = rows.size(), count = Math.min(u.minibatches(), n);
        Kernels k = policy.kernels;
        List<Minibatch> minibatches = new ArrayList<>();
        try {
            for (int i = 0; i < count; i++) {
                List<Row> part = rows.subList(n * i / count, n * (i + 1) / count);
                Batch batch = Batch.pack(policy.config, part.stream().map(Row::sequence).toList());
                GrpoObjective.TokenInputs inputs = GrpoObjective.tokenInputs(part.stream().map(Row::objective).toList(), batch.t,
                        u.aggregation(), cfg.rollout().maxCompletionTokens());
                minibatches.add(new Minibatch(k, batch, inputs, u.beta() > 0 ? reference : null, temperature));
            }
            // logp_old is the policy that sampled the rollouts (θ at the start of the step). With one
            // minibatch that is its first pass's own forward; with several, the later minibatches' first
            // passes come after earlier updates, so every minibatch's logp_old is taken now, before any
            if (minibatches.size() > 1)
                for (Minibatch mb : minibatches) {
                    policy.logprobs(mb.batch, temperature, mb.logpOld);
                    mb.haveOld = true;
                }
            double loss = 0, norm = 0, kl = 0, clipped = 0, entropy = 0;
            int tokens = 0, steps = 0, nonFinite = 0;
            opt.setLearningRate(lr);
            for (int pass = 0; pass < u.mu(); pass++) {
                for (Minibatch mb : minibatches) {
                    int m = mb.batch.rows();
                    policy.zeroGrad();
                    Model.ForwardResult fr = lossPass(policy, mb, temperature, u);
                    float[] l = download(k, mb.loss, m), c = download(k, mb.clipped, m), q = download(k, mb.kl, m);
                    double stepLoss = 0;
                    for (int t = 0; t < m; t++) {
                        stepLoss += l[t];
                        if (mb.inputs.scale()[t] == 0f) continue;
                        tokens++;
                        kl += q[t];
                        clipped += c[t];
                        entropy += fr.entropy()[t];
                    }
                    double g = Double.isFinite(stepLoss) ? opt.step(cfg.optimizer().maxGradNorm()) : Double.NaN;
                    if (!Double.isFinite(stepLoss) || !Double.isFinite(g)) {
                        nonFinite++;
                    } else {
                        loss += stepLoss;
                        norm += g;
                        steps++;
                    }
                }
            }
            return new Stats(steps == 0 ? Double.NaN : loss / steps, steps == 0 ? Double.NaN : norm / steps,
                    tokens == 0 ? 0 : kl / tokens, tokens == 0 ? 0 : clipped / tokens, tokens == 0 ? 0 : entropy / tokens,
                    tokens, steps, nonFinite);
        } finally {
            for (Minibatch mb : minibatches) mb.close();
        }
    }

    /**
     * The policy's forward and backward of one minibatch with the GRPO loss, chunk by chunk of the
     * LM head: the chunk's log-probs, then (on the first pass) logp_old from them, detached, the
     * fused loss kernel turning them into the chunk's token weights, then the chunk's backward on
     * the same logits.
     */
    private static Model.ForwardResult lossPass(Model policy, Minibatch mb, float temperature, GrpoConfig.Update u) {
        Kernels k = policy.kernels;
        Model.LossHead head = policy.lossHead(mb.batch, temperature);
        for (int c = 0; c < head.chunks(); c++) {
            head.forward(c);
            int r0 = head.rowStart(c), n = head.rows(c);
            Buf logp = head.logprob().slice(r0, n), old = mb.logpOld.slice(r0, n);
            if (!mb.haveOld) k.copy(old, logp);
            k.grpoPolicyLoss(mb.loss.slice(r0, n), head.weights().slice(r0, n), mb.clipped.slice(r0, n), mb.kl.slice(r0, n), logp,
                    old, mb.ref == null ? null : mb.ref.slice(r0, n), mb.advantage.slice(r0, n), mb.scale.slice(r0, n), n,
                    u.epsLow(), u.epsHigh(), u.beta());
            head.backward(c);
        }
        mb.haveOld = true;
        return head.finish();
    }

    private static Buf upload(Kernels k, float[] host) {
        Buf b = k.allocF32(host.length);
        k.upload(b, host);
        return b;
    }

    private static float[] download(Kernels k, Buf b, int n) {
        float[] host = new float[n];
        k.download(b, host);
        return host;
    }
}
