package io.hintgrpo.trainer.bench;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.trainer.data.AtomicFiles;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Consumer;

/**
 * The in-run PyTorch reference of {@code hintgrpo bench}: scripts/torch_cpu_bench.py on Debian's
 * /usr/bin/python3 (python3-torch) times eager-torch twins of our model-level benchmarks with the
 * same model, batch and number of threads, after checking that its logits are ours (the
 * benchmarks jar's {@code TorchReference} writes the model, the batch and our logits per config).
 *
 * <p>Pairing: a block is one benchmark class at one config. One torch process per block times a
 * round of the block's twins right before our JMH fork of the same benchmarks and a second round
 * right after (it waits, idle, on stdin in between); the torch score is the mean of the two. On a
 * shared machine whose load drifts, a drift that is steady over the block's minute cancels to first
 * order, and the two rounds' difference shows how much the load moved.
 */
final class TorchRun implements AutoCloseable {
    /** System properties naming the python and the script (defaults: /usr/bin/python3, scripts/ above the jar or the working directory). */
    static final String PYTHON_PROPERTY = "hintgrpo.torch.python", SCRIPT_PROPERTY = "hintgrpo.torch.script";
    static final String SCRIPT = "torch_cpu_bench.py";
    static final String PACKAGE = "io.hintgrpo.benchmarks.";
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Warm-up seconds, measured iterations and seconds per iteration of each torch round. */
    record Timing(double warmup, int iterations, double time) {}

    /** One torch twin's result for one JMH entry (params as BenchCompare writes them): each round's iteration scores. */
    record Score(String benchmark, String params, String mode, String unit, List<List<Double>> rounds) {
        double roundMean(int r) {
            return rounds.get(r).stream().mapToDouble(Double::doubleValue).average().orElse(Double.NaN);
        }

        /** The mean of the rounds' means (before, between and after our forks). */
        double score() {
            double s = 0;
            for (int r = 0; r < rounds.size(); r++) s += roundMean(r);
            return s / rounds.size();
        }

        /** The torch score that pair i is measured against: the mean of the rounds right before and right after our fork i. */
        double pairScore(int i) {
            return i + 1 < rounds.size() ? (roundMean(i) + roundMean(i + 1)) / 2 : roundMean(i);
        }
    }

    final String python;
    final Path script, jar, refs;
    /** Full JMH names of the benchmarks the script has a twin of. */
    final Set<String> twins;
    final JsonNode probe;
    /** Per config, the logits check the script reported. */
    final Map<String, JsonNode> checks = new TreeMap<>();
    final Map<String, Score> scores = new LinkedHashMap<>();
    /** Per JMH entry (key as BenchCompare.Result#key), our score in each pair, in pair order. */
    final Map<String, List<Double>> ours = new LinkedHashMap<>();
    private Process running;

    private TorchRun(String python, Path script, Path jar, Set<String> twins, JsonNode probe) throws IOException {
        this.python = python;
        this.script = script;
        this.jar = jar;
        this.twins = twins;
        this.probe = probe;
        this.refs = Files.createTempDirectory("hintgrpo-torch-ref");
    }

    /**
     * The torch side of a run, or null: silently when no selected benchmark has a twin, with one line
     * "torch reference skipped: …" on log when the script or torch is missing.
     */
    static TorchRun open(Path jar, Collection<String> selected, Consumer<String> log) {
        Path script = findScript(jar);
        if (script == null) {
            log.accept("torch reference skipped: no scripts/" + SCRIPT + " above " + jar.toAbsolutePath().getParent() + " or the working directory");
            return null;
        }
        String python = System.getProperty(PYTHON_PROPERTY, "/usr/bin/python3");
        if (!Files.isExecutable(Path.of(python))) {
            log.accept("torch reference skipped: " + python + " not found (Debian: apt-get install -y python3-torch libopenblas0-pthread)");
            return null;
        }
        List<String> out = new ArrayList<>();
        if (BenchRun.exec(List.of(python, script.toString(), "--list"), out::add) != 0) {
            log.accept("torch reference skipped: " + script + " --list failed: " + last(out));
            return null;
        }
        Set<String> twins = new LinkedHashSet<>();
        for (String name : out) if (selected.contains(PACKAGE + name.strip())) twins.add(PACKAGE + name.strip());
        if (twins.isEmpty()) return null;
        out.clear();
        if (BenchRun.exec(List.of(python, script.toString(), "--probe", "--threads", String.valueOf(threads())), out::add) != 0) {
            log.accept("torch reference skipped: " + python + " cannot run it: " + last(out));
            return null;
        }
        try {
            return new TorchRun(python, script, jar, twins, JSON.readTree(last(out)));
        } catch (JsonProcessingException e) {
            log.accept("torch reference skipped: " + script + " --probe printed no JSON: " + last(out));
            return null;
        } catch (IOException e) {
            throw new UncheckedIOException("creating a temporary folder for the torch reference: " + e.getMessage(), e);
        }
    }

