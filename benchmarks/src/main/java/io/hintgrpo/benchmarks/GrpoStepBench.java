package io.hintgrpo.benchmarks;

import io.hintgrpo.engine.model.AdamW;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.Sequence;
import io.hintgrpo.trainer.rl.GrpoConfig;
import io.hintgrpo.trainer.rl.GrpoObjective;
import io.hintgrpo.trainer.rl.PolicyUpdate;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * The update half of a GRPO step on the cpu backend through the trainer's public API
 * ({@link PolicyUpdate#apply}) with the default settings (β 0.04, so the reference model's
 * forward is in; one minibatch, one pass): 2 prompts × G 4 rollouts of 64 prompt and 64 completion
 * tokens (the 8 × 128 positions of {@link TrainStepBench}, whose plain SFT step is the yardstick),
 * advantages ±1 within each group. Throughput in positions/s.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 4)
@Measurement(iterations = 3, time = 6)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx6g"})
public class GrpoStepBench {
    static final int PROMPTS = 2, G = 4, PROMPT = 64, COMPLETION = 64, POSITIONS = PROMPTS * G * (PROMPT + COMPLETION);

    @State(Scope.Benchmark)
    public static class Update {
        /** "embedded" or "25m" (see {@link BenchModels#config}). */
        @Param({"embedded", "25m"})
        public String config;

        Model policy, reference;
        AdamW opt;
        GrpoConfig cfg;
        List<PolicyUpdate.Row> rows;

        @Setup(Level.Trial)
        public void setUp() {
            policy = BenchModels.cpuModel(config);
            reference = BenchModels.cpuModel(config);
            cfg = GrpoConfig.defaults().with(Map.of("group_size", G, "prompts_per_step", PROMPTS, "max_completion_tokens", COMPLETION));
            opt = cfg.optimizer().adamw(policy);
            SplittableRandom rng = new SplittableRandom(3);
            int textVocab = policy.config.hasAudio() ? Math.min(policy.config.audioTokenId(), policy.config.visionTokenId())
                    : policy.config.vocabSize();
            rows = new ArrayList<>();
            for (int p = 0; p < PROMPTS; p++) {
                int[] prompt = new int[PROMPT];
                for (int i = 0; i < PROMPT; i++) prompt[i] = rng.nextInt(textVocab);
                for (int g = 0; g < G; g++) {
                    int[] ids = new int[PROMPT + COMPLETION];
                    System.arraycopy(prompt, 0, ids, 0, PROMPT);
                    for (int i = PROMPT; i < ids.length; i++) ids[i] = rng.nextInt(textVocab);
                    rows.add(new PolicyUpdate.Row(Sequence.text(ids), new GrpoObjective.Row(PROMPT, 0, COMPLETION, g % 2 == 0 ? 1f : -1f)));
                }
            }
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            opt.close();
            policy.close();
            reference.close();
        }
    }

    @Benchmark
    @OperationsPerInvocation(POSITIONS)
    public double update(Update u) {
        return PolicyUpdate.apply(u.policy, u.reference, u.opt, u.rows, u.cfg, u.cfg.optimizer().lr()).loss();
    }
}
