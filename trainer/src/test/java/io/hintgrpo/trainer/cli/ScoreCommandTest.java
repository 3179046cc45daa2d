package io.hintgrpo.trainer.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.io.Safetensors;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.Sequence;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class ScoreCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final ModelConfig CONFIG = ModelConfig.parse("""
            {"hidden_size": 16, "intermediate_size": 24, "num_attention_heads": 4, "num_key_value_heads": 2,
             "num_hidden_layers": 2, "vocab_size": 30, "tie_word_embeddings": true, "max_position_embeddings": 64,
             "audio_feature_size": 3, "vision_feature_size": 2, "audio_token_id": 28, "vision_token_id": 29,
             "projector_type": "mlp"}""", "test");

    @TempDir
    Path dir;
    Path modelDir;
    String err;

    @BeforeEach
    void writeModel() {
        modelDir = dir.resolve("model");
        try (Model m = new Model(new CpuKernels(), CONFIG)) {
            m.initialize(11);
            ModelDir.save(m, modelDir, Safetensors.Dtype.F32);
        }
    }

    private int run(String... args) {
        CliRun r = CliRun.of(args);
        err = r.err();
        return r.code();
    }

    @Test
    void logprobsMatchTheModelForEveryLineAndBatchSize() throws Exception {
        Path in = dir.resolve("in.jsonl");
        Files.writeString(in, """
                {"id": "a", "ids": [1, 2, 3, 4, 5]}
                {"id": "b", "ids": [7, 28, 28, 9, 29, 3], "audio": [[0.5, -1, 2], [1, 1, 0]], "vision": [[0.25, -0.5]]}

                {"id": "c", "ids": [4, 4]}
                """);
        for (int batch : new int[]{1, 2, 8}) {
            Path out = dir.resolve("out" + batch + ".jsonl");
            assertEquals(0, run("score", "--model", modelDir.toString(), "--input", in.toString(),
                    "--output", out.toString(), "--batch-size", String.valueOf(batch)), err);
            List<String> lines = Files.readAllLines(out);
            assertEquals(3, lines.size());
            try (Model m = ModelDir.load(new CpuKernels(), modelDir, 0, msg -> {})) {
                List<Sequence> seqs = List.of(Sequence.text(new int[]{1, 2, 3, 4, 5}),
                        new Sequence(new int[]{7, 28, 28, 9, 29, 3}, null, new float[][]{{0.5f, -1, 2}, {1, 1, 0}}, new float[][]{{0.25f, -0.5f}}),
                        Sequence.text(new int[]{4, 4}));
                Model.ForwardResult expected = m.forward(Batch.pack(CONFIG, seqs), 1f);
                for (int s = 0; s < 3; s++) {
                    JsonNode rec = JSON.readTree(lines.get(s));
                    assertEquals(new String[]{"a", "b", "c"}[s], rec.get("id").asText(), "input fields are kept");
                    float[] want = expected.logprobs(s);
                    assertEquals(want.length, rec.get("logprobs").size());
                    for (int i = 0; i < want.length; i++) {
                        float got = rec.get("logprobs").get(i).floatValue();
                        assertTrue(got < 0, "a log-probability is negative");
                        assertEquals(want[i], got, 1e-6f, "line " + s + " token " + (i + 1));
                    }
                }
            }
        }
    }

    @Test
    void malformedLineFailsNamingTheLineAndKeepsTheOldOutput() throws Exception {
        Path in = dir.resolve("in.jsonl"), out = dir.resolve("out.jsonl");
        Files.writeString(out, "previous results\n");
        Files.writeString(in, "{\"ids\": [1, 2]}\n{\"ids\": [1, 2\n");
        assertEquals(Main.EXIT_BAD_INPUT, run("score", "--model", modelDir.toString(), "--input", in.toString(), "--output", out.toString()));
        assertTrue(err.contains(in + ":2: not valid JSON"), err);
        assertEquals("previous results\n", Files.readString(out));

        Files.writeString(in, "{\"ids\": [1, 99]}\n");
        assertEquals(Main.EXIT_BAD_INPUT, run("score", "--model", modelDir.toString(), "--input", in.toString(), "--output", out.toString()));
        assertTrue(err.contains(in + ":1: token 1 is 99, outside the vocabulary"), err);

        Files.writeString(in, "{\"ids\": [1, 28, 3]}\n");
        assertEquals(Main.EXIT_BAD_INPUT, run("score", "--model", modelDir.toString(), "--input", in.toString(), "--output", out.toString()));
        assertTrue(err.contains(in + ":1: 1 audio placeholder tokens but 0 audio feature rows"), err);

        Files.writeString(in, "{\"tokens\": [1]}\n");
        assertEquals(Main.EXIT_BAD_INPUT, run("score", "--model", modelDir.toString(), "--input", in.toString(), "--output", out.toString()));
        assertTrue(err.contains(in + ":1: \"ids\" must be a non-empty array"), err);
        assertEquals("previous results\n", Files.readString(out));
    }

    @Test
    void badModelDirectoryAndFlagsAreOneClearError() throws Exception {
        Path in = dir.resolve("in.jsonl"), out = dir.resolve("out.jsonl");
        Files.writeString(in, "{\"ids\": [1, 2]}\n");
        assertEquals(Main.EXIT_BAD_INPUT, run("score", "--model", dir.resolve("nope").toString(), "--input", in.toString(), "--output", out.toString()));
        assertTrue(err.contains("config.json") && err.lines().count() == 1, err);
        assertFalse(Files.exists(out));

        assertEquals(Main.EXIT_BAD_INPUT, run("score", "--model", modelDir.toString(), "--input", in.toString(), "--output", out.toString(), "--batch-size", "0"));
        assertTrue(err.contains("--batch-size: must be ≥ 1"), err);
        assertEquals(Main.EXIT_BAD_INPUT, run("score", "--model", modelDir.toString(), "--input", in.toString(), "--output", out.toString(), "--backend", "tpu"));
        assertTrue(err.contains("unknown backend \"tpu\""), err);
        assertNotEquals(0, run("score", "--model", modelDir.toString()));
        assertTrue(err.contains("Missing required option"), err);
    }

    @Test
    void configFileSetsOptionsFlagsOverrideItAndTheEffectiveSettingsAreWritten() throws Exception {
        Path in = dir.resolve("in.jsonl"), out = dir.resolve("out.jsonl"), cfg = dir.resolve("run.yaml");
        Files.writeString(in, "{\"ids\": [1, 2, 3]}\n{\"ids\": [4, 5]}\n");
        // top level for every command, a section for this one; the file's batch size 0 is overridden by the flag
        Files.writeString(cfg, "model: " + modelDir + "\nbatch_size: 0\nscore:\n  temperature: 2.0\n");
        assertEquals(0, run("score", "--config", cfg.toString(), "--input", in.toString(), "--output", out.toString(),
                "--batch-size", "3"), err);
        JsonNode eff = JSON.readTree(dir.resolve("out.config.json").toFile()).get("score");
        assertEquals("3", eff.get("batch_size").asText());
        assertEquals("2.0", eff.get("temperature").asText());
        assertEquals(modelDir.toString(), eff.get("model").asText());
        assertEquals(2, Files.readAllLines(out).size());

        Files.writeString(cfg, "score:\n  temprature: 2.0\n");
        assertEquals(Main.EXIT_BAD_INPUT, run("score", "--config", cfg.toString(), "--model", modelDir.toString(),
                "--input", in.toString(), "--output", out.toString()));
        assertTrue(err.contains(cfg + ": unknown setting \"temprature\" for command score"), err);
        assertEquals(Main.EXIT_BAD_INPUT, run("score", "--config", dir.resolve("missing.yaml").toString(), "--model", modelDir.toString(),
                "--input", in.toString(), "--output", out.toString()));
        assertTrue(err.contains("missing.yaml: config file not found"), err);
    }

    @Test
    void helpListsTheCommands() {
        StringWriter o = new StringWriter();
        assertEquals(0, Main.run(new PrintWriter(o, true), new PrintWriter(new StringWriter(), true), "--help"));
        assertTrue(o.toString().contains("score"), o.toString());
    }
}
