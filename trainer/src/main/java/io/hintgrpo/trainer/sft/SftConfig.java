package io.hintgrpo.trainer.sft;

import io.hintgrpo.engine.BadInputException;

/**
 * Everything that shapes a supervised fine-tuning run. steps counts optimizer steps; one step is
 * gradAccum micro-batches of batchSize sequences, the loss a token mean over all response tokens
 * of the step.
 */
public record SftConfig(int steps, int batchSize, int gradAccum, float lr, float minLrRatio, int warmupSteps,
                        float weightDecay, float beta1, float beta2, float eps, float maxGradNorm,
                        int evalEvery, int checkpointEvery, int keepLast, long seed,
                        @com.fasterxml.jackson.annotation.JsonProperty("max_bad_steps_in_a_row") int maxBadStepsInARow) {

    public static SftConfig defaults() {
        return new SftConfig(300, 16, 1, 2e-3f, 0.1f, 20, 0.01f, 0.9f, 0.95f, 1e-8f, 1f, 100, 100, 2, 1, 5);
    }

    public SftConfig {
        positive("steps", steps);
        positive("batch_size", batchSize);
        positive("grad_accum", gradAccum);
        positive("eval_every", evalEvery);
        positive("checkpoint_every", checkpointEvery);
        positive("keep_last", keepLast);
        positive("max_bad_steps_in_a_row", maxBadStepsInARow);
        if (!(lr > 0) || !Float.isFinite(lr)) throw new BadInputException("sft config", "lr must be a positive number, got " + lr);
        if (!(minLrRatio >= 0 && minLrRatio <= 1)) throw new BadInputException("sft config", "min_lr_ratio must be in [0, 1], got " + minLrRatio);
        if (warmupSteps < 0) throw new BadInputException("sft config", "warmup_steps must be ≥ 0, got " + warmupSteps);
        if (!(weightDecay >= 0)) throw new BadInputException("sft config", "weight_decay must be ≥ 0, got " + weightDecay);
        if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1))
            throw new BadInputException("sft config", "betas must be in [0, 1), got " + beta1 + ", " + beta2);
        if (!(eps > 0)) throw new BadInputException("sft config", "eps must be positive, got " + eps);
    }

    private static void positive(String field, int v) {
        if (v < 1) throw new BadInputException("sft config", field + " must be ≥ 1, got " + v);
    }

    public LrSchedule schedule() {
        return new LrSchedule(lr, warmupSteps, steps, minLrRatio);
    }
}
