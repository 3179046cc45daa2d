package io.hintgrpo.trainer.cli;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.Backends;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.Precision;
import io.hintgrpo.trainer.config.Configs;
import io.hintgrpo.trainer.data.Jsonl;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.sft.SftConfig;
import io.hintgrpo.trainer.sft.SftRun;
import io.hintgrpo.trainer.sft.StopSignal;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code hintgrpo sft}: cold-start SFT of a model directory on teacher chains. */
@Command(name = "sft", mixinStandardHelpOptions = true,
        description = "Cold-start SFT on the teacher chains (cot) of JSONL corpora; checkpoints, metrics.jsonl and loss.png "
                + "go to --out, the best model to --out/model.")
final class SftCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = "--model", required = true, description = "Starting model directory (config.json, model.safetensors, tokenizer.json).")
    Path model;

    @Option(names = "--train", required = true, split = ",", description = "Training JSONL file(s).")
    List<Path> train;

    @Option(names = "--valid", split = ",", description = "Validation JSONL file(s).")
    List<Path> valid = new ArrayList<>();

    @Option(names = "--out", required = true, description = "Run folder.")
    Path out;

    @Option(names = "--resume", description = "Continue the run in --out from its latest checkpoint.")
    boolean resume;

    @Option(names = "--config", description = "JSON or YAML settings (top level or an \"sft\" section); flags override it.")
    Path config;

    @Option(names = "--backend", defaultValue = "auto", description = "auto | cpu | cuda | cuda-emu (default: ${DEFAULT-VALUE}).")
    String backend;

    @Option(names = "--precision", defaultValue = "fp32", description = "fp32 | bf16: what the GEMMs multiply; bf16 keeps fp32 "
            + "master weights, gradients, optimizer state, norms and loss, and checkpoints hold fp32 (default: ${DEFAULT-VALUE}).")
    String precision;

    @Option(names = "--skip-bad", description = "Skip malformed records (counted and reported) instead of failing.")
    boolean skipBad;

    @Option(names = "--eval-samples", defaultValue = "64", description = "Validation utterances generated at each evaluation (default: ${DEFAULT-VALUE}).")
    int evalSamples;

    @Option(names = "--steps") Integer steps;
    @Option(names = "--batch-size") Integer batchSize;
    @Option(names = "--grad-accum") Integer gradAccum;
    @Option(names = "--lr") Float lr;
    @Option(names = "--warmup-steps") Integer warmupSteps;
    @Option(names = "--weight-decay") Float weightDecay;
    @Option(names = "--max-grad-norm") Float maxGradNorm;
    @Option(names = "--eval-every") Integer evalEvery;
    @Option(names = "--checkpoint-every") Integer checkpointEvery;
    @Option(names = "--keep-last") Integer keepLast;
    @Option(names = "--seed") Long seed;

    @Override
    public Integer call() throws Exception {
        Map<String, Object> flags = new LinkedHashMap<>();
        flags.put("steps", steps);
        flags.put("batch_size", batchSize);
        flags.put("grad_accum", gradAccum);
        flags.put("lr", lr);
        flags.put("warmup_steps", warmupSteps);
        flags.put("weight_decay", weightDecay);
        flags.put("max_grad_norm", maxGradNorm);
        flags.put("eval_every", evalEvery);
        flags.put("checkpoint_every", checkpointEvery);
        flags.put("keep_last", keepLast);
        flags.put("seed", seed);
        SftConfig cfg = Configs.merge(SftConfig.class, SftConfig.defaults(), config == null ? null : section(config), flags,
                config == null ? "flags" : config.toString());
        Precision gemmPrecision = Precision.parse(precision);
        Path tokenizer = model.resolve("tokenizer.json");
        if (!Files.isRegularFile(tokenizer)) throw new BadInputException(model.toString(), "no tokenizer.json in the model directory");
        StopSignal.install();
        try (Kernels kernels = Backends.open(backend);
             Model start = ModelDir.load(kernels, model, cfg.seed(), msg -> System.err.println("hintgrpo: " + msg))) {
            start.setPrecision(gemmPrecision);
            List<Utterance> trainData = read(train, start), validData = read(valid, start);
            Files.createDirectories(out);
            ConfigFile.writeEffectiveTo(spec, out.resolve("command.config.json")); // with sft_config.json: the run, repeatable
            Map<String, String> fingerprint = Map.of("train", train.toString(), "model", model.toAbsolutePath().toString());
            SftRun.Outcome o = SftRun.run(kernels, start, tokenizer, trainData, validData, cfg, evalSamples, out, resume,
                    fingerprint, msg -> System.err.println("hintgrpo: " + msg), StopSignal::requested);
            spec.commandLine().getOut().printf("trained %d steps (%d skipped) on %d chains; best model: %s%n",
                    o.training().steps(), o.training().skippedSteps(), o.examples(), o.modelDir());
        }
        return 0;
    }

    private static com.fasterxml.jackson.databind.node.ObjectNode section(Path file) {
        com.fasterxml.jackson.databind.node.ObjectNode all = Configs.read(file, null);
        return all.has("sft") ? Configs.read(file, "sft") : all;
    }

    private List<Utterance> read(List<Path> files, Model m) {
        List<Utterance> all = new ArrayList<>();
        for (Path f : files) {
            Jsonl.Loaded l = Jsonl.read(f, Jsonl.Expect.of(m.config), skipBad);
            if (l.skipped() > 0) System.err.println("hintgrpo: " + f + ": skipped " + l.skipped() + " malformed records (--skip-bad)");
            all.addAll(l.utterances());
        }
        return all;
    }
}
