package io.hintgrpo.trainer.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.BadInputException;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Runs the JMH suite ({@code benchmarks.jar}, built by the benchmarks module) in a child JVM and
 * turns its JSON into a markdown table. A child process, not a library call: the trainer cannot
 * depend on the benchmarks module (which is built after it), and JMH wants its own JVM anyway.
 * Every benchmark class gives its forks {@code --add-modules jdk.incubator.vector} through
 * {@code @Fork(jvmArgsAppend)}; the child gets it too, for {@code -f 0} runs.
 *
 * <p>Where /usr/bin/python3 has torch, the benchmarks with a twin in scripts/torch_cpu_bench.py
 * also run against eager PyTorch on the same model and cores, in paired blocks ({@link TorchRun}):
 * results.md gets an ours/torch column and torch-result.json the torch rounds.
 *
 * <p>The run fails (exit 1) when JMH does ({@code -foe true}: a benchmark that throws, e.g. a
 * reference that disagrees with our result in setup, stops the run), when the torch reference's
 * logits disagree with ours, or when a listed benchmark left no result in the JSON.
 */
public final class BenchRun {
    private BenchRun() {}

    /** System property naming the benchmarks jar; the launcher sets it. */
    public static final String JAR_PROPERTY = "hintgrpo.benchmarks.jar";
    public static final String JSON = "jmh-result.json", MARKDOWN = "results.md", LOG = "jmh.log";
    /** Every benchmark of the suite. */
    public static final String ALL = "io\\.hintgrpo\\.benchmarks\\.";

    public enum Mode {
        /** The iterations and forks each class's annotations ask for (tens of minutes for the suite). */
        FULL,
        /**
         * 1 fork, each class's own warm-up (its {@code @Warmup}, sized so the JIT is done), then 6
         * measurement iterations of 500 ms (the suite with its torch twins: about 16 minutes on 2 cores).
         */
        QUICK,
        /** Each benchmark once at its smallest params, one 100 ms iteration, no warmup: does it still run? Numbers mean nothing. */
        SMOKE
    }

    /** Smoke's params: the embedded config; one short decode-sized matmul shape. */
    static final List<String> SMOKE_PARAMS = List.of("config=embedded", "shape=NT:8:2048:256");

    /** JMH's command line after the jar: the filter, the mode's iterations and params, extra params, fail on error, JSON out. */
    public static List<String> jmhArgs(Mode mode, String filter, List<String> params, Path json) {
        return jmhArgs(mode, filter, null, withModeParams(mode, params), json);
    }

    /** The params a mode runs with: smoke's first, then the caller's (JMH merges repeated names). */
    static List<String> withModeParams(Mode mode, List<String> params) {
        List<String> p = new ArrayList<>(mode == Mode.SMOKE ? SMOKE_PARAMS : List.of());
        p.addAll(params);
        return p;
    }

    static List<String> jmhArgs(Mode mode, String include, String exclude, List<String> params, Path json) {
        List<String> a = new ArrayList<>(List.of(include));
        if (exclude != null) a.addAll(List.of("-e", exclude));
        switch (mode) {
            case FULL -> { }
            // warm-up as each class asks: a 1 s warm-up left the JIT unfinished on the heavy classes (first
            // iterations 20–50 % slow); 6 short iterations instead of 3 long ones: JMH's 99.9 % error is
            // t(n−1)·sd/√n, and t is 31.6 for n = 3 but 6.9 for n = 6
            case QUICK -> a.addAll(List.of("-f", "1", "-i", "6", "-r", "500ms"));
            case SMOKE -> a.addAll(List.of("-f", "1", "-wi", "0", "-i", "1", "-r", "100ms"));
        }
        for (String p : params) a.addAll(List.of("-p", p));
        a.addAll(List.of("-foe", "true", "-rf", "json", "-rff", json.toAbsolutePath().toString()));
        return a;
    }

    /** The filter as a regular expression, or a clear error naming --filter. */
    public static String checkFilter(String regex) {
        try {
            Pattern.compile(regex);
            return regex;
        } catch (PatternSyntaxException e) {
            throw new BadInputException("--filter", "not a regular expression: " + e.getDescription()
                    + (e.getIndex() >= 0 ? " at index " + e.getIndex() : "") + " in '" + regex + "'");
        }
    }

