package io.hintgrpo.trainer.data;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.trainer.data.Pickle.NdArray;
import io.hintgrpo.trainer.data.Pickle.Tuple;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code data import-mmsa}: an MMSA feature pickle (CMU-MOSI / CMU-MOSEI {@code aligned_50.pkl},
 * {@code unaligned_50.pkl}, CH-SIMS {@code unaligned_39.pkl}) → the corpus format of docs/data.md:
 * {@code OUT/NAME/{train,valid,test}.jsonl}, one {@code .npy} per utterance and modality in
 * {@code OUT/NAME/features/}, and the {@code OUT/mmsa.json} manifest. The domain is the dataset's
 * name. Padding frames are cut (by {@code *_lengths} where present, else the all-zero frames at both
 * ends), non-finite values become 0 and are counted, {@code --pool-frames} averages long sequences
 * down, CH-SIMS labels are scaled from [-1, 1] to [-3, 3]. Everything that can be checked without
 * reading the features (keys, shapes, dtypes, labels, lengths, ids) is checked before any file is
 * written; the features are then read once, one utterance at a time.
 */
public final class MmsaImport {
    private MmsaImport() {}

    public static final String MANIFEST_FILE = "mmsa.json";
    public static final List<String> SPLITS = SynthCorpus.SPLITS;
    private static final String[] MODALITIES = {"audio", "vision"};
    /** CH-SIMS' unimodal labels and the record fields they become. */
    private static final String[] UNIMODAL_KEYS = {"regression_labels_T", "regression_labels_A", "regression_labels_V"};
    private static final String[] UNIMODAL_FIELDS = {"label_text", "label_audio", "label_vision"};
    private static final List<String> USED_KEYS = List.of("raw_text", "id", "audio", "vision", "regression_labels",
            "audio_lengths", "vision_lengths", "regression_labels_T", "regression_labels_A", "regression_labels_V");
    /** MMSA keys the corpus format has no place for: skipped, and listed in the report. Any other key is reported as unknown. */
    private static final List<String> KNOWN_UNUSED = List.of("text", "text_bert", "classification_labels", "annotations",
            "classification_labels_T", "classification_labels_A", "classification_labels_V");
    /** Dataset names recognised in the pickle's path when --name is not given. */
    private static final Pattern DATASET = Pattern.compile("(?:^|[^a-z])(mosei|mosi|sims)(v\\d+)?(?:$|[^a-z])");
    private static final Pattern SAFE_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]*");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long PROGRESS_NANOS = 2_000_000_000L;

    /** name null: from the pickle's path; poolFrames 0: keep every frame. */
    public record Options(Path pkl, Path out, String name, int poolFrames) {}

    /** The manifest (also written as mmsa.json) and the readable report. */
    public record Summary(ObjectNode manifest, String report) {
        public String toJson() {
            return json(manifest);
        }
    }

    private static String json(ObjectNode o) {
        try {
            return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(o) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** One modality of one split: the padded array, how padding is cut, and what the import counted. */
    private static final class Modality {
        final String key;
        final NdArray x;
        final int frames, dim;
        final int[] lengths; // null: cut the all-zero frames at both ends
        final long[] nonFinite;
        int empty, beyondLength, keptMin = Integer.MAX_VALUE, keptMax, writtenMax;
        long keptSum;

        Modality(String key, NdArray x, int[] lengths) {
            this.key = key;
            this.x = x;
            this.frames = (int) x.shape()[1];
            this.dim = (int) x.shape()[2];
            this.lengths = lengths;
            this.nonFinite = new long[dim];
        }
    }

    /** One split, checked: everything but the features is read. */
    private record Split(String name, int n, List<String> ids, List<String> texts, float[] labels, float[][] unimodal,
                         Modality[] modalities, List<String> unknownKeys, List<String> unusedKeys) {}

    public static Summary run(Options o, Consumer<String> progress) throws IOException {
        if (o.poolFrames() < 0) throw new BadInputException("--pool-frames", "must be ≥ 1, or 0 to keep every frame, got " + o.poolFrames());
        String name = o.name() != null ? checkName(o.name()) : nameFromPath(o.pkl());
        AtomicFiles.refuseNonEmptyFolder(o.out()); // before reading gigabytes
        AtomicFiles.probeFolder(o.out().toAbsolutePath().getParent());
        try (Pickle p = Pickle.open(o.pkl())) {
            String file = o.pkl().toString();
            if (!(p.root() instanceof Map<?, ?> root))
                throw new BadInputException(file, "the pickle holds a " + Pickle.typeName(p.root()) + ", expected a dict with train, valid and test");
            List<Split> splits = new ArrayList<>();
            for (String s : SPLITS) {
                if (!root.containsKey(s))
                    throw new BadInputException(file, "no '" + s + "' split (the pickle has " + keysText(root) + ")");
                splits.add(split(root.get(s), s, file));
            }
            // keys left out: unknown ones with where they stand (exports vary), known MMSA ones the format has no place for
            Map<String, List<String>> unknown = new TreeMap<>();
            Set<String> unused = new TreeSet<>();
            for (Split s : splits) {
                for (String k : s.unknownKeys()) unknown.computeIfAbsent(k, x -> new ArrayList<>()).add(s.name());
                unused.addAll(s.unusedKeys());
            }
            for (Object k : root.keySet()) if (!SPLITS.contains(k)) unknown.computeIfAbsent(String.valueOf(k), x -> new ArrayList<>()).add("top level");
            boolean sims = checkAcross(splits, file);
            ObjectNode manifest = manifest(o, name, p, splits, sims, unknown, unused);
            AtomicFiles.writeFolder(o.out(), tmp -> {
                ObjectNode stats = null;
                for (Split s : splits) {
                    ObjectNode st = write(s, tmp, name, o.poolFrames(), progress);
                    if (s.name().equals("train")) stats = st;
                }
                fillCounts(manifest, splits);
                manifest.set("train_stats", stats);
                AtomicFiles.writeString(tmp.resolve(MANIFEST_FILE), json(manifest));
                return null;
            });
            return new Summary(manifest, report(o, name, p, sims, splits, unknown, unused));
        }
    }

    // ---- checking a split

    private static Split split(Object value, String split, String file) {
        String where = file + ": " + split;
        if (!(value instanceof Map<?, ?> d)) throw new BadInputException(where, "is a " + Pickle.typeName(value) + ", expected a dict");
        List<Object> labelList = column(require(d, "regression_labels", where), where + ": regression_labels", true);
        int n = labelList.size();
        float[] labels = numbers(labelList, where + ": regression_labels");
        List<String> ids = strings(require(d, "id", where), n, where + ": id");
        List<String> texts = strings(require(d, "raw_text", where), n, where + ": raw_text");
        for (int i = 0; i < n; i++) if (ids.get(i).isEmpty()) throw new BadInputException(where + ": id", "element " + i + " is empty");
        Modality[] modalities = new Modality[MODALITIES.length];
        for (int m = 0; m < MODALITIES.length; m++) modalities[m] = modality(d, MODALITIES[m], n, where);
        float[][] unimodal = null;
        if (Arrays.stream(UNIMODAL_KEYS).anyMatch(d::containsKey)) { // one of them: all three are required
            unimodal = new float[UNIMODAL_KEYS.length][];
            for (int u = 0; u < UNIMODAL_KEYS.length; u++) {
                String k = UNIMODAL_KEYS[u];
                List<Object> c = column(require(d, k, where + " (CH-SIMS' unimodal labels come as regression_labels_T, _A and _V)"), where + ": " + k, true);
                if (c.size() != n) throw new BadInputException(where + ": " + k, "has " + c.size() + " elements, regression_labels has " + n);
                unimodal[u] = numbers(c, where + ": " + k);
            }
        }
        List<String> unknown = new ArrayList<>(), unused = new ArrayList<>();
        for (Object k : d.keySet()) {
            String key = String.valueOf(k);
            if (KNOWN_UNUSED.contains(key)) unused.add(key);
            else if (!USED_KEYS.contains(key)) unknown.add(key);
        }
        return new Split(split, n, ids, texts, labels, unimodal, modalities, unknown, unused);
    }

    private static Modality modality(Map<?, ?> d, String key, int n, String where) {
        String at = where + ": " + key;
        Object v = require(d, key, where);
        if (!(v instanceof NdArray x)) throw new BadInputException(at, "is a " + Pickle.typeName(v) + ", expected a numpy array [N, T, D]");
        long[] shape = x.shape();
        if (shape.length != 3) throw new BadInputException(at, "has shape " + x.shapeText() + ", expected 3-D [N, T, D]");
        if (shape[0] != n) throw new BadInputException(at, "has " + shape[0] + " rows, regression_labels has " + n);
        if (x.dtype().kind != 'f') throw new BadInputException(at, "dtype '" + x.dtype() + "' is not float32 or float64");
        if (shape[1] < 1 || shape[2] < 1) throw new BadInputException(at, "has shape " + x.shapeText() + ": no frames or no features");
        if (shape[1] * shape[2] > Integer.MAX_VALUE / 8) throw new BadInputException(at, "shape " + x.shapeText() + " is too large per utterance");
        if (x.fortranOrder())
            throw new BadInputException(at, "is a Fortran-order array; re-save it in C order (np.ascontiguousarray)");
        int[] lengths = null;
        String lk = key + "_lengths";
        if (d.containsKey(lk)) {
            List<Object> c = column(d.get(lk), where + ": " + lk, false);
            if (c.size() != n) throw new BadInputException(where + ": " + lk, "has " + c.size() + " elements, regression_labels has " + n);
            float[] raw = numbers(c, where + ": " + lk);
            lengths = new int[n];
            for (int i = 0; i < n; i++) {
                float l = raw[i];
                if (l != Math.rint(l) || l < 0 || l > shape[1])
                    throw new BadInputException(where + ": " + lk, "element " + i + " is " + fmt(l) + ", not a frame count in [0, " + shape[1] + "]");
                lengths[i] = (int) l;
            }
        }
        return new Modality(key, x, lengths);
    }

    /** The split's dicts agree across splits: feature widths, and CH-SIMS' unimodal labels present in all or none. Returns whether it is CH-SIMS. */
    private static boolean checkAcross(List<Split> splits, String file) {
        Split first = splits.get(0);
        for (Split s : splits) {
            for (int m = 0; m < MODALITIES.length; m++)
                if (s.modalities()[m].dim != first.modalities()[m].dim)
                    throw new BadInputException(file + ": " + s.name() + ": " + MODALITIES[m], "has " + s.modalities()[m].dim
                            + " features per frame, " + first.name() + " has " + first.modalities()[m].dim);
            if ((s.unimodal() == null) != (first.unimodal() == null))
                throw new BadInputException(file + ": " + (s.unimodal() == null ? s : first).name(), "has no regression_labels_T/A/V but "
                        + (s.unimodal() == null ? first : s).name() + " has (CH-SIMS has them in every split)");
        }
        boolean sims = first.unimodal() != null;
        // ids name the feature files, shared by the splits: one id, one file
        Map<String, String> owner = new HashMap<>();
        for (Split s : splits) {
            for (int i = 0; i < s.n(); i++) {
                float y = s.labels()[i];
                checkLabel(y, sims, file + ": " + s.name() + ": regression_labels", i);
                if (sims) for (int u = 0; u < UNIMODAL_KEYS.length; u++) checkLabel(s.unimodal()[u][i], true, file + ": " + s.name() + ": " + UNIMODAL_KEYS[u], i);
                String id = s.ids().get(i), fileName = Jsonl.fileSafe(id);
                String before = owner.putIfAbsent(fileName, s.name() + " id \"" + id + "\"");
                if (before != null)
                    throw new BadInputException(file + ": " + s.name() + ": id", before.endsWith("\"" + id + "\"")
                            ? "\"" + id + "\" appears twice (also as " + before + ")"
                            : "\"" + id + "\" and " + before + " map to the same feature file name " + fileName);
            }
        }
        return sims;
    }

    private static void checkLabel(float y, boolean sims, String where, int i) {
        float limit = sims ? 1f : 3f;
        if (!Float.isFinite(y) || Math.abs(y) > limit + 1e-6f)
            throw new BadInputException(where, "element " + i + " is " + fmt(y) + ", outside [-" + (int) limit + ", " + (int) limit + "]"
                    + (sims ? " (CH-SIMS labels, scaled by 3 on import)" : ""));
    }

    // ---- writing

    /** Writes a split's JSONL and feature files; returns per-dimension mean/std of the written frames. */
    private static ObjectNode write(Split s, Path dir, String name, int pool, Consumer<String> progress) throws IOException {
        Jsonl.Writer w = new Jsonl.Writer(SynthCorpus.splitFile(dir, name, s.name()), Jsonl.Features.NPY);
        float scale = s.unimodal() != null ? 3f : 1f;
        Moments[] moments = new Moments[MODALITIES.length];
        for (int m = 0; m < MODALITIES.length; m++) moments[m] = new Moments(s.modalities()[m].dim);
        float[][] rows = new float[MODALITIES.length][];
        for (int m = 0; m < MODALITIES.length; m++) rows[m] = new float[s.modalities()[m].frames * s.modalities()[m].dim];
        long lastReport = System.nanoTime();
        for (int i = 0; i < s.n(); i++) {
            float[][][] frames = new float[MODALITIES.length][][];
            for (int m = 0; m < MODALITIES.length; m++) {
                frames[m] = frames(s.modalities()[m], i, rows[m], pool);
                moments[m].add(frames[m]);
            }
            Map<String, Float> extra = new LinkedHashMap<>();
            if (s.unimodal() != null)
                for (int u = 0; u < UNIMODAL_FIELDS.length; u++) extra.put(UNIMODAL_FIELDS[u], scaled(s.unimodal()[u][i], scale));
            w.add(new Utterance(s.ids().get(i), s.texts().get(i), scaled(s.labels()[i], scale), name, frames[0], frames[1], null), extra);
            if (System.nanoTime() - lastReport > PROGRESS_NANOS) {
                progress.accept(s.name() + ": " + (i + 1) + "/" + s.n() + " records");
                lastReport = System.nanoTime();
            }
        }
        w.finish();
        progress.accept(s.name() + ": " + s.n() + " records written");
        ObjectNode stats = JSON.createObjectNode();
        for (int m = 0; m < MODALITIES.length; m++) stats.set(MODALITIES[m], moments[m].toJson());
        return stats;
    }

    /** Label × scale in double, then float32, kept inside [-3, 3] (1.0000001 × 3 is still 3). */
    private static float scaled(float y, float scale) {
        return (float) Math.max(-3.0, Math.min(3.0, (double) y * scale));
    }

    /** Utterance i's frames of one modality: padding cut, non-finite values zeroed (and counted), pooled. */
    private static float[][] frames(Modality s, int i, float[] row, int pool) {
        int d = s.dim;
        s.x.floats((long) i * s.frames * d, row);
        int from, to;
        if (s.lengths != null) {
            from = 0;
            to = s.lengths[i];
            if (firstNonZero(row, d, to, s.frames) >= 0) s.beyondLength++;
        } else {
            from = firstNonZero(row, d, 0, s.frames);
            to = from < 0 ? 0 : lastNonZero(row, d, s.frames) + 1;
            from = Math.max(from, 0);
        }
        int kept = to - from;
        s.keptSum += kept;
        s.keptMin = Math.min(s.keptMin, kept);
        s.keptMax = Math.max(s.keptMax, kept);
        float[][] out = new float[Math.max(kept, 1)][d]; // no real frame: one zero frame, so the record keeps the modality
        if (kept == 0) s.empty++;
        for (int t = from; t < to; t++) {
            for (int j = 0; j < d; j++) {
                float v = row[t * d + j];
                if (!Float.isFinite(v)) {
                    s.nonFinite[j]++;
                    v = 0f;
                }
                out[t - from][j] = v;
            }
        }
        out = pool(out, pool);
        s.writtenMax = Math.max(s.writtenMax, out.length);
        return out;
    }

    /** A frame is padding when every value is exactly 0 (NaN is not: it is a real, broken frame). */
    private static int firstNonZero(float[] row, int d, int from, int to) {
        for (int t = from; t < to; t++)
            for (int j = 0; j < d; j++) if (row[t * d + j] != 0f) return t;
        return -1;
    }

    private static int lastNonZero(float[] row, int d, int frames) {
        for (int t = frames - 1; t >= 0; t--)
            for (int j = 0; j < d; j++) if (row[t * d + j] != 0f) return t;
        return -1;
    }

    /** Average-pools to at most n frames in consecutive chunks, as numpy.array_split: the first T mod n chunks are one frame longer. */
    static float[][] pool(float[][] x, int n) {
        if (n <= 0 || x.length <= n) return x;
        int d = x[0].length, q = x.length / n, r = x.length % n;
        float[][] out = new float[n][d];
        double[] sum = new double[d];
        for (int c = 0, t = 0; c < n; c++) {
            int len = q + (c < r ? 1 : 0);
            Arrays.fill(sum, 0);
            for (int k = 0; k < len; k++, t++)
                for (int j = 0; j < d; j++) sum[j] += x[t][j];
            for (int j = 0; j < d; j++) out[c][j] = (float) (sum[j] / len);
        }
        return out;
    }

    /** Per-dimension mean and population std of frames, from sums shifted by the first frame (no cancellation for large offsets). */
    private static final class Moments {
        final double[] shift, sum, sumSq;
        long count;

        Moments(int d) {
            shift = new double[d];
            sum = new double[d];
            sumSq = new double[d];
        }

        void add(float[][] frames) {
            for (float[] f : frames) {
                if (count == 0) for (int j = 0; j < f.length; j++) shift[j] = f[j];
                for (int j = 0; j < f.length; j++) {
                    double v = f[j] - shift[j];
                    sum[j] += v;
                    sumSq[j] += v * v;
                }
                count++;
            }
        }

        ObjectNode toJson() {
            ObjectNode o = JSON.createObjectNode();
            o.put("frames", count);
            ArrayNode mean = o.putArray("mean"), std = o.putArray("std");
            for (int j = 0; j < shift.length; j++) {
                double m = count == 0 ? 0 : sum[j] / count;
                mean.add(shift[j] + m);
                std.add(count == 0 ? 0 : Math.sqrt(Math.max(0, sumSq[j] / count - m * m)));
            }
            return o;
        }
    }

    // ---- manifest and report

    private static ObjectNode manifest(Options o, String name, Pickle p, List<Split> splits, boolean sims, Map<String, List<String>> unknown,
                                       Set<String> unused) {
        ObjectNode m = JSON.createObjectNode();
        m.put("generator", "hintgrpo import-mmsa 1");
        m.put("source", o.pkl().toAbsolutePath().toString());
        m.put("name", name);
        m.put("domain", name);
        ObjectNode pk = m.putObject("pickle");
        pk.put("protocol", p.protocol());
        pk.put("numpy_module", p.numpyModule());
        ObjectNode labels = m.putObject("labels");
        labels.put("dataset", sims ? "ch-sims" : "mosi/mosei");
        labels.put("scale", sims ? 3 : 1);
        ArrayNode uni = labels.putArray("unimodal_fields");
        if (sims) for (String f : UNIMODAL_FIELDS) uni.add(f);
        m.put("pool_frames", o.poolFrames());
        ObjectNode features = m.putObject("features");
        for (int k = 0; k < MODALITIES.length; k++) {
            ObjectNode f = features.putObject(MODALITIES[k]);
            f.put("dim", splits.get(0).modalities()[k].dim);
            ObjectNode padded = f.putObject("padded_frames");
            for (Split s : splits) padded.put(s.name(), s.modalities()[k].frames);
            ObjectNode cut = f.putObject("padding_cut_by");
            for (Split s : splits) cut.put(s.name(), cutBy(s.modalities()[k]));
        }
        ObjectNode keys = m.putObject("ignored_keys");
        keys.set("unknown", JSON.valueToTree(unknown));
        keys.set("not_used", JSON.valueToTree(unused));
        m.putObject("splits");
        return m;
    }

    /** Per split: records, frames kept and written, utterances without a real frame, non-finite values per dimension. */
    private static void fillCounts(ObjectNode manifest, List<Split> splits) {
        ObjectNode out = (ObjectNode) manifest.get("splits");
        for (Split s : splits) {
            ObjectNode o = out.putObject(s.name());
            o.put("records", s.n());
            for (int k = 0; k < MODALITIES.length; k++) {
                Modality st = s.modalities()[k];
                ObjectNode f = o.putObject(MODALITIES[k]);
                f.put("frames_kept_min", s.n() == 0 ? 0 : st.keptMin);
                f.put("frames_kept_mean", s.n() == 0 ? 0 : (double) st.keptSum / s.n());
                f.put("frames_kept_max", st.keptMax);
                f.put("frames_written_max", st.writtenMax);
                f.put("no_real_frames", st.empty);
                if (st.lengths != null) f.put("nonzero_after_length", st.beyondLength);
                ObjectNode nf = f.putObject("non_finite");
                nf.put("total", total(st.nonFinite));
                ObjectNode byDim = nf.putObject("by_dim");
                for (int j = 0; j < st.dim; j++) if (st.nonFinite[j] > 0) byDim.put(String.valueOf(j), st.nonFinite[j]);
            }
        }
    }

    private static String report(Options o, String name, Pickle p, boolean sims, List<Split> splits, Map<String, List<String>> unknown,
                                 Set<String> unused) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "%s: %s (pickle protocol %d, %s) → %s%n", name, o.pkl(), p.protocol(),
                p.numpyModule() == null ? "no numpy objects" : p.numpyModule(), o.out()));
        sb.append(sims ? "labels: CH-SIMS (regression_labels_T/A/V present): [-1, 1] scaled by 3 to [-3, 3]; unimodal labels as "
                + "label_text, label_audio, label_vision\n" : "labels: CMU-MOSI/MOSEI scale [-3, 3], copied\n");
        for (int k = 0; k < MODALITIES.length; k++) {
            Set<String> cut = new LinkedHashSet<>();
            for (Split s : splits) cut.add(cutBy(s.modalities()[k]));
            sb.append(String.format(Locale.ROOT, "%s: %d features per frame, padding cut by %s%n", MODALITIES[k],
                    splits.get(0).modalities()[k].dim, String.join(" / ", cut)));
        }
        sb.append(o.poolFrames() > 0 ? "pooling: average of consecutive frames, at most " + o.poolFrames() + " per utterance\n" : "pooling: none\n");
        sb.append("\n| split | records | audio frames kept (min/mean/max) | vision frames kept (min/mean/max) | non-finite audio "
                + "| non-finite vision | no real frames (audio/vision) |\n|---|---:|---|---|---:|---:|---|\n");
        List<String> notes = new ArrayList<>();
        int maxWritten = 0;
        for (Split s : splits) {
            Modality a = s.modalities()[0], v = s.modalities()[1];
            sb.append(String.format(Locale.ROOT, "| %s | %d | %s | %s | %d | %d | %d / %d |%n", s.name(), s.n(), framesText(a, s.n()),
                    framesText(v, s.n()), total(a.nonFinite), total(v.nonFinite), a.empty, v.empty));
            for (Modality f : s.modalities()) {
                maxWritten = Math.max(maxWritten, f.writtenMax);
                if (total(f.nonFinite) > 0)
                    notes.add("non-finite values replaced by 0 in " + s.name() + " " + f.key + ", by dimension: " + dimsText(f.nonFinite));
                if (f.beyondLength > 0)
                    notes.add("warning: " + s.name() + " " + f.key + ": " + f.beyondLength + " utterances have non-zero frames after "
                            + f.key + "_lengths (is the padding on the left?); only the first length frames were kept");
            }
        }
        sb.append('\n');
        for (String n : notes) sb.append(n).append('\n');
        if (!unknown.isEmpty()) {
            List<String> parts = new ArrayList<>();
            unknown.forEach((k, where) -> parts.add(k + " (" + String.join(", ", where) + ")"));
            sb.append("unknown keys ignored: ").append(String.join(", ", parts)).append('\n');
        }
        if (!unused.isEmpty()) sb.append("keys not used: ").append(String.join(", ", unused)).append('\n');
        if (o.poolFrames() == 0 && maxWritten > 64)
            sb.append("note: up to ").append(maxWritten).append(" frames per utterance; each frame is a prompt token, consider --pool-frames 32\n");
        sb.append("manifest: ").append(o.out().resolve(MANIFEST_FILE)).append('\n');
        return sb.toString();
    }

    private static String cutBy(Modality m) {
        return m.lengths != null ? m.key + "_lengths" : "zero frames at both ends";
    }

    private static long total(long[] counts) {
        long t = 0;
        for (long c : counts) t += c;
        return t;
    }

    private static String framesText(Modality m, int n) {
        return String.format(Locale.ROOT, "%d / %.1f / %d", n == 0 ? 0 : m.keptMin, n == 0 ? 0 : (double) m.keptSum / n, m.keptMax);
    }

    /** The dimensions with a count, "3: 12, 7: 4"; past 12 of them the rest is in the manifest. */
    private static String dimsText(long[] counts) {
        List<String> parts = new ArrayList<>();
        for (int j = 0; j < counts.length; j++) if (counts[j] > 0) parts.add(j + ": " + counts[j]);
        if (parts.size() > 12) return String.join(", ", parts.subList(0, 12)) + ", … (" + parts.size() + " dimensions; all in " + MANIFEST_FILE + ")";
        return String.join(", ", parts);
    }

    // ---- names

    static String nameFromPath(Path pkl) {
        for (Path p = pkl.toAbsolutePath().normalize(); p != null && p.getFileName() != null; p = p.getParent()) {
            Matcher m = DATASET.matcher(p.getFileName().toString().toLowerCase(Locale.ROOT));
            if (m.find()) return m.group(1) + (m.group(2) == null ? "" : m.group(2));
        }
        throw new BadInputException("--name", "the path " + pkl + " names no dataset (mosi, mosei or sims); give --name");
    }

    private static String checkName(String name) {
        if (!SAFE_NAME.matcher(name).matches())
            throw new BadInputException("--name", "\"" + name + "\" is not a folder name of letters, digits, '-', '_' and '.'");
        return name;
    }

    // ---- reading values

    private static Object require(Map<?, ?> d, String key, String where) {
        if (!d.containsKey(key)) throw new BadInputException(where, "missing '" + key + "' (the split has " + keysText(d) + ")");
        return d.get(key);
    }

    /** A list, tuple or 1-D array as its elements; {@code column}: an [N, 1] array too. */
    private static List<Object> column(Object v, String where, boolean column) {
        if (v instanceof List<?> l) return new ArrayList<>(l);
        if (v instanceof Tuple t) return t.items();
        if (v instanceof NdArray x) {
            long[] s = x.shape();
            if (!(s.length == 1 || column && s.length == 2 && s[1] == 1))
                throw new BadInputException(where, "has shape " + x.shapeText() + ", expected [N]" + (column ? " or [N, 1]" : ""));
            try {
                return x.elements();
            } catch (IllegalArgumentException e) {
                throw new BadInputException(where, "holds a character that is not a Unicode code point");
            }
        }
        throw new BadInputException(where, "is a " + Pickle.typeName(v) + ", expected a list or a 1-D numpy array");
    }

    private static float[] numbers(List<Object> c, String where) {
        float[] out = new float[c.size()];
        for (int i = 0; i < out.length; i++) {
            Object e = c.get(i);
            if (e instanceof Double x) out[i] = (float) (double) x;
            else if (e instanceof Long x) out[i] = x;
            else throw new BadInputException(where, "element " + i + " is a " + Pickle.typeName(e) + ", expected a number");
        }
        return out;
    }

    private static List<String> strings(Object v, int n, String where) {
        List<Object> c = column(v, where, false);
        if (c.size() != n) throw new BadInputException(where, "has " + c.size() + " elements, regression_labels has " + n);
        List<String> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            if (!(c.get(i) instanceof String s)) throw new BadInputException(where, "element " + i + " is a " + Pickle.typeName(c.get(i)) + ", expected a string");
            out.add(s);
        }
        return out;
    }

    private static String keysText(Map<?, ?> d) {
        List<String> keys = new ArrayList<>();
        for (Object k : d.keySet()) keys.add(String.valueOf(k));
        return keys.isEmpty() ? "no keys" : String.join(", ", keys);
    }

    private static String fmt(float x) {
        return x == Math.rint(x) && Math.abs(x) < 1e9 ? String.valueOf((long) x) : String.valueOf(x);
    }
}
