package io.hintgrpo.trainer.loop;

/**
 * The parts every trainer's settings record has (SftConfig, GrpoConfig): how the run goes, the
 * optimizer, and LoRA. {@link TrainLoop#start} reads them to build the model and optimizer a run
 * starts from.
 */
public interface TrainingSettings {
    LoopSettings loop();

    OptimizerSettings optimizer();

    LoraSettings lora();
}
