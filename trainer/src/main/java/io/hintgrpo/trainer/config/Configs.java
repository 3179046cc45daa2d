package io.hintgrpo.trainer.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.hintgrpo.engine.BadInputException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;

/**
 * Config files (JSON, or YAML by extension): the one place they are read. Keys at the top level
 * apply to every command that has them; an object named after a command (a section) overrides
 * them for that command; TRL GRPOConfig names are mapped to ours ({@link TrlNames}). A top-level
 * key no command has, or a section key its command does not have, is an error naming it.
 */
public final class Configs {
    private static final ObjectMapper JSON = new ObjectMapper().enable(com.fasterxml.jackson.core.JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory())
            .enable(com.fasterxml.jackson.core.JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    private Configs() {}

    /** The file's top-level object. */
    public static ObjectNode read(Path file) {
        String where = file.toString();
        JsonNode root;
        try {
            String text = Files.readString(file);
            String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
            root = name.endsWith(".yaml") || name.endsWith(".yml") ? YAML.readTree(text) : JSON.readTree(text);
        } catch (NoSuchFileException e) {
            throw new BadInputException(where, "config file not found");
        } catch (IOException e) {
            String first = e.getMessage().lines().findFirst().orElse("");
            java.util.regex.Matcher dup = java.util.regex.Pattern.compile("Duplicate field '([^']*)'").matcher(first);
            if (dup.find()) throw new BadInputException(where, "the key \"" + dup.group(1) + "\" is set twice (which one would win is not obvious)");
            throw new BadInputException(where, "not valid JSON or YAML: " + first);
        }
        if (root == null || !root.isObject()) throw new BadInputException(where, "expected an object of settings");
        return (ObjectNode) root;
    }

    /**
     * What the file sets for one command: the top-level keys it knows, then its section over them.
     *
     * @param known    the command's keys
     * @param sections names of every command (an object under such a name is a section, not a setting)
     * @param anyKnown the keys of every command: a top-level key outside them is a typo
     */
    public static ObjectNode settingsFor(Path file, String command, Set<String> known, Set<String> sections, Set<String> anyKnown) {
        String where = file.toString();
        ObjectNode root = read(file);
        ObjectNode out = JSON.createObjectNode();
        ObjectNode top = JSON.createObjectNode();
        root.fields().forEachRemaining(e -> {
            if (sections.contains(e.getKey()) && !anyKnown.contains(e.getKey()) && !e.getValue().isObject())
                throw new BadInputException(where, "section \"" + e.getKey() + "\" must be an object of settings");
            if (!(sections.contains(e.getKey()) && e.getValue().isObject())) top.set(e.getKey(), e.getValue());
        });
        TrlNames.map(top, where).fields().forEachRemaining(e -> {
            if (!anyKnown.contains(e.getKey())) throw new BadInputException(where, "unknown setting \"" + e.getKey() + "\"");
            if (known.contains(e.getKey())) out.set(e.getKey(), value(e.getKey(), e.getValue(), where));
        });
        out.setAll(section(file, root, command, known));
        return out;
    }

    /** The section named after a command alone (TRL names mapped), every key one the command knows; empty when absent. */
    public static ObjectNode section(Path file, String command, Set<String> known) {
        return section(file, read(file), command, known);
    }

    private static ObjectNode section(Path file, ObjectNode root, String command, Set<String> known) {
        String where = file.toString();
        ObjectNode out = JSON.createObjectNode();
        JsonNode s = root.get(command);
        if (s == null) return out;
        if (!s.isObject()) throw new BadInputException(where, "section \"" + command + "\" must be an object of settings");
        TrlNames.map((ObjectNode) s, where).fields().forEachRemaining(e -> {
            if (!known.contains(e.getKey()))
                throw new BadInputException(where, "unknown setting \"" + e.getKey() + "\" for command " + command);
            out.set(e.getKey(), value(e.getKey(), e.getValue(), where));
        });
        return out;
    }

    private static JsonNode value(String key, JsonNode v, String where) {
        if (v.isObject())
            throw new BadInputException(where, "setting \"" + key + "\" must be a value or a list, not an object");
        if (v.isArray()) v.forEach(x -> {
            if (!x.isValueNode()) throw new BadInputException(where, "setting \"" + key + "\" must be a list of values");
        });
        return v;
    }
}
