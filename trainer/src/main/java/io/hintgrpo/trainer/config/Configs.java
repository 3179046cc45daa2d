package io.hintgrpo.trainer.config;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.hintgrpo.engine.BadInputException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Map;

/**
 * Run configurations: a record of settings with defaults, overridden by a config file (JSON, or
 * YAML by extension) and then by command-line flags; keys are the record's fields in snake_case.
 * The effective config is what a run writes beside its outputs so it can be repeated exactly.
 */
public final class Configs {
    private static final ObjectMapper JSON = new ObjectMapper()
            .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES);
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

    private Configs() {}

    /** The file's top-level object, or one section of it (section null = the whole file). */
    public static ObjectNode read(Path file, String section) {
        String where = file.toString();
        JsonNode root;
        try {
            String text = Files.readString(file);
            String name = file.getFileName().toString().toLowerCase(java.util.Locale.ROOT);
            root = name.endsWith(".yaml") || name.endsWith(".yml") ? YAML.readTree(text) : JSON.readTree(text);
        } catch (NoSuchFileException e) {
            throw new BadInputException(where, "config file not found");
        } catch (IOException e) {
            throw new BadInputException(where, "not valid JSON or YAML: " + e.getMessage().lines().findFirst().orElse(""));
        }
        if (root == null || !root.isObject()) throw new BadInputException(where, "expected an object of settings");
        if (section == null) return (ObjectNode) root;
        JsonNode s = root.get(section);
        if (s == null) return JSON.createObjectNode();
        if (!s.isObject()) throw new BadInputException(where, "section \"" + section + "\" must be an object of settings");
        return (ObjectNode) s;
    }

    /**
     * defaults ← file ← flags (null flag values are "not given"), checked by the record's own
     * validation; an unknown key or a wrong type is an error naming it and {@code where}.
     */
    public static <T> T merge(Class<T> type, T defaults, ObjectNode file, Map<String, Object> flags, String where) {
        ObjectNode merged = JSON.valueToTree(defaults);
        if (file != null) {
            file.fieldNames().forEachRemaining(k -> {
                if (!merged.has(k)) throw new BadInputException(where, "unknown setting \"" + k + "\"; known: " + String.join(", ", iterable(merged)));
            });
            merged.setAll(file);
        }
        flags.forEach((k, v) -> {
            if (v != null) merged.set(k, JSON.valueToTree(v));
        });
        try {
            return JSON.treeToValue(merged, type);
        } catch (UnrecognizedPropertyException e) {
            throw new BadInputException(where, "unknown setting \"" + e.getPropertyName() + "\"");
        } catch (IOException e) {
            Throwable cause = e.getCause();
            if (cause instanceof BadInputException b) throw b;
            if (e instanceof com.fasterxml.jackson.databind.JsonMappingException m && !m.getPath().isEmpty())
                throw new BadInputException(where, "setting \"" + m.getPath().get(m.getPath().size() - 1).getFieldName()
                        + "\" has the wrong type: " + m.getOriginalMessage().lines().findFirst().orElse(""));
            throw new BadInputException(where, e.getMessage());
        }
    }

    private static Iterable<String> iterable(ObjectNode n) {
        return n::fieldNames;
    }

    /** The record as pretty JSON with snake_case keys. */
    public static String toJson(Object settings) {
        try {
            return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(settings);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    public static ObjectNode toTree(Object settings) {
        return JSON.valueToTree(settings);
    }
}
