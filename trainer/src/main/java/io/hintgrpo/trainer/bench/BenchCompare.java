package io.hintgrpo.trainer.bench;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.hintgrpo.engine.BadInputException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * Compares two JMH result files ({@code -rf json}) and says, per benchmark, whether it regressed.
 *
 * <p>An entry is a benchmark method plus its params. Where both files carry the entry's in-run
 * reference (by default the method {@code ort} of the same class, same params; see
 * {@link #REFERENCES}: ONNX Runtime for MatmulBench, torch for the GPU harness's bf16 GEMMs), the
 * compared quantity is the speed relative to that reference, so a machine that is uniformly slower
 * or busier in one run does not read as a regression. Else, where both runs have a
 * {@code torch-result.json} beside their JMH file ({@code hintgrpo bench} writes one with the
 * PyTorch twins' paired rounds) holding the entry, the speed relative to torch is compared.
 * Otherwise the raw scores are compared, in the direction the mode implies (throughput: higher is
 * better; average, sample, single-shot time: lower is better).
 *
 * <p>A change is a regression only when it is worse than the threshold AND larger than the
 * measured error (both files' JMH {@code scoreError}, combined in quadrature; propagated through
 * the ratio when ratios are compared). An improvement is the mirror image; all else is "same".
 */
public final class BenchCompare {
    private BenchCompare() {}

    /** Benchmark class → the method that is the in-run reference of its other methods. */
    public static final Map<String, String> REFERENCES = Map.of("io.hintgrpo.benchmarks.MatmulBench", "ort",
            "io.hintgrpo.tests.GpuBench", "torch");
    /** Reference method of a class not listed in {@link #REFERENCES}. */
    public static final String DEFAULT_REFERENCE = "ort";

    public enum Verdict { REGRESSION, IMPROVEMENT, SAME, REFERENCE }

    /** One JMH result: score and its error (0 when JMH gave none) in {@code unit}. */
    public record Result(String benchmark, String params, String mode, double score, double error, String unit) {
        String key() { return benchmark + " " + params; }

        /** True for throughput (ops/time): a higher score is better. */
        boolean higherIsBetter() {
            if (mode.equals("thrpt")) return true;
            if (mode.equals("avgt") || mode.equals("sample") || mode.equals("ss")) return false;
            return unit.startsWith("ops/");
        }

        String className() { return benchmark.substring(0, Math.max(0, benchmark.lastIndexOf('.'))); }

        String method() { return benchmark.substring(benchmark.lastIndexOf('.') + 1); }

        boolean isReference() { return method().equals(REFERENCES.getOrDefault(className(), DEFAULT_REFERENCE)); }

        String referenceKey() {
            return className() + "." + REFERENCES.getOrDefault(className(), DEFAULT_REFERENCE) + " " + params;
        }
    }

    /**
     * One compared entry. With {@code ratio}, baseline/current are speeds relative to the reference
     * (higher is better, whatever the mode); without, raw scores in {@code unit}. {@code change} is
     * current/baseline − 1.
     */
    public record Row(String benchmark, String params, double baseline, double current, double change,
                      Verdict verdict, String basis, String unit) {
        /** True when the compared values are speeds relative to a reference (basis {@code ort} or {@code torch}), not raw scores. */
        public boolean ratio() { return !basis.equals(RAW); }
    }

    /** {@link Row#basis()} of rows that compare raw scores; the others name their reference. */
    public static final String RAW = "raw", IN_RUN = "ratio", TORCH = "torch";
    /** The PyTorch twins' results, written by {@code hintgrpo bench} beside jmh-result.json. */
    public static final String TORCH_FILE = "torch-result.json";

    public record Report(List<Row> rows, List<String> onlyInBaseline, List<String> onlyInCurrent) {
        public long count(Verdict v) { return rows.stream().filter(r -> r.verdict == v).count(); }

        public boolean hasRegression() { return count(Verdict.REGRESSION) > 0; }
    }

    /** "10%" → 0.10, "0.1" → 0.1; a bare number above 1 is refused as ambiguous. */
    public static double parseThreshold(String text) {
        String t = text.trim();
        boolean percent = t.endsWith("%");
        double v;
        try {
            v = Double.parseDouble(percent ? t.substring(0, t.length() - 1).trim() : t);
        } catch (NumberFormatException e) {
            throw new BadInputException("--threshold", "not a number or percentage: '" + text + "'");
        }
        if (percent) v /= 100;
        if (!(v >= 0) || Double.isInfinite(v)) throw new BadInputException("--threshold", "must be ≥ 0, got '" + text + "'");
        if (!percent && v > 1) throw new BadInputException("--threshold", "'" + text + "' is ambiguous: write " + text + "% or a fraction like 0.1");
        return v;
    }

    /** Reads a JMH JSON result array; entries keyed by benchmark name + params, in file order. */
    public static Map<String, Result> read(Path file) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Files.readString(file));
        } catch (JsonProcessingException e) {
            throw new BadInputException(file.toString(), "malformed JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new BadInputException(file.toString(), "cannot read: " + e.getMessage());
        }
        if (root == null || !root.isArray()) throw new BadInputException(file.toString(), "not a JMH result array (expected a JSON array from -rf json)");
        Map<String, Result> out = new LinkedHashMap<>();
        for (int i = 0; i < root.size(); i++) {
            JsonNode e = root.get(i);
            String where = "entry " + i;
            JsonNode metric = e.path("primaryMetric");
            if (!e.path("benchmark").isTextual() || !e.path("mode").isTextual() || !metric.isObject() || !metric.path("scoreUnit").isTextual())
                throw new BadInputException(file.toString(), where + " is not a JMH result (needs benchmark, mode, primaryMetric.score/scoreUnit)");
            double score = number(metric.path("score"));
            if (!(score > 0) || Double.isInfinite(score))
                throw new BadInputException(file.toString(), where + " (" + e.get("benchmark").asText() + "): score must be a positive number");
            double error = number(metric.path("scoreError"));
            if (!(error >= 0) || Double.isInfinite(error)) error = 0;     // JMH writes "NaN" with a single iteration
            Map<String, String> params = new TreeMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = e.path("params").fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> p = it.next();
                params.put(p.getKey(), p.getValue().asText());
            }
            StringBuilder ps = new StringBuilder();
            params.forEach((k, v) -> ps.append(ps.length() == 0 ? "" : ",").append(k).append('=').append(v));
            Result r = new Result(e.get("benchmark").asText(), ps.toString(), e.get("mode").asText(), score, error,
                    metric.get("scoreUnit").asText());
            if (out.put(r.key(), r) != null) throw new BadInputException(file.toString(), "duplicate entry " + r.key());
        }
        return out;
    }

    /** JSON number, or the strings "NaN"/"Infinity" JMH writes for non-finite values; NaN otherwise. */
    private static double number(JsonNode n) {
        if (n.isNumber()) return n.asDouble();
        if (n.isTextual()) {
            try { return Double.parseDouble(n.asText()); } catch (NumberFormatException ignored) { }
        }
        return Double.NaN;
    }

    /** Compares two files; refuses files with no entry in common. */
    public static Report compare(Path baselineFile, Path currentFile, double threshold) {
        Map<String, Result> base = read(baselineFile), cur = read(currentFile);
        Report report = compare(base, cur, torchBeside(baselineFile), torchBeside(currentFile), threshold);
        if (report.rows.isEmpty())
            throw new BadInputException(currentFile.toString(), "no benchmark in common with " + baselineFile
                    + (cur.isEmpty() ? " (no results at all)" : ""));
        for (Row r : report.rows) {
            Result b = base.get(r.benchmark + " " + r.params), c = cur.get(r.benchmark + " " + r.params);
            if (!b.unit.equals(c.unit) || !b.mode.equals(c.mode))
                throw new BadInputException(currentFile.toString(), c.key() + " is " + c.mode + " in " + c.unit
                        + " but " + b.mode + " in " + b.unit + " in " + baselineFile);
        }
        return report;
    }

    public static Report compare(Map<String, Result> base, Map<String, Result> cur, double threshold) {
        return compare(base, cur, Map.of(), Map.of(), threshold);
    }

    /** As above, with each run's torch twins (keyed like the JMH entries) as the reference where no in-run one exists. */
    public static Report compare(Map<String, Result> base, Map<String, Result> cur, Map<String, Result> baseTorch,
                                 Map<String, Result> curTorch, double threshold) {
        List<Row> rows = new ArrayList<>();
        List<String> onlyBase = new ArrayList<>(), onlyCur = new ArrayList<>();
        for (Result b : base.values()) if (!cur.containsKey(b.key())) onlyBase.add(b.key());
        for (Result c : cur.values()) {
            Result b = base.get(c.key());
            if (b == null) { onlyCur.add(c.key()); continue; }
            Result bRef = base.get(c.referenceKey()), cRef = cur.get(c.referenceKey());
            String basis = IN_RUN;
            if (!comparable(b, bRef) || !comparable(c, cRef)) {
                bRef = baseTorch.get(c.key());
                cRef = curTorch.get(c.key());
                basis = TORCH;
            }
            boolean ratio = !c.isReference() && comparable(b, bRef) && comparable(c, cRef);
            if (!ratio) basis = RAW;
            // value and its error in each file, plus whether higher is better
            double vb, eb, vc, ec;
            boolean higherBetter;
            if (ratio) {            // speed relative to the reference: ours/ref for throughput, ref/ours for time
                vb = speedRatio(b, bRef); eb = vb * relError(b, bRef);
                vc = speedRatio(c, cRef); ec = vc * relError(c, cRef);
                higherBetter = true;
            } else {
                vb = b.score; eb = b.error; vc = c.score; ec = c.error;
                higherBetter = c.higherIsBetter();
            }
            double change = vc / vb - 1;
            double gain = higherBetter ? change : -change;                 // > 0: better
            boolean beyondError = Math.abs(vc - vb) > Math.hypot(eb, ec);
            Verdict v = c.isReference() ? Verdict.REFERENCE
                    : gain < -threshold && beyondError ? Verdict.REGRESSION
                    : gain > threshold && beyondError ? Verdict.IMPROVEMENT
                    : Verdict.SAME;
            rows.add(new Row(c.benchmark, c.params, vb, vc, change, v, basis, c.unit));
        }
        return new Report(rows, onlyBase, onlyCur);
    }

    /** A reference that exists and measures the same way as r. */
    private static boolean comparable(Result r, Result ref) {
        return ref != null && ref.unit.equals(r.unit) && ref.mode.equals(r.mode);
    }

    /**
     * The torch twins of the run whose JMH file is jmhFile: {@link #TORCH_FILE} in the same folder,
     * keyed like {@link #read}'s entries, each scored by the mean of its rounds with half the spread
     * of the round means as its error (how much the load moved between the rounds before and after
     * ours); empty when there is no such file.
     */
    public static Map<String, Result> torchBeside(Path jmhFile) {
        Path file = jmhFile.toAbsolutePath().resolveSibling(TORCH_FILE);
        Map<String, Result> out = new LinkedHashMap<>();
        if (!Files.isRegularFile(file)) return out;
        JsonNode results;
        try {
            results = new ObjectMapper().readTree(Files.readString(file)).path("results");
        } catch (JsonProcessingException e) {
            throw new BadInputException(file.toString(), "malformed JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new BadInputException(file.toString(), "cannot read: " + e.getMessage());
        }
        for (int i = 0; i < results.size(); i++) {
            JsonNode e = results.get(i);
            if (!e.path("benchmark").isTextual() || !e.path("params").isTextual() || !e.path("mode").isTextual()
                    || !e.path("unit").isTextual() || !e.path("rounds").isArray())
                throw new BadInputException(file.toString(), "results[" + i + "] needs benchmark, params, mode, unit and rounds");
            double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY, sum = 0;
            int n = 0;
            for (JsonNode round : e.get("rounds")) {
                double m = 0;
                for (JsonNode x : round) m += number(x);
                m /= Math.max(1, round.size());
                lo = Math.min(lo, m);
                hi = Math.max(hi, m);
                sum += m;
                n++;
            }
            double score = sum / Math.max(1, n);
            if (!(score > 0) || Double.isInfinite(score))
                throw new BadInputException(file.toString(), "results[" + i + "] (" + e.get("benchmark").asText() + "): no positive score in its rounds");
            Result r = new Result(e.get("benchmark").asText(), e.get("params").asText(), e.get("mode").asText(), score,
                    n > 1 ? (hi - lo) / 2 : 0, e.get("unit").asText());
            out.put(r.key(), r);
        }
        return out;
    }

    /** Our speed over the reference's: ours/ref for throughput, ref/ours for time. */
    static double speedRatio(Result r, Result ref) {
        return r.higherIsBetter() ? r.score / ref.score : ref.score / r.score;
    }

    /** Relative error of a ratio of two independent measurements. */
    private static double relError(Result r, Result ref) {
        return Math.hypot(r.error / r.score, ref.error / ref.score);
    }

    /** The report as an aligned text table, then the entries found in one file only and a summary. */
    public static String format(Report report) {
        List<String[]> lines = new ArrayList<>();
        lines.add(new String[]{"benchmark", "params", "baseline", "current", "change", "verdict", "basis"});
        for (Row r : report.rows) {
            String bench = r.benchmark.substring(r.benchmark.lastIndexOf('.', r.benchmark.lastIndexOf('.') - 1) + 1);
            lines.add(new String[]{bench, r.params.isEmpty() ? "-" : r.params,
                    value(r, r.baseline), value(r, r.current),
                    String.format(Locale.ROOT, "%+.1f%%", 100 * r.change),
                    r.verdict.name().toLowerCase(Locale.ROOT), r.basis});
        }
        int[] width = new int[lines.get(0).length];
        for (String[] l : lines) for (int i = 0; i < l.length; i++) width[i] = Math.max(width[i], l[i].length());
        StringBuilder sb = new StringBuilder();
        for (String[] l : lines) {
            StringBuilder line = new StringBuilder();
            for (int i = 0; i < l.length; i++) {
                String pad = " ".repeat(width[i] - l[i].length());
                boolean right = i == 2 || i == 3 || i == 4;          // numbers align right
                line.append(i == 0 ? "" : "  ").append(right ? pad + l[i] : l[i] + pad);
            }
            sb.append(line.toString().stripTrailing()).append('\n');
        }
        for (String k : report.onlyInBaseline) sb.append("only in baseline: ").append(k).append('\n');
        for (String k : report.onlyInCurrent) sb.append("only in current:  ").append(k).append('\n');
        sb.append(String.format(Locale.ROOT, "%d regression(s), %d improvement(s), %d same; ratio rows are speed relative to the in-run reference, torch rows to the paired PyTorch twin%n",
                report.count(Verdict.REGRESSION), report.count(Verdict.IMPROVEMENT), report.count(Verdict.SAME)));
        return sb.toString();
    }

    private static String value(Row r, double v) {
        return r.ratio() ? String.format(Locale.ROOT, "%.3fx %s", v, r.basis.equals(TORCH) ? "torch" : "ref") : String.format(Locale.ROOT, "%.4g %s", v, r.unit);
    }
}
