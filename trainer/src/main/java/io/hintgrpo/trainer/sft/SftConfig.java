package io.hintgrpo.trainer.sft;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.trainer.config.Part;
import io.hintgrpo.trainer.config.Setting;
import io.hintgrpo.trainer.config.Settings;
import io.hintgrpo.trainer.loop.LoopSettings;
import io.hintgrpo.trainer.loop.LoraSettings;
import io.hintgrpo.trainer.loop.OptimizerSettings;
import io.hintgrpo.trainer.loop.TrainingSettings;

import java.util.Map;

/**
 * Everything that shapes a supervised fine-tuning run. A step is grad_accum micro-batches of
 * batch_size sequences; its loss is a token mean over all response tokens of the step. Keys are
 * flat ({@link Settings}); docs/config.md lists them all.
 */
public record SftConfig(
        @Part(defaults = {"steps=300", "eval_every=100", "checkpoint_every=100"}) LoopSettings loop,
        @Part(defaults = {"lr=2e-3", "warmup_steps=20", "min_lr_ratio=0.1", "weight_decay=0.01", "beta2=0.95"}) OptimizerSettings optimizer,
        @Part LoraSettings lora,
        @Setting(value = "16", doc = "sequences per micro-batch (length-bucketed)") int batchSize,
        @Setting(value = "1", doc = "micro-batches per optimizer step") int gradAccum) implements TrainingSettings {

    public SftConfig {
        if (batchSize < 1) throw new BadInputException("sft settings", "batch_size must be ≥ 1, got " + batchSize);
        if (gradAccum < 1) throw new BadInputException("sft settings", "grad_accum must be ≥ 1, got " + gradAccum);
    }

    public static SftConfig defaults() {
        return Settings.defaults(SftConfig.class);
    }

    /** This config with some settings changed, named as in config files (e.g. {@code Map.of("steps", 50)}). */
    public SftConfig with(Map<String, ?> settings) {
        return Settings.with(this, settings, "sft settings");
    }
}
