package io.hintgrpo.trainer.cli;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.Backends;
import io.hintgrpo.engine.Kernels;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.trainer.config.Settings;
import io.hintgrpo.trainer.data.AtomicFiles;
import io.hintgrpo.trainer.demo.Demo;
import io.hintgrpo.trainer.rl.GrpoConfig;
import io.hintgrpo.trainer.sft.SftConfig;
import io.hintgrpo.trainer.loop.RunLock;
import io.hintgrpo.trainer.loop.StopSignal;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
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

    @Option(names = "--config", description = "JSON or YAML file: this command's options at the top level or in a \"demo\" "
            + "section; \"sft\" and \"grpo\" sections override those settings (docs/config.md). The demo writes its effective "
            + "settings to --out/run_config.json in the same form.")
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
        if (steps != null && steps < 1) throw new BadInputException("--steps", "must be ≥ 1, got " + steps);
        if (grpoSteps != null && grpoSteps < 0) throw new BadInputException("--grpo-steps", "must be ≥ 0 (0 = SFT only), got " + grpoSteps);
        if (testLimit != null && testLimit < 1) throw new BadInputException("--test-limit", "must be ≥ 1, got " + testLimit);
        Demo.Settings d = Demo.Settings.defaults();
        SftConfig sft = ConfigFile.section(config, "sft", d.sft(), Collections.singletonMap("steps", steps));
        GrpoConfig grpo = ConfigFile.section(config, "grpo", d.grpo(), Collections.singletonMap("steps", grpoSteps == null || grpoSteps == 0 ? null : grpoSteps));
        Demo.Settings s = new Demo.Settings(seed == null ? d.seed() : seed, d.corpusSize(), d.trainDomain(), sft,
                grpoSteps != null && grpoSteps == 0 ? null : grpo, testLimit == null ? d.testLimit() : testLimit);
        try (RunLock lock = RunLock.acquire(out)) { // before anything is written; Demo.run takes it again
            return run(s);
        }
    }

    private int run(Demo.Settings s) throws Exception {
        // the effective settings, itself a valid --config of demo
        ObjectMapper json = new ObjectMapper();
        ObjectNode effective = json.createObjectNode();
        ObjectNode demo = effective.putObject("demo");
        demo.put("seed", s.seed());
        demo.put("test_limit", s.testLimit());
        if (s.grpo() == null) demo.put("grpo_steps", 0);
        effective.set("sft", Settings.flatten(s.sft()));
        if (s.grpo() != null) effective.set("grpo", Settings.flatten(s.grpo()));
        AtomicFiles.writeString(out.resolve("run_config.json"), json.writerWithDefaultPrettyPrinter().writeValueAsString(effective));
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
