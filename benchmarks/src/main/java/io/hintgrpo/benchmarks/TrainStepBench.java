package io.hintgrpo.benchmarks;

import io.hintgrpo.engine.model.AdamW;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Model;
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

import java.util.concurrent.TimeUnit;

/**
 * One full training step on the cpu backend (forward + backward + AdamW with clipping) of a batch
 * of 8 sequences × 128 tokens, loss on every next-token prediction. Throughput is in tokens/s
 * (JMH ops = tokens through {@link OperationsPerInvocation}).
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 4)
@Measurement(iterations = 3, time = 6)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx6g"})
public class TrainStepBench {
    static final int BATCH = BenchModels.BATCH, LENGTH = BenchModels.LENGTH;

    @State(Scope.Benchmark)
    public static class Step {
        /** "embedded": Presets.embeddedDefault (~3.6M); "25m": Presets.small25m (see {@link BenchModels#config}). */
        @Param({"embedded", "25m"})
        public String config;

        Model model;
        AdamW opt;
        Batch batch;

        @Setup(Level.Trial)
        public void setUp() {
            model = BenchModels.cpuModel(config);
            opt = new AdamW(model, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.01f);
            batch = BenchModels.textBatch(model.config, BATCH, LENGTH, 2);
        }
    }

    @Benchmark
    @OperationsPerInvocation(BATCH * LENGTH)
    public double trainStep(Step s) {
        s.model.zeroGrad();
        double loss = s.model.forwardBackward(s.batch, 1f).loss();
        s.opt.step(1f);
        return loss;
    }
}
