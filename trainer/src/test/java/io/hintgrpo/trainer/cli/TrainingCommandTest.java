package io.hintgrpo.trainer.cli;

import io.hintgrpo.trainer.TinyModels;
import io.hintgrpo.trainer.data.SynthCorpus;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

/** What tests of the training commands share: a small corpus and a tiny model in a temp folder, and a command line runner. */
abstract class TrainingCommandTest {
    @TempDir
    Path dir;
    Path modelDir, corpus;
    String out, err;

    @BeforeEach
    void makeCorpusAndModel() throws Exception {
        corpus = dir.resolve("corpus");
        SynthCorpus.write(corpus, SynthCorpus.Options.defaults(3, 60));
        modelDir = dir.resolve("model");
        TinyModels.write(modelDir, 4);
    }

    int run(String... args) {
        CliRun r = CliRun.of(args);
        out = r.out();
        err = r.err();
        return r.code();
    }

    /** The corpus's training file of the reviews domain. */
    String train() {
        return SynthCorpus.splitFile(corpus, "reviews", "train").toString();
    }
}
