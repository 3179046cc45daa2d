package io.hintgrpo.trainer.cli;

import io.hintgrpo.engine.Backends;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.Precision;
import io.hintgrpo.trainer.config.Configs;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.rl.GrpoConfig;
import io.hintgrpo.trainer.rl.GrpoRun;
import io.hintgrpo.trainer.sft.StopSignal;
import io.hintgrpo.engine.BadInputException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code hintgrpo grpo}: GRPO or Hint-GRPO from a (cold-started) model directory. */
@Command(name = "grpo", mixinStandardHelpOptions = true,
        description = {"GRPO / Hint-GRPO from a model directory (usually sft's --out/model), which is also the KL reference. "
                + "Checkpoints, metrics.jsonl (every step: rewards and their terms, hard-group rate, hinted groups, "
                + "zero-advantage share before/after hints, KL, clip fraction, entropy, lengths, completions) and grpo.png "
                + "go to --out, the best model to --out/model.",
                "Every setting of the grpo config (see docs) is a key of --config (top level or a \"grpo\" section); flags override it."})
final class GrpoCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Mixin RunOptions run;

    @Option(names = "--hint", description = "none (plain GRPO) | replace (default) | mix: what happens to hard groups.")
    String hint;
    @Option(names = "--hard-rule", description = "no-correct-polarity (default) | max-reward-below | all-equal.")
    String hardRule;
    @Option(names = "--hard-tau", description = "Threshold of max-reward-below.") Double hardTau;
    @Option(names = "--hint-rate-start") Double hintRateStart;
    @Option(names = "--hint-rate-end", description = "Hint probability of a hard group, linear from start to end over the run.")
    Double hintRateEnd;
    @Option(names = "--mix-hinted", description = "Hinted rollouts per mixed group (0 = half).") Integer mixHinted;
    @Option(names = "--dynamic-sampling", arity = "0..1", description = "DAPO: drop all-equal groups and refill.") Boolean dynamicSampling;
    @Option(names = "--steps") Integer steps;
    @Option(names = "--prompts-per-step") Integer promptsPerStep;
    @Option(names = "--group-size") Integer groupSize;
    @Option(names = "--max-completion-tokens") Integer maxCompletionTokens;
    @Option(names = "--max-completions", description = "Generation budget: stop after this many completions (0 = none).") Long maxCompletions;
    @Option(names = "--temperature") Float temperature;
    @Option(names = "--lr") Float lr;
    @Option(names = "--beta", description = "KL coefficient (0 skips the reference forward).") Float beta;
    @Option(names = "--eps-low") Float epsLow;
    @Option(names = "--eps-high") Float epsHigh;
    @Option(names = "--advantage", description = "std | mean (Dr.GRPO).") String advantage;
    @Option(names = "--aggregation", description = "token-mean | sequence-mean | dr-grpo.") String aggregation;
    @Option(names = "--mu", description = "Optimisation passes per rollout batch.") Integer mu;
    @Option(names = "--minibatches", description = "Optimizer steps per pass (the rollout batch split evenly).") Integer minibatches;
    @Option(names = "--mask-truncated", arity = "0..1", description = "Zero loss weight for completions cut off at the limit.")
    Boolean maskTruncated;
    @Option(names = "--eval-every") Integer evalEvery;
    @Option(names = "--eval-samples") Integer evalSamples;
    @Option(names = "--checkpoint-every") Integer checkpointEvery;
    @Option(names = "--keep-last") Integer keepLast;
    @Option(names = "--seed") Long seed;

    @Override
    public Integer call() throws Exception {
        GrpoConfig cfg = Configs.merge(GrpoConfig.class, GrpoConfig.defaults(), run.configSection("grpo"),
                RunOptions.settingFlags(spec, GrpoConfig.defaults()),
                run.configPlace());
        Precision gemmPrecision = run.gemmPrecision();
        Path configJson = run.model.resolve("config.json");
        if (!Files.isRegularFile(configJson)) throw new BadInputException(run.model.toString(), "no config.json in the model directory");
        ModelConfig modelConfig = ModelConfig.parse(Files.readString(configJson), configJson.toString());
        StopSignal.install();
        try (Kernels kernels = Backends.open(run.backend)) {
            List<Utterance> trainData = run.read(run.train, modelConfig), validData = run.read(run.valid, modelConfig);
            Files.createDirectories(run.out);
            ConfigFile.writeEffectiveTo(spec, run.out.resolve("command.config.json")); // with grpo_config.json: the run, repeatable
            Map<String, String> fingerprint = Map.of("train", run.train.toString());
            GrpoRun.Outcome o = GrpoRun.run(kernels, run.model, trainData, validData, cfg, null, run.out, run.resume, fingerprint,
                    msg -> System.err.println("hintgrpo: " + msg), StopSignal::requested, null, gemmPrecision);
            spec.commandLine().getOut().printf("%s: %d steps (%d skipped), %d completions generated; best model: %s%n",
                    cfg.methodName(), o.training().steps(), o.training().skippedSteps(), o.training().completionsTotal(), o.modelDir());
        }
        return 0;
    }


}
