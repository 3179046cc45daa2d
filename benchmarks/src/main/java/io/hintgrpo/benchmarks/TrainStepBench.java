package io.hintgrpo.benchmarks;

import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.model.AdamW;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.Presets;
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
    static final int BATCH = 8, LENGTH = 128;

    @State(Scope.Benchmark)
    public static class Step {
        /** "embedded": Presets.embeddedDefault (~3.5M); "25m": Presets.small25m. */
        @Param({"embedded", "25m"})
        public String config;

        Model model;
        AdamW opt;
        Batch batch;

        @Setup(Level.Trial)
        public void setUp() {
            ModelConfig cfg = config.equals("25m") ? Presets.small25m() : Presets.embeddedDefault();
            model = new Model(new CpuKernels(), cfg);
            model.initialize(1);
            opt = new AdamW(model, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.01f);
            SplittableRandom rng = new SplittableRandom(2);
            List<Sequence> seqs = new ArrayList<>();
            int textVocab = cfg.hasAudio() ? Math.min(cfg.audioTokenId(), cfg.visionTokenId()) : cfg.vocabSize();
            for (int s = 0; s < BATCH; s++) {
                int[] ids = new int[LENGTH];
                float[] w = new float[LENGTH];
                for (int i = 0; i < LENGTH; i++) {
                    ids[i] = rng.nextInt(textVocab);
                    w[i] = 1f / (BATCH * (LENGTH - 1));
                }
                seqs.add(new Sequence(ids, w, null, null));
            }
            batch = Batch.pack(cfg, seqs);
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
