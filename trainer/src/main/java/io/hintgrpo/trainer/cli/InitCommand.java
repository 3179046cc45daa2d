package io.hintgrpo.trainer.cli;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.trainer.data.SynthCorpus;
import io.hintgrpo.trainer.init.ModelInit;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.function.Consumer;

/**
 * {@code hintgrpo init}: a Hugging Face Qwen2/Qwen2.5 directory → a starting model with our special
 * tokens and projectors; or a named shape with random weights for a tokenizer (--preset); or, with
 * --embedded CORPUS, the embedded preset for that corpus's tokenizer.
 */
@Command(name = "init", mixinStandardHelpOptions = true,
        description = {"Turns a Hugging Face Qwen2/Qwen2.5 directory into a starting model: adds the DC tags, modality "
                + "placeholders and end of turn the tokenizer lacks (new embedding rows = mean of the existing ones), "
                + "adds the audio/vision projectors, keeps the chat template and the other files.",
                "With --preset NAME --tokenizer FILE instead of --from: a new model of that shape (embedded, 25m, 125m, "
                        + "qwen2.5-0.5b, qwen2.5-1.5b, qwen2.5-7b) for the tokenizer, the same special tokens added, every "
                        + "weight from --seed; shapes over 4 GiB of fp32 weights are written in bf16, tensor by tensor.",
                "--embedded CORPUS is --preset embedded --tokenizer CORPUS/tokenizer.json (the demo's model for a corpus "
                        + "of data synth)."})
final class InitCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @CommandLine.Mixin(name = "configFile")
    ConfigFile.Mixin configFile;
    @Option(names = "--from", description = "Hugging Face model directory: config.json, model.safetensors (or shards), tokenizer.json.")
    Path from;

    @Option(names = "--preset", paramLabel = "NAME", description = "Write a new model of this shape instead of converting --from: "
            + "embedded, 25m, 125m, qwen2.5-0.5b, qwen2.5-1.5b, qwen2.5-7b (docs/models.md).")
    String preset;

    @Option(names = "--tokenizer", paramLabel = "FILE", description = "With --preset: a tokenizer.json, or a folder holding one "
            + "(a corpus of data synth, a model directory); tokenizer_config.json and the like beside it come along.")
    Path tokenizer;

    @Option(names = "--embedded", paramLabel = "CORPUS", description = "A corpus folder of data synth: the same as "
            + "--preset embedded --tokenizer CORPUS/tokenizer.json.")
    Path embedded;

    @Option(names = "--out", required = true, description = "New model directory (must not exist or be empty); written atomically.")
    Path out;

    @Option(names = "--audio-dim", defaultValue = "" + SynthCorpus.AUDIO_DIM, description = "Audio features per frame; 0 = no audio (default: ${DEFAULT-VALUE}).")
    int audioDim;

    @Option(names = "--vision-dim", defaultValue = "" + SynthCorpus.VISION_DIM, description = "Vision features per frame; 0 = no vision (default: ${DEFAULT-VALUE}).")
    int visionDim;

    @Option(names = "--projector", defaultValue = "mlp", description = "mlp | linear (default: ${DEFAULT-VALUE}).")
    String projector;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the random weights: the projectors', and with "
            + "--preset / --embedded every weight's (default: ${DEFAULT-VALUE}).")
    long seed;

    @Override
    public Integer call() throws IOException {
        int sources = (from == null ? 0 : 1) + (preset == null ? 0 : 1) + (embedded == null ? 0 : 1);
        if (sources != 1) throw new BadInputException("--from / --preset / --embedded", "give exactly one of them");
        if (preset != null && tokenizer == null)
            throw new BadInputException("--tokenizer", "required with --preset (a tokenizer.json, or a folder holding one)");
        if (preset == null && tokenizer != null)
            throw new BadInputException("--tokenizer", "only with --preset (--from uses the directory's tokenizer.json, "
                    + "--embedded the corpus's)");
        ModelInit.Options opt = new ModelInit.Options(audioDim, visionDim, projector, seed);
        Consumer<String> log = msg -> System.err.println("hintgrpo: " + msg);
        if (from != null) ModelInit.run(from, out, opt, log);
        else if (preset != null) ModelInit.preset(preset, tokenizer, out, opt, log);
        else ModelInit.preset("embedded", embedded.resolve(SynthCorpus.TOKENIZER_FILE), out, opt, log);
        return 0;
    }
}
