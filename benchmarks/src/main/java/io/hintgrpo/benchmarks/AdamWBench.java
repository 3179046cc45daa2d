package io.hintgrpo.benchmarks;

import io.hintgrpo.engine.model.AdamW;
import io.hintgrpo.engine.model.Model;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;

/**
 * One optimizer step over every parameter of the model on the cpu backend: the global gradient
 * norm (a pass over the gradients) and the AdamW update with clipping (a pass over parameters,
 * gradients and both moments). Memory-bound: 26M parameters are ~420 MB of traffic a step.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx2g"})
public class AdamWBench {
    @State(Scope.Benchmark)
    public static class Data {
        @Param({"embedded", "25m"})
        public String config;

        Model model;
        AdamW opt;

        @Setup(Level.Trial)
        public void setUp() {
            model = BenchModels.cpuModel(config);
            opt = new AdamW(model, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.01f);
            model.kernels.upload(model.grads(), BenchModels.random(Math.toIntExact(model.layout.size()), 3));
        }
    }

    @Benchmark
    public double step(Data d) {
        return d.opt.step(1f);
    }
}
