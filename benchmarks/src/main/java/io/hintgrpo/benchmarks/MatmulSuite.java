package io.hintgrpo.benchmarks;

import ai.onnxruntime.OrtEnvironment;
import org.openjdk.jmh.results.IterationResult;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;
import org.openjdk.jmh.runner.options.VerboseMode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs {@link MatmulBench} (ours and ORT back to back, shape by shape, so that load from other
 * processes hits both alike) and prints a markdown table of GFLOP/s and the ratio ours/ORT.
 *
 * <pre>
 * java -cp benchmarks/target/benchmarks.jar io.hintgrpo.benchmarks.MatmulSuite [--quick] [--fast] [LAYOUT:m:n:k ...]
 * </pre>
 * --quick: 2 warmup + 3 measured iterations of 0.5 s (about 4 minutes for all shapes); default 3 + 5 of 1 s.
 * --fast: run the shapes in this JVM without forks, warmups shortened (a smoke test, numbers rough).
 */
public final class MatmulSuite {
    private MatmulSuite() {}

    /** Label → shape; the same list as MatmulBench.Data's @Param. */
    static final Map<String, String> SHAPES = new LinkedHashMap<>();

    static {
        SHAPES.put("square 512", "NN:512:512:512");
        SHAPES.put("square 1024", "NN:1024:1024:1024");
        SHAPES.put("square 2048", "NN:2048:2048:2048");
        // (a) embedded default: hidden 256, 4 heads / 2 KV (head dim 64), intermediate 704, vocab 2048, m = 8×128
        SHAPES.put("tiny qkv", "NT:1024:512:256");
        SHAPES.put("tiny o", "NT:1024:256:256");
        SHAPES.put("tiny gate_up", "NT:1024:1408:256");
        SHAPES.put("tiny down", "NT:1024:256:704");
        SHAPES.put("tiny lm head", "NT:1024:2048:256");
        SHAPES.put("tiny gate_up dX", "NN:1024:256:1408");
        SHAPES.put("tiny down dX", "NN:1024:704:256");
        SHAPES.put("tiny gate_up dW", "TN:1408:256:1024");
        SHAPES.put("tiny down dW", "TN:256:704:1024");
        // (b) ~25M: hidden 512, 8 heads / 4 KV (head dim 64), intermediate 1408, vocab 8192, m = 1024
        SHAPES.put("25M qkv", "NT:1024:1024:512");
        SHAPES.put("25M o", "NT:1024:512:512");
        SHAPES.put("25M gate_up", "NT:1024:2816:512");
        SHAPES.put("25M down", "NT:1024:512:1408");
        SHAPES.put("25M lm head", "NT:1024:8192:512");
        SHAPES.put("25M gate_up dX", "NN:1024:512:2816");
        SHAPES.put("25M down dX", "NN:1024:1408:512");
        SHAPES.put("25M gate_up dW", "TN:2816:512:1024");
        SHAPES.put("25M down dW", "TN:512:1408:1024");
        // decode: a few rows at a time through the same weights
        SHAPES.put("tiny gate_up, decode 1", "NT:1:1408:256");
        SHAPES.put("tiny lm head, decode 8", "NT:8:2048:256");
        SHAPES.put("25M gate_up, decode 8", "NT:8:2816:512");
        SHAPES.put("25M lm head, decode 1", "NT:1:8192:512");
    }

    public static void main(String[] args) throws RunnerException {
        boolean quick = false, fast = false;
        List<String> shapes = new ArrayList<>();
        for (String a : args) {
            switch (a) {
                case "--quick" -> quick = true;
                case "--fast" -> fast = true;
                default -> shapes.add(a);
            }
        }
        if (shapes.isEmpty()) shapes.addAll(SHAPES.values());

        String loadBefore = loadAverage();
        StringBuilder table = new StringBuilder();
        table.append("| shape | layout m×n×k | ours GFLOP/s | ORT GFLOP/s | ours/ORT | ours/ORT (best iterations) |\n");
        table.append("|---|---|---:|---:|---:|---:|\n");
        for (String shape : shapes) {
            ChainedOptionsBuilder opts = new OptionsBuilder()
                    .include(MatmulBench.class.getName() + "\\.(ours|ort)$")
                    .param("shape", shape)
                    .verbosity(VerboseMode.SILENT);
            if (quick || fast)
                opts.warmupIterations(2).warmupTime(TimeValue.milliseconds(500))
                        .measurementIterations(3).measurementTime(TimeValue.milliseconds(500));
            if (fast) opts.forks(0);
            double[] mean = new double[2], best = new double[2]; // µs/op, [ours, ort]
            for (RunResult r : new Runner(opts.build()).run()) {
                int i = r.getParams().getBenchmark().endsWith(".ours") ? 0 : 1;
                mean[i] = r.getPrimaryResult().getScore();
                best[i] = Double.MAX_VALUE;
                for (IterationResult it : r.getBenchmarkResults().iterator().next().getIterationResults())
                    best[i] = Math.min(best[i], it.getPrimaryResult().getScore());
            }
            String[] f = shape.split(":");
            double flop = 2.0 * Long.parseLong(f[1]) * Long.parseLong(f[2]) * Long.parseLong(f[3]);
            double ours = flop / mean[0] / 1e3, ort = flop / mean[1] / 1e3; // flop / µs / 1e3 = GFLOP/s
            String label = SHAPES.entrySet().stream().filter(e -> e.getValue().equals(shape))
                    .map(Map.Entry::getKey).findFirst().orElse("");
            String row = String.format("| %s | %s %s×%s×%s | %.1f | %.1f | %.2f | %.2f |%n",
                    label, f[0], f[1], f[2], f[3], ours, ort, ours / ort, best[1] / best[0]);
            System.err.print(row); // progress
            table.append(row);
        }
        System.out.println();
        System.out.printf("%s; %s; %d cores; JDK %s; ONNX Runtime %s; load average %s before, %s after%n%n",
                ZonedDateTime.now(ZoneOffset.UTC).format(DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm 'UTC'")), cpuModel(),
                Runtime.getRuntime().availableProcessors(), System.getProperty("java.vm.version"),
                OrtEnvironment.getEnvironment().getVersion(), loadBefore, loadAverage());
        System.out.print(table);
    }

    /** The 1-minute load average (other processes share this machine: numbers under load are low). */
    private static String loadAverage() {
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
