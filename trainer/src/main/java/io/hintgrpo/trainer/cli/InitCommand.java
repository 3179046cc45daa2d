package io.hintgrpo.trainer.cli;

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

/**
 * {@code hintgrpo init}: a Hugging Face Qwen2/Qwen2.5 directory → a starting model with our special
 * tokens and projectors; or, with --embedded, the embedded default model for a synthetic corpus.
 */
@Command(name = "init", mixinStandardHelpOptions = true,
        description = {"Turns a Hugging Face Qwen2/Qwen2.5 directory into a starting model: adds the DC tags, modality "
                + "placeholders and end of turn the tokenizer lacks (new embedding rows = mean of the existing ones), "
                + "adds the audio/vision projectors, keeps the chat template and the other files.",
                "With --embedded CORPUS instead of --from: the embedded default model (the demo's) for that corpus's "
                        + "tokenizer, initialised from --seed, as a model directory for sft."})
final class InitCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @CommandLine.Mixin(name = "configFile")
    ConfigFile.Mixin configFile;
    @Option(names = "--from", description = "Hugging Face model directory: config.json, model.safetensors (or shards), tokenizer.json.")
    Path from;

    @Option(names = "--embedded", paramLabel = "CORPUS", description = "A corpus folder of data synth: write the embedded default "
            + "model for its tokenizer instead of converting --from.")
    Path embedded;

    @Option(names = "--out", required = true, description = "New model directory (must not exist or be empty); written atomically.")
    Path out;

    @Option(names = "--audio-dim", defaultValue = "" + SynthCorpus.AUDIO_DIM, description = "Audio features per frame; 0 = no audio (default: ${DEFAULT-VALUE}).")
    int audioDim;

    @Option(names = "--vision-dim", defaultValue = "" + SynthCorpus.VISION_DIM, description = "Vision features per frame; 0 = no vision (default: ${DEFAULT-VALUE}).")
    int visionDim;

    @Option(names = "--projector", defaultValue = "mlp", description = "mlp | linear (default: ${DEFAULT-VALUE}).")
    String projector;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the projectors' initialisation (default: ${DEFAULT-VALUE}).")
    long seed;

    @Override
    public Integer call() throws IOException {
        if ((from == null) == (embedded == null))
            throw new io.hintgrpo.engine.BadInputException("--from / --embedded", "give exactly one of them");
        if (embedded != null) {
            ModelInit.embedded(embedded.resolve(SynthCorpus.TOKENIZER_FILE), out, seed, msg -> System.err.println("hintgrpo: " + msg));
            return 0;
        }
        ModelInit.run(from, out, new ModelInit.Options(audioDim, visionDim, projector, seed), msg -> System.err.println("hintgrpo: " + msg));
        return 0;
    }
}
