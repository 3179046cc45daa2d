package io.hintgrpo.trainer.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import io.hintgrpo.engine.BadInputException;

import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.RecordComponent;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;

/**
 * Typed settings records and their one flat key space. A settings record's components are
 * {@link Setting}s (leaves: numbers, booleans, enums, text) or {@link Part}s (records of settings);
 * every leaf is one key, the component name in snake_case, whatever part it sits in, so a config
 * file, a flag ({@code --group-size}), the effective config written beside a run and docs/config.md
 * all use the same name. Enums are written in lower case with dashes ({@code token-mean}).
 */
public final class Settings {
    /** Jackson on first use, not when the class loads: a command's --help lists the settings without it. */
    private static final class Json {
        static final ObjectMapper MAPPER = new ObjectMapper();
    }

    private Settings() {}

    /** One setting as a user sees it: its key, Java type, default (as written), meaning, and the part it belongs to ("" for none). */
    public record Key(String name, Class<?> type, String defaultValue, String doc, String part) {
        public String flag() {
            return "--" + name.replace('_', '-');
        }

        /** What values it takes, in words. */
        public String kind() {
            if (type == int.class || type == long.class) return "whole number";
            if (type == float.class || type == double.class) return "number";
            if (type == boolean.class) return "true | false";
            if (type.isEnum()) {
                List<String> names = new ArrayList<>();
                for (Object e : type.getEnumConstants()) names.add(Settings.name((Enum<?>) e));
                return String.join(" | ", names);
            }
            return "text";
        }
    }

    /** Every setting of a settings record, parts flattened, in declaration order. */
    public static List<Key> keys(Class<? extends Record> type) {
        List<Key> out = new ArrayList<>();
        collect(type, Map.of(), "", out);
        return out;
    }

    /** The record with every setting at its default. */
    public static <T extends Record> T defaults(Class<T> type) {
        return bind(type, Json.MAPPER.createObjectNode(), key -> type.getSimpleName() + " defaults");
    }

    /**
     * The record from flat values (defaults for keys not given; a null value counts as not given).
     * An unknown key, a value of the wrong kind or a value the record refuses is a
     * {@link BadInputException} at {@code placeOf.apply(key)} (key null: a rule between settings).
     */
    public static <T extends Record> T bind(Class<T> type, ObjectNode values, Function<String, String> placeOf) {
        Map<String, Key> known = new LinkedHashMap<>();
        for (Key k : keys(type)) known.put(k.name(), k);
        values.fieldNames().forEachRemaining(key -> {
            if (!known.containsKey(key))
                throw new BadInputException(placeOf.apply(key), "unknown setting \"" + key + "\"; known: " + String.join(", ", known.keySet()));
        });
        return type.cast(build(type, Map.of(), values, placeOf));
    }

    /**
     * This record with some settings changed, named as in config files (e.g.
     * {@code Map.of("steps", 20, "hint", "mix")}); values may be Java values or their text.
     */
    public static <T extends Record> T with(T base, Map<String, ?> changes, String where) {
        ObjectNode values = Json.MAPPER.createObjectNode();
        changes.forEach((k, v) -> values.set(k, v instanceof Enum<?> e ? TextNode.valueOf(name(e)) : Json.MAPPER.valueToTree(v)));
        return over(base, values, key -> where);
    }

    /** This record with the given flat values over its own (checked as {@link #bind} checks). */
    public static <T extends Record> T over(T base, ObjectNode values, Function<String, String> placeOf) {
        ObjectNode merged = flatten(base);
        merged.setAll(values); // an unknown key among values is bind's error
        @SuppressWarnings("unchecked") Class<T> type = (Class<T>) base.getClass();
        return bind(type, merged, placeOf);
    }

    /** The config keys of a settings record. */
    public static java.util.Set<String> names(Class<? extends Record> type) {
        java.util.Set<String> out = new java.util.LinkedHashSet<>();
        for (Key k : keys(type)) out.add(k.name());
        return out;
    }

    /** Every setting of the record with its value, flat, in declaration order (the effective config). */
    public static ObjectNode flatten(Record settings) {
        ObjectNode out = Json.MAPPER.createObjectNode();
        flattenInto(settings, out);
        return out;
    }

    /** An enum value as config files write it: lower case, dashes. */
    public static String name(Enum<?> e) {
        return e.name().toLowerCase(Locale.ROOT).replace('_', '-');
    }

    /** A component name in snake_case: maxBadStepsInARow → max_bad_steps_in_a_row. */
    static String snake(String camel) {
        StringBuilder sb = new StringBuilder();
        for (char c : camel.toCharArray()) {
            if (Character.isUpperCase(c)) sb.append('_').append(Character.toLowerCase(c));
            else sb.append(c);
        }
        return sb.toString();
    }

    // ---- the walk over components

    private static void collect(Class<?> type, Map<String, String> overrides, String partName, List<Key> out) {
        for (RecordComponent c : type.getRecordComponents()) {
            Part part = c.getAnnotation(Part.class);
            if (part != null) {
                int from = out.size();
                Map<String, String> inner = withPart(overrides, part);
                collect(c.getType(), inner, c.getName(), out);
                for (String k : parse(part).keySet())
                    if (out.subList(from, out.size()).stream().noneMatch(key -> key.name().equals(k)))
                        throw new IllegalStateException(type.getSimpleName() + "." + c.getName() + ": @Part default for unknown setting " + k);
                continue;
            }
            Setting s = c.getAnnotation(Setting.class);
            if (s == null) throw new IllegalStateException(type.getSimpleName() + "." + c.getName() + " is neither a @Setting nor a @Part");
            String key = snake(c.getName());
            out.add(new Key(key, c.getType(), overrides.getOrDefault(key, s.value()), s.doc(), partName));
        }
    }

