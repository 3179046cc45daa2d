package io.hintgrpo.trainer.loop;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.model.AdamW;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.trainer.config.Setting;

/** AdamW, its learning-rate schedule (linear warmup, then cosine to a floor) and gradient clipping: SFT and GRPO alike. */
public record OptimizerSettings(
        @Setting(value = "1e-4", doc = "peak AdamW learning rate") float lr,
        @Setting(value = "0", doc = "steps of linear warmup to the peak rate") int warmupSteps,
        @Setting(value = "1.0", doc = "cosine decay floor as a fraction of the peak (1.0 = constant after warmup)") float minLrRatio,
        @Setting(value = "0", doc = "decoupled AdamW weight decay (matrices and vectors alike)") float weightDecay,
        @Setting(value = "0.9", doc = "AdamW β1") float beta1,
        @Setting(value = "0.99", doc = "AdamW β2") float beta2,
        @Setting(value = "1e-8", doc = "AdamW ε (the denominator's guard)") float adamEpsilon,
        @Setting(value = "1.0", doc = "global gradient-norm clip (0 = no clipping)") float maxGradNorm) {

    public OptimizerSettings {
        if (!(lr > 0) || !Float.isFinite(lr)) bad("lr must be a positive number, got " + lr);
        if (warmupSteps < 0) bad("warmup_steps must be ≥ 0, got " + warmupSteps);
        if (!(minLrRatio >= 0 && minLrRatio <= 1)) bad("min_lr_ratio must be in [0, 1], got " + minLrRatio);
        if (!(weightDecay >= 0) || !Float.isFinite(weightDecay)) bad("weight_decay must be ≥ 0, got " + weightDecay);
        if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) bad("beta1 and beta2 must be in [0, 1), got " + beta1 + ", " + beta2);
        if (!(adamEpsilon > 0) || !Float.isFinite(adamEpsilon)) bad("adam_epsilon must be positive, got " + adamEpsilon);
        if (!(maxGradNorm >= 0) || !Float.isFinite(maxGradNorm)) bad("max_grad_norm must be ≥ 0 (0 = no clipping), got " + maxGradNorm);
    }

    private static void bad(String reason) {
        throw new BadInputException("optimizer settings", reason);
    }

    public AdamW adamw(Model model) {
        return new AdamW(model, lr, beta1, beta2, adamEpsilon, weightDecay);
    }

    public LrSchedule schedule(int totalSteps) {
        return new LrSchedule(lr, warmupSteps, totalSteps, minLrRatio);
    }
}
