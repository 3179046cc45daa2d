package io.hintgrpo.benchmarks;

import ai.onnxruntime.OrtEnvironment;
import io.hintgrpo.engine.cpu.CpuGemm;
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
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The matmul suite: our gemm against ONNX Runtime on {@link #SHAPES}, printed as a markdown table
 * of GFLOP/s and ours/ORT.
 *
 * <pre>
 * java -cp benchmarks/target/benchmarks.jar io.hintgrpo.benchmarks.MatmulSuite [--jmh [--quick]] [LAYOUT:m:n:k ...]
 * </pre>
 *
 * Default (about 3 minutes): paired rounds in this JVM — per shape, rounds of ~0.1 s of ours and
 * ~0.1 s of ORT, alternating which goes first; the table gives the medians and the median of the
 * per-round ratios. Load from other processes hits both sides of a round alike, so the ratio stays
 * usable on a shared machine where absolute numbers do not.
 *
 * <p>--jmh: {@link MatmulBench} through JMH, one fork per (implementation, shape), ours and ORT
 * back to back (3 + 5 iterations of 1 s; --quick: 2 + 3 of 0.5 s); the ratio column is then
 * from the means and from the best iterations.
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

    public static void main(String[] args) throws Exception {
        boolean jmh = false, quick = false;
        List<String> shapes = new ArrayList<>();
        for (String a : args) {
            switch (a) {
                case "--jmh" -> jmh = true;
                case "--quick" -> quick = true;
                default -> shapes.add(a);
            }
        }
        if (shapes.isEmpty()) shapes.addAll(SHAPES.values());
        if (!jmh && ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) { // paired rounds run here: relaunch with it
            List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "--add-modules", "jdk.incubator.vector", "-cp", System.getProperty("java.class.path"), MatmulSuite.class.getName()));
            cmd.addAll(List.of(args));
            System.exit(new ProcessBuilder(cmd).inheritIO().start().waitFor());
        }

        String loadBefore = loadAverage();
        StringBuilder table = new StringBuilder();
        table.append(jmh
                ? "| shape | layout m×n×k | ours GFLOP/s | ORT GFLOP/s | ours/ORT | ours/ORT (best iterations) |\n|---|---|---:|---:|---:|---:|\n"
                : "| shape | layout m×n×k | ours GFLOP/s | ORT GFLOP/s | ours/ORT |\n|---|---|---:|---:|---:|\n");
        for (String shape : shapes) {
            String[] f = shape.split(":");
            String label = SHAPES.entrySet().stream().filter(e -> e.getValue().equals(shape))
                    .map(Map.Entry::getKey).findFirst().orElse("");
            String row = jmh ? jmhRow(shape, quick) : pairedRow(shape);
            row = String.format("| %s | %s %s×%s×%s %s%n", label, f[0], f[1], f[2], f[3], row);
            System.err.print(row); // progress
            table.append(row);
        }
        System.out.println();
        System.out.printf("%s; %s; %d cores; JDK %s; ONNX Runtime %s; %s; load average %s before, %s after%n%n",
                ZonedDateTime.now(ZoneOffset.UTC).format(DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm 'UTC'")), cpuModel(),
                Runtime.getRuntime().availableProcessors(), System.getProperty("java.vm.version"),
                OrtEnvironment.getEnvironment().getVersion(), jmh ? "JMH" + (quick ? " --quick" : "") : "paired rounds",
                loadBefore, loadAverage());
        System.out.print(table);
    }

    private static final int ROUNDS = 15;
    private static final long ROUND_NANOS = 100_000_000L;

    /** "| ours | ORT | ratio |" from paired rounds in this JVM (medians). */
    private static String pairedRow(String shape) throws Exception {
        MatmulBench.Data d = new MatmulBench.Data();
        d.shape = shape;
        d.setup();
        new MatmulBench.Ours().warm(d);
        MatmulBench.Ort ort = new MatmulBench.Ort();
        ort.setup(d);
        double flop = 2.0 * d.m * d.n * d.k;
        Op oursOp = () -> CpuGemm.gemm(d.layout, d.out, 0, d.a, 0, d.b, 0, null, 0, d.m, d.n, d.k, false);
        Op ortOp = () -> ort.session.run(ort.inputs, ort.outputs).close();
        rate(ortOp, flop, 500_000_000L); // ORT warm-up
        double[] ours = new double[ROUNDS], theirs = new double[ROUNDS], ratio = new double[ROUNDS];
        for (int r = 0; r < ROUNDS; r++) {
            if (r % 2 == 0) {
                ours[r] = rate(oursOp, flop, ROUND_NANOS);
                theirs[r] = rate(ortOp, flop, ROUND_NANOS);
            } else {
                theirs[r] = rate(ortOp, flop, ROUND_NANOS);
                ours[r] = rate(oursOp, flop, ROUND_NANOS);
            }
            ratio[r] = ours[r] / theirs[r];
        }
        ort.close();
        return String.format("| %.1f | %.1f | %.2f |", median(ours), median(theirs), median(ratio));
    }

    private interface Op {
        void run() throws Exception;
    }

    /** GFLOP/s of op over at least `nanos` of calls; then a short pause so that ORT's spinning workers go idle. */
    private static double rate(Op op, double flop, long nanos) throws Exception {
        long t0 = System.nanoTime(), t;
        int calls = 0;
        do {
            op.run();
            calls++;
        } while ((t = System.nanoTime()) - t0 < nanos);
        Thread.sleep(50);
        return flop * calls / (t - t0);
    }

    private static double median(double[] x) {
        double[] s = x.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    /** "| ours | ORT | ratio | ratio of best iterations |" from JMH forks. */
    private static String jmhRow(String shape, boolean quick) throws RunnerException {
        ChainedOptionsBuilder opts = new OptionsBuilder()
                .include(MatmulBench.class.getName() + "\\.(ours|ort)$")
                .param("shape", shape)
                .verbosity(VerboseMode.SILENT);
        if (quick)
            opts.warmupIterations(2).warmupTime(TimeValue.milliseconds(500))
                    .measurementIterations(3).measurementTime(TimeValue.milliseconds(500));
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
        return String.format("| %.1f | %.1f | %.2f | %.2f |", ours, ort, ours / ort, best[1] / best[0]);
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
