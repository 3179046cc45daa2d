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
 * never runs the reference); then mu passes over the minibatches, one optimizer step each. In
 * every forward the fused GRPO loss kernel turns this forward's log-probs into the LM-head
 * backward's per-token weights ({@link Model.TokenWeights}); on the first pass logp_old is that
 * same forward's logp, detached, so ρ = 1 exactly there (DESIGN.md).
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

    private static final class Minibatch {
        final Batch batch;
        final GrpoObjective.TokenInputs inputs;
        final float[] ref;
        float[] logpOld;

        Minibatch(Batch batch, GrpoObjective.TokenInputs inputs, float[] ref) {
            this.batch = batch;
            this.inputs = inputs;
            this.ref = ref;
        }
    }

    public static Stats apply(Model policy, Model reference, AdamW opt, List<Row> rows, GrpoConfig cfg, float lr) {
        GrpoConfig.Update u = cfg.update();
        if (u.beta() > 0 && reference == null) throw new IllegalArgumentException("beta > 0 needs a reference model");
        float temperature = cfg.sampling().temperature();
        int n = rows.size(), count = Math.min(u.minibatches(), n);
        List<Minibatch> minibatches = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            List<Row> part = rows.subList(n * i / count, n * (i + 1) / count);
            Batch batch = Batch.pack(policy.config, part.stream().map(Row::sequence).toList());
            GrpoObjective.TokenInputs inputs = GrpoObjective.tokenInputs(part.stream().map(Row::objective).toList(), batch.t,
                    u.aggregation(), cfg.rollout().maxCompletionTokens());
            float[] ref = u.beta() > 0 ? reference.forward(batch, temperature).logprobs() : null;
            minibatches.add(new Minibatch(batch, inputs, ref));
        }
        Kernels k = policy.kernels;
        double loss = 0, norm = 0, kl = 0, clipped = 0, entropy = 0;
        int tokens = 0, steps = 0, nonFinite = 0;
        opt.setLearningRate(lr);
        for (int pass = 0; pass < u.mu(); pass++) {
            for (Minibatch mb : minibatches) {
                int m = mb.batch.rows();
                boolean first = mb.logpOld == null;
                Buf adv = upload(k, mb.inputs.advantage()), scale = upload(k, mb.inputs.scale());
                Buf ref = mb.ref == null ? null : upload(k, mb.ref);
                Buf old = first ? k.allocF32(m) : upload(k, mb.logpOld);
                Buf lossOut = k.allocF32(m), clipOut = k.allocF32(m), klOut = k.allocF32(m);
                try {
                    policy.zeroGrad();
                    Model.ForwardResult fr = policy.forwardBackward(mb.batch, temperature, (logprob, weights) -> {
                        if (first) k.copy(old, logprob);
                        k.grpoPolicyLoss(lossOut, weights, clipOut, klOut, logprob, old, ref, adv, scale, m,
                                u.epsLow(), u.epsHigh(), u.beta());
                    });
                    float[] l = download(k, lossOut, m), c = download(k, clipOut, m), q = download(k, klOut, m);
                    if (first) mb.logpOld = download(k, old, m);
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
                } finally {
                    for (Buf b : new Buf[]{adv, scale, ref, old, lossOut, clipOut, klOut}) if (b != null) k.free(b);
                }
            }
        }
        return new Stats(steps == 0 ? Double.NaN : loss / steps, steps == 0 ? Double.NaN : norm / steps,
                tokens == 0 ? 0 : kl / tokens, tokens == 0 ? 0 : clipped / tokens, tokens == 0 ? 0 : entropy / tokens,
                tokens, steps, nonFinite);
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
