package io.hintgrpo.trainer;

import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.io.Safetensors;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.trainer.data.SynthCorpus;
import io.hintgrpo.trainer.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** A small random model with the corpus tokenizer and modalities, as a model directory: fast to train and generate in tests. */
public final class TinyModels {
    private TinyModels() {}

    /** Hidden 32, 2 layers, GQA 4/2, MLP projectors; vocabulary, placeholders and feature widths of the corpus tokenizer's model. */
    public static ModelConfig config(Tokenizer tok) {
        ModelConfig base = SynthCorpus.modelConfig(tok);
        return new ModelConfig(32, 48, 4, 2, 2, base.vocabSize(), base.rmsNormEps(), base.ropeTheta(), true,
                base.maxPositionEmbeddings(), base.audioFeatureSize(), base.visionFeatureSize(), base.audioTokenId(),
                base.visionTokenId(), "mlp");
    }

    /** Writes config.json, model.safetensors (seeded) and the corpus tokenizer.json into dir; returns the config. */
    public static ModelConfig write(Path dir, long seed) throws IOException {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("tokenizer.json"), SynthCorpus.tokenizerJson());
        ModelConfig cfg;
        try (Tokenizer tok = Tokenizer.load(dir)) {
            cfg = config(tok);
        }
        try (Model m = new Model(new CpuKernels(), cfg)) {
            m.initialize(seed);
            ModelDir.save(m, dir, Safetensors.Dtype.F32);
        }
        return cfg;
    }
}
