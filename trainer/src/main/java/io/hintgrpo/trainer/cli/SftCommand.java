package io.hintgrpo.trainer.cli;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.Backends;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.Precision;
import io.hintgrpo.trainer.config.Configs;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.sft.SftConfig;
import io.hintgrpo.trainer.sft.SftRun;
import io.hintgrpo.trainer.sft.StopSignal;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code hintgrpo sft}: cold-start SFT of a model directory on teacher chains. */
@Command(name = "sft", mixinStandardHelpOptions = true,
        description = "Cold-start SFT on the teacher chains (cot) of JSONL corpora; checkpoints, metrics.jsonl and loss.png "
                + "go to --out, the best model to --out/model.")
final class SftCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Mixin RunOptions run;

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
        SftConfig cfg = Configs.merge(SftConfig.class, SftConfig.defaults(), run.configSection("sft"),
                RunOptions.settingFlags(spec, SftConfig.defaults()),
                run.configPlace());
        Precision gemmPrecision = run.gemmPrecision();
        Path tokenizer = run.model.resolve("tokenizer.json");
        if (!Files.isRegularFile(tokenizer)) throw new BadInputException(run.model.toString(), "no tokenizer.json in the model directory");
        StopSignal.install();
        try (Kernels kernels = Backends.open(run.backend);
             Model start = ModelDir.load(kernels, run.model, cfg.seed(), msg -> System.err.println("hintgrpo: " + msg))) {
            start.setPrecision(gemmPrecision);
            List<Utterance> trainData = run.read(run.train, start.config), validData = run.read(run.valid, start.config);
            Files.createDirectories(run.out);
            ConfigFile.writeEffectiveTo(spec, run.out.resolve("command.config.json")); // with sft_config.json: the run, repeatable
            Map<String, String> fingerprint = Map.of("train", run.train.toString(), "model", run.model.toAbsolutePath().toString());
            SftRun.Outcome o = SftRun.run(kernels, start, tokenizer, trainData, validData, cfg, evalSamples, run.out, run.resume,
                    fingerprint, msg -> System.err.println("hintgrpo: " + msg), StopSignal::requested);
            spec.commandLine().getOut().printf("trained %d steps (%d skipped) on %d chains; best model: %s%n",
                    o.training().steps(), o.training().skippedSteps(), o.examples(), o.modelDir());
        }
        return 0;
    }


}
