package io.hintgrpo.benchmarks;

import io.hintgrpo.engine.model.Generator;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.Sequence;
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
import org.openjdk.jmh.annotations.Warmup;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * Batched generation with the KV cache on the cpu backend, as rollouts run it: 8 or 16 prompts of
 * 32 tokens, 32 new tokens each, greedy (no stop token, so every sequence generates all 32).
 * JMH ops are generated tokens, so the score is new tokens/s; the prefill is inside the timing.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx2g"})
public class DecodeBench {
    static final int PROMPT = 32, NEW_TOKENS = 32;

    @State(Scope.Benchmark)
    public static class Data {
        @Param({"embedded", "25m"})
        public String config;

        Generator generator;
        List<Sequence> prompts8, prompts16;
        final Generator.Options greedy = new Generator.Options(NEW_TOKENS, 0f, 0, 1f, 0, null);

        @Setup(Level.Trial)
        public void setUp() {
            Model model = BenchModels.cpuModel(config);
            generator = new Generator(model);
            SplittableRandom rng = new SplittableRandom(5);
            int textVocab = model.config.hasAudio() ? Math.min(model.config.audioTokenId(), model.config.visionTokenId())
                    : model.config.vocabSize();
            List<Sequence> all = new ArrayList<>();
            for (int s = 0; s < 16; s++) all.add(Sequence.text(rng.ints(PROMPT, 0, textVocab).toArray()));
            prompts8 = all.subList(0, 8);
            prompts16 = all;
        }
    }

    @Benchmark
    @OperationsPerInvocation(8 * NEW_TOKENS)
    public List<Generator.Completion> batch8(Data d) {
        return d.generator.generate(d.prompts8, d.greedy);
    }

    @Benchmark
    @OperationsPerInvocation(16 * NEW_TOKENS)
    public List<Generator.Completion> batch16(Data d) {
        return d.generator.generate(d.prompts16, d.greedy);
    }
}
