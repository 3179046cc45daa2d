package io.hintgrpo.trainer.config;

import io.hintgrpo.trainer.rl.GrpoConfig;
import io.hintgrpo.trainer.sft.SftConfig;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.*;

/**
 * docs/config.md is generated from the settings records and the TRL table, so it cannot drift:
 * this test renders it and compares. After changing a setting, regenerate with
 * {@code mvn -pl engine,trainer test -Dtest=ConfigDocsTest -Dhintgrpo.writeDocs=true -Dsurefire.failIfNoSpecifiedTests=false}.
 */
class ConfigDocsTest {
    private static final Path DOC = Path.of("..", "docs", "config.md");

    @Test
    void docsConfigMdIsGeneratedFromTheRecords() throws Exception {
        String expected = render();
        if (Boolean.getBoolean("hintgrpo.writeDocs")) Files.writeString(DOC, expected);
        assertEquals(expected, Files.readString(DOC), "docs/config.md is stale; regenerate it as this test's javadoc says");
    }

    /** Every default parses, every TRL row names a setting some record has, and keys are unique per record. */
    @Test
    void recordsAndTableAreConsistent() {
        assertDoesNotThrow(SftConfig::defaults);
        assertDoesNotThrow(GrpoConfig::defaults);
        for (Class<? extends Record> type : List.of(SftConfig.class, GrpoConfig.class)) {
            List<Settings.Key> keys = Settings.keys(type);
            assertEquals(keys.size(), keys.stream().map(Settings.Key::name).distinct().count(), "duplicate keys in " + type);
        }
        java.util.Set<String> ours = new java.util.HashSet<>(Settings.names(GrpoConfig.class));
        ours.addAll(Settings.names(SftConfig.class));
        ours.addAll(List.of("out", "precision")); // run options of sft and grpo
        for (TrlNames.Row r : TrlNames.TABLE) assertTrue(ours.contains(r.ours()), r.trl() + " → " + r.ours());
    }

    static String render() {
        StringBuilder md = new StringBuilder();
        md.append("""
                # Settings

                <!-- Generated from the settings records (SftConfig, GrpoConfig and their parts) and TrlNames by
                     ConfigDocsTest; edit the records, not this file. -->

                Every setting of `sft` and `grpo` has one name: the config key below, the flag with dashes
                (`group_size` ↔ `--group-size`), the key in the effective config written beside a run
                (`sft_config.json`, `grpo_config.json`), and the key of `SftConfig.with(Map)` /
                `GrpoConfig.with(Map)` in Java. Where a setting is given, later wins:

                1. the default below;
                2. `--config FILE` (JSON, or YAML by extension): keys at the top level apply to every command
                   that has them (`backend: cpu` reaches `sft`, `grpo`, `eval`, …); a section named after the
                   command (`grpo: {…}`) overrides them for that command; a top-level key no command has, or a
                   section key its command lacks, is an error naming it;
                3. flags on the command line.

                The effective config beside a run is itself a valid `--config` (`{"grpo": {…}}`): passing it
                back repeats the run. The commands' other options (`--model`, `--train`, `--backend`, …) are
                keys the same way; `hintgrpo COMMAND --help` lists them. `demo` and `experiment` read `sft` and
                `grpo` sections for their two stages.

                Enumerations are written in lower case with dashes (`token-mean`). Parts group the settings
                in Java (`cfg.optimizer().lr()`); the keys stay flat.

                """);
        section(md, "sft", "cold-start SFT", SftConfig.class);
        section(md, "grpo", "GRPO and Hint-GRPO (docs/grpo.md explains each step)", GrpoConfig.class);
        md.append("""
                ## TRL names

                A config file written for TRL's `GRPOConfig` runs `grpo` with these keys: each TRL name is
                mapped to ours (with its value where the two differ) through one table (`TrlNames`). Our
                defaults stay ours (TRL's differ, e.g. `beta`). A TRL key together with our key for the same
                setting is an error, as is a TRL value we do not implement (`scale_rewards: batch`, other
                `loss_type`s) and a common TRL key with no equivalent here (`per_device_train_batch_size`,
                `gradient_accumulation_steps`, `use_vllm`, …: set `prompts_per_step` and `group_size` instead).

                | TRL key | our key | values |
                |---|---|---|
                """);
        for (TrlNames.Row r : TrlNames.TABLE)
            md.append("| `").append(r.trl()).append("` | `").append(r.ours()).append("` | ")
                    .append(r.values().isEmpty() ? "same" : r.values()).append(" |\n");
        return md.toString();
    }

    private static void section(StringBuilder md, String command, String what, Class<? extends Record> type) {
        Map<String, String> trl = TrlNames.TABLE.stream().collect(Collectors.toMap(TrlNames.Row::ours, TrlNames.Row::trl, (a, b) -> a + ", " + b));
        md.append("## `").append(command).append("`: ").append(what).append("\n\n");
        md.append("| key | part | default | values | meaning | TRL name |\n|---|---|---|---|---|---|\n");
        for (Settings.Key k : Settings.keys(type))
            md.append("| `").append(k.name()).append("` | ").append(k.part().isEmpty() ? command : k.part()).append(" | `")
                    .append(k.defaultValue()).append("` | ").append(k.kind().replace(" | ", ", ")).append(" | ").append(k.doc().replace("|", "\\|"))
                    .append(" | ").append(trl.containsKey(k.name()) ? "`" + trl.get(k.name()) + "`" : "").append(" |\n");
        md.append('\n');
    }
}
