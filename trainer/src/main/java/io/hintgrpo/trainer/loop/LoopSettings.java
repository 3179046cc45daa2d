package io.hintgrpo.trainer.loop;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.trainer.config.Setting;

/** How long a training run goes and what it does on the way: evaluation, checkpoints, the divergence guard. */
public record LoopSettings(
        @Setting(value = "40", doc = "optimizer steps of the run") int steps,
        @Setting(value = "10", doc = "evaluate every this many steps (and at the last)") int evalEvery,
        @Setting(value = "64", doc = "validation utterances generated greedily at each evaluation (valid_mae ranks checkpoints)") int evalSamples,
        @Setting(value = "10", doc = "write a checkpoint every this many steps (and at the last)") int checkpointEvery,
        @Setting(value = "2", doc = "checkpoints kept besides the best by validation MAE") int keepLast,
        @Setting(value = "1", doc = "seed of everything random in the run (batch order, rollouts, hints)") long seed,
        @Setting(value = "5", doc = "non-finite steps are skipped; this many in a row stop the run") int maxBadStepsInARow) {

    /** Settings a resumed run may change: how long it goes and how it reports, not what a step does. */
    public static final java.util.Set<String> MAY_CHANGE_ON_RESUME = java.util.Set.of("steps", "eval_every", "eval_samples",
            "checkpoint_every", "keep_last", "max_bad_steps_in_a_row");

    public LoopSettings {
        positive("steps", steps);
        positive("eval_every", evalEvery);
        positive("checkpoint_every", checkpointEvery);
        positive("keep_last", keepLast);
        positive("max_bad_steps_in_a_row", maxBadStepsInARow);
        if (evalSamples < 0) throw new BadInputException("loop settings", "eval_samples must be ≥ 0, got " + evalSamples);
    }

    private static void positive(String key, int v) {
        if (v < 1) throw new BadInputException("loop settings", key + " must be ≥ 1, got " + v);
    }
}