    private static Object build(Class<?> type, Map<String, String> overrides, ObjectNode values, Function<String, String> placeOf) {
        RecordComponent[] cs = type.getRecordComponents();
        Object[] args = new Object[cs.length];
        Class<?>[] types = new Class<?>[cs.length];
        for (int i = 0; i < cs.length; i++) {
            RecordComponent c = cs[i];
            types[i] = c.getType();
            Part part = c.getAnnotation(Part.class);
            if (part != null) {
                args[i] = build(c.getType(), withPart(overrides, part), values, placeOf);
                continue;
            }
            String key = snake(c.getName());
            JsonNode v = values.get(key);
            if (v == null || v.isNull()) {
                String dflt = overrides.getOrDefault(key, c.getAnnotation(Setting.class).value());
                args[i] = convert(TextNode.valueOf(dflt), c.getType(), key, type.getSimpleName() + " defaults");
            } else {
                args[i] = convert(v, c.getType(), key, placeOf.apply(key));
            }
        }
        try {
            Constructor<?> ctor = type.getDeclaredConstructor(types);
            ctor.setAccessible(true);
            return ctor.newInstance(args);
        } catch (InvocationTargetException e) {
            if (e.getCause() instanceof BadInputException b) throw new BadInputException(placeOf.apply(null), b.reason());
            if (e.getCause() instanceof RuntimeException r) throw r;
            throw new IllegalStateException(e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(type + " is not a settings record", e);
        }
    }

    /**
     * A value of a setting (or of any option of these plain types: int, long, float, double,
     * boolean, an enum, text; a list of values as text joined by commas) as type t; a value of the
     * wrong kind is a {@link BadInputException} at place naming the key and the kind it must be.
     */
    public static Object convert(JsonNode v, Class<?> t, String key, String place) {
        String text = v.isTextual() ? v.textValue().strip() : v.toString();
        try {
            if (t == int.class) {
                if (v.isIntegralNumber() && v.canConvertToInt()) return v.intValue();
                if (v.isTextual()) return Integer.parseInt(text);
            } else if (t == long.class) {
                if (v.isIntegralNumber() && v.canConvertToLong()) return v.longValue();
                if (v.isTextual()) return Long.parseLong(text);
            } else if (t == float.class) {
                if (v.isNumber()) return (float) v.doubleValue();
                if (v.isTextual()) return Float.parseFloat(text);
            } else if (t == double.class) {
                if (v.isNumber()) return v.doubleValue();
                if (v.isTextual()) return Double.parseDouble(text);
            } else if (t == boolean.class) {
                if (v.isBoolean()) return v.booleanValue();
                if (text.equals("true") || text.equals("false")) return Boolean.parseBoolean(text);
            } else if (t.isEnum()) {
                for (Object e : t.getEnumConstants()) if (name((Enum<?>) e).equals(text)) return e;
            } else if (t == String.class) {
                if (v.isValueNode()) return v.asText();
                if (v.isArray()) { // a list of names (lora_targets: [q_proj, v_proj]) is the text with commas, as its flag takes it
                    List<String> parts = new ArrayList<>();
                    for (JsonNode x : v) if (x.isValueNode()) parts.add(x.asText());
                    if (parts.size() == v.size()) return String.join(",", parts);
                }
            } else {
                throw new IllegalStateException("setting " + key + " has an unsupported type " + t);
            }
        } catch (NumberFormatException e) {
            // falls through to the error below
        }
        String kind = new Key(key, t, "", "", "").kind();
        throw new BadInputException(place, "setting \"" + key + "\" must be " + (t.isEnum() ? "one of " + kind.replace(" | ", ", ")
                : t == boolean.class ? "true or false" : "a " + kind) + ", got " + v);
    }

    private static void flattenInto(Record r, ObjectNode out) {
        for (RecordComponent c : r.getClass().getRecordComponents()) {
            Object v;
            try {
                v = c.getAccessor().invoke(r);
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(e);
            }
            if (c.getAnnotation(Part.class) != null) flattenInto((Record) v, out);
            else out.set(snake(c.getName()), v instanceof Enum<?> e ? TextNode.valueOf(name(e)) : Json.MAPPER.valueToTree(v));
        }
    }

    /** The owner's overrides win over the part's own. */
    private static Map<String, String> withPart(Map<String, String> outer, Part part) {
        Map<String, String> m = new HashMap<>(parse(part));
        m.putAll(outer);
        return m;
    }

    private static Map<String, String> parse(Part part) {
        Map<String, String> m = new LinkedHashMap<>();
        for (String d : part.defaults()) {
            int eq = d.indexOf('=');
            if (eq < 1) throw new IllegalStateException("@Part default \"" + d + "\" is not key=value");
            m.put(d.substring(0, eq).strip(), d.substring(eq + 1).strip());
        }
        return m;
    }
}
