package io.hintgrpo.trainer.rl;

import java.util.List;

/**
 * The host side of the GRPO loss: turns a minibatch of rollouts, packed as the engine packs rows
 * ({@code Batch}: row i of width t, right-padded; position p holds the log-prob of predicting
 * token p + 1), into the per-token {@code advantage} and {@code scale} arrays [rows·t] of
 * {@code Kernels.grpoPolicyLoss}. A row is prompt, hint (the forced discrimination prefix of a
 * Hint-GRPO re-roll; empty otherwise), completion, padding. Only positions that predict a
 * completion token carry loss; prompt, hint and padding positions get scale 0 (and advantage 0).
 * With |o_i| the completion length of row i and G' the number of rows, scale is
 * <ul>
 *   <li>token-mean: 1 / Σ_i |o_i| (the default);</li>
 *   <li>sequence-mean: 1 / (G' · |o_i|);</li>
 *   <li>Dr.GRPO: 1 / (G' · maxCompletionLength);</li>
 * </ul>
 * so Σ_t loss[t] of the kernel is the minibatch loss and its weight[t] the LM-head backward's.
 */
public final class GrpoObjective {
    private GrpoObjective() {}

    public enum Aggregation { TOKEN_MEAN, SEQUENCE_MEAN, DR_GRPO }

    /** One packed row: its prompt, hint and completion lengths (tokens) and its rollout's advantage. */
    public record Row(int promptLength, int hintLength, int completionLength, float advantage) {
        public Row {
            if (promptLength < 0 || hintLength < 0 || completionLength < 0 || promptLength + hintLength < 1)
                throw new IllegalArgumentException("row lengths prompt " + promptLength + ", hint " + hintLength
                        + ", completion " + completionLength + ": need a non-empty prompt + hint and no negatives");
        }

        /** First position whose target is a completion token (the last prompt or hint position). */
        public int firstLossPosition() {
            return promptLength + hintLength - 1;
        }

        public int length() {
            return promptLength + hintLength + completionLength;
        }
    }

    /** The kernel inputs, each [rows·t], and Σ |o_i| (the number of loss-bearing positions). */
    public record TokenInputs(float[] advantage, float[] scale, int completionTokens) {}

    public static TokenInputs tokenInputs(List<Row> rows, int t, Aggregation aggregation, int maxCompletionLength) {
        int b = rows.size();
        long total = 0;
        for (Row r : rows) {
            if (r.length() > t) throw new IllegalArgumentException("a row of " + r.length() + " tokens in a batch of width " + t);
            if (aggregation == Aggregation.DR_GRPO && r.completionLength() > maxCompletionLength)
                throw new IllegalArgumentException("completion of " + r.completionLength() + " tokens > maxCompletionLength "
                        + maxCompletionLength);
            total += r.completionLength();
        }
        float[] advantage = new float[Math.multiplyExact(b, t)], scale = new float[b * t];
        for (int i = 0; i < b; i++) {
            Row r = rows.get(i);
            if (r.completionLength() == 0) continue;
            double denominator = switch (aggregation) {
                case TOKEN_MEAN -> total;
                case SEQUENCE_MEAN -> (double) b * r.completionLength();
                case DR_GRPO -> (double) b * maxCompletionLength;
            };
            float s = (float) (1.0 / denominator);
            int from = i * t + r.firstLossPosition();
            for (int p = from; p < from + r.completionLength(); p++) {
                advantage[p] = r.advantage();
                scale[p] = s;
            }
        }
        return new TokenInputs(advantage, scale, Math.toIntExact(total));
    }
}
