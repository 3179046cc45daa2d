package io.hintgrpo.trainer.cli;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.Backends;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.trainer.data.SynthCorpus;
import io.hintgrpo.trainer.demo.Demo;
import io.hintgrpo.trainer.experiment.Experiment;
import io.hintgrpo.trainer.rl.GrpoConfig;
import io.hintgrpo.trainer.sft.SftConfig;
import io.hintgrpo.trainer.data.AtomicFiles;
import io.hintgrpo.trainer.loop.RunLock;
import io.hintgrpo.trainer.loop.StopSignal;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code hintgrpo experiment}: SFT only vs GRPO vs GRPO + dynamic sampling vs Hint-GRPO on the embedded default. */
@Command(name = "experiment", mixinStandardHelpOptions = true,
        description = {"From one SFT checkpoint of the embedded default (trained here unless --sft is given), runs plain GRPO, "
                + "GRPO with DAPO dynamic sampling and Hint-GRPO for each seed with the same generation budget, evaluates every "
                + "run in-domain, cross-domain and with audio and vision dropped, and writes results.md (mean ± std over seeds), "
                + "results.json and PNG curves into --out. Re-running with the same --work resumes.",
                "--config: a \"sft\" and a \"grpo\" section override those settings (the grpo section is the base of every arm)."})
final class ExperimentCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = "--out", defaultValue = "docs/results", description = "Where the table and curves go (default: ${DEFAULT-VALUE}).")
    Path out;

    @Option(names = "--work", defaultValue = "experiment-runs", description = "Corpus, SFT and RL run folders (default: ${DEFAULT-VALUE}).")
    Path work;

    @Option(names = "--sft", description = "Start from this SFT model directory (and its corpus in --corpus) instead of training one.")
    Path sft;

    @Option(names = "--corpus", description = "Corpus folder for --sft (default: --work/corpus).")
    Path corpus;

    @Option(names = "--sft-steps", defaultValue = "120",
            description = "SFT steps when training the checkpoint here; short on purpose, so the policy still makes polarity "
                    + "mistakes for RL to fix (default: ${DEFAULT-VALUE}).")
    int sftSteps;

    @Option(names = "--seeds", split = ",", defaultValue = "1,2,3", description = "RL seeds (default: ${DEFAULT-VALUE}).")
    List<Long> seeds;

    @Option(names = "--budget", defaultValue = "1280", description = "Completions each RL run may generate (default: ${DEFAULT-VALUE}).")
    long budget;

    @Option(names = "--test-limit", defaultValue = "100", description = "Test utterances per domain (default: ${DEFAULT-VALUE}).")
    int testLimit;

    @Option(names = "--config", description = "JSON or YAML with \"sft\" / \"grpo\" sections.")
    Path config;

    @Option(names = "--backend", defaultValue = "auto", description = "auto | cpu | cuda | cuda-emu (default: ${DEFAULT-VALUE}).")
    String backend;

    @Option(names = "--seed", defaultValue = "1234", description = "Corpus and SFT initialisation seed (default: ${DEFAULT-VALUE}).")
    long corpusSeed;

    @Override
    public Integer call() throws Exception {
        if (seeds.isEmpty()) throw new BadInputException("--seeds", "at least one seed");
        if (budget < 1) throw new BadInputException("--budget", "must be ≥ 1, got " + budget);
        if (testLimit < 1) throw new BadInputException("--test-limit", "must be ≥ 1, got " + testLimit);
        if (sftSteps < 1) throw new BadInputException("--sft-steps", "must be ≥ 1, got " + sftSteps);
        SftConfig sftConfig = ConfigFile.section(config, "sft", SftConfig.defaults(), Map.of("steps", sftSteps));
        GrpoConfig base = ConfigFile.section(config, "grpo", GrpoConfig.defaults(), Map.of());
        String domain = Demo.Settings.defaults().trainDomain();
        StopSignal.install();
        long start = System.nanoTime();
        AtomicFiles.probeFolder(out);
        try (RunLock lock = RunLock.acquire(work); Kernels kernels = Backends.open(backend)) { // Experiment.run takes it again
            Path sftModel = sft, corpusDir = corpus;
            if (sftModel == null) {
                Demo.Prepared p = Demo.prepare(kernels, work, corpusSeed, Demo.Settings.defaults().corpusSize(), domain, sftConfig,
                        msg -> System.err.println("hintgrpo: " + msg), StopSignal::requested);
                if (p.sft().training().stoppedBySignal()) return 0;
                sftModel = p.sft().modelDir();
                corpusDir = p.corpus();
            } else if (corpusDir == null) {
                corpusDir = work.resolve("corpus");
            }
            if (!Files.exists(corpusDir.resolve(SynthCorpus.MANIFEST_FILE)))
                throw new BadInputException(corpusDir.toString(), "not a corpus folder (no " + SynthCorpus.MANIFEST_FILE + "); pass --corpus");
            Map<String, Path> tests = new LinkedHashMap<>();
            for (String d : SynthCorpus.domains()) tests.put(d, SynthCorpus.splitFile(corpusDir, d, "test"));
            Experiment.Settings s = new Experiment.Settings(sftModel, SynthCorpus.splitFile(corpusDir, domain, "train"),
                    SynthCorpus.splitFile(corpusDir, domain, "valid"), tests, domain, base, budget, seeds, testLimit);
            // the parse result of this subcommand still lists the whole command line, "experiment" included
            List<String> args = spec.commandLine().getParseResult().originalArgs();
            String command = "hintgrpo " + String.join(" ", args.isEmpty() || !args.get(0).equals("experiment") ? prepend(args) : args);
            Experiment.run(kernels, s, work, out, command.strip(), msg -> System.err.println("hintgrpo: " + msg), StopSignal::requested);
            if (StopSignal.requested()) return 0;
            spec.commandLine().getOut().println(Files.readString(out.resolve("results.md")));
            spec.commandLine().getOut().printf("experiment finished in %.1f min; results in %s%n", (System.nanoTime() - start) / 6e10, out);
        }
        return 0;
    }

    private static List<String> prepend(List<String> args) {
        List<String> all = new java.util.ArrayList<>(List.of("experiment"));
        all.addAll(args);
        return all;
    }
}