    /** "name=v1,v2" for JMH's -p. */
    public static String checkParam(String param) {
        int eq = param.indexOf('=');
        if (eq <= 0 || eq == param.length() - 1)
            throw new BadInputException("--param", "expected NAME=VALUE[,VALUE…], got '" + param + "'");
        return param;
    }

    /**
     * The benchmarks jar: --jar when given (must exist), else the system property, else
     * benchmarks.jar beside the hintgrpo jar or in the source tree it was built in
     * (…/trainer/target/hintgrpo.jar → …/benchmarks/target/benchmarks.jar), else
     * benchmarks/target/benchmarks.jar under the working directory.
     */
    public static Path findJar(Path option) {
        if (option != null) {
            if (!Files.isRegularFile(option)) throw new BadInputException("--jar", "no such file: " + option);
            return option;
        }
        String prop = System.getProperty(JAR_PROPERTY);
        if (prop != null && !prop.isBlank()) {
            Path p = Path.of(prop);
            if (!Files.isRegularFile(p)) throw new BadInputException("-D" + JAR_PROPERTY, "no such file: " + p);
            return p;
        }
        List<Path> candidates = new ArrayList<>();
        Path self = ownJar();
        if (self != null && self.getParent() != null) {
            candidates.add(self.resolveSibling("benchmarks.jar"));
            if (self.getParent().getParent() != null)
                candidates.add(self.getParent().getParent().resolveSibling("benchmarks").resolve("target/benchmarks.jar"));
        }
        candidates.add(Path.of("benchmarks", "target", "benchmarks.jar"));
        for (Path c : candidates) if (Files.isRegularFile(c)) return c.toAbsolutePath().normalize();
        throw new BadInputException("--jar", "no benchmarks jar found (looked at " + String.join(", ", candidates.stream().map(Path::toString).toList())
                + "); build it with 'mvn -pl benchmarks -am package -DskipTests' or pass --jar");
    }

    private static Path ownJar() {
        try {
            var src = BenchRun.class.getProtectionDomain().getCodeSource();
            return src == null ? null : Path.of(src.getLocation().toURI()).toAbsolutePath();
        } catch (URISyntaxException | RuntimeException e) {
            return null;
        }
    }

    /** What one run produced: the JMH results, ours/torch per entry with a twin (empty without torch) and where the files are. */
    public record Outcome(Map<String, BenchCompare.Result> results, Map<String, Double> oursPerTorch, Path json, Path markdown) {}

    /** Most --pairs: each pair is a JMH fork and a torch round of every block. */
    public static final int MAX_PAIRS = 20;

    /** Where torch-result.json goes: the torch twins' rounds, the logits checks, ours/torch. */
    public static final String TORCH_JSON = "torch-result.json";

