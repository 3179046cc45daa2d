package io.hintgrpo.trainer.rl;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.trainer.sft.LrSchedule;

import java.util.Locale;

/**
 * Everything that shapes a GRPO / Hint-GRPO run (DESIGN.md, GRPO). One step draws
 * promptsPerStep prompts, samples groupSize completions of each at the temperature, scores them,
 * re-rolls hard groups with the ground-truth discrimination prefix when hinting is on, computes
 * group advantages and makes mu passes of minibatches optimizer steps over the rollout batch.
 *
 * @param advantage       "std": (r − mean) / (std + 1e-4), population std; "mean": r − mean (Dr.GRPO)
 * @param aggregation     "token-mean" (default), "sequence-mean" or "dr-grpo" (see {@link GrpoObjective})
 * @param maskTruncated   completions cut off at maxCompletionTokens get zero loss weight
 * @param hint            "none" (plain GRPO), "replace" (a hinted group replaces the hard one) or "mix"
 *                        (mixHinted of the G rollouts are re-drawn with the hint, the rest stay free)
 * @param hardRule        "no-correct-polarity" (default), "max-reward-below" (hardTau) or "all-equal"
 * @param hintRateStart   probability that a hard group is hinted at step 0, going linearly to
 *                        hintRateEnd at the last step (a decaying schedule weans the policy off hints)
 * @param dynamicSampling DAPO: groups whose rewards are all equal are dropped and the batch refilled
 *                        with fresh prompts, up to maxRefillRounds rounds
 * @param maxCompletions  the generation budget: the run stops once this many completions were
 *                        generated (hint re-rolls and refills included); 0 = steps only
 */
