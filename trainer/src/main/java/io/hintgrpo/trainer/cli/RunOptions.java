package io.hintgrpo.trainer.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.Precision;
import io.hintgrpo.trainer.config.Configs;
import io.hintgrpo.trainer.data.Jsonl;
import io.hintgrpo.trainer.data.Utterance;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

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

    @Option(names = "--config", description = "JSON or YAML settings (top level, or a section named after the command); flags override it.")
    Path config;

    @Option(names = "--backend", defaultValue = "auto", description = "auto | cpu | cuda | cuda-emu (default: ${DEFAULT-VALUE}).")
    String backend;

    @Option(names = "--precision", defaultValue = "fp32", description = "fp32 | bf16: what the GEMMs multiply; bf16 keeps fp32 "
            + "master weights, gradients, optimizer state, norms and loss, and checkpoints hold fp32 (default: ${DEFAULT-VALUE}).")
    String precision;

    @Option(names = "--skip-bad", description = "Skip malformed records (counted and reported) instead of failing.")
    boolean skipBad;

    Precision gemmPrecision() {
        return Precision.parse(precision);
    }

    /** The settings of --config for a command: its section when the file has one, else the top level; null without --config. */
    ObjectNode configSection(String command) {
        if (config == null) return null;
        ObjectNode all = Configs.read(config, null);
        return all.has(command) ? Configs.read(config, command) : all;
    }

    /**
     * The command-line flags of a command that name a setting of its config record (e.g.
     * {@code --group-size} → {@code group_size}), with the values given; flags left out are not
     * in the map, so the config file or the default stands for them.
     */
    static Map<String, Object> settingFlags(CommandSpec spec, Object defaults) {
        ObjectNode known = Configs.toTree(defaults);
        Map<String, Object> flags = new LinkedHashMap<>();
        for (OptionSpec o : spec.options()) {
            String key = o.longestName().replaceFirst("^-+", "").replace('-', '_');
            if (known.has(key) && o.getValue() != null) flags.put(key, o.getValue());
        }
        return flags;
    }

    /** Where settings come from, for error messages. */
    String configPlace() {
        return config == null ? "flags" : config.toString();
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
