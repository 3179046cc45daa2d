package io.hintgrpo.trainer.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.trainer.config.Configs;
import io.hintgrpo.trainer.config.Settings;
import io.hintgrpo.trainer.data.AtomicFiles;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code --config FILE} for every command, and the flags of settings records. The file reaches a
 * command along one path: picocli's default-value provider gives every option the file's value
 * ({@link Configs#settingsFor}: top level, then the command's section, TRL names mapped), flags on
 * the command line override it, and a settings record is bound from its options' values. The
 * effective settings are written beside a command's outputs as a file that is itself a valid
 * {@code --config}: {@code {"<command>": {every setting}}}.
 */
final class ConfigFile {
    /** Jackson on first use, not when the class loads: every command line passes through here, most without --config. */
    private static final class Json {
        static final ObjectMapper MAPPER = new ObjectMapper();
    }

    /** The option itself, mixed into commands that have no other run options. */
    static final class Mixin {
        @Option(names = "--config", description = "JSON or YAML settings (keys are option names in snake_case; a section named after "
                + "the command overrides the top level); flags override the file.")
        Path config;
    }

    private ConfigFile() {}

    /**
     * Default values for options from the --config file named in args (null when there is none).
     * The command the args run is checked now, so a bad file is one clear error before anything runs.
     */
    static CommandLine.IDefaultValueProvider defaults(String[] args, CommandLine root) {
        Path file = null;
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--config") && i + 1 < args.length) file = Path.of(args[i + 1]);
            else if (args[i].startsWith("--config=")) file = Path.of(args[i].substring("--config=".length()));
        }
        if (file == null) return null;
        Path config = file;
        Set<String> sections = new HashSet<>(), anyKnown = new HashSet<>();
        collect(root.getCommandSpec(), sections, anyKnown);
        Map<CommandSpec, ObjectNode> values = new HashMap<>();
        CommandSpec target = target(root, args);
        values.put(target, Configs.settingsFor(config, target.name(), keys(target), sections, anyKnown));
        for (OptionSpec o : target.options()) checkType(o, values.get(target).get(key(o)), config);
        return arg -> {
            if (!(arg instanceof OptionSpec o) || o.longestName().equals("--config")) return null;
            ObjectNode v = values.computeIfAbsent(o.command(), c -> {
                try {
                    return Configs.settingsFor(config, c.name(), keys(c), sections, anyKnown);
                } catch (BadInputException e) {
                    return Json.MAPPER.createObjectNode(); // not the command that runs: its problems are not this run's
                }
            });
            JsonNode n = v.get(key(o));
            if (n == null || n.isNull()) return null;
            if (n.isArray()) {
                if (n.isEmpty()) return null;
                List<String> parts = new ArrayList<>();
                n.forEach(e -> parts.add(e.asText()));
                return String.join(",", parts);
            }
            return n.asText();
        };
    }

    /** A file value of a plain typed option that would not convert is the file's error (not the flag's), named with its key. */
    private static void checkType(OptionSpec o, JsonNode v, Path config) {
        if (v == null || v.isNull() || v.isArray()) return;
        Class<?> t = o.type();
        Class<?> plain = t == Integer.class ? int.class : t == Long.class ? long.class : t == Float.class ? float.class
                : t == Double.class ? double.class : t == Boolean.class ? boolean.class : t;
        if (plain.isPrimitive()) Settings.convert(v, plain, key(o), config.toString());
    }

    /** The (sub)command that args run: the last subcommand name on the path. */
    private static CommandSpec target(CommandLine root, String[] args) {
        CommandLine cmd = root;
        for (String a : args) {
            CommandLine sub = cmd.getSubcommands().get(a);
            if (sub != null) cmd = sub;
        }
        return cmd.getCommandSpec();
    }

    private static void collect(CommandSpec spec, Set<String> sections, Set<String> keys) {
        keys.addAll(keys(spec));
        for (CommandLine sub : spec.subcommands().values()) {
            sections.add(sub.getCommandName());
            collect(sub.getCommandSpec(), sections, keys);
        }
    }

    private static Set<String> keys(CommandSpec spec) {
        Set<String> k = new LinkedHashSet<>();
        for (OptionSpec o : spec.options()) if (!o.usageHelp() && !o.versionHelp()) k.add(key(o));
        return k;
    }

    /** An option's config key: its long name without dashes, in snake_case. */
    static String key(OptionSpec o) {
        return o.longestName().replaceFirst("^-+", "").replace('-', '_');
    }

    /**
     * Adds one option per setting of a settings record to a command: {@code --group-size} for
     * {@code group_size}, taking text (Settings converts and checks it, naming the setting).
     */
    static CommandSpec addFlags(CommandSpec spec, Class<? extends Record> type) {
        for (Settings.Key k : Settings.keys(type)) {
            OptionSpec.Builder b = OptionSpec.builder(k.flag()).type(String.class).paramLabel("<" + k.kind().replace(" | ", "|") + ">")
                    .description(k.doc() + " (default: " + k.defaultValue() + ")");
            if (k.type() == boolean.class) b.arity("0..1").fallbackValue("true").paramLabel("<true|false>");
            spec.addOption(b.build());
        }
        return spec;
    }

    /** The settings record of a command from its options' values (the file's, or the flags' over them). */
    static <T extends Record> T settings(CommandSpec spec, Class<T> type, Path config) {
        ObjectNode values = Json.MAPPER.createObjectNode();
        Map<String, String> places = new HashMap<>();
        CommandLine.ParseResult parsed = spec.commandLine().getParseResult();
        for (Settings.Key k : Settings.keys(type)) {
            OptionSpec o = spec.findOption(k.flag());
            Object v = o.getValue();
            if (v == null) continue;
            values.put(k.name(), v.toString());
            places.put(k.name(), parsed != null && parsed.hasMatchedOption(o) ? k.flag() : String.valueOf(config));
        }
        String rule = config == null ? "settings" : config + " and flags";
        return Settings.bind(type, values, key -> key == null ? rule : places.getOrDefault(key, rule));
    }

    /**
     * A settings record for a command that runs more than one trainer (demo, experiment): base, then
     * the file's section of that name, then the flags given (null values are not given).
     */
    static <T extends Record> T section(Path config, String name, T base, Map<String, ?> flags) {
        ObjectNode values = config == null ? Json.MAPPER.createObjectNode() : Configs.section(config, name, Settings.names(base.getClass()));
        flags.forEach((k, v) -> {
            if (v != null) values.set(k, Json.MAPPER.valueToTree(v));
        });
        String where = config == null ? "flags" : config + " and flags";
        return Settings.over(base, values, key -> where);
    }

    /**
     * A command's option values by config key, for its effective config: every option but help,
     * --config and the settings record's own (settings may be null); numbers and booleans as they
     * are, lists as lists of text, the rest as text.
     */
    static Map<String, Object> optionValues(CommandSpec cmd, Class<? extends Record> settings) {
        Set<String> recordKeys = settings == null ? Set.of() : Settings.names(settings);
        Map<String, Object> values = new java.util.LinkedHashMap<>();
        for (OptionSpec opt : cmd.options()) {
            String key = key(opt);
            if (opt.usageHelp() || opt.versionHelp() || key.equals("config") || recordKeys.contains(key)) continue;
            Object v = opt.getValue();
            if (v instanceof Collection<?> c) values.put(key, c.stream().map(String::valueOf).toList());
            else values.put(key, v == null || v instanceof Number || v instanceof Boolean ? v : v.toString());
        }
        return values;
    }

    /** Every option of a command, as a --config file in {@code file}: {@code {"<command>": {…}}}. */
    static void writeEffective(CommandSpec cmd, Path file) throws IOException {
        ObjectNode root = Json.MAPPER.createObjectNode();
        root.set(cmd.name(), Json.MAPPER.valueToTree(optionValues(cmd, null)));
        AtomicFiles.writeString(file, Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(root));
    }

    /** The effective settings beside an output file: {@code out.jsonl} → {@code out.config.json}. */
    static void writeEffectiveBeside(CommandSpec cmd, Path output) throws IOException {
        writeEffective(cmd, beside(output));
    }

    private static Path beside(Path output) {
        String name = output.getFileName().toString();
        int dot = name.lastIndexOf('.');
        return output.resolveSibling((dot > 0 ? name.substring(0, dot) : name) + ".config.json");
    }

    /**
     * Before any work: the output file (and the effective config that goes beside it) is none of
     * the inputs, and its folder takes a file; else one clear error naming the flag or the path.
     */
    static void checkOutput(Path output, String flag, Collection<Path> inputs) {
        AtomicFiles.refuseInput(output, flag, inputs);
        AtomicFiles.refuseInput(beside(output), flag + " (its .config.json)", inputs);
        AtomicFiles.probeFile(output);
    }

    /** A picocli model transformer per settings record: the command gets one flag per setting. */
    static final class SftFlags implements CommandLine.IModelTransformer {
        @Override
        public CommandSpec transform(CommandSpec spec) {
            return addFlags(spec, io.hintgrpo.trainer.sft.SftConfig.class);
        }
    }

    static final class GrpoFlags implements CommandLine.IModelTransformer {
        @Override
        public CommandSpec transform(CommandSpec spec) {
            return addFlags(spec, io.hintgrpo.trainer.rl.GrpoConfig.class);
        }
    }
}
