package io.hintgrpo.benchmarks;

import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.cpu.CpuKernels;
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
 * RMSNorm forward and backward on the cpu backend over a training batch's rows (8 × 128) at the
 * config's hidden size. A step runs 2·layers + 1 of each. Time per call.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx1g"})
public class RmsNormBench {
    static final int M = BenchModels.BATCH * BenchModels.LENGTH;

    @State(Scope.Benchmark)
    public static class Data {
        @Param({"embedded", "25m"})
        public String config;

        Kernels k;
        int c;
        float eps;
        Buf x, weight, out, rstd, dout, dx, dweight;

        @Setup(Level.Trial)
        public void setUp() {
            var cfg = BenchModels.config(config);
            c = cfg.hiddenSize();
            eps = cfg.rmsNormEps();
            k = new CpuKernels();
            x = k.allocF32((long) M * c);
            k.upload(x, BenchModels.random(M * c, 1));
            weight = k.allocF32(c);
            float[] w = BenchModels.random(c, 2);
            for (int i = 0; i < c; i++) w[i] += 1f;
            k.upload(weight, w);
            out = k.allocF32((long) M * c);
            rstd = k.allocF32(M);
            dout = k.allocF32((long) M * c);
            k.upload(dout, BenchModels.random(M * c, 3));
            dx = k.allocF32((long) M * c);
            dweight = k.allocF32(c);
            k.fill(dx, 0f);
            k.fill(dweight, 0f);
            k.rmsnorm(out, rstd, x, weight, M, c, eps); // the backward reads rstd
        }
    }

    @Benchmark
    public Buf forward(Data d) {
        d.k.rmsnorm(d.out, d.rstd, d.x, d.weight, M, d.c, d.eps);
        return d.out;
    }

    /** Accumulates into dx and dweight as in the model (the sums just grow; no refill inside the timing). */
    @Benchmark
    public Buf backward(Data d) {
        d.k.rmsnormBackward(d.dx, d.dweight, d.dout, d.x, d.weight, d.rstd, M, d.c);
        return d.dx;
    }
}
