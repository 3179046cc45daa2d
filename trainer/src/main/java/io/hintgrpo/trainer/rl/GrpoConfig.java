package io.hintgrpo.trainer.rl;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.trainer.config.Part;
import io.hintgrpo.trainer.config.Setting;
import io.hintgrpo.trainer.config.Settings;
import io.hintgrpo.trainer.loop.LoopSettings;
import io.hintgrpo.trainer.loop.LoraSettings;
import io.hintgrpo.trainer.loop.OptimizerSettings;
import io.hintgrpo.trainer.loop.TrainingSettings;
import io.hintgrpo.trainer.rl.GrpoObjective.Aggregation;

import java.util.Locale;
import java.util.Map;

/**
 * Everything that shapes a GRPO / Hint-GRPO run (DESIGN.md, GRPO), in named parts. One step draws
 * prompts_per_step prompts, samples group_size completions of each, scores them, re-rolls hard
 * groups with the ground-truth discrimination prefix when hinting is on, computes group advantages
 * and makes mu passes of minibatches optimizer steps over the rollout batch. Keys are flat
 * ({@link Settings}); docs/config.md lists them all.
 */
public record GrpoConfig(@Part LoopSettings loop,
                         @Part OptimizerSettings optimizer,
                         @Part LoraSettings lora,
                         @Part Rollout rollout,
                         @Part Sampling sampling,
                         @Part Update update,
                         @Part RewardWeights rewards,
                         @Part Hints hints) implements TrainingSettings {

    /** How the group advantage is normalised. */
    public enum Advantage { STD, MEAN }

    /** What happens to hard groups. */
    public enum HintMode { NONE, REPLACE, MIX }

    /** Which groups are hard (judged on their free rollouts). */
    public enum HardRule { NO_CORRECT_POLARITY, MAX_REWARD_BELOW, ALL_EQUAL }

    /** Which rollouts a step draws, and the generation budget. */
    public record Rollout(
            @Setting(value = "8", doc = "prompts (groups) per step") int promptsPerStep,
            @Setting(value = "8", doc = "rollouts per prompt, G ≥ 2") int groupSize,
            @Setting(value = "112", doc = "longest response in tokens, hint included; longer completions are truncated") int maxCompletionTokens,
            @Setting(value = "0", doc = "generation budget: stop after the step at which this many completions were generated, hint re-rolls and refills included (0 = steps only)") long maxCompletions,
            @Setting(value = "false", doc = "DAPO dynamic sampling: drop groups whose rewards are all equal and refill with fresh prompts") boolean dynamicSampling,
            @Setting(value = "3", doc = "refill rounds of dynamic sampling per step") int maxRefillRounds) {
        public Rollout {
            if (promptsPerStep < 1) bad("prompts_per_step must be ≥ 1, got " + promptsPerStep);
            if (groupSize < 2) bad("group_size must be ≥ 2 (advantages compare rollouts of one prompt), got " + groupSize);
            if (maxCompletionTokens < 1) bad("max_completion_tokens must be ≥ 1, got " + maxCompletionTokens);
            if (maxCompletions < 0) bad("max_completions must be ≥ 0 (0 = no budget), got " + maxCompletions);
            if (maxRefillRounds < 0) bad("max_refill_rounds must be ≥ 0, got " + maxRefillRounds);
        }
    }

    /** How rollouts are sampled; log-probs of the update are taken at the same temperature. */
    public record Sampling(
            @Setting(value = "1.0", doc = "rollout temperature (> 0)") float temperature,
            @Setting(value = "0", doc = "keep the k most likely tokens (0 = off)") int topK,
            @Setting(value = "1.0", doc = "nucleus sampling mass (1.0 = off)") float topP) {
        public Sampling {
            if (!(temperature > 0) || !Float.isFinite(temperature)) bad("temperature must be > 0 (rollouts are sampled), got " + temperature);
            if (topK < 0) bad("top_k must be ≥ 0 (0 = off), got " + topK);
            if (!(topP > 0 && topP <= 1)) bad("top_p must be in (0, 1], got " + topP);
        }
    }

    /** The policy update: advantages, the clipped loss with the k3 KL penalty, its aggregation, passes. */
    public record Update(
            @Setting(value = "std", doc = "std: (r − mean) / (std + 1e-4) per group (population std); mean: r − mean (Dr.GRPO)") Advantage advantage,
            @Setting(value = "token-mean", doc = "loss aggregation: Σ L / Σ|o| over the minibatch, per-sequence means, or Σ L / (G'·max_completion_tokens)") Aggregation aggregation,
            @Setting(value = "0.2", doc = "lower clip range of ρ") float epsLow,
            @Setting(value = "0.2", doc = "upper clip range of ρ (DAPO's clip-higher: 0.28)") float epsHigh,
            @Setting(value = "0.04", doc = "k3 KL coefficient; 0 never loads or runs the reference model") float beta,
            @Setting(value = "1", doc = "passes over each rollout batch") int mu,
            @Setting(value = "1", doc = "optimizer steps per pass (the rollout batch split evenly)") int minibatches,
            @Setting(value = "false", doc = "truncated completions get zero loss weight") boolean maskTruncated) {
        public Update {
            if (!(epsLow >= 0 && epsLow < 1)) bad("eps_low must be in [0, 1), got " + epsLow);
            if (!(epsHigh >= 0) || !Float.isFinite(epsHigh)) bad("eps_high must be ≥ 0, got " + epsHigh);
            if (!(beta >= 0) || !Float.isFinite(beta)) bad("beta must be ≥ 0, got " + beta);
            if (mu < 1) bad("mu must be ≥ 1, got " + mu);
            if (minibatches < 1) bad("minibatches must be ≥ 1, got " + minibatches);
        }
    }

    /** The built-in reward terms' weights (0 leaves a term out), the score term's Δ, and its band when it is sparse. */
    public record RewardWeights(
            @Setting(value = "0.2", doc = "weight of format: 1 when the response follows the DC grammar") double formatWeight,
            @Setting(value = "0.4", doc = "weight of polarity: the <disc> class equals the label's") double polarityWeight,
            @Setting(value = "1.0", doc = "weight of score: 1 − min(|ŷ − y|, Δ)/Δ") double scoreWeight,
            @Setting(value = "0", doc = "weight of consistency: the <disc> class agrees with the answer") double consistencyWeight,
            @Setting(value = "2.0", doc = "Δ of the score term") double scoreDelta,
            @Setting(value = "0", doc = "0: the score term is continuous; > 0: it is 1 when |ŷ − y| ≤ score_band, else 0 (a sparse reward under which whole groups score alike)") double scoreBand) {
        public RewardWeights {
            for (double w : new double[]{formatWeight, polarityWeight, scoreWeight, consistencyWeight})
                if (!Double.isFinite(w)) bad("reward weights must be finite numbers");
            if (!(scoreDelta > 0) || !Double.isFinite(scoreDelta)) bad("score_delta must be > 0, got " + scoreDelta);
            if (!(scoreBand >= 0) || !Double.isFinite(scoreBand)) bad("score_band must be ≥ 0 (0 = continuous score), got " + scoreBand);
        }
    }

    /** Hint-GRPO: which groups are hard, how often they are hinted, and how. */
    public record Hints(
            @Setting(value = "replace", doc = "none: plain GRPO; replace: a hard group is re-drawn with the hint; mix: mix_hinted of its rollouts are") HintMode hint,
            @Setting(value = "no-correct-polarity", doc = "a group is hard when no rollout named the right polarity, its best reward is below hard_tau, or all rewards are equal") HardRule hardRule,
            @Setting(value = "0.5", doc = "threshold of max-reward-below") double hardTau,
            @Setting(value = "1.0", doc = "probability that a hard group is hinted at the first step") double hintRateStart,
            @Setting(value = "1.0", doc = "the same at the last step (linear in between)") double hintRateEnd,
            @Setting(value = "0", doc = "hinted rollouts in a mix group (0 = half)") int mixHinted) {
        public Hints {
            if (!Double.isFinite(hardTau)) bad("hard_tau must be a number, got " + hardTau);
            if (!(hintRateStart >= 0 && hintRateStart <= 1) || !(hintRateEnd >= 0 && hintRateEnd <= 1))
                bad("hint rates must be in [0, 1], got " + hintRateStart + " → " + hintRateEnd);
            if (mixHinted < 0) bad("mix_hinted must be ≥ 0 (0 = half), got " + mixHinted);
        }
    }

    public GrpoConfig {
        int rollouts = rollout.promptsPerStep() * rollout.groupSize();
        if (update.minibatches() > rollouts) bad("minibatches " + update.minibatches() + " > rollouts per step " + rollouts);
        if (hints.mixHinted() > rollout.groupSize())
            bad("mix_hinted must be in [0, group_size] (0 = half), got " + hints.mixHinted());
    }

    public static GrpoConfig defaults() {
        return Settings.defaults(GrpoConfig.class);
    }

    /**
     * This config with some settings changed, named as in config files (e.g.
     * {@code Map.of("steps", 20, "hint", "mix")}); validated like a config file.
     */
    public GrpoConfig with(Map<String, ?> settings) {
        return Settings.with(this, settings, "grpo settings");
    }

    public boolean hinting() {
        return hints.hint() != HintMode.NONE;
    }

    /** Hinted rollouts in a hinted group. */
    public int hintedPerGroup() {
        if (hints.hint() == HintMode.REPLACE) return rollout.groupSize();
        return hints.mixHinted() == 0 ? rollout.groupSize() / 2 : hints.mixHinted();
    }

    /** The probability that a hard group is hinted at a step (0-based), linear from start to end over the run. */
    public double hintRate(int step) {
        if (loop.steps() == 1) return hints.hintRateStart();
        return hints.hintRateStart() + (hints.hintRateEnd() - hints.hintRateStart()) * step / (double) (loop.steps() - 1);
    }

    /** A short name of the method this config runs, for logs and tables. */
    public String methodName() {
        if (hinting()) return "Hint-GRPO" + (hints.hint() == HintMode.MIX ? " (mix)" : "");
        return rollout.dynamicSampling() ? "GRPO + dynamic sampling" : "GRPO";
    }

    private static void bad(String reason) {
        throw new BadInputException("grpo settings", reason);
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "%s: %d steps × %d prompts × G %d", methodName(), loop.steps(), rollout.promptsPerStep(),
                rollout.groupSize());
    }
}
