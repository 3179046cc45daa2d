package io.hintgrpo.trainer.cli;

import io.hintgrpo.engine.Backends;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.Precision;
import io.hintgrpo.trainer.config.Configs;
import io.hintgrpo.trainer.data.Jsonl;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.rl.GrpoConfig;
import io.hintgrpo.trainer.rl.GrpoRun;
import io.hintgrpo.trainer.sft.StopSignal;
import io.hintgrpo.engine.BadInputException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
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

    @Option(names = "--model", required = true, description = "Starting model directory (config.json, model.safetensors, tokenizer.json).")
    Path model;

    @Option(names = "--train", required = true, split = ",", description = "JSONL file(s) the prompts are drawn from (label needed; cot unused).")
    List<Path> train;

    @Option(names = "--valid", split = ",", description = "Validation JSONL file(s) (greedy MAE ranks checkpoints).")
    List<Path> valid = new ArrayList<>();

    @Option(names = "--out", required = true, description = "Run folder.")
    Path out;

    @Option(names = "--resume", description = "Continue the run in --out from its latest checkpoint.")
    boolean resume;

    @Option(names = "--config", description = "JSON or YAML settings (top level or a \"grpo\" section); flags override it.")
    Path config;

    @Option(names = "--backend", defaultValue = "auto", description = "auto | cpu | cuda | cuda-emu (default: ${DEFAULT-VALUE}).")
    String backend;

    @Option(names = "--precision", defaultValue = "fp32", description = "fp32 | bf16: what the GEMMs of the policy and the "
            + "reference multiply; bf16 keeps fp32 master weights, gradients, optimizer state, norms and loss, and checkpoints "
            + "hold fp32 (default: ${DEFAULT-VALUE}).")
    String precision;

    @Option(names = "--skip-bad", description = "Skip malformed records (counted and reported) instead of failing.")
    boolean skipBad;

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
        Map<String, Object> flags = new LinkedHashMap<>();
        flags.put("hint", hint);
        flags.put("hard_rule", hardRule);
        flags.put("hard_tau", hardTau);
        flags.put("hint_rate_start", hintRateStart);
        flags.put("hint_rate_end", hintRateEnd);
        flags.put("mix_hinted", mixHinted);
        flags.put("dynamic_sampling", dynamicSampling);
        flags.put("steps", steps);
        flags.put("prompts_per_step", promptsPerStep);
        flags.put("group_size", groupSize);
        flags.put("max_completion_tokens", maxCompletionTokens);
        flags.put("max_completions", maxCompletions);
        flags.put("temperature", temperature);
        flags.put("lr", lr);
        flags.put("beta", beta);
        flags.put("eps_low", epsLow);
        flags.put("eps_high", epsHigh);
        flags.put("advantage", advantage);
        flags.put("aggregation", aggregation);
        flags.put("mu", mu);
        flags.put("minibatches", minibatches);
        flags.put("mask_truncated", maskTruncated);
        flags.put("eval_every", evalEvery);
        flags.put("eval_samples", evalSamples);
        flags.put("checkpoint_every", checkpointEvery);
        flags.put("keep_last", keepLast);
        flags.put("seed", seed);
        GrpoConfig cfg = Configs.merge(GrpoConfig.class, GrpoConfig.defaults(), config == null ? null : section(config), flags,
                config == null ? "flags" : config.toString());
        Precision gemmPrecision = Precision.parse(precision);
        Path configJson = model.resolve("config.json");
        if (!Files.isRegularFile(configJson)) throw new BadInputException(model.toString(), "no config.json in the model directory");
        ModelConfig modelConfig = ModelConfig.parse(Files.readString(configJson), configJson.toString());
        StopSignal.install();
        try (Kernels kernels = Backends.open(backend)) {
            List<Utterance> trainData = read(train, modelConfig), validData = read(valid, modelConfig);
            Files.createDirectories(out);
            ConfigFile.writeEffectiveTo(spec, out.resolve("command.config.json")); // with grpo_config.json: the run, repeatable
            Map<String, String> fingerprint = Map.of("train", train.toString());
            GrpoRun.Outcome o = GrpoRun.run(kernels, model, trainData, validData, cfg, null, out, resume, fingerprint,
                    msg -> System.err.println("hintgrpo: " + msg), StopSignal::requested, null, gemmPrecision);
            spec.commandLine().getOut().printf("%s: %d steps (%d skipped), %d completions generated; best model: %s%n",
                    cfg.methodName(), o.training().steps(), o.training().skippedSteps(), o.training().completionsTotal(), o.modelDir());
        }
        return 0;
    }

    private static com.fasterxml.jackson.databind.node.ObjectNode section(Path file) {
        com.fasterxml.jackson.databind.node.ObjectNode all = Configs.read(file, null);
        return all.has("grpo") ? Configs.read(file, "grpo") : all;
    }

    private List<Utterance> read(List<Path> files, ModelConfig cfg) {
        List<Utterance> all = new ArrayList<>();
        for (Path f : files) {
            Jsonl.Loaded l = Jsonl.read(f, Jsonl.Expect.of(cfg), skipBad);
            if (l.skipped() > 0) System.err.println("hintgrpo: " + f + ": skipped " + l.skipped() + " malformed records (--skip-bad)");
            all.addAll(l.utterances());
        }
        return all;
    }
}