public record GrpoConfig(int steps, int promptsPerStep, int groupSize, int maxCompletionTokens, float temperature, int topK,
                         float topP, float lr, int warmupSteps, float minLrRatio, float weightDecay, float beta1, float beta2,
                         float eps, float maxGradNorm, float epsLow, float epsHigh, float beta, String advantage,
                         String aggregation, int mu, int minibatches, boolean maskTruncated,
                         double formatWeight, double polarityWeight, double scoreWeight, double consistencyWeight,
                         double scoreDelta, String hint, String hardRule, double hardTau, double hintRateStart,
                         double hintRateEnd, int mixHinted, boolean dynamicSampling, int maxRefillRounds,
                         long maxCompletions, int evalEvery, int evalSamples, int checkpointEvery, int keepLast, long seed,
                         @com.fasterxml.jackson.annotation.JsonProperty("max_bad_steps_in_a_row") int maxBadStepsInARow) {

    public static GrpoConfig defaults() {
        return new GrpoConfig(40, 8, 8, 112, 1f, 0, 1f, 1e-4f, 0, 1f, 0f, 0.9f, 0.99f, 1e-8f, 1f,
                0.2f, 0.2f, 0.04f, "std", "token-mean", 1, 1, false,
                0.2, 0.4, 1.0, 0.0, 2.0, "replace", "no-correct-polarity", 0.5, 1.0, 1.0, 0, false, 3,
                0, 10, 64, 10, 2, 1, 5);
    }

    public GrpoConfig {
        positive("steps", steps);
        positive("prompts_per_step", promptsPerStep);
        positive("max_completion_tokens", maxCompletionTokens);
        positive("mu", mu);
        positive("minibatches", minibatches);
        positive("eval_every", evalEvery);
        positive("checkpoint_every", checkpointEvery);
        positive("keep_last", keepLast);
        positive("max_bad_steps_in_a_row", maxBadStepsInARow);
        if (groupSize < 2) bad("group_size must be ≥ 2 (advantages compare rollouts of one prompt), got " + groupSize);
        if (minibatches > promptsPerStep * groupSize)
            bad("minibatches " + minibatches + " > rollouts per step " + promptsPerStep * groupSize);
        if (!(temperature > 0) || !Float.isFinite(temperature)) bad("temperature must be > 0 (rollouts are sampled), got " + temperature);
        if (!(topP > 0 && topP <= 1)) bad("top_p must be in (0, 1], got " + topP);
        if (!(lr > 0) || !Float.isFinite(lr)) bad("lr must be a positive number, got " + lr);
        if (warmupSteps < 0) bad("warmup_steps must be ≥ 0, got " + warmupSteps);
        if (!(minLrRatio >= 0 && minLrRatio <= 1)) bad("min_lr_ratio must be in [0, 1], got " + minLrRatio);
        if (!(weightDecay >= 0)) bad("weight_decay must be ≥ 0, got " + weightDecay);
        if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) bad("betas must be in [0, 1), got " + beta1 + ", " + beta2);
        if (!(eps > 0)) bad("eps must be positive, got " + eps);
        if (!(epsLow >= 0 && epsLow < 1)) bad("eps_low must be in [0, 1), got " + epsLow);
        if (!(epsHigh >= 0)) bad("eps_high must be ≥ 0, got " + epsHigh);
        if (!(beta >= 0) || !Float.isFinite(beta)) bad("beta must be ≥ 0, got " + beta);
        oneOf("advantage", advantage, "std", "mean");
        oneOf("aggregation", aggregation, "token-mean", "sequence-mean", "dr-grpo");
        oneOf("hint", hint, "none", "replace", "mix");
        oneOf("hard_rule", hardRule, "no-correct-polarity", "max-reward-below", "all-equal");
        for (double w : new double[]{formatWeight, polarityWeight, scoreWeight, consistencyWeight})
            if (!Double.isFinite(w)) bad("reward weights must be finite numbers");
        if (!(scoreDelta > 0)) bad("score_delta must be > 0, got " + scoreDelta);
        if (!(hintRateStart >= 0 && hintRateStart <= 1) || !(hintRateEnd >= 0 && hintRateEnd <= 1))
            bad("hint rates must be in [0, 1], got " + hintRateStart + " → " + hintRateEnd);
        if (mixHinted < 0 || mixHinted > groupSize) bad("mix_hinted must be in [0, group_size] (0 = half), got " + mixHinted);
        if (maxRefillRounds < 0) bad("max_refill_rounds must be ≥ 0, got " + maxRefillRounds);
        if (maxCompletions < 0) bad("max_completions must be ≥ 0 (0 = no budget), got " + maxCompletions);
        if (evalSamples < 0) bad("eval_samples must be ≥ 0, got " + evalSamples);
    }

    /**
     * This config with some settings changed, named as in config files (snake_case keys, e.g.
     * {@code Map.of("steps", 20, "hint", "mix")}); validated like a config file.
     */
    public GrpoConfig with(java.util.Map<String, Object> settings) {
        return io.hintgrpo.trainer.config.Configs.merge(GrpoConfig.class, this, null, settings, "grpo settings");
    }

    public GrpoObjective.Aggregation aggregationMode() {
        return switch (aggregation) {
            case "sequence-mean" -> GrpoObjective.Aggregation.SEQUENCE_MEAN;
            case "dr-grpo" -> GrpoObjective.Aggregation.DR_GRPO;
            default -> GrpoObjective.Aggregation.TOKEN_MEAN;
        };
    }

    public boolean hinting() {
        return !hint.equals("none");
    }

    /** Hinted rollouts in a mixed group. */
    public int hintedPerGroup() {
        if (hint.equals("replace")) return groupSize;
        return mixHinted == 0 ? groupSize / 2 : mixHinted;
    }

    /** The probability that a hard group is hinted at a step (0-based), linear from start to end over the run. */
    public double hintRate(int step) {
        if (steps == 1) return hintRateStart;
        return hintRateStart + (hintRateEnd - hintRateStart) * step / (double) (steps - 1);
    }

    public LrSchedule schedule() {
        return new LrSchedule(lr, warmupSteps, steps, minLrRatio);
    }

    /** A short name of the method this config runs, for logs and tables. */
    public String methodName() {
        if (hinting()) return "Hint-GRPO" + (hint.equals("mix") ? " (mix)" : "");
        return dynamicSampling ? "GRPO + dynamic sampling" : "GRPO";
    }

    private static void positive(String field, int v) {
        if (v < 1) bad(field + " must be ≥ 1, got " + v);
    }

    private static void oneOf(String field, String v, String... allowed) {
        for (String a : allowed) if (a.equals(v)) return;
        bad(field + " must be one of " + String.join(", ", allowed) + ", got " + (v == null ? "nothing" : "\"" + v + "\""));
    }

    private static void bad(String reason) {
        throw new BadInputException("grpo config", reason);
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "%s: %d steps × %d prompts × G %d", methodName(), steps, promptsPerStep, groupSize);
    }
}
