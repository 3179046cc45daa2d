package io.hintgrpo.benchmarks;

import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.Kernels.Gemm;
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
 * The LM head with its fused softmax cross-entropy over a training batch's 8 × 128 rows, in chunks
 * of rows as the model runs it (at most 2²² logits at once, like the model's activation arena, so
 * full-vocabulary logits of a batch never exist): forward = gemm NT + crossEntropy; forwardBackward
 * adds the in-place ∂L/∂logits and the two gradient gemms (dlnf, dW). Time per call. The first
 * call runs crossEntropy's loop interpreted (1.5–4 s), so the warm-up is longer than most.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 5, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx2g"})
public class LmHeadBench {
    static final int M = BenchModels.BATCH * BenchModels.LENGTH;
    static final long CHUNK_FLOATS = 1L << 22;

    @State(Scope.Benchmark)
    public static class Data {
        @Param({"embedded", "25m"})
        public String config;

        Kernels k;
        int c, v, chunk;
        Buf lnf, head, logits, logprob, entropy, targets, weights, dlnf, dhead;

        @Setup(Level.Trial)
        public void setUp() {
            var cfg = BenchModels.config(config);
            c = cfg.hiddenSize();
            v = cfg.vocabSize();
            chunk = (int) Math.min(M, CHUNK_FLOATS / v);
            k = new CpuKernels();
            lnf = k.allocF32((long) M * c);
            k.upload(lnf, BenchModels.random(M * c, 1));
            head = k.allocF32((long) v * c);
            float[] w = BenchModels.random(v * c, 2);
            for (int i = 0; i < w.length; i++) w[i] *= 0.04f; // ~ the init's std 0.02
            k.upload(head, w);
            logits = k.allocF32((long) chunk * v);
            logprob = k.allocF32(M);
            entropy = k.allocF32(M);
            targets = k.allocI32(M);
            int[] t = new int[M];
            for (int i = 0; i < M; i++) t[i] = (int) ((i * 2654435761L) % v);
            k.upload(targets, t);
            weights = k.allocF32(M);
            k.fill(weights, 1f / M);
            dlnf = k.allocF32((long) M * c);
            dhead = k.allocF32((long) v * c);
            k.fill(dhead, 0f);
        }

        void run(boolean backward) {
            for (int r0 = 0; r0 < M; r0 += chunk) {
                int rows = Math.min(chunk, M - r0);
                Buf lg = logits.slice(0, (long) rows * v), x = lnf.slice((long) r0 * c, (long) rows * c);
                k.gemm(Gemm.NT, lg, x, head, null, rows, v, c, false);
                k.crossEntropy(lg, logprob.slice(r0, rows), entropy.slice(r0, rows), null, targets.slice(r0, rows),
                        weights.slice(r0, rows), rows, v, 1f, backward);
                if (backward) {
                    k.gemm(Gemm.NN, dlnf.slice((long) r0 * c, (long) rows * c), lg, head, null, rows, c, v, false);
                    k.gemm(Gemm.TN, dhead, lg, x, null, v, c, rows, true);
                }
            }
        }
    }

    @Benchmark
    public Buf forward(Data d) {
        d.run(false);
        return d.logprob;
    }

    @Benchmark
    public Buf forwardBackward(Data d) {
        d.run(true);
        return d.dlnf;
    }
}
