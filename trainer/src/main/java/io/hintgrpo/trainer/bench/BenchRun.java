package io.hintgrpo.trainer.bench;

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
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Runs the JMH suite ({@code benchmarks.jar}, built by the benchmarks module) in a child JVM and
 * turns its JSON into a markdown table. A child process, not a library call: the trainer cannot
 * depend on the benchmarks module (which is built after it), and JMH wants its own JVM anyway.
 * Every benchmark class gives its forks {@code --add-modules jdk.incubator.vector} through
 * {@code @Fork(jvmArgsAppend)}; the child gets it too, for {@code -f 0} runs.
 *
 * <p>The run fails (exit 1) when JMH does ({@code -foe true}: a benchmark that throws, e.g. a
 * reference that disagrees with our result in setup, stops the run) or when a listed benchmark
 * left no result in the JSON.
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
        /** 1 fork, 1 warmup iteration and 3 measurement iterations of 1 s each (the suite: about 9 minutes on 2 cores). */
        QUICK,
        /** Each benchmark once at its smallest params, one 100 ms iteration, no warmup: does it still run? Numbers mean nothing. */
        SMOKE
    }

    /** JMH's command line after the jar: the filter, the mode's iterations, extra params, fail on error, JSON out. */
    public static List<String> jmhArgs(Mode mode, String filter, List<String> params, Path json) {
        List<String> a = new ArrayList<>(List.of(filter));
        switch (mode) {
            case FULL -> { }
            case QUICK -> a.addAll(List.of("-f", "1", "-wi", "1", "-w", "1s", "-i", "3", "-r", "1s"));
            // smallest params: the embedded config; one short decode-sized matmul shape
            case SMOKE -> a.addAll(List.of("-f", "1", "-wi", "0", "-i", "1", "-r", "100ms",
                    "-p", "config=embedded", "-p", "shape=NT:8:2048:256"));
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

    /** What one run produced: the JMH results and where the files are. */
    public record Outcome(Map<String, BenchCompare.Result> results, Path json, Path markdown) {}

    /**
     * Lists the benchmarks the filter selects, runs them, reads the JSON and writes the markdown
     * table into outDir. JMH's output goes to {@code log} and to outDir/jmh.log.
     *
     * @throws BadInputException bad filter, jar, params, or a result file that is not JMH JSON
     * @throws RunFailed         JMH failed or a selected benchmark left no result
     */
    public static Outcome run(Path jar, Mode mode, String filter, List<String> params, Path outDir, PrintWriter log) {
        List<String> selected = list(jar, filter);
        try {
            Files.createDirectories(outDir);
        } catch (IOException e) {
            throw new BadInputException(outDir.toString(), "cannot create the output folder: " + e.getMessage());
        }
        Path json = outDir.resolve(JSON), md = outDir.resolve(MARKDOWN);
        try {
            Files.deleteIfExists(json); // never read a previous run's results
        } catch (IOException e) {
            throw new BadInputException(json.toString(), "cannot replace: " + e.getMessage());
        }
        String loadBefore = loadAverage();
        ZonedDateTime start = ZonedDateTime.now(ZoneOffset.UTC);
        List<String> cmd = java(jar);
        cmd.addAll(jmhArgs(mode, filter, params, json));
        int code;
        try (Writer logFile = Files.newBufferedWriter(outDir.resolve(LOG), StandardCharsets.UTF_8)) {
            code = exec(cmd, line -> {
                log.println(line);
                log.flush();
                try {
                    logFile.write(line);
                    logFile.write('\n');
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        } catch (IOException | UncheckedIOException e) {
            throw new BadInputException(outDir.resolve(LOG).toString(), "cannot write: " + e.getMessage());
        }
        if (code != 0)
            throw new RunFailed("JMH exited with code " + code + "; its output is in " + outDir.resolve(LOG));
        if (!Files.isRegularFile(json)) throw new RunFailed("JMH wrote no result file " + json);
        Map<String, BenchCompare.Result> results = BenchCompare.read(json);
        Set<String> missing = new LinkedHashSet<>(selected);
        for (BenchCompare.Result r : results.values()) missing.remove(r.benchmark());
        if (!missing.isEmpty()) throw new RunFailed("no result for " + String.join(", ", missing) + " in " + json);
        String header = String.format(Locale.ROOT, "JMH %s run, %s; %d cores, %s; JDK %s; 1-minute load average %s before, %s after.",
                mode.name().toLowerCase(Locale.ROOT), start.format(DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm 'UTC'")),
                Runtime.getRuntime().availableProcessors(), cpuModel(), System.getProperty("java.vm.version"),
                loadBefore, loadAverage());
        try {
            Files.writeString(md, "# Benchmarks\n\n" + header + "\n\n" + markdown(results));
        } catch (IOException e) {
            throw new BadInputException(md.toString(), "cannot write: " + e.getMessage());
        }
        return new Outcome(results, json, md);
    }

    /** A run that started but did not finish cleanly (not bad input: exit 1). */
    public static final class RunFailed extends RuntimeException {
        public RunFailed(String message) {
            super(message);
        }
    }

    /**
     * One row per result: benchmark (class.method), params, score ± error, unit, and for entries
     * with an in-run reference ({@link BenchCompare#REFERENCES}) our speed relative to it.
     */
    public static String markdown(Map<String, BenchCompare.Result> results) {
        StringBuilder sb = new StringBuilder("| benchmark | params | score ± error | unit | vs in-run reference |\n|---|---|---:|---|---:|\n");
        // grouped by benchmark (JMH runs throughput modes first); params keep the run's order
        for (BenchCompare.Result r : results.values().stream().sorted(Comparator.comparing(BenchCompare.Result::benchmark)).toList()) {
            String name = r.benchmark().substring(r.benchmark().lastIndexOf('.', r.benchmark().lastIndexOf('.') - 1) + 1);
            BenchCompare.Result ref = results.get(r.referenceKey());
            String vs = r.isReference() ? "(reference)"
                    : ref != null && ref.unit().equals(r.unit()) && ref.mode().equals(r.mode())
                    ? String.format(Locale.ROOT, "%.2f× %s", BenchCompare.speedRatio(r, ref), ref.benchmark().substring(ref.benchmark().lastIndexOf('.') + 1))
                    : "";
            // JMH gives no error for a single iteration (read as 0): then the score stands alone
            sb.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s |%n", name, r.params().isEmpty() ? "-" : r.params(),
                    number(r.score()) + (r.error() > 0 ? " ± " + number(r.error()) : ""), r.unit(), vs));
        }
        return sb.toString();
    }

    /** Four significant digits, no exponent: 1,268,101 / 4,344 / 612.8 / 0.2217. */
    static String number(double v) {
        if (!(v > 0) || Double.isInfinite(v)) return v == 0 ? "0" : String.valueOf(v);
        int digits = Math.max(0, 3 - (int) Math.floor(Math.log10(v)));
        return String.format(Locale.ROOT, "%,." + digits + "f", v);
    }

    /** The benchmark names JMH's -l gives for the filter; none is bad input. */
    static List<String> list(Path jar, String filter) {
        List<String> cmd = java(jar);
        cmd.addAll(List.of("-l", filter));
        List<String> lines = new ArrayList<>();
        int code = exec(cmd, lines::add);
        int at = lines.indexOf("Benchmarks: ");
        if (at < 0) at = lines.indexOf("Benchmarks:");
        if (code != 0 || at < 0)
            throw new BadInputException(jar.toString(), "not a runnable JMH benchmarks jar ('java -jar " + jar + " -l' exited "
                    + code + (lines.isEmpty() ? "" : ": " + lines.get(lines.size() - 1)) + ")");
        List<String> names = lines.subList(at + 1, lines.size()).stream().map(String::strip).filter(s -> !s.isEmpty()).toList();
        if (names.isEmpty()) throw new BadInputException("--filter", "no benchmark in " + jar + " matches '" + filter + "'");
        return names;
    }

    private static List<String> java(Path jar) {
        return new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "-jar", jar.toString()));
    }

    /** Runs cmd, handing each line of its stdout+stderr to sink; returns the exit code. */
    private static int exec(List<String> cmd, Consumer<String> sink) {
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
