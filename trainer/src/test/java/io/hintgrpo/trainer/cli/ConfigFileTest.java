package io.hintgrpo.trainer.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.hintgrpo.trainer.config.Settings;
import io.hintgrpo.trainer.rl.GrpoConfig;
import io.hintgrpo.trainer.sft.SftConfig;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * --config through the command line: one merge path for every command (top level, then the
 * command's section, then flags), TRL GRPOConfig names mapped with their values, the effective
 * config written beside a run being itself a valid --config, and one clear error for every bad file.
 */
class ConfigFileTest extends TrainingCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private Path file(String name, String text) throws Exception {
        Path f = dir.resolve(name);
        Files.writeString(f, text);
        return f;
    }

    private JsonNode effective(Path runDir, String command) throws Exception {
        return JSON.readTree(runDir.resolve(command + "_config.json").toFile()).get(command);
    }

    /** README says top-level keys apply to every command: backend and steps with no section run sft and grpo alike. */
    @Test
    void topLevelKeysApplyToEveryCommandThatHasThem() throws Exception {
        Path cfg = file("all.yaml", "backend: cpu\nsteps: 2\nbatch_size: 4\nprompts_per_step: 2\ngroup_size: 4\nmax_completion_tokens: 6\n");
        Path sft = dir.resolve("sft"), grpo = dir.resolve("grpo");
        assertEquals(0, run("sft", "--config", cfg.toString(), "--model", modelDir.toString(), "--train", train(), "--out", sft.toString()), err);
        JsonNode s = effective(sft, "sft");
        assertEquals("cpu", s.get("backend").asText());
        assertEquals(2, s.get("steps").asInt());
        assertEquals(4, s.get("batch_size").asInt());
        assertFalse(s.has("group_size"), "grpo's keys are not sft's: " + s);
        assertEquals(0, run("grpo", "--config", cfg.toString(), "--model", modelDir.toString(), "--train", train(), "--out", grpo.toString()), err);
        JsonNode g = effective(grpo, "grpo");
        assertEquals(2, g.get("steps").asInt());
        assertEquals(4, g.get("group_size").asInt());
        assertEquals("cpu", g.get("backend").asText());
        assertEquals(2, Files.readAllLines(grpo.resolve("metrics.jsonl")).size());
    }

    /** A config file written for TRL's GRPOTrainer, with the mapped keys, runs grpo; the effective config shows our names and values. */
    @Test
    void aTrlGrpoConfigFileRunsGrpo() throws Exception {
        Path runDir = dir.resolve("trl-run");
        Path cfg = file("trl.yaml", """
                output_dir: %s
                max_steps: 2
                seed: 3
                learning_rate: 5.0e-3
                num_generations: 4
                max_completion_length: 6
                temperature: 0.9
                top_p: 0.95
                top_k: null
                beta: 0.0
                epsilon: 0.2
                epsilon_high: 0.28
                loss_type: grpo
                scale_rewards: false
                num_iterations: 2
                mask_truncated_completions: true
                save_steps: 1
                bf16: false
                """.formatted(runDir));
        assertEquals(0, run("grpo", "--config", cfg.toString(), "--model", modelDir.toString(), "--train", train(),
                "--backend", "cpu", "--prompts-per-step", "2"), err);
        assertEquals(2, Files.readAllLines(runDir.resolve("metrics.jsonl")).size());
        JsonNode g = effective(runDir, "grpo");
        assertEquals(runDir.toString(), g.get("out").asText());
        assertEquals(2, g.get("steps").asInt());
        assertEquals(3, g.get("seed").asInt());
        assertEquals(5e-3f, g.get("lr").floatValue());
        assertEquals(4, g.get("group_size").asInt());
        assertEquals(6, g.get("max_completion_tokens").asInt());
        assertEquals(0.9f, g.get("temperature").floatValue());
        assertEquals(0.95f, g.get("top_p").floatValue());
        assertEquals(0, g.get("top_k").asInt());
        assertEquals(0f, g.get("beta").floatValue());
        assertEquals(0.2f, g.get("eps_low").floatValue());
        assertEquals(0.28f, g.get("eps_high").floatValue());
        assertEquals("sequence-mean", g.get("aggregation").asText());
        assertEquals("mean", g.get("advantage").asText());
        assertEquals(2, g.get("mu").asInt());
        assertTrue(g.get("mask_truncated").asBoolean());
        assertEquals(1, g.get("checkpoint_every").asInt());
        assertEquals("fp32", g.get("precision").asText());
        assertEquals(2, g.get("prompts_per_step").asInt(), "the flag over the file");
        for (String trl : new String[]{"num_generations", "learning_rate", "epsilon", "loss_type", "scale_rewards", "output_dir", "max_steps"})
            assertFalse(g.has(trl), "the effective config names settings our way, not " + trl);

        // TRL's epsilon alone sets both clip bounds, as in TRL (epsilon_high defaults to epsilon)
        JsonNode eps = io.hintgrpo.trainer.config.TrlNames.map((com.fasterxml.jackson.databind.node.ObjectNode) JSON.readTree(
                "{\"epsilon\": 0.3}"), "test");
        assertEquals(0.3, eps.get("eps_low").asDouble());
        assertEquals(0.3, eps.get("eps_high").asDouble());
    }

    /** The effective config beside a run is a valid --config: running from it gives the same settings. */
    @Test
    void theEffectiveConfigRepeatsTheRun() throws Exception {
        Path first = dir.resolve("first"), second = dir.resolve("second");
        assertEquals(0, run("grpo", "--model", modelDir.toString(), "--train", train(), "--out", first.toString(), "--backend", "cpu",
                "--steps", "1", "--prompts-per-step", "2", "--group-size", "4", "--max-completion-tokens", "6", "--hint", "mix",
                "--eps-high", "0.28", "--dynamic-sampling"), err);
        assertEquals(0, run("grpo", "--config", first.resolve("grpo_config.json").toString(), "--out", second.toString()), err);
        JsonNode a = effective(first, "grpo"), b = effective(second, "grpo");
        ((com.fasterxml.jackson.databind.node.ObjectNode) a).remove("out");
        ((com.fasterxml.jackson.databind.node.ObjectNode) b).remove("out");
        assertEquals(a, b);
        assertEquals("mix", b.get("hint").asText());
        assertTrue(b.get("dynamic_sampling").asBoolean());
        assertEquals(Files.readString(first.resolve("metrics.jsonl")).replaceAll("\"(generation|update)_seconds\":[^,]*", ""),
                Files.readString(second.resolve("metrics.jsonl")).replaceAll("\"(generation|update)_seconds\":[^,]*", ""),
                "the same settings train the same steps on cpu");
    }

    /** Every bad file or value is one line naming the file or flag and the setting; nothing is written. */
    @Test
    void badFilesAreOneClearError() throws Exception {
        String[][] cases = {
                {"scale_rewards: batch\n", "scale_rewards \"batch\" (TRL) has no equivalent here"},
                {"loss_type: cispo\n", "loss_type \"cispo\" (TRL) has no equivalent here"},
                {"learning_rate: 1e-3\nlr: 1e-4\n", "\"learning_rate\" (TRL's name for lr) and \"lr\" are both set"},
                {"per_device_train_batch_size: 8\n", "\"per_device_train_batch_size\" is a TRL GRPOConfig setting with no equivalent here"},
                {"stpes: 3\n", "unknown setting \"stpes\""},
                {"grpo:\n  hint: sometimes\n", "setting \"hint\" must be one of none, replace, mix, got \"sometimes\""},
                {"grpo:\n  batch_size: 4\n", "unknown setting \"batch_size\" for command grpo"},
                {"steps: 2.5\n", "setting \"steps\" must be a whole number"},
                {"group_size: 1\n", "group_size must be ≥ 2"},
                {"steps: {a: 1}\n", "setting \"steps\" must be a value or a list, not an object"},
        };
        int i = 0;
        for (String[] c : cases) {
            Path cfg = file("bad" + i + ".yaml", c[0]);
            Path runDir = dir.resolve("never" + i++);
            assertEquals(Main.EXIT_BAD_INPUT, run("grpo", "--config", cfg.toString(), "--model", modelDir.toString(), "--train", train(),
                    "--out", runDir.toString(), "--backend", "cpu"), c[0] + ": " + err);
            assertTrue(err.startsWith("hintgrpo: error: " + cfg) && err.contains(c[1]) && err.lines().count() == 1, c[0] + " → " + err);
            assertFalse(Files.exists(runDir), "nothing written on bad input");
        }
        // a bad flag names the flag
        assertEquals(Main.EXIT_BAD_INPUT, run("grpo", "--model", modelDir.toString(), "--train", train(), "--out",
                dir.resolve("r").toString(), "--group-size", "many"));
        assertTrue(err.contains("--group-size: setting \"group_size\" must be a whole number, got \"many\""), err);
    }

    /** One name per setting: every key of the records is a flag of its command, shown in --help with its default. */
    @Test
    void everySettingIsAFlagOfItsCommand() {
        assertEquals(0, run("grpo", "--help"));
        for (Settings.Key k : Settings.keys(GrpoConfig.class)) assertTrue(out.contains(k.flag()), k.flag() + " in grpo --help");
        assertTrue(out.contains("--adam-epsilon") && out.contains("(default: 1e-8)"), out);
        assertEquals(0, run("sft", "--help"));
        for (Settings.Key k : Settings.keys(SftConfig.class)) assertTrue(out.contains(k.flag()), k.flag() + " in sft --help");
        assertTrue(out.contains("(default: 2e-3)"), "sft's own learning-rate default: " + out);
    }
}
