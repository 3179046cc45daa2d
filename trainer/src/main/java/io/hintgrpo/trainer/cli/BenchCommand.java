package io.hintgrpo.trainer.cli;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.Backends;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.trainer.data.Jsonl;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.serve.LoadBench;
import io.hintgrpo.trainer.tokenizer.Tokenizer;
import io.hintgrpo.trainer.bench.BenchCompare;
import io.hintgrpo.trainer.bench.BenchRun;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code hintgrpo bench}: runs the JMH suite (benchmarks.jar in a child JVM) and writes its JSON
 * and a markdown table; {@code bench compare} compares two runs for the CI regression gate.
 */
@Command(name = "bench", mixinStandardHelpOptions = true, subcommands = {BenchCommand.Compare.class, BenchCommand.Serve.class},
        description = {"Runs the JMH benchmarks (benchmarks.jar) and writes " + BenchRun.JSON + " (JMH JSON) and "
                + BenchRun.MARKDOWN + " (score ± error, ratio to the in-run reference and to the PyTorch twin) into --out.",
                "Exit 0: done; 1: a benchmark failed or left no result; 2: bad input (filter, jar, params).",
                "'bench compare' compares two result files; 'bench serve' puts hintgrpo serve under load."})
final class BenchCommand implements Callable<Integer> {
    /** Exit code when at least one benchmark regressed (compare). */
    static final int EXIT_REGRESSION = 1;
    /** Exit code when the run failed: a benchmark threw or left no result. */
    static final int EXIT_RUN_FAILED = 1;

    @Spec
    CommandSpec spec;

    @Option(names = "--quick", description = "1 fork, each class's own warm-up, 6 measurement iterations of 500 ms (the suite with its torch twins: ~16 min on 2 cores).")
    boolean quick;

    @Option(names = "--smoke", description = "Each benchmark once at its smallest params, one 100 ms iteration: checks the suite runs (CI); numbers mean nothing.")
    boolean smoke;

    @Option(names = "--filter", paramLabel = "REGEX", defaultValue = BenchRun.ALL,
            description = "Benchmarks whose full name contains a match (JMH include), e.g. 'ForwardBench|DecodeBench' (default: all).")
    String filter;

    @Option(names = "--param", paramLabel = "NAME=V[,V…]", description = "JMH -p, repeatable: e.g. --param config=25m.")
    List<String> params = new ArrayList<>();

    @Option(names = "--no-torch", description = "JMH only: no PyTorch reference (by default it runs where /usr/bin/python3 has torch).")
    boolean noTorch;

    @Option(names = "--pairs", paramLabel = "N", defaultValue = "1",
            description = "Benchmarks with a torch twin: N of our forks alternating with N + 1 torch rounds per class and config; "
                    + "ours/torch is the median of the pairs' ratios, with their range (default: ${DEFAULT-VALUE}; up to " + BenchRun.MAX_PAIRS + ").")
    int pairs;

    @Option(names = "--out", paramLabel = "DIR", defaultValue = "bench-results", description = "Output folder (default: ${DEFAULT-VALUE}).")
    Path out;

    @Option(names = "--jar", paramLabel = "FILE",
            description = "benchmarks.jar (default: -D" + BenchRun.JAR_PROPERTY + ", else next to the hintgrpo jar or benchmarks/target/).")
    Path jar;

    @Override
    public Integer call() {
        PrintWriter o = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        if (quick && smoke) throw new BadInputException("--quick/--smoke", "choose one");
        BenchRun.Mode mode = smoke ? BenchRun.Mode.SMOKE : quick ? BenchRun.Mode.QUICK : BenchRun.Mode.FULL;
        String regex = BenchRun.checkFilter(filter);
        params.forEach(BenchRun::checkParam);
        Path jarFile = BenchRun.findJar(jar);
        try {
            BenchRun.Outcome r = BenchRun.run(jarFile, mode, regex, params, out, o, !noTorch, pairs);
            o.println();
            o.print(BenchRun.markdown(r.results(), r.oursPerTorch()));
            o.println("wrote " + r.json() + (r.oursPerTorch().isEmpty() ? "" : ", " + r.json().resolveSibling(BenchRun.TORCH_JSON)) + " and " + r.markdown());
            o.flush();
            return 0;
        } catch (BenchRun.RunFailed e) {
            err.println("hintgrpo: error: bench: " + e.getMessage());
            return EXIT_RUN_FAILED;
        }
    }

