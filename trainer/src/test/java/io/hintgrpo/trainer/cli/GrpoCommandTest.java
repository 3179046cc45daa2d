package io.hintgrpo.trainer.cli;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** hintgrpo grpo and hintgrpo experiment on a small random model and a small corpus. */
class GrpoCommandTest extends TrainingCommandTest {
    @Test
    void trainsWritesMetricsAndRefusesToOverwriteARun() throws Exception {
        Path run = dir.resolve("run");
        assertEquals(0, run("grpo", "--model", modelDir.toString(), "--train", train(), "--out", run.toString(), "--backend", "cpu",
                "--steps", "2", "--prompts-per-step", "2", "--group-size", "4", "--max-completion-tokens", "6", "--hint", "mix"), err);
        assertTrue(out.contains("Hint-GRPO (mix): 2 steps"), out);
        assertEquals(2, Files.readAllLines(run.resolve("metrics.jsonl")).size());
        assertTrue(Files.isRegularFile(run.resolve("grpo_config.json")));
        assertTrue(Files.isRegularFile(run.resolve("model/model.safetensors")));
        byte[] before = Files.readAllBytes(run.resolve("model/model.safetensors"));
        // the same folder again without --resume: refused, nothing touched
        assertEquals(Main.EXIT_BAD_INPUT, run("grpo", "--model", modelDir.toString(), "--train", train(), "--out", run.toString(),
                "--backend", "cpu", "--steps", "2"));
        assertTrue(err.contains("--resume"), err);
        assertArrayEquals(before, Files.readAllBytes(run.resolve("model/model.safetensors")));
    }

    @Test
    void badSettingsAreOneClearError() {
        assertEquals(Main.EXIT_BAD_INPUT, run("grpo", "--model", modelDir.toString(), "--train", train(), "--out",
                dir.resolve("r1").toString(), "--aggregation", "mean"));
        assertTrue(err.contains("aggregation") && err.lines().count() == 1, err);
        assertEquals(Main.EXIT_BAD_INPUT, run("grpo", "--model", dir.resolve("nope").toString(), "--train", train(), "--out",
                dir.resolve("r2").toString()));
        assertTrue(err.contains("nope"), err);
        assertFalse(Files.exists(dir.resolve("r2")), "nothing written on bad input");
    }

    @Test
    void experimentWritesTableAndCurves() throws Exception {
        Path cfg = dir.resolve("exp.json");
        Files.writeString(cfg, "{\"grpo\": {\"prompts_per_step\": 2, \"group_size\": 4, \"max_completion_tokens\": 6, \"eval_samples\": 2}}");
        Path results = dir.resolve("results");
        assertEquals(0, run("experiment", "--sft", modelDir.toString(), "--corpus", corpus.toString(), "--work",
                dir.resolve("work").toString(), "--out", results.toString(), "--seeds", "1,2", "--budget", "16", "--test-limit", "3",
                "--backend", "cpu", "--config", cfg.toString()), err);
        String md = Files.readString(results.resolve("results.md"));
        // outputs are readable by others, as files a user writes normally are
        assertEquals("rw-r--r--", java.nio.file.attribute.PosixFilePermissions.toString(
                Files.getPosixFilePermissions(results.resolve("results.md"))));
        assertEquals("rwxr-xr-x", java.nio.file.attribute.PosixFilePermissions.toString(
                Files.getPosixFilePermissions(dir.resolve("work/grpo-seed1/model"))));
        for (String method : new String[]{"| SFT only | 1 |", "| GRPO | 2 |", "| GRPO + dynamic sampling | 2 |", "| Hint-GRPO | 2 |"})
            assertTrue(md.contains(method), method + " in\n" + md);
        assertTrue(md.contains("Produced by `hintgrpo experiment --sft"), md);
        for (String png : new String[]{"reward.png", "zero_advantage.png", "hard_groups.png", "valid_mae.png"})
            assertTrue(Files.size(results.resolve(png)) > 1000, png);
        var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(results.resolve("results.json").toFile());
        assertEquals(7, json.get("runs").size());
        for (var r : json.get("runs"))
            if (!r.get("method").asText().equals("SFT only"))
                // the budget stops a run after the step that reaches it: at most one step (with up to 3 refills) past it
                assertTrue(r.get("completions").asLong() >= 16 && r.get("completions").asLong() <= 16 + 32, r.toString());
    }
}
