package io.hintgrpo.trainer.cli;

import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.Precision;
import io.hintgrpo.trainer.data.Jsonl;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.checkpoint.Checkpoints;
import io.hintgrpo.trainer.loop.Run;
import io.hintgrpo.trainer.loop.RunLock;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The options of a training run (sft, grpo): the model, the data, the run folder, how it runs. */
final class RunOptions {
    @Option(names = "--model", required = true,
            description = "Starting model directory (config.json, model.safetensors, tokenizer.json).")
    Path model;

    @Option(names = "--train", required = true, split = ",", description = "Training JSONL file(s).")
    List<Path> train;

    @Option(names = "--valid", split = ",", description = "Validation JSONL file(s).")
    List<Path> valid = new ArrayList<>();

    @Option(names = "--out", required = true, description = "Run folder.")
    Path out;

    @Option(names = "--resume", description = "Continue the run in --out from its latest checkpoint.")
    boolean resume;

    @Option(names = "--config", description = "JSON or YAML settings (top level, or a section named after the command; TRL GRPOConfig "
            + "names are mapped, docs/config.md); flags override it.")
    Path config;

    @Option(names = "--backend", defaultValue = "auto", description = "auto | cpu | cuda | cuda-emu (default: ${DEFAULT-VALUE}).")
    String backend;

    @Option(names = "--precision", defaultValue = "fp32", description = "fp32 | bf16: what the GEMMs multiply; bf16 keeps fp32 "
            + "master weights, gradients, optimizer state, norms and loss, and checkpoints hold fp32; with --lora-rank, bf16 also "
            + "stores the frozen base's matrices in bf16 only (half the memory of fp32) (default: ${DEFAULT-VALUE}).")
    String precision;

    @Option(names = "--recompute", description = "Activation recompute: keep only each layer's input in the forward and recompute the "
            + "rest in the backward; saved activations shrink from one set per layer to one set, for one more forward per step; "
            + "the same numbers bit for bit (docs/scale.md).")
    boolean recompute;

    @Option(names = "--skip-bad", description = "Skip malformed records (counted and reported) instead of failing.")
    boolean skipBad;

    Precision gemmPrecision() {
        return Precision.parse(precision);
    }

    /**
     * The run folder, resumed or not, with the training data's content in the fingerprint and the
     * command's options (but its settings record's) for the effective config; messages to stderr,
     * stopped by signals.
     */
    Run run(CommandSpec spec, Class<? extends Record> settings) {
        return Run.in(out).resuming(resume).fingerprint(java.util.Map.of("train", Checkpoints.contentHash(train)))
                .options(ConfigFile.optionValues(spec, settings));
    }

    /**
     * Before any work: takes the run folder (made and probed for writing; another process holding it
     * is refused). The caller holds the lock for the run; the run writes its effective settings
     * ({@code <command>_config.json}, with this command line's options) once it starts.
     */
    RunLock lockFolder() {
        return RunLock.acquire(out);
    }

    /** Every record of the files, checked against the model's modalities; --skip-bad skips (and counts) malformed ones. */
    List<Utterance> read(List<Path> files, ModelConfig cfg) {
        List<Utterance> all = new ArrayList<>();
        for (Path f : files) {
            Jsonl.Loaded l = Jsonl.read(f, Jsonl.Expect.of(cfg), skipBad);
            if (l.skipped() > 0) System.err.println("hintgrpo: " + f + ": skipped " + l.skipped() + " malformed records (--skip-bad)");
            all.addAll(l.utterances());
        }
        return all;
    }
}