    /**
     * Lists the benchmarks the filter selects, runs them, reads the JSON and writes the markdown
     * table into outDir. JMH's output goes to {@code log} and to outDir/jmh.log. With {@code torch},
     * benchmarks that have a twin in scripts/torch_cpu_bench.py run in paired blocks with it
     * ({@link TorchRun}); where torch cannot run, one line says so and the run goes on without it.
     * With pairs &gt; 1 each block alternates torch rounds and our forks that many times (torch, ours,
     * torch, …, ours, torch); an entry's forks merge into one JMH entry, and ours/torch is the median
     * of the pairs' ratios.
     *
     * @throws BadInputException bad filter, jar, params, or a result file that is not JMH JSON
     * @throws RunFailed         JMH or the torch reference failed, or a selected benchmark left no result
     */
    public static Outcome run(Path jar, Mode mode, String filter, List<String> params, Path outDir, PrintWriter log, boolean torch, int pairs) {
        checkPairs(pairs, mode, torch);
        List<String> allParams = withModeParams(mode, params);
        Map<String, Map<String, List<String>>> selected = list(jar, filter, allParams);
        try {
            Files.createDirectories(outDir);
        } catch (IOException e) {
            throw new BadInputException(outDir.toString(), "cannot create the output folder: " + e.getMessage());
        }
        Path json = outDir.resolve(JSON), md = outDir.resolve(MARKDOWN), torchJson = outDir.resolve(TORCH_JSON);
        try {
            Files.deleteIfExists(json); // never read a previous run's results
            Files.deleteIfExists(torchJson);
        } catch (IOException e) {
            throw new BadInputException(json.toString(), "cannot replace: " + e.getMessage());
        }
        String loadBefore = loadAverage();
        ZonedDateTime start = ZonedDateTime.now(ZoneOffset.UTC);
        String torchLine;
        Map<String, Double> oursPerTorch = new LinkedHashMap<>();
        TorchRun t = null;
        try (Writer logFile = Files.newBufferedWriter(outDir.resolve(LOG), StandardCharsets.UTF_8)) {
            Consumer<String> sink = line -> {
                log.println(line);
                log.flush();
                try {
                    logFile.write(line);
                    logFile.write('\n');
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            };
            List<String> skipped = new ArrayList<>();
            t = torch ? TorchRun.open(jar, selected.keySet(), skipped::add) : null;
            skipped.forEach(sink);
            torchLine = !skipped.isEmpty() ? skipped.get(0) : !torch ? "Torch reference: off (--no-torch)." : null;
            if (t == null) {
                jmh(jar, mode, jmhArgs(mode, filter, null, allParams, json), outDir, sink);
            } else {
                pairedRun(t, jar, mode, filter, allParams, selected, outDir, sink, pairs);
                torchLine = t.describe();
            }
        } catch (IOException | UncheckedIOException e) {
            throw new BadInputException(outDir.resolve(LOG).toString(), "cannot write: " + e.getMessage());
        } finally {
            if (t != null) t.close();
        }
        if (!Files.isRegularFile(json)) throw new RunFailed("JMH wrote no result file " + json);
        Map<String, BenchCompare.Result> results = BenchCompare.read(json);
        Set<String> missing = new LinkedHashSet<>(selected.keySet());
        for (BenchCompare.Result r : results.values()) missing.remove(r.benchmark());
        if (!missing.isEmpty()) throw new RunFailed("no result for " + String.join(", ", missing) + " in " + json);
        String header = String.format(Locale.ROOT, "JMH %s run, %s; %d cores, %s; JDK %s; 1-minute load average %s before, %s after.",
                mode.name().toLowerCase(Locale.ROOT), start.format(DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm 'UTC'")),
                Runtime.getRuntime().availableProcessors(), cpuModel(), System.getProperty("java.vm.version"),
                loadBefore, loadAverage());
        if (t != null) {
            for (BenchCompare.Result r : results.values()) {
                List<Double> ratios = t.pairRatios(r);
                if (!ratios.isEmpty()) oursPerTorch.put(r.key(), TorchRun.median(ratios));
            }
            write(torchJson, t.json(results, pairing(mode, pairs)));
        }
        write(md, "# Benchmarks\n\n" + header + (torchLine == null ? "" : "\n" + torchLine) + "\n\n" + markdown(results, oursPerTorch)
                + (t == null ? "" : "\n" + torchTable(results, t, mode, pairs)));
        return new Outcome(results, oursPerTorch, json, md);
    }

    /** --pairs is 1 … {@link #MAX_PAIRS}, and more than one needs torch twins to pair with. */
    private static void checkPairs(int pairs, Mode mode, boolean torch) {
        if (pairs < 1 || pairs > MAX_PAIRS) throw new BadInputException("--pairs", "must be 1 to " + MAX_PAIRS + ", got " + pairs);
        if (pairs > 1 && mode == Mode.SMOKE) throw new BadInputException("--pairs", "the smoke's numbers mean nothing; pairs need --quick or a full run");
        if (pairs > 1 && !torch) throw new BadInputException("--pairs", "pairs alternate our forks with torch rounds; drop --no-torch");
    }

    /** How the torch rounds were paired with ours, for results.md and torch-result.json. */
    static String pairing(Mode mode, int pairs) {
        if (mode == Mode.SMOKE) return "smoke: one call of each torch twin right before our JMH run at the same config; the numbers mean nothing";
        if (pairs == 1) return "per benchmark class and config: a torch round right before our JMH fork of the same benchmarks and one right after; "
                + "the torch score is the mean of the two rounds";
        return "per benchmark class and config, " + pairs + " pairs: torch rounds and our JMH forks of the same benchmarks alternate, "
                + "a torch round first and last; pair i is our fork i against the mean of the torch rounds right before and after it, "
                + "ours/torch is the median of the pairs' ratios, our score the mean of every fork's iterations (as JMH gives for -f " + pairs
                + "), the torch score the mean of all rounds";
    }

    /**
     * The run with a torch reference: the benchmarks without a twin in one JMH run, then per block
     * (a class at one config; smoke: every twin at a config) a torch round, our JMH run of the block
     * (its twins and their class's in-run reference), and (except smoke) a second torch round, that
     * pair repeated {@code pairs} times; the JMH result files are merged into json.
     */
    private static void pairedRun(TorchRun t, Path jar, Mode mode, String filter, List<String> params,
                                  Map<String, Map<String, List<String>>> selected, Path outDir, Consumer<String> sink, int pairs) {
        // blocks: key → (config, what JMH runs: the twins, and the class's in-run reference where
        // selected, so that "vs ort" is measured between the same torch rounds as ours), in the order JMH lists them
        Map<String, List<String>> blocks = new LinkedHashMap<>();
        Map<String, String> blockConfig = new LinkedHashMap<>();
        Set<String> paired = new LinkedHashSet<>();
        for (var e : selected.entrySet()) {
            List<String> configs = e.getValue().get("config");
            if (!t.twins.contains(e.getKey()) || configs == null) continue;
            String cls = e.getKey().substring(0, e.getKey().lastIndexOf('.'));
            String ref = cls + "." + BenchCompare.REFERENCES.getOrDefault(cls, BenchCompare.DEFAULT_REFERENCE);
            List<String> refConfigs = selected.containsKey(ref) ? selected.get(ref).getOrDefault("config", List.of()) : List.of();
            for (String c : configs) {
                String key = mode == Mode.SMOKE ? c : cls + " " + c;
                List<String> runs = blocks.computeIfAbsent(key, k -> new ArrayList<>());
                runs.add(e.getKey());
                if (refConfigs.contains(c) && !runs.contains(ref) && !t.twins.contains(ref)) runs.add(ref);
                blockConfig.put(key, c);
                paired.addAll(runs);
            }
        }
        List<Path> parts = new ArrayList<>();
        try {
            if (paired.size() < selected.size()) {
                Path part = outDir.resolve(".jmh-part-0.json");
                parts.add(part);
                jmh(jar, mode, jmhArgs(mode, filter, exactly(paired), params, part), outDir, sink);
            }
            t.writeReferences(new LinkedHashSet<>(blockConfig.values()), sink);
            List<String> otherParams = params.stream().filter(p -> !p.startsWith("config=")).toList();
            TorchRun.Timing timing = switch (mode) {
                case SMOKE -> new TorchRun.Timing(0, 1, 0);
                case QUICK -> new TorchRun.Timing(1, 6, 0.5);
                case FULL -> new TorchRun.Timing(2, 5, 1);
            };
            for (var b : blocks.entrySet()) {
                String config = blockConfig.get(b.getKey());
                List<String> twins = b.getValue().stream().filter(t.twins::contains).toList();
                sink.accept("# paired with the torch reference, config " + config + ": "
                        + String.join(", ", twins.stream().map(BenchRun::shortName).toList()));
                TorchRun.Block block = t.start(config, twins, mode == Mode.SMOKE ? 1 : pairs + 1, timing, sink);
                block.round();
                List<String> p = new ArrayList<>(otherParams);
                p.add("config=" + config);
                for (int i = 0; i < pairs; i++) {
                    if (pairs > 1) sink.accept("# pair " + (i + 1) + " of " + pairs + ", config " + config);
                    Path part = outDir.resolve(".jmh-part-" + parts.size() + ".json");
                    parts.add(part);
                    jmh(jar, mode, jmhArgs(mode, exactly(b.getValue()), null, p, part), outDir, sink);
                    if (!Files.isRegularFile(part)) throw new RunFailed("JMH wrote no result file " + part);
                    for (BenchCompare.Result r : BenchCompare.read(part).values())
                        t.ours.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(r.score());
                    if (mode != Mode.SMOKE) block.round();
                }
                block.finish();
            }
            merge(parts, outDir.resolve(JSON));
        } finally {
            for (Path part : parts) {
                try {
                    Files.deleteIfExists(part);
                } catch (IOException ignored) {
                    // a leftover hidden part file is harmless
                }
            }
        }
    }

    /** A JMH include/exclude pattern matching exactly these benchmark names. */
    static String exactly(Collection<String> names) {
        return "^(" + String.join("|", names.stream().map(Pattern::quote).toList()) + ")$";
    }

    /**
     * Runs JMH with these arguments; a non-zero exit is a failed run. JMH refuses to start while
     * another JMH holds /tmp/jmh.lock (two measurements at once disturb each other); the smoke's
     * numbers mean nothing, so it runs anyway (a CI job beside a developer's benchmark must not fail).
     */
    private static void jmh(Path jar, Mode mode, List<String> args, Path outDir, Consumer<String> sink) {
        List<String> cmd = java(jar);
        if (mode == Mode.SMOKE) cmd.add(1, "-Djmh.ignoreLock=true");
        cmd.addAll(args);
        int code = exec(cmd, sink);
        if (code != 0) throw new RunFailed("JMH exited with code " + code + "; its output is in " + outDir.resolve(LOG));
    }

    /** The JMH result arrays of several runs as one file; the forks of one entry (pairs) become one entry, as JMH's -f N gives. */
    private static void merge(List<Path> parts, Path json) {
        ObjectMapper m = new ObjectMapper();
        ArrayNode all = m.createArrayNode();
        Map<String, ObjectNode> byKey = new LinkedHashMap<>();
        for (Path part : parts) {
            if (!Files.isRegularFile(part)) throw new RunFailed("JMH wrote no result file " + part);
            JsonNode n;
            try {
                n = m.readTree(part.toFile());
            } catch (IOException e) {
                throw new BadInputException(part.toString(), "malformed JSON: " + e.getMessage());
            }
            if (n == null || !n.isArray()) continue;
            for (JsonNode e : n) {
                String key = e.path("benchmark").asText() + " " + e.path("params");
                ObjectNode first = byKey.get(key);
                if (first == null) {
                    byKey.put(key, (ObjectNode) e);
                    all.add(e);
                } else {
                    addFork(first, e, part);
                }
            }
        }
        write(json, all.toPrettyString());
    }

    /**
     * Adds a further fork's iterations to an entry: score the mean of all iterations, error the
     * 99.9 % half-width t·sd/√n over them (JMH's statistics for -f N), percentiles dropped.
     */
    private static void addFork(ObjectNode entry, JsonNode fork, Path part) {
        JsonNode raw = entry.path("primaryMetric").path("rawData"), more = fork.path("primaryMetric").path("rawData");
        if (!raw.isArray() || !more.isArray())
            throw new RunFailed(part + ": " + fork.path("benchmark").asText() + " has no primaryMetric.rawData to merge its forks");
        ArrayNode forks = ((ArrayNode) raw).addAll((ArrayNode) more);
        double sum = 0, sq = 0;
        int n = 0;
        for (JsonNode f : forks) for (JsonNode x : f) { sum += x.asDouble(); sq += x.asDouble() * x.asDouble(); n++; }
        double mean = sum / n, sd = n > 1 ? Math.sqrt(Math.max(0, (sq - n * mean * mean) / (n - 1))) : Double.NaN;
        double error = n > 1 ? studentT999(n - 1) * sd / Math.sqrt(n) : Double.NaN;
        ObjectNode metric = (ObjectNode) entry.get("primaryMetric");
        metric.put("score", mean);
        metric.put("scoreError", error);
        metric.putArray("scoreConfidence").add(mean - error).add(mean + error);
        metric.remove("scorePercentiles");
        entry.put("forks", forks.size());
    }

    /** t(0.9995, df) for df = 1 … 10, from the standard table. */
    private static final double[] T999 = {636.62, 31.599, 12.924, 8.610, 6.869, 5.959, 5.408, 5.041, 4.781, 4.587};

    /**
     * The 0.9995 quantile of Student's t with df degrees of freedom (the two-sided 99.9 % of JMH's
     * error): the table up to df = 10, then the Cornish–Fisher expansion around the normal quantile
     * (within 0.05 % of the exact value from df = 11 on).
     */
    static double studentT999(int df) {
        if (df < 1) return Double.NaN;
        if (df <= T999.length) return T999[df - 1];
        double z = 3.2905267314919255, z2 = z * z, v = df;
        double g1 = (z2 + 1) * z / 4;
        double g2 = ((5 * z2 + 16) * z2 + 3) * z / 96;
        double g3 = (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / 384;
        double g4 = ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z / 92160;
        return z + g1 / v + g2 / (v * v) + g3 / (v * v * v) + g4 / (v * v * v * v);
    }

    private static void write(Path file, String text) {
        try {
            Files.writeString(file, text);
        } catch (IOException e) {
            throw new BadInputException(file.toString(), "cannot write: " + e.getMessage());
        }
    }

    /** A run that started but did not finish cleanly (not bad input: exit 1). */
    public static final class RunFailed extends RuntimeException {
        public RunFailed(String message) {
            super(message);
        }
    }

    /** The table without torch ratios. */
    public static String markdown(Map<String, BenchCompare.Result> results) {
        return markdown(results, Map.of());
    }

    /**
     * One row per result: benchmark (class.method), params, score ± error, unit, and for entries
     * with an in-run reference ({@link BenchCompare#REFERENCES}) our speed relative to it; with ours/torch
     * ratios (keyed as results are) a last column, our speed relative to the torch twin.
     */
    public static String markdown(Map<String, BenchCompare.Result> results, Map<String, Double> oursPerTorch) {
        boolean withTorch = !oursPerTorch.isEmpty();
        StringBuilder sb = new StringBuilder("| benchmark | params | score ± error | unit | vs in-run reference |"
                + (withTorch ? " vs torch |" : "") + "\n|---|---|---:|---|---:|" + (withTorch ? "---:|" : "") + "\n");
        // grouped by benchmark (JMH runs throughput modes first); params keep the run's order
        for (BenchCompare.Result r : results.values().stream().sorted(Comparator.comparing(BenchCompare.Result::benchmark)).toList()) {
            BenchCompare.Result ref = results.get(r.referenceKey());
            Double tr = oursPerTorch.get(r.key());
            String vs = r.isReference() ? "(reference)"
                    : ref != null && ref.unit().equals(r.unit()) && ref.mode().equals(r.mode())
                    ? String.format(Locale.ROOT, "%.2f× %s", BenchCompare.speedRatio(r, ref), ref.benchmark().substring(ref.benchmark().lastIndexOf('.') + 1))
                    : "";
            String vsTorch = tr != null ? String.format(Locale.ROOT, "%.2f× torch", tr) : "";
            // JMH gives no error for a single iteration (read as 0): then the score stands alone
            sb.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s |%s%n", shortName(r.benchmark()), r.params().isEmpty() ? "-" : r.params(),
                    number(r.score()) + (r.error() > 0 ? " ± " + number(r.error()) : ""), r.unit(), vs,
                    withTorch ? " " + vsTorch + " |" : ""));
        }
        return sb.toString();
    }

    /**
     * The torch twins' scores: one pair, the mean of the round before and the round after ours, each
     * round, ours/torch; several, the mean of all rounds, ours/torch's median, range and each pair's.
     */
    static String torchTable(Map<String, BenchCompare.Result> results, TorchRun t, Mode mode, int pairs) {
        StringBuilder sb = new StringBuilder("Torch twins (" + pairing(mode, pairs) + "):\n\n" + (pairs == 1
                ? "| benchmark | params | torch | round before | round after | unit | ours / torch |\n|---|---|---:|---:|---:|---|---:|\n"
                : "| benchmark | params | torch | unit | ours / torch (median) | range | each pair |\n|---|---|---:|---|---:|---|---|\n"));
        for (TorchRun.Score s : t.scores.values()) {
            BenchCompare.Result mine = results.get(s.benchmark() + " " + s.params());
            List<Double> ratios = mine == null ? List.of() : t.pairRatios(mine);
            String median = ratios.isEmpty() ? "" : String.format(Locale.ROOT, "%.2f", TorchRun.median(ratios));
            if (pairs == 1) {
                sb.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s | %s | %s |%n", shortName(s.benchmark()), s.params(),
                        number(s.score()), number(s.roundMean(0)), s.rounds().size() > 1 ? number(s.roundMean(1)) : "-", s.unit(), median));
            } else {
                String range = ratios.isEmpty() ? "" : String.format(Locale.ROOT, "%.2f–%.2f",
                        ratios.stream().mapToDouble(Double::doubleValue).min().orElseThrow(), ratios.stream().mapToDouble(Double::doubleValue).max().orElseThrow());
                String each = String.join(", ", ratios.stream().map(x -> String.format(Locale.ROOT, "%.2f", x)).toList());
                sb.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s | %s | %s |%n", shortName(s.benchmark()), s.params(),
                        number(s.score()), s.unit(), median, range, each));
            }
        }
        return sb.toString();
    }

    private static String shortName(String benchmark) {
        return benchmark.substring(benchmark.lastIndexOf('.', benchmark.lastIndexOf('.') - 1) + 1);
    }

    /** Four significant digits, no exponent: 1,268,101 / 4,344 / 612.8 / 0.2217. */
    static String number(double v) {
        if (!(v > 0) || Double.isInfinite(v)) return v == 0 ? "0" : String.valueOf(v);
        int digits = Math.max(0, 3 - (int) Math.floor(Math.log10(v)));
        return String.format(Locale.ROOT, "%,." + digits + "f", v);
    }

    /**
     * The benchmarks JMH's -lp gives for the filter and params, each with its params' values
     * (annotations merged with -p); none is bad input.
     */
    static Map<String, Map<String, List<String>>> list(Path jar, String filter, List<String> params) {
        List<String> cmd = java(jar);
        cmd.addAll(List.of("-lp", filter));
        for (String p : params) cmd.addAll(List.of("-p", p));
        List<String> lines = new ArrayList<>();
        int code = exec(cmd, lines::add);
        int at = lines.indexOf("Benchmarks: ");
        if (at < 0) at = lines.indexOf("Benchmarks:");
        if (code != 0 || at < 0)
            throw new BadInputException(jar.toString(), "not a runnable JMH benchmarks jar ('java -jar " + jar + " -lp' exited "
                    + code + (lines.isEmpty() ? "" : ": " + lines.get(lines.size() - 1)) + ")");
        // a name per line, then its params as   param "config" = {embedded, 25m}
        Map<String, Map<String, List<String>>> out = new LinkedHashMap<>();
        Pattern param = Pattern.compile("\\s+param \"([^\"]+)\" = \\{(.*)}");
        Map<String, List<String>> current = null;
        for (String line : lines.subList(at + 1, lines.size())) {
            Matcher m = param.matcher(line);
            if (m.matches() && current != null) current.put(m.group(1), List.of(m.group(2).split(",\\s*")));
            else if (!line.isBlank() && !Character.isWhitespace(line.charAt(0))) out.put(line.strip(), current = new LinkedHashMap<>());
        }
        if (out.isEmpty()) throw new BadInputException("--filter", "no benchmark in " + jar + " matches '" + filter + "'");
        return out;
    }

    private static List<String> java(Path jar) {
        return new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "-jar", jar.toString()));
    }

    /** Runs cmd, handing each line of its stdout+stderr to sink; returns the exit code. */
    static int exec(List<String> cmd, Consumer<String> sink) {
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            p.getOutputStream().close();
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) sink.accept(line);
            }
            return p.waitFor();
        } catch (IOException e) {
            throw new BadInputException(cmd.get(0), "cannot start: " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RunFailed("interrupted while running " + String.join(" ", cmd));
        }
    }

    static String loadAverage() {
        try {
            return Files.readString(Path.of("/proc/loadavg")).split(" ")[0];
        } catch (IOException | RuntimeException e) {
            return "?";
        }
    }

    private static String cpuModel() {
        try (var lines = Files.lines(Path.of("/proc/cpuinfo"))) {
            return lines.filter(l -> l.startsWith("model name")).map(l -> l.substring(l.indexOf(':') + 1).strip())
                    .findFirst().orElse(System.getProperty("os.arch"));
        } catch (IOException | RuntimeException e) {
            return System.getProperty("os.arch");
        }
    }
}
