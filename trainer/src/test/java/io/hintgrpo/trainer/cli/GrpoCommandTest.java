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

    /**
     * The whole experiment on a tiny budget: two regimes, two seeds (each its own SFT), every arm,
     * the report with hard-subset rows and bootstrap intervals, curves per regime; a second run
     * resumes from the finished runs and writes the same report; other corpus settings in the same
     * work folder are refused.
     */
    @Test
    void experimentWritesTableIntervalsAndCurvesAndResumes() throws Exception {
        Path cfg = dir.resolve("exp.json");
        Files.writeString(cfg, "{\"sft\": {\"batch_size\": 4, \"eval_samples\": 2, \"eval_every\": 2}, "
                + "\"grpo\": {\"prompts_per_step\": 2, \"group_size\": 4, \"max_completion_tokens\": 6, \"eval_samples\": 2, \"eval_every\": 1}}");
        Path results = dir.resolve("results"), work = dir.resolve("work");
        String[] args = {"experiment", "--work", work.toString(), "--out", results.toString(), "--seeds", "1,2", "--budget", "16",
                "--regimes", "blind-spot/banded,default/continuous", "--corpus-size", "60", "--eval-size", "16", "--sft-steps", "2",
                "--max-new-tokens", "8", "--bootstrap", "200", "--backend", "cpu", "--config", cfg.toString()};
        assertEquals(0, run(args), err);
        String md = Files.readString(results.resolve("results.md"));
        // outputs are readable by others, as files a user writes normally are
        assertEquals("rw-r--r--", java.nio.file.attribute.PosixFilePermissions.toString(
                Files.getPosixFilePermissions(results.resolve("results.md"))));
        for (String s : new String[]{"## Blind-spot corpus", "## Default corpus", "| SFT only | 2 |", "| GRPO | 2 |",
                "| GRPO + dynamic sampling | 2 |", "| Hint-GRPO (replace) | 2 |", "| Hint-GRPO (mix) | 2 |", "**in-domain hard**",
                "**cross-domain**", "Paired difference to plain GRPO", "Start of RL"})
            assertTrue(md.contains(s), s + " in\n" + md);
        assertTrue(md.contains("Produced by `hintgrpo experiment --work"), md);
        for (String png : new String[]{"blind-spot-banded-hard-disc.png", "blind-spot-banded-reward.png", "default-continuous-hard-disc.png",
                "default-continuous-reward.png"})
            assertTrue(Files.size(results.resolve(png)) > 1000, png);
        var mapper = new com.fasterxml.jackson.databind.ObjectMapper();
        var json = mapper.readTree(results.resolve("results.json").toFile());
        assertEquals(2, json.get("regimes").size());
        for (var regime : json.get("regimes")) {
            assertEquals(10, regime.get("runs").size(), regime.get("regime").asText());
            for (var r : regime.get("runs")) {
                assertEquals(32, r.get("scores").get("in-domain").get("n").asInt() + r.get("scores").get("cross-domain").get("n").asInt());
                if (!r.get("arm").asText().equals("SFT only"))
                    // the budget stops a run after the step that reaches it: at most one step (with up to 3 refills) past it
                    assertTrue(r.get("completions").asLong() >= 16 && r.get("completions").asLong() <= 16 + 32, r.toString());
            }
            assertTrue(regime.get("differences").size() >= 4 * 2 * 6, regime.toString());
            for (var d : regime.get("differences"))
                if (!d.get("low").isNull() && Double.isFinite(d.get("low").asDouble()))
                    assertTrue(d.get("low").asDouble() <= d.get("high").asDouble() + 1e-12, d.toString());
        }
        // each seed's SFT is shared by the regimes of its corpus, and the two corpora train their own
        assertTrue(Files.isDirectory(work.resolve("blind-spot/seed1/sft/model")));
        assertTrue(Files.isDirectory(work.resolve("default/seed2/sft/model")));

        byte[] before = Files.readAllBytes(results.resolve("results.json"));
        assertEquals(0, run(args), err);
        assertArrayEquals(before, Files.readAllBytes(results.resolve("results.json")), "a finished experiment resumes to the same report");

        String[] other = args.clone();
        other[java.util.Arrays.asList(args).indexOf("--corpus-size") + 1] = "80";
        assertEquals(Main.EXIT_BAD_INPUT, run(other));
        assertTrue(err.contains("corpus-blind-spot") && err.contains("use another --work"), err);
        assertArrayEquals(before, Files.readAllBytes(results.resolve("results.json")), "nothing rewritten on bad input");
    }
}
