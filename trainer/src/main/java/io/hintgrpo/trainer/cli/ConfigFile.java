package io.hintgrpo.trainer.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.trainer.config.Configs;
import io.hintgrpo.trainer.data.AtomicFiles;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

/**
 * {@code --config FILE} for every command: a JSON or YAML file whose keys are option names
 * (snake_case or as spelled, without dashes); keys at the top level apply to every command, a
 * section named after the command overrides them, and flags on the command line override both.
 * Commands that take this mixin also get their effective settings written beside their outputs.
 */
final class ConfigFile {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** The option itself, mixed into commands that have no config handling of their own. */
    static final class Mixin {
        @Option(names = "--config", description = "JSON or YAML settings (option names as keys; a section named after the command overrides the top level); flags override the file.")
        Path config;
    }

    private ConfigFile() {}

    /** Default values for options from the --config file named in args (null when there is none). */
    static CommandLine.IDefaultValueProvider defaults(String[] args) {
        Path file = null;
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--config") && i + 1 < args.length) file = Path.of(args[i + 1]);
            else if (args[i].startsWith("--config=")) file = Path.of(args[i].substring("--config=".length()));
        }
        if (file == null) return null;
        ObjectNode all = Configs.read(file, null);
        return arg -> {
            if (!(arg instanceof OptionSpec o) || o.longestName().equals("--config")) return null;
            JsonNode v = lookup(section(all, o.command()), o);
            if (v == null) v = lookup(all, o);
            if (v == null || v.isObject()) return null;
            if (v.isArray()) {
                List<String> parts = new ArrayList<>();
                v.forEach(e -> parts.add(e.asText()));
                return String.join(",", parts);
            }
            return v.asText();
        };
    }

    private static JsonNode section(ObjectNode all, CommandSpec cmd) {
        JsonNode s = all.get(cmd.name());
        return s != null && s.isObject() ? s : null;
    }

    private static JsonNode lookup(JsonNode node, OptionSpec o) {
        if (node == null) return null;
        String name = o.longestName().replaceFirst("^-+", "");
        JsonNode v = node.get(name);
        return v != null ? v : node.get(name.replace('-', '_'));
    }

    /** A key in the command's own section that names no option of it is a mistake: say so before running. */
    static void checkSection(Path file, CommandSpec cmd) {
        JsonNode s = section(Configs.read(file, null), cmd);
        if (s == null) return;
        s.fieldNames().forEachRemaining(key -> {
            boolean known = cmd.options().stream().anyMatch(o -> {
                String n = o.longestName().replaceFirst("^-+", "");
                return n.equals(key) || n.replace('-', '_').equals(key);
            });
            if (!known) throw new BadInputException(file.toString(), "unknown setting \"" + key + "\" for command " + cmd.name());
        });
    }

    /** Every option's effective value, as JSON beside an output: {@code out.jsonl} → {@code out.config.json}. */
    static void writeEffective(CommandSpec cmd, Path output) throws IOException {
        String name = output.getFileName().toString();
        int dot = name.lastIndexOf('.');
        writeEffectiveTo(cmd, output.resolveSibling((dot > 0 ? name.substring(0, dot) : name) + ".config.json"));
    }

    /** Every option's effective value, as JSON in {@code file}. */
    static void writeEffectiveTo(CommandSpec cmd, Path file) throws IOException {
        ObjectNode o = JSON.createObjectNode();
        o.put("command", cmd.qualifiedName());
        ObjectNode values = o.putObject("settings");
        for (OptionSpec opt : cmd.options()) {
            if (opt.usageHelp() || opt.versionHelp()) continue;
            Object v = opt.getValue();
            String key = opt.longestName().replaceFirst("^-+", "").replace('-', '_');
            if (v == null) values.putNull(key);
            else if (v instanceof Collection<?> c) c.forEach(x -> values.withArray(key).add(x.toString()));
            else values.put(key, v.toString());
        }
        AtomicFiles.writeString(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(o));
    }
}
