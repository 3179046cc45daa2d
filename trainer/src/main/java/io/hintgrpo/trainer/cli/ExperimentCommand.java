package io.hintgrpo.trainer.cli;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.Backends;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.trainer.demo.Demo;
import io.hintgrpo.trainer.experiment.Experiment;
import io.hintgrpo.trainer.rl.GrpoConfig;
import io.hintgrpo.trainer.sft.SftConfig;
import io.hintgrpo.trainer.loop.StopSignal;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code hintgrpo experiment}: SFT only vs GRPO vs dynamic sampling vs Hint-GRPO (replace, mix) where hints have work to do. */
@Command(name = "experiment", mixinStandardHelpOptions = true,
        description = {"Per corpus (the default synthetic corpus and the same corpus with a teacher blind spot) and per seed: an SFT "
                + "of the embedded default model from that seed, then for each reward plain GRPO, GRPO with DAPO dynamic sampling, "
                + "Hint-GRPO (replace) and Hint-GRPO (mix) at the same generation budget. Every policy is evaluated greedily on every "
                + "domain's whole test split; writes results.md (mean ± std over seeds per condition, hard subsets included, paired "
                + "differences to GRPO with 95 %% bootstrap intervals over seeds and test items), results.json and PNG curves into "
                + "--out. Finished runs are kept in --work: running again with the same flags resumes.",
                "--config: a \"sft\" and a \"grpo\" section override those settings (the grpo section is the base of every arm)."})
final class ExperimentCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = "--out", defaultValue = "docs/results/hint-regime", description = "Where the report and curves go (default: ${DEFAULT-VALUE}).")
    Path out;

    @Option(names = "--work", defaultValue = "experiment-runs", description = "Corpora, SFT and RL run folders (default: ${DEFAULT-VALUE}).")
    Path work;

    @Option(names = "--regimes", split = ",", defaultValue = "blind-spot/continuous,blind-spot/banded,default/continuous",
            description = "CORPUS/REWARD pairs: CORPUS blind-spot or default, REWARD continuous or banded (default: ${DEFAULT-VALUE}).")
    List<String> regimes;

    @Option(names = "--seeds", split = ",", defaultValue = "1,2,3,4,5", description = "Seeds: each its own SFT initialisation and order, "
            + "and its RL runs' seed (default: ${DEFAULT-VALUE}).")
    List<Long> seeds;

    @Option(names = "--sft-steps", defaultValue = "300", description = "SFT steps per seed (default: ${DEFAULT-VALUE}).")
    int sftSteps;

    @Option(names = "--budget", defaultValue = "1280", description = "Completions each RL run may generate (default: ${DEFAULT-VALUE}).")
    long budget;

    @Option(names = "--corpus-size", defaultValue = "2000", description = "Corpus size before the evaluation splits; 80 %% of it "
            + "trains (default: ${DEFAULT-VALUE}).")
    int corpusSize;

    @Option(names = "--eval-size", defaultValue = "1000", description = "Valid and test utterances per domain; 1000 gives about 250 "
            + "hard test items per domain (default: ${DEFAULT-VALUE}).")
    int evalSize;

    @Option(names = "--blind-spot", defaultValue = "1", description = "Share of the hard training chains the blind-spot corpus's "
            + "teacher gets wrong (default: ${DEFAULT-VALUE}).")
    double blindSpot;

    @Option(names = "--score-band", defaultValue = "0.5", description = "The banded reward's band: score term 1 when |ŷ − y| ≤ it, "
            + "else 0 (default: ${DEFAULT-VALUE}).")
    double scoreBand;

    @Option(names = "--max-new-tokens", defaultValue = "128", description = "Longest greedy response at evaluation (default: ${DEFAULT-VALUE}).")
    int maxNewTokens;

    @Option(names = "--bootstrap", defaultValue = "2000", description = "Bootstrap resamples per interval (default: ${DEFAULT-VALUE}).")
    int bootstrap;

    @Option(names = "--config", description = "JSON or YAML with \"sft\" / \"grpo\" sections.")
    Path config;

    @Option(names = "--backend", defaultValue = "auto", description = "auto | cpu | cuda | cuda-emu (default: ${DEFAULT-VALUE}).")
    String backend;

    @Option(names = "--seed", defaultValue = "1234", description = "Corpus seed (default: ${DEFAULT-VALUE}).")
    long corpusSeed;

    /** The GRPO base of the experiment: defaults, evaluated on 256 hard validation utterances every 5 steps (the curves). */
    static GrpoConfig experimentGrpo() {
        return GrpoConfig.defaults().with(Map.of("eval_every", 5, "eval_samples", 256, "checkpoint_every", 5));
    }

    @Override
    public Integer call() throws Exception {
        if (sftSteps < 1) throw new BadInputException("--sft-steps", "must be ≥ 1, got " + sftSteps);
        List<Experiment.Regime> parsed = regimes.stream().map(Experiment.Regime::parse).toList();
        SftConfig sftConfig = ConfigFile.section(config, "sft", SftConfig.defaults(), Map.of("steps", sftSteps));
        GrpoConfig base = ConfigFile.section(config, "grpo", experimentGrpo(), Map.of());
        Experiment.Settings s = new Experiment.Settings(corpusSeed, corpusSize, evalSize, blindSpot, Demo.Settings.defaults().trainDomain(),
                sftConfig, base, budget, seeds, parsed, scoreBand, maxNewTokens, bootstrap);
        s.corpusOptions(true); // the corpus flags are checked before any folder is made
        StopSignal.install();
        long start = System.nanoTime();
        try (Kernels kernels = Backends.open(backend)) {
            // the parse result of this subcommand still lists the whole command line, "experiment" included
            List<String> args = spec.commandLine().getParseResult().originalArgs();
            String command = "hintgrpo " + String.join(" ", args.isEmpty() || !args.get(0).equals("experiment") ? prepend(args) : args);
            Experiment.run(kernels, s, work, out, command.strip(), msg -> System.err.println("hintgrpo: " + msg), StopSignal::requested);
            if (StopSignal.requested()) return 0;
            spec.commandLine().getOut().printf("experiment finished in %.1f min; results in %s%n", (System.nanoTime() - start) / 6e10,
                    out.resolve("results.md"));
        }
        return 0;
    }

    private static List<String> prepend(List<String> args) {
        List<String> all = new java.util.ArrayList<>(List.of("experiment"));
        all.addAll(args);
        return all;
    }
}
