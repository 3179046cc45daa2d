package io.hintgrpo.trainer.cli;

import io.hintgrpo.trainer.bench.BenchCompare;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code hintgrpo bench}: benchmark results (JMH JSON) — compare two runs for the CI regression gate. */
@Command(name = "bench", mixinStandardHelpOptions = true, subcommands = BenchCommand.Compare.class,
        description = "Benchmark results: compare a run against a baseline.")
final class BenchCommand {
    /** Exit code when at least one benchmark regressed. */
    static final int EXIT_REGRESSION = 1;

    @Command(name = "compare", mixinStandardHelpOptions = true,
            description = {"Compares two JMH JSON result files (-rf json). Where both carry the in-run reference "
                    + "(ONNX Runtime: method 'ort'), compares speed relative to it, else raw scores.",
                    "Exit 0: no regression; 1: a regression beyond the threshold and the measured error; 2: bad input."})
    static final class Compare implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Parameters(index = "0", paramLabel = "BASELINE.json", description = "JMH results of the reference run.")
        Path baseline;

        @Parameters(index = "1", paramLabel = "CURRENT.json", description = "JMH results of the run under test.")
        Path current;

        @Option(names = "--threshold", defaultValue = "10%",
                description = "Smallest change that counts, as 10% or 0.1 (default: ${DEFAULT-VALUE}).")
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
}
