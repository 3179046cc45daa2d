package io.hintgrpo.trainer.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
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

    /** What one run produced: the JMH results, the torch twins' scores (empty without torch) and where the files are. */
    public record Outcome(Map<String, BenchCompare.Result> results, Map<String, BenchCompare.Result> torch, Path json, Path markdown) {}

    /** Where torch-result.json goes: the torch twins' rounds, the logits checks, ours/torch. */
    public static final String TORCH_JSON = "torch-result.json";

    /**
     * Lists the benchmarks the filter selects, runs them, reads the JSON and writes the markdown
     * table into outDir. JMH's output goes to {@code log} and to outDir/jmh.log. With {@code torch},
     * benchmarks that have a twin in scripts/torch_cpu_bench.py run in paired blocks with it
     * ({@link TorchRun}); where torch cannot run, one line says so and the run goes on without it.
     *
     * @throws BadInputException bad filter, jar, params, or a result file that is not JMH JSON
     * @throws RunFailed         JMH or the torch reference failed, or a selected benchmark left no result
     */
    public static Outcome run(Path jar, Mode mode, String filter, List<String> params, Path outDir, PrintWriter log, boolean torch) {
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
        Map<String, BenchCompare.Result> torchScores = new LinkedHashMap<>();
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
                pairedRun(t, jar, mode, filter, allParams, selected, outDir, sink);
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
            for (TorchRun.Score s : t.scores.values()) torchScores.put(s.benchmark() + " " + s.params(), s.asResult());
            write(torchJson, t.json(results, pairing(mode)));
        }
        write(md, "# Benchmarks\n\n" + header + (torchLine == null ? "" : "\n" + torchLine) + "\n\n" + markdown(results, torchScores)
                + (t == null ? "" : "\n" + torchTable(results, t, mode)));
        return new Outcome(results, torchScores, json, md);
    }

    /** How the torch rounds were paired with ours, for results.md and torch-result.json. */
    static String pairing(Mode mode) {
        return mode == Mode.SMOKE ? "smoke: one call of each torch twin right before our JMH run at the same config; the numbers mean nothing"
                : "per benchmark class and config: a torch round right before our JMH fork of the same benchmarks and one right after; "
                + "the torch score is the mean of the two rounds";
    }

    /**
     * The run with a torch reference: the benchmarks without a twin in one JMH run, then per block
     * (a class at one config; smoke: every twin at a config) a torch round, our JMH run of the block,
     * and (except smoke) a second torch round; the JMH result files are merged into json.
     */
    private static void pairedRun(TorchRun t, Path jar, Mode mode, String filter, List<String> params,
                                  Map<String, Map<String, List<String>>> selected, Path outDir, Consumer<String> sink) {
        // blocks: key → (config, benchmarks), in the order JMH lists them
        Map<String, List<String>> blocks = new LinkedHashMap<>();
        Map<String, String> blockConfig = new LinkedHashMap<>();
        Set<String> twins = new LinkedHashSet<>();
        for (var e : selected.entrySet()) {
            List<String> configs = e.getValue().get("config");
            if (!t.twins.contains(e.getKey()) || configs == null) continue;
            twins.add(e.getKey());
            String cls = e.getKey().substring(0, e.getKey().lastIndexOf('.'));
            for (String c : configs) {
                String key = mode == Mode.SMOKE ? c : cls + " " + c;
                blocks.computeIfAbsent(key, k -> new ArrayList<>()).add(e.getKey());
                blockConfig.put(key, c);
            }
        }
        List<Path> parts = new ArrayList<>();
        try {
            String twinRegex = exactly(twins);
            if (twins.size() < selected.size()) {
                Path part = outDir.resolve(".jmh-part-0.json");
                parts.add(part);
                jmh(jar, mode, jmhArgs(mode, filter, twinRegex, params, part), outDir, sink);
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
                sink.accept("# paired with the torch reference, config " + config + ": "
                        + String.join(", ", b.getValue().stream().map(BenchRun::shortName).toList()));
                TorchRun.Block block = t.start(config, b.getValue(), mode == Mode.SMOKE ? 1 : 2, timing, sink);
                block.round();
                List<String> p = new ArrayList<>(otherParams);
                p.add("config=" + config);
                Path part = outDir.resolve(".jmh-part-" + parts.size() + ".json");
                parts.add(part);
                jmh(jar, mode, jmhArgs(mode, exactly(b.getValue()), null, p, part), outDir, sink);
                if (mode != Mode.SMOKE) block.round();
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

    /** The JMH result arrays of several runs as one file. */
    private static void merge(List<Path> parts, Path json) {
        ObjectMapper m = new ObjectMapper();
        ArrayNode all = m.createArrayNode();
        for (Path part : parts) {
            if (!Files.isRegularFile(part)) throw new RunFailed("JMH wrote no result file " + part);
            try {
                JsonNode n = m.readTree(part.toFile());
                if (n != null && n.isArray()) all.addAll((ArrayNode) n);
            } catch (IOException e) {
                throw new BadInputException(part.toString(), "malformed JSON: " + e.getMessage());
            }
        }
        write(json, all.toPrettyString());
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

    /** The table without torch scores. */
    public static String markdown(Map<String, BenchCompare.Result> results) {
        return markdown(results, Map.of());
    }

    /**
     * One row per result: benchmark (class.method), params, score ± error, unit, and for entries
     * with an in-run reference ({@link BenchCompare#REFERENCES}) our speed relative to it; with torch
     * scores (keyed as results are) a last column, our speed relative to the torch twin.
     */
    public static String markdown(Map<String, BenchCompare.Result> results, Map<String, BenchCompare.Result> torch) {
        boolean withTorch = !torch.isEmpty();
        StringBuilder sb = new StringBuilder("| benchmark | params | score ± error | unit | vs in-run reference |"
                + (withTorch ? " vs torch |" : "") + "\n|---|---|---:|---|---:|" + (withTorch ? "---:|" : "") + "\n");
        // grouped by benchmark (JMH runs throughput modes first); params keep the run's order
        for (BenchCompare.Result r : results.values().stream().sorted(Comparator.comparing(BenchCompare.Result::benchmark)).toList()) {
            BenchCompare.Result ref = results.get(r.referenceKey()), tr = torch.get(r.key());
            String vs = r.isReference() ? "(reference)"
                    : ref != null && ref.unit().equals(r.unit()) && ref.mode().equals(r.mode())
                    ? String.format(Locale.ROOT, "%.2f× %s", BenchCompare.speedRatio(r, ref), ref.benchmark().substring(ref.benchmark().lastIndexOf('.') + 1))
                    : "";
            String vsTorch = tr != null && tr.unit().equals(r.unit()) ? String.format(Locale.ROOT, "%.2f× torch", BenchCompare.speedRatio(r, tr)) : "";
            // JMH gives no error for a single iteration (read as 0): then the score stands alone
            sb.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s |%s%n", shortName(r.benchmark()), r.params().isEmpty() ? "-" : r.params(),
                    number(r.score()) + (r.error() > 0 ? " ± " + number(r.error()) : ""), r.unit(), vs,
                    withTorch ? " " + vsTorch + " |" : ""));
        }
        return sb.toString();
    }

    /** The torch twins' scores: the mean of the round before and the round after ours, each round, ours/torch. */
    static String torchTable(Map<String, BenchCompare.Result> results, TorchRun t, Mode mode) {
        StringBuilder sb = new StringBuilder("Torch twins (" + pairing(mode) + "):\n\n"
                + "| benchmark | params | torch | round before | round after | unit | ours / torch |\n|---|---|---:|---:|---:|---|---:|\n");
        for (TorchRun.Score s : t.scores.values()) {
            BenchCompare.Result mine = results.get(s.benchmark() + " " + s.params());
            sb.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s | %s | %s |%n", shortName(s.benchmark()), s.params(),
                    number(s.score()), number(s.roundMean(0)), s.rounds().size() > 1 ? number(s.roundMean(1)) : "-", s.unit(),
                    mine == null ? "" : String.format(Locale.ROOT, "%.2f", BenchCompare.speedRatio(mine, s.asResult()))));
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
