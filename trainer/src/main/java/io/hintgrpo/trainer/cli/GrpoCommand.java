package io.hintgrpo.trainer.cli;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.Backends;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.model.Precision;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.loop.RunLock;
import io.hintgrpo.trainer.loop.StopSignal;
import io.hintgrpo.trainer.rl.GrpoConfig;
import io.hintgrpo.trainer.rl.GrpoRun;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code hintgrpo grpo}: GRPO or Hint-GRPO from a (cold-started) model directory. */
@Command(name = "grpo", mixinStandardHelpOptions = true, modelTransformer = ConfigFile.GrpoFlags.class,
        description = {"GRPO / Hint-GRPO from a model directory (usually sft's --out/model), which is also the KL reference. "
                + "Checkpoints, metrics.jsonl (every step: rewards and their terms, hard-group rate, hinted groups, "
                + "zero-advantage share before/after hints, KL, clip fraction, entropy, lengths, completions) and grpo.png "
                + "go to --out, the best model to --out/model, the effective settings to --out/grpo_config.json.",
                "Every setting (docs/config.md) is a flag and a key of --config (top level or a \"grpo\" section; TRL GRPOConfig "
                        + "names are mapped); flags override the file.",
                "--lora-rank R trains LoRA adapters on --model, whose adapters-off self is then the KL reference (no second model); "
                        + "--out/model is base + adapter merged, --out/adapter the adapter in PEFT's format (docs/lora.md)."})
final class GrpoCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Mixin RunOptions run;

    @Override
    public Integer call() throws Exception {
        GrpoConfig cfg = ConfigFile.settings(spec, GrpoConfig.class, run.config);
        Precision gemmPrecision = run.gemmPrecision();
        Path configJson = run.model.resolve("config.json");
        if (!Files.isRegularFile(configJson)) throw new BadInputException(run.model.toString(), "no config.json in the model directory");
        ModelConfig modelConfig = ModelConfig.parse(Files.readString(configJson), configJson.toString());
        StopSignal.install();
        try (Kernels kernels = Backends.open(run.backend)) {
            List<Utterance> trainData = run.read(run.train, modelConfig), validData = run.read(run.valid, modelConfig);
            try (RunLock lock = run.lockFolder()) {
                GrpoRun.Outcome o = GrpoRun.run(kernels, GrpoRun.Job.of(run.model, trainData, validData, cfg).precision(gemmPrecision)
                                .recompute(run.recompute),
                        run.run(spec, cfg.getClass()));
                spec.commandLine().getOut().printf("%s: %d steps (%d skipped), %d completions generated; best model: %s%n",
                        cfg.methodName(), o.training().steps(), o.training().skippedSteps(), o.completionsTotal(), o.modelDir());
            }
        }
        return 0;
    }
}
