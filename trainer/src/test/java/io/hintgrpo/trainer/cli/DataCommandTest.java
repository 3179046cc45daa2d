package io.hintgrpo.trainer.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class DataCommandTest {
    @TempDir
    Path dir;
    String out, err;

    private int run(String... args) {
        CliRun r = CliRun.of(args);
        out = r.out();
        err = r.err();
        return r.code();
    }

    /** A blind-spot corpus and the embedded default model for it, from the command line (docs/results' regime runs). */
    @Test
    void aBlindSpotCorpusAndItsEmbeddedModel() throws Exception {
        Path corpus = dir.resolve("blind"), model = dir.resolve("init");
        assertEquals(0, run("data", "synth", "--out", corpus.toString(), "--size", "200", "--teacher-blind-spot", "1"), err);
        assertTrue(out.matches("(?s).*errors injected, [1-9]\\d* in the blind spot.*"), out);
        assertTrue(out.contains("hard subset: {\"reviews\":{\"train\":"), out);
        assertTrue(Files.readString(corpus.resolve("reviews/test.jsonl")).contains("\"subset\":\"hard\""));
        assertEquals(0, run("init", "--embedded", corpus.toString(), "--out", model.toString(), "--seed", "3"), err);
        try (var m = io.hintgrpo.engine.io.ModelDir.load(new io.hintgrpo.engine.cpu.CpuKernels(), model, 0, x -> {})) {
            assertEquals(io.hintgrpo.engine.model.Presets.embeddedDefault().hiddenSize(), m.config.hiddenSize());
        }
        assertTrue(Files.isRegularFile(model.resolve("tokenizer.json")));
        assertEquals(Main.EXIT_BAD_INPUT, run("init", "--embedded", corpus.toString(), "--out", model.toString()));
        assertTrue(err.contains("already exists and is not an empty directory"), err);
        assertEquals(Main.EXIT_BAD_INPUT, run("init", "--out", dir.resolve("m2").toString()));
        assertTrue(err.contains("--from / --preset / --embedded: give exactly one of them"), err);
    }

    @Test
    void synthWritesTheCorpusAndReportsWhatTheFilterDropped() {
        Path corpus = dir.resolve("corpus");
        assertEquals(0, run("data", "synth", "--out", corpus.toString(), "--seed", "3", "--size", "100",
                "--teacher-error-rate", "0.3", "--frames-audio", "4", "--frames-vision", "5"), err);
        assertTrue(out.contains("100 utterances in [reviews, interviews]"), out);
        assertTrue(out.matches("(?s).*filter kept \\d+ and dropped \\d+.*"), out);
        for (String f : new String[]{"corpus.json", "tokenizer.json", "reviews/train.jsonl", "interviews/test.jsonl"})
            assertTrue(Files.exists(corpus.resolve(f)), f);

        assertEquals(0, run("data", "check", corpus.resolve("reviews/train.jsonl").toString(), "--audio-dim", "16"), err);
        assertTrue(out.contains("40 records"), out);
        assertTrue(out.contains("reviews: negative"), out);

        assertEquals(Main.EXIT_BAD_INPUT, run("data", "synth", "--out", corpus.toString()));
        assertEquals("hintgrpo: error: " + corpus + ": folder exists and is not empty; refusing to overwrite", err.strip());
    }

    @Test
    void badFlagsAndBadRecordsEndWithOneErrorLine() throws Exception {
        assertEquals(Main.EXIT_BAD_INPUT, run("data", "synth", "--out", dir.resolve("x").toString(), "--size", "4"));
        assertTrue(err.strip().startsWith("hintgrpo: error: --size: must be at least"), err);
        assertFalse(Files.exists(dir.resolve("x")));
        assertEquals(Main.EXIT_BAD_INPUT, run("data", "synth", "--out", dir.resolve("x").toString(), "--teacher-error-rate", "2"));
        assertTrue(err.contains("--teacher-error-rate: must be in [0, 1], got 2.0"), err);

        Path f = dir.resolve("c.jsonl");
        Files.writeString(f, "{\"id\": \"a\", \"text\": \"t\", \"label\": 1}\n{\"id\": \"b\", \"text\": \"t\", \"label\": 7}\n");
        assertEquals(Main.EXIT_BAD_INPUT, run("data", "check", f.toString()));
        assertEquals("hintgrpo: error: " + f + ":2: label 7 is outside [-3, 3]", err.strip());
        assertEquals(0, run("data", "check", "--skip-bad", f.toString()));
        assertTrue(out.contains("1 records (0 with a teacher chain), skipped 1 malformed"), out);
        assertTrue(out.contains("skipped: " + f + ":2: label 7"), out);
    }
}