    @Command(name = "compare", mixinStandardHelpOptions = true,
            description = {"Compares two JMH JSON result files (-rf json). Where both carry the in-run reference "
                    + "(ONNX Runtime: method 'ort'), compares speed relative to it; else, where both runs have torch-result.json beside them, "
                    + "speed relative to the PyTorch twin; else raw scores.",
                    "Exit 0: no regression; 1: a regression beyond the threshold and the measured error; 2: bad input."})
    static final class Compare implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Parameters(index = "0", paramLabel = "BASELINE.json", description = "JMH results of the reference run.")
        Path baseline;

        @Parameters(index = "1", paramLabel = "CURRENT.json", description = "JMH results of the run under test.")
        Path current;

        @Option(names = "--threshold", defaultValue = "10%",
                description = "Smallest change that counts, as 10%% or 0.1 (default: ${DEFAULT-VALUE}).")
        String threshold;

        @Override
        public Integer call() {
            double t = BenchCompare.parseThreshold(threshold);
            BenchCompare.Report report = BenchCompare.compare(baseline, current, t);
            spec.commandLine().getOut().print(BenchCompare.format(report));
            spec.commandLine().getOut().flush();
            return report.hasRegression() ? EXIT_REGRESSION : 0;
        }
    }

    @Command(name = "serve", mixinStandardHelpOptions = true,
            description = {"Load benchmark of hintgrpo serve on loopback: for each client count, concurrent clients send greedy requests "
                    + "for the utterances of --data until all are answered (requests/s, completion tokens/s, p50/p99 latency); then generate "
                    + "runs the same utterances as the in-run reference, and every answer is checked against it. Prints a markdown table."})
    static final class Serve implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Option(names = "--model", required = true, description = "Model directory with tokenizer.json.")
        Path model;

        @Option(names = "--data", required = true, description = "JSONL of utterances (the corpus format, label optional).")
        Path data;

        @Option(names = "--clients", defaultValue = "1,8,32", split = ",", description = "Concurrent clients per run (default: ${DEFAULT-VALUE}).")
        int[] clients;

        @Option(names = "--requests", defaultValue = "64", description = "Utterances sent per run, the first of --data (default: ${DEFAULT-VALUE}).")
        int requests;

        @Option(names = "--max-tokens", defaultValue = "128", description = "Tokens per answer at most (default: ${DEFAULT-VALUE}).")
        int maxTokens;

        @Option(names = "--batch-size", defaultValue = "8", description = "Rows per decode batch, and generate's batch (default: ${DEFAULT-VALUE}).")
        int batchSize;

        @Option(names = "--backend", defaultValue = "auto", description = "auto | cpu | cuda | cuda-emu (default: ${DEFAULT-VALUE}).")
        String backend;

        @Override
        public Integer call() throws IOException, InterruptedException {
            for (int c : clients) if (c < 1) throw new BadInputException("--clients", "each must be ≥ 1, got " + c);
            if (requests < 1) throw new BadInputException("--requests", "must be ≥ 1, got " + requests);
            if (maxTokens < 1) throw new BadInputException("--max-tokens", "must be ≥ 1, got " + maxTokens);
            if (batchSize < 1) throw new BadInputException("--batch-size", "must be ≥ 1, got " + batchSize);
            PrintWriter o = spec.commandLine().getOut();
            try (Kernels kernels = Backends.open(backend);
                 Model m = ModelDir.load(kernels, model, 0, msg -> System.err.println("hintgrpo: " + msg));
                 Tokenizer tok = Tokenizer.load(model)) {
                List<Utterance> utterances = new ArrayList<>();
                for (Jsonl.Record r : Jsonl.readPrompts(data, Jsonl.Expect.of(m.config)))
                    if (utterances.size() < requests) utterances.add(r.utterance());
                if (utterances.isEmpty()) throw new BadInputException(data.toString(), "no utterances");
                LoadBench.Result r = LoadBench.run(m, tok, utterances, clients, batchSize,
                        maxTokens, msg -> System.err.println("hintgrpo: bench serve: " + msg));
                o.printf("hintgrpo serve on %s, %s, batch %d, %d utterances of %s, greedy, ≤ %d tokens each%n%n", kernels.name(),
                        model.getFileName(), batchSize, utterances.size(), data.getFileName(), maxTokens);
                o.print(LoadBench.markdown(r));
                o.flush();
            }
            return 0;
        }
    }
}