    /** Our models, batches and logits for these configs, from the benchmarks jar's TorchReference. */
    void writeReferences(Collection<String> configs, Consumer<String> log) {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "-cp", jar.toString(), "io.hintgrpo.benchmarks.TorchReference", refs.toString()));
        cmd.addAll(configs);
        List<String> out = new ArrayList<>();
        if (BenchRun.exec(cmd, out::add) != 0) {
            out.forEach(log);
            throw new BenchRun.RunFailed("torch reference: TorchReference could not write our model and logits for " + configs + ": " + last(out));
        }
    }

    /** Starts the torch process of one block; it checks its logits, then waits for {@link Block#round()}. */
    Block start(String config, List<String> benchmarks, int rounds, Timing t, Consumer<String> log) {
        List<String> cmd = new ArrayList<>(List.of(python, script.toString(), refs.resolve(config).toString(),
                "--bench", String.join(",", benchmarks.stream().map(b -> b.substring(PACKAGE.length())).toList()),
                "--warmup", String.valueOf(t.warmup()), "--iterations", String.valueOf(t.iterations()),
                "--time", String.valueOf(t.time()), "--rounds", String.valueOf(rounds), "--paired",
                "--threads", String.valueOf(threads())));
        try {
            running = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        } catch (IOException e) {
            throw new BenchRun.RunFailed("torch reference: cannot start " + python + ": " + e.getMessage());
        }
        return new Block(config, running, log);
    }

    /** One block's torch process: the check, then one round per call, in step with our JMH run. */
    final class Block {
        private final String config;
        private final Process p;
        private final BufferedReader out;
        private final Consumer<String> log;
        private final List<String> lines = new ArrayList<>();
        private int rounds;

        private Block(String config, Process p, Consumer<String> log) {
            this.config = config;
            this.p = p;
            this.out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
            this.log = log;
        }

        /** Times one round (the first after the logits check); the results go into {@link #scores}. */
        void round() {
            try {
                if (rounds > 0) {   // the script waits for a line before each round after the first
                    OutputStream in = p.getOutputStream();
                    in.write('\n');
                    in.flush();
                }
                for (String line; (line = out.readLine()) != null; ) {
                    if (!line.startsWith("{")) {
                        lines.add(line);
                        log.accept(line);
                        continue;
                    }
                    JsonNode msg = JSON.readTree(line);
                    if (msg.has("check")) checks.put(config, msg.get("check"));
                    if (msg.has("round")) {
                        record(msg.get("results"));
                        rounds++;
                        return;
                    }
                }
                int code = p.waitFor();
                throw new BenchRun.RunFailed("torch reference (config " + config + ") exited with code " + code
                        + " before its round " + (rounds + 1) + ": " + last(lines));
            } catch (IOException e) {
                throw new BenchRun.RunFailed("torch reference (config " + config + "): " + e.getMessage());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new BenchRun.RunFailed("interrupted while waiting for the torch reference");
            }
        }

        private void record(JsonNode results) {
            for (JsonNode r : results) {
                String name = PACKAGE + r.get("benchmark").asText(), params = "config=" + config;
                List<Double> iters = new ArrayList<>();
                r.get("scores").forEach(s -> iters.add(s.asDouble()));
                scores.computeIfAbsent(name + " " + params,
                        k -> new Score(name, params, r.get("mode").asText(), r.get("unit").asText(), new ArrayList<>())).rounds().add(iters);
            }
        }

        /** Closes stdin (no more rounds) and waits for the process to end. */
        void finish() {
            try {
                p.getOutputStream().close();
                for (String line; (line = out.readLine()) != null; ) log.accept(line);
                int code = p.waitFor();
                if (code != 0) throw new BenchRun.RunFailed("torch reference (config " + config + ") exited with code " + code);
            } catch (IOException e) {
                throw new BenchRun.RunFailed("torch reference (config " + config + "): " + e.getMessage());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new BenchRun.RunFailed("interrupted while waiting for the torch reference");
            } finally {
                running = null;
            }
        }
    }

    /**
     * Ours over torch in each pair of this entry: our fork i against the mean of the torch rounds
     * right before and after it (as speeds: above 1, ours is faster); empty where nothing was paired.
     */
    List<Double> pairRatios(BenchCompare.Result mine) {
        Score s = scores.get(mine.key());
        List<Double> o = ours.getOrDefault(mine.key(), List.of()), out = new ArrayList<>();
        if (s == null) return out;
        for (int i = 0; i < o.size(); i++)
            out.add(BenchCompare.speedRatio(new BenchCompare.Result(mine.benchmark(), mine.params(), mine.mode(), o.get(i), 0, mine.unit()),
                    new BenchCompare.Result(s.benchmark(), s.params(), s.mode(), s.pairScore(i), 0, s.unit())));
        return out;
    }

    /** The median (the mean of the middle two for an even count); NaN for none. */
    static double median(List<Double> values) {
        if (values.isEmpty()) return Double.NaN;
        List<Double> v = values.stream().sorted().toList();
        int n = v.size();
        return n % 2 == 1 ? v.get(n / 2) : (v.get(n / 2 - 1) + v.get(n / 2)) / 2;
    }

    /** torch-result.json: what ran, the logits checks, and per JMH entry the torch rounds, each pair and ours/torch. */
    String json(Map<String, BenchCompare.Result> results, String pairing) {
        ObjectNode root = JSON.createObjectNode();
        root.set("torch", probe);
        root.put("pairing", pairing);
        ObjectNode c = root.putObject("checks");
        checks.forEach(c::set);
        ArrayNode rs = root.putArray("results");
        for (Score s : scores.values()) {
            ObjectNode o = rs.addObject();
            o.put("benchmark", s.benchmark());
            o.put("params", s.params());
            o.put("mode", s.mode());
            o.put("unit", s.unit());
            o.put("score", s.score());
            ArrayNode rounds = o.putArray("rounds");
            for (List<Double> r : s.rounds()) r.forEach(rounds.addArray()::add);
            BenchCompare.Result mine = results.get(s.benchmark() + " " + s.params());
            if (mine != null) {
                o.put("ours", mine.score());
                List<Double> ratios = pairRatios(mine), mineByPair = ours.getOrDefault(mine.key(), List.of());
                o.put("oursPerTorch", median(ratios));
                ArrayNode pairs = o.putArray("pairs");
                for (int i = 0; i < ratios.size(); i++)
                    pairs.addObject().put("ours", mineByPair.get(i)).put("torch", s.pairScore(i)).put("oursPerTorch", ratios.get(i));
            }
        }
        try {
            return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** One line for results.md: torch, threads, BLAS, the tuning, and the logits checks. */
    String describe() {
        StringBuilder sb = new StringBuilder("Torch reference: torch " + probe.path("torch").asText("?") + " (" + python + "), "
                + probe.path("threads").asText("?") + " threads, BLAS " + probe.path("blas").asText("?"));
        probe.path("env").fields().forEachRemaining(e -> sb.append(", ").append(e.getKey()).append('=').append(e.getValue().asText()));
        sb.append("; logits check ‖torch − ours‖/‖ours‖ ≤ 1e-4:");
        checks.forEach((cfg, ch) -> sb.append(String.format(Locale.ROOT, " %s %.1e", cfg, ch.path("rel_l2").asDouble())));
        return sb.append('.').toString();
    }

    @Override
    public void close() {
        if (running != null) running.destroyForcibly();
        try {
            AtomicFiles.deleteTree(refs);
        } catch (IOException e) {
            // a leftover temporary folder is harmless
        }
    }

    /** Threads for torch: as many as our Parallel uses by default, one per available core. */
    static int threads() {
        return Runtime.getRuntime().availableProcessors();
    }

    /** The system property, else scripts/torch_cpu_bench.py in a folder above the jar, else under the working directory. */
    static Path findScript(Path jar) {
        String prop = System.getProperty(SCRIPT_PROPERTY);
        if (prop != null && !prop.isBlank()) return Files.isRegularFile(Path.of(prop)) ? Path.of(prop) : null;
        for (Path dir = jar.toAbsolutePath().getParent(); dir != null; dir = dir.getParent()) {
            Path s = dir.resolve("scripts").resolve(SCRIPT);
            if (Files.isRegularFile(s)) return s;
        }
        Path s = Path.of("scripts", SCRIPT).toAbsolutePath();
        return Files.isRegularFile(s) ? s : null;
    }

    private static String last(List<String> lines) {
        for (int i = lines.size() - 1; i >= 0; i--) if (!lines.get(i).isBlank()) return lines.get(i).strip();
        return "(no output)";
    }
}
