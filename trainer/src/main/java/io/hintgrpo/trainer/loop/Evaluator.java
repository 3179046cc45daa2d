package io.hintgrpo.trainer.loop;

import io.hintgrpo.engine.model.Model;

import java.util.Map;

/** Validation metrics of the model now (e.g. "valid_loss", "valid_mae"); lower "valid_mae" ranks checkpoints better. */
public interface Evaluator {
    Map<String, Double> evaluate(Model model);
}
