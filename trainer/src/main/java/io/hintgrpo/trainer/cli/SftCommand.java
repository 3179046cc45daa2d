package io.hintgrpo.trainer.cli;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.Backends;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.model.Precision;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.trainer.checkpoint.Checkpoints;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.loop.RunLock;
import io.hintgrpo.trainer.loop.StopSignal;
import io.hintgrpo.trainer.sft.SftConfig;
import io.hintgrpo.trainer.sft.SftRun;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code hintgrpo sft}: cold-start SFT of a model directory on teacher chains. */
@Command(name = "sft", mixinStandardHelpOptions = true, modelTransformer = ConfigFile.SftFlags.class,
        description = {"Cold-start SFT on the teacher chains (cot) of JSONL corpora; checkpoints, metrics.jsonl and loss.png "
                + "go to --out, the best model to --out/model, the effective settings to --out/sft_config.json.",
                "Every setting (docs/config.md) is a flag and a key of --config (top level or an \"sft\" section); flags override the file.",
                "--lora-rank R trains LoRA adapters and the projectors on the frozen --model instead of every parameter; --out/model "
                        + "is then base + adapter merged, --out/adapter the adapter in PEFT's format (docs/lora.md)."})
final class SftCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Mixin RunOptions run;

    @Override
    public Integer call() throws Exception {
        SftConfig cfg = ConfigFile.settings(spec, SftConfig.class, run.config);
        Precision gemmPrecision = run.gemmPrecision();
        Path tokenizer = run.model.resolve("tokenizer.json");
        if (!Files.isRegularFile(tokenizer)) throw new BadInputException(run.model.toString(), "no tokenizer.json in the model directory");
        StopSignal.install();
        try (Kernels kernels = Backends.open(run.backend);
             Model start = ModelDir.load(kernels, run.model, cfg.loop().seed(), msg -> System.err.println("hintgrpo: " + msg),
                     cfg.lora().frozenBf16Base(gemmPrecision))) {
            start.setPrecision(gemmPrecision);
            start.setRecompute(run.recompute);
            List<Utterance> trainData = run.read(run.train, start.config), validData = run.read(run.valid, start.config);
            try (RunLock lock = run.lockFolder()) {
                SftRun.Outcome o = SftRun.run(kernels, start, tokenizer, trainData, validData, cfg,
                        run.run(spec, cfg.getClass()).fingerprint(Map.of("model", Checkpoints.contentHash(ModelDir.files(run.model)))));
                spec.commandLine().getOut().printf("trained %d steps (%d skipped) on %d chains; best model: %s%n",
                        o.training().steps(), o.training().skippedSteps(), o.examples(), o.modelDir());
            }
        }
        return 0;
    }
}
