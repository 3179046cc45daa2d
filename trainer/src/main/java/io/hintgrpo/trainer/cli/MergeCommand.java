package io.hintgrpo.trainer.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.Backends;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.io.JsonFiles;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.io.PeftAdapter;
import io.hintgrpo.engine.io.Safetensors;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.trainer.data.AtomicFiles;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Stream;

/**
 * {@code hintgrpo merge}: a base model directory and a PEFT LoRA adapter → one model directory
 * whose weights are W + (alpha/r)·B·A on every target (fp32) and whose projectors are the
 * adapter's, so every command reads it without --adapter.
 */
@Command(name = "merge", mixinStandardHelpOptions = true,
        description = "Folds a PEFT LoRA adapter into its base model: a new model directory (config.json, model.safetensors in F32, "
                + "the base's tokenizer and other files) that computes what --model with --adapter does (docs/lora.md).")
final class MergeCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @CommandLine.Mixin(name = "configFile")
    ConfigFile.Mixin configFile;

    @Option(names = "--model", required = true, description = "The base model directory the adapter was trained on.")
    Path model;

    @Option(names = "--adapter", required = true, paramLabel = "DIR", description = "PEFT LoRA adapter directory (adapter_config.json, "
            + "adapter_model.safetensors), e.g. a run's adapter/.")
    Path adapter;

    @Option(names = "--out", required = true, description = "New model directory (must not exist or be empty); written atomically.")
    Path out;

    @Option(names = "--backend", defaultValue = "cpu", description = "auto | cpu | cuda | cuda-emu: where the merge runs (default: ${DEFAULT-VALUE}).")
    String backend;

    @Option(names = "--seed", defaultValue = "0", description = "Seed for tensors a checkpoint lacks (projectors of a text-only model).")
    long seed;

    @Override
    public Integer call() throws IOException {
        AtomicFiles.refuseNonEmptyFolder(out);
        AtomicFiles.refuseInput(out, "--out", List.of(model, adapter));
        AtomicFiles.probeFolder(out.toAbsolutePath().getParent());
        PeftAdapter.readConfig(adapter); // a refused adapter fails before the base is read
        if (!Files.isRegularFile(model.resolve("tokenizer.json")))
            throw new BadInputException(model.toString(), "no tokenizer.json in the base model directory (the merged model needs one)");
        Path baseConfig = model.resolve(ModelDir.CONFIG);
        try (Kernels kernels = Backends.open(backend);
             Model m = ModelDir.load(kernels, model, seed, msg -> System.err.println("hintgrpo: " + msg))) {
            PeftAdapter.load(m, adapter);
            AtomicFiles.writeFolder(out, tmp -> {
                ModelDir.saveMerged(m, tmp, Safetensors.Dtype.F32);
                // the base's config.json fields (token ids, generation defaults, …) with ours over them, as init writes it
                if (JsonFiles.read(baseConfig) instanceof ObjectNode base) {
                    ObjectMapper json = new ObjectMapper();
                    base.setAll((ObjectNode) json.readTree(m.config.toJson()));
                    if (base.has("dtype")) base.put("dtype", "float32"); // transformers 5's name for torch_dtype
                    Files.writeString(tmp.resolve(ModelDir.CONFIG), json.writerWithDefaultPrettyPrinter().writeValueAsString(base));
                }
                copyOtherFiles(model, tmp);
                return null;
            });
        }
        spec.commandLine().getOut().println("merged " + adapter + " into " + model + ": " + out);
        return 0;
    }

    /** The base's files besides config and weights: tokenizer.json and whatever tokenizer or generation files it has. */
    private static void copyOtherFiles(Path from, Path to) throws IOException {
        try (Stream<Path> files = Files.list(from)) {
            for (Path f : files.filter(Files::isRegularFile).sorted().toList()) {
                String name = f.getFileName().toString();
                if (name.startsWith(".") || name.equals(ModelDir.CONFIG) || name.equals(ModelDir.INDEX) || name.endsWith(".safetensors")
                        || name.endsWith(".bin") || name.endsWith(".pt") || name.endsWith(".pth"))
                    continue;
                Files.copy(f, to.resolve(name));
            }
        }
    }
}
