package io.hintgrpo.trainer.cli;

import io.hintgrpo.engine.Backends;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.trainer.config.Configs;
import io.hintgrpo.trainer.demo.Demo;
import io.hintgrpo.trainer.rl.GrpoConfig;
import io.hintgrpo.trainer.sft.SftConfig;
import io.hintgrpo.trainer.sft.StopSignal;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code hintgrpo demo}: the main job on the embedded default (corpus → SFT → evaluation → report). */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Makes the embedded corpus, trains the embedded default model by cold-start SFT and then Hint-GRPO, "
                + "evaluates both in-domain and cross-domain (with and without audio and vision) and writes report.md / report.json. "
                + "Re-running with the same --out resumes from the last checkpoint.")
final class DemoCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = "--out", defaultValue = "demo-out", description = "Output folder (default: ${DEFAULT-VALUE}).")
    Path out;

    @Option(names = "--backend", defaultValue = "auto", description = "auto | cpu | cuda | cuda-emu (default: ${DEFAULT-VALUE}).")
    String backend;

    @Option(names = "--config", description = "JSON or YAML file; its \"sft\" and \"grpo\" sections override those settings.")
    Path config;

    @Option(names = "--seed", description = "Corpus and initialisation seed.")
    Long seed;

    @Option(names = "--steps", description = "SFT optimizer steps.")
    Integer steps;

    @Option(names = "--grpo-steps", description = "Hint-GRPO steps after SFT (0 = SFT only).")
    Integer grpoSteps;

    @Option(names = "--test-limit", description = "Test utterances per domain to evaluate.")
    Integer testLimit;

    @Override
    public Integer call() throws Exception {
        Demo.Settings d = Demo.Settings.defaults();
        Map<String, Object> flags = new LinkedHashMap<>();
        flags.put("steps", steps);
        SftConfig sft = Configs.merge(SftConfig.class, d.sft(), config == null ? null : Configs.read(config, "sft"), flags,
                config == null ? "flags" : config.toString());
        Map<String, Object> grpoFlags = new LinkedHashMap<>();
        grpoFlags.put("steps", grpoSteps);
        GrpoConfig grpo = Configs.merge(GrpoConfig.class, d.grpo(), config == null ? null : Configs.read(config, "grpo"), grpoFlags,
                config == null ? "flags" : config.toString());
        Demo.Settings s = new Demo.Settings(seed == null ? d.seed() : seed, d.corpusSize(), d.trainDomain(), sft,
                grpoSteps != null && grpoSteps == 0 ? null : grpo, d.evalSamples(),
                testLimit == null ? d.testLimit() : testLimit);
        Files.createDirectories(out);
        Files.writeString(out.resolve("run_config.json"), Configs.toJson(s));
        StopSignal.install();
        long start = System.nanoTime();
        try (Kernels kernels = Backends.open(backend)) {
            Demo.Result r = Demo.run(kernels, out, s, msg -> System.err.println("hintgrpo: " + msg), StopSignal::requested);
            if (r.reportMarkdown() == null) return 0; // stopped by a signal after writing a checkpoint
            spec.commandLine().getOut().println(Files.readString(r.reportMarkdown()));
            spec.commandLine().getOut().printf("demo finished in %.1f min; report: %s%n", (System.nanoTime() - start) / 6e10, r.reportMarkdown());
        }
        return 0;
    }
}
