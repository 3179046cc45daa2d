package io.hintgrpo.trainer.data;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.model.ModelConfig;

import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Corpus files: one utterance per line as a JSON object
 * {@code {"id", "text", "label", "domain", "audio", "vision", "cot", "subset"}} (docs/data.md). Features are
 * either a path to a float32 {@code .npy} of shape T × D (relative paths resolve against the JSONL
 * file's folder) or an inline T × D array. A malformed line fails with {@code file:line: reason};
 * in skip-bad mode it is skipped and counted instead. {@link #readPrompts} reads the same format
 * with the label optional, for generation.
 */
public final class Jsonl {
    private Jsonl() {}

    /** Feature width that accepts any D (still one D per array). */
    public static final int ANY = -1;
    /** Domain of a record that names none. */
    public static final String DEFAULT_DOMAIN = "default";
    /** How many skipped records' reasons a skip-bad read keeps. */
    private static final int MAX_PROBLEMS_KEPT = 100;

    // NaN / Infinity parse so that a non-finite label is reported as such, not as "bad JSON". Lines are
    // read into trees by our own few lines over Jackson's parser, not by an ObjectMapper: building a
    // mapper costs more than checking a small corpus (start time: docs/benchmarks.md).
    private static final JsonFactory JSON = JsonFactory.builder().enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS).build();

    /** The feature widths records must have: audio and vision D, or {@link #ANY}. */
    public record Expect(int audioDim, int visionDim) {
        public static Expect any() {
            return new Expect(ANY, ANY);
        }

        /** The widths a model's projectors take; a modality the model lacks accepts any width (the format leaves it out). */
        public static Expect of(ModelConfig cfg) {
            return new Expect(cfg.hasAudio() ? cfg.audioFeatureSize() : ANY, cfg.hasVision() ? cfg.visionFeatureSize() : ANY);
        }
    }

    /** The records read, and in skip-bad mode how many lines were skipped with (the first) reasons. */
    public record Loaded(List<Utterance> utterances, int skipped, List<String> problems) {}

    /** Reads every record; the first malformed one fails with file:line and the reason. */
    public static List<Utterance> read(Path file, Expect expect) {
        return read(file, expect, false).utterances();
    }

    /** Reads every record; with {@code skipBad} a malformed line is skipped and counted instead of failing. */
    public static Loaded read(Path file, Expect expect, boolean skipBad) {
        List<Utterance> out = new ArrayList<>();
        List<String> problems = new ArrayList<>();
        int skipped = scan(file, expect, true, skipBad, problems, (lineNo, rec, u) -> out.add(u));
        return new Loaded(List.copyOf(out), skipped, List.copyOf(problems));
    }

    /** A line of a prompt file: its number, the JSON object as written, and the utterance it holds. */
    public record Record(int line, ObjectNode json, Utterance utterance) {}

    /**
     * Reads prompts for generation: the corpus format with the label optional (NaN where absent,
     * checked as in a corpus where present). The first malformed line fails with file:line.
     */
    public static List<Record> readPrompts(Path file, Expect expect) {
        List<Record> out = new ArrayList<>();
        scan(file, expect, false, false, new ArrayList<>(), (lineNo, rec, u) -> out.add(new Record(lineNo, rec, u)));
        return List.copyOf(out);
    }

    private interface Sink {
        void accept(int lineNo, ObjectNode rec, Utterance u);
    }

    /** Parses every non-blank line into {@code sink}; returns how many malformed lines were skipped (skip-bad only). */
    private static int scan(Path file, Expect expect, boolean labelRequired, boolean skipBad, List<String> problems, Sink sink) {
        Map<String, Integer> lineOfId = new HashMap<>();
        Path folder = file.toAbsolutePath().getParent();
        int[] skipped = {0};
        TextLines.forEach(file, (lineNo, line) -> {
            if (line.isBlank()) return;
            String where = file + ":" + lineNo;
            try {
                ObjectNode rec = parseJson(line, where);
                Utterance u = toUtterance(rec, folder, expect, labelRequired, where);
                Integer first = lineOfId.putIfAbsent(u.id(), lineNo);
                if (first != null) throw new BadInputException(where, "duplicate id \"" + u.id() + "\" (first at line " + first + ")");
                sink.accept(lineNo, rec, u);
            } catch (BadInputException e) {
                if (!skipBad) throw e;
                skipped[0]++;
                if (problems.size() < MAX_PROBLEMS_KEPT) problems.add(e.getMessage());
            }
        });
        return skipped[0];
    }

    /** Parses one corpus line (label required); {@code folder} resolves relative .npy paths. */
    public static Utterance parseLine(String line, Path folder, Expect expect, String where) {
        return toUtterance(parseJson(line, where), folder, expect, true, where);
    }

    private static ObjectNode parseJson(String line, String where) {
        JsonNode node;
        try {
            node = readTree(line);
        } catch (JsonProcessingException e) {
            throw new BadInputException(where, "not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) { // a parser over a string reads nothing from outside
            throw new UncheckedIOException(e);
        }
        if (!(node instanceof ObjectNode rec)) throw new BadInputException(where, "expected a JSON object");
        return rec;
    }

    /** One JSON value and nothing after it, as a tree: what ObjectMapper.readTree gives with FAIL_ON_TRAILING_TOKENS. */
    private static JsonNode readTree(String line) throws IOException {
        try (JsonParser p = JSON.createParser(line)) {
            JsonNode root = value(p, p.nextToken());
            JsonToken after = p.nextToken();
            if (after != null) throw new JsonParseException(p, "Trailing token (of type " + after + ") found after value");
            return root;
        }
    }

    private static JsonNode value(JsonParser p, JsonToken t) throws IOException {
        JsonNodeFactory f = JsonNodeFactory.instance;
        if (t == null) throw new JsonParseException(p, "No content to map due to end-of-input");
        return switch (t) {
            case START_OBJECT -> {
                ObjectNode o = f.objectNode();
                for (JsonToken k = p.nextToken(); k == JsonToken.FIELD_NAME; k = p.nextToken()) {
                    String name = p.currentName();
                    o.set(name, value(p, p.nextToken())); // a repeated key: the last wins, as in readTree
                }
                yield o;
            }
            case START_ARRAY -> {
                ArrayNode a = f.arrayNode();
                for (JsonToken v = p.nextToken(); v != JsonToken.END_ARRAY; v = p.nextToken()) a.add(value(p, v));
                yield a;
            }
            case VALUE_STRING -> f.textNode(p.getText());
            case VALUE_NUMBER_INT -> switch (p.getNumberType()) {
                case INT -> f.numberNode(p.getIntValue());
                case LONG -> f.numberNode(p.getLongValue());
                default -> f.numberNode(p.getBigIntegerValue());
            };
            case VALUE_NUMBER_FLOAT -> f.numberNode(p.getDoubleValue()); // NaN and ±Infinity too
            case VALUE_TRUE -> f.booleanNode(true);
            case VALUE_FALSE -> f.booleanNode(false);
            case VALUE_NULL -> f.nullNode();
            default -> throw new JsonParseException(p, "Unexpected token " + t);
        };
    }

    private static Utterance toUtterance(ObjectNode rec, Path folder, Expect expect, boolean labelRequired, String where) {
        String id = requiredString(rec, "id", where);
        if (id.isEmpty()) throw new BadInputException(where, "\"id\" is empty");
        String text = requiredString(rec, "text", where);
        JsonNode y = rec.get("label");
        float label = labelRequired || (y != null && !y.isNull()) ? label(rec, where) : Float.NaN;
        String domain = optionalString(rec, "domain", where);
        if (domain == null) domain = DEFAULT_DOMAIN;
        float[][] audio = features(rec.get("audio"), "audio", expect.audioDim(), folder, where);
        float[][] vision = features(rec.get("vision"), "vision", expect.visionDim(), folder, where);
        String cot = optionalString(rec, "cot", where);
        String subset = optionalString(rec, "subset", where);
        if (subset != null && !subset.equals(Utterance.HARD) && !subset.equals(Utterance.EASY))
            throw new BadInputException(where, "\"subset\" must be \"hard\" or \"easy\", got \"" + subset + "\"");
        return new Utterance(id, text, label, domain, audio, vision, cot, subset);
    }

    private static String requiredString(ObjectNode rec, String field, String where) {
        JsonNode n = rec.get(field);
        if (n == null || n.isNull()) throw new BadInputException(where, "missing \"" + field + "\"");
        if (!n.isTextual()) throw new BadInputException(where, "\"" + field + "\" must be a string, got " + n);
        return n.textValue();
    }

    private static String optionalString(ObjectNode rec, String field, String where) {
        JsonNode n = rec.get(field);
        if (n == null || n.isNull()) return null;
        if (!n.isTextual()) throw new BadInputException(where, "\"" + field + "\" must be a string, got " + n);
        return n.textValue();
    }

    private static float label(ObjectNode rec, String where) {
        JsonNode n = rec.get("label");
        if (n == null || n.isNull()) throw new BadInputException(where, "missing \"label\"");
        if (!n.isNumber()) throw new BadInputException(where, "\"label\" must be a number, got " + n);
        double y = n.doubleValue();
        if (!Double.isFinite(y)) throw new BadInputException(where, "label " + y + " is not finite");
        if (y < Utterance.LABEL_MIN || y > Utterance.LABEL_MAX)
            throw new BadInputException(where, "label " + n + " is outside [-3, 3]");
        return (float) y;
    }

    /**
     * A modality's frames (field names it in errors): absent/null → null; a string → .npy path
     * resolved against folder; an array → inline rows. Checked: at least one frame, expectDim
     * features per frame (unless {@link #ANY}), every value finite.
     */
    public static float[][] features(JsonNode n, String field, int expectDim, Path folder, String where) {
        if (n == null || n.isNull()) return null;
        float[][] frames;
        if (n.isTextual()) {
            Path npy = folder.resolve(n.textValue());
            try {
                frames = Npy.read(npy);
            } catch (BadInputException e) {
                throw new BadInputException(where, field + " " + e.getMessage());
            }
        } else if (n.isArray()) {
            frames = inlineRows((ArrayNode) n, field, where);
        } else {
            throw new BadInputException(where, "\"" + field + "\" must be a path to a .npy file or a T × D array, got " + n.getNodeType());
        }
        if (frames.length == 0) throw new BadInputException(where, field + " has no frames");
        int dim = frames[0].length;
        if (dim == 0) throw new BadInputException(where, field + " frames have no features");
        if (expectDim != ANY && dim != expectDim)
            throw new BadInputException(where, field + " has " + dim + " features per frame, expected " + expectDim);
        for (int t = 0; t < frames.length; t++)
            for (int j = 0; j < dim; j++)
                if (!Float.isFinite(frames[t][j]))
                    throw new BadInputException(where, field + " frame " + t + " feature " + j + " is not finite (" + frames[t][j] + ")");
        return frames;
    }

    /** Inline T × D feature rows (numbers only, not ragged); the error names {@code where} and the field. */
    public static float[][] inlineRows(ArrayNode rows, String field, String where) {
        float[][] out = new float[rows.size()][];
        for (int t = 0; t < out.length; t++) {
            JsonNode row = rows.get(t);
            if (!row.isArray()) throw new BadInputException(where, field + "[" + t + "] is not an array of numbers");
            if (t > 0 && row.size() != out[0].length)
                throw new BadInputException(where, field + " is ragged: row " + t + " has " + row.size() + " values, row 0 has " + out[0].length);
            out[t] = new float[row.size()];
            for (int j = 0; j < out[t].length; j++) {
                JsonNode x = row.get(j);
                if (!x.isNumber()) throw new BadInputException(where, field + "[" + t + "][" + j + "] is not a number: " + x);
                out[t][j] = x.floatValue();
            }
        }
        return out;
    }

    /** Where a written file keeps its features. */
    public enum Features {
        /** T × D arrays inside each line. */
        INLINE,
        /** One .npy per utterance and modality in {@code features/} beside the JSONL file. */
        NPY
    }

    /** Folder (beside the JSONL file) that {@link Features#NPY} writes into. */
    public static final String FEATURES_FOLDER = "features";

    private static final class Writing { // an ObjectMapper only where records are written
        static final ObjectMapper MAPPER = new ObjectMapper();
    }

    /** Writes the records atomically (features first, then the JSONL file). */
    public static void write(Path file, List<Utterance> utterances, Features how) throws IOException {
        Writer w = new Writer(file, how);
        for (Utterance u : utterances) w.add(u, Map.of());
        w.finish();
    }

    /**
     * Writes records one at a time, so a large corpus need not be in memory: each record's feature
     * files are written when it is added, the JSONL file whole (atomically) at {@link #finish}.
     */
    public static final class Writer {
        private final Path file, folder;
        private final Features how;
        private final Set<String> names = new HashSet<>();
        private final List<String> lines = new ArrayList<>();

        public Writer(Path file, Features how) {
            this.file = file;
            this.folder = file.toAbsolutePath().getParent();
            this.how = how;
        }

        /** Adds a record with extra numeric fields after the standard ones (e.g. CH-SIMS' unimodal labels); readers ignore them. */
        public void add(Utterance u, Map<String, Float> extra) throws IOException {
            ObjectNode rec = JsonNodeFactory.instance.objectNode();
            rec.put("id", u.id());
            rec.put("text", u.text());
            rec.put("label", u.label());
            rec.put("domain", u.domain());
            writeFeatures(rec, "audio", u.audio(), u.id(), how, folder, names);
            writeFeatures(rec, "vision", u.vision(), u.id(), how, folder, names);
            if (u.cot() != null) rec.put("cot", u.cot());
            if (u.subset() != null) rec.put("subset", u.subset());
            extra.forEach(rec::put);
            lines.add(Writing.MAPPER.writeValueAsString(rec));
        }

        public void finish() throws IOException {
            AtomicFiles.write(file, out -> {
                java.io.Writer w = new OutputStreamWriter(out, StandardCharsets.UTF_8);
                for (String line : lines) w.write(line + "\n");
                w.flush();
            });
        }
    }

    private static void writeFeatures(ObjectNode rec, String field, float[][] frames, String id, Features how,
                                      Path folder, Set<String> names) throws IOException {
        if (frames == null) return;
        if (how == Features.INLINE) {
            ArrayNode rows = rec.putArray(field);
            for (float[] row : frames) {
                ArrayNode r = rows.addArray();
                for (float x : row) r.add(x);
            }
            return;
        }
        String name = FEATURES_FOLDER + "/" + fileSafe(id) + "." + field + ".npy";
        if (!names.add(name)) throw new IllegalArgumentException("two records map to the feature file " + name + " (ids differ only in unsafe characters)");
        Npy.write(folder.resolve(name), frames);
        rec.put(field, name);
    }

    /** An id as a file name: letters, digits, '-', '_', '.' kept, anything else becomes '_'. */
    static String fileSafe(String id) {
        StringBuilder sb = new StringBuilder(id.length());
        for (char c : id.toCharArray())
            sb.append(Character.isLetterOrDigit(c) && c < 128 || c == '-' || c == '_' || c == '.' ? c : '_');
        return sb.toString();
    }
}
