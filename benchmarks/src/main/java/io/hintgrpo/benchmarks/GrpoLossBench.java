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
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * The GRPO loss pass of one rollout batch on the cpu backend, as the trainer runs it: group
 * advantages from the rewards (8 groups × 8 rollouts), their spread to per-token advantage and
 * token-mean scale on the host (prompt positions get 0), then the fused policy loss with clipping
 * and the k3 KL term over 64 rollouts × 128 positions. It works on log-probs only, so it does not
 * depend on the model config (no config param). Time per pass.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx1g"})
public class GrpoLossBench {
    static final int GROUPS = 8, GROUP_SIZE = 8, ROLLOUTS = GROUPS * GROUP_SIZE, T = 128, PROMPT = 32;
    static final int M = ROLLOUTS * T;

    @State(Scope.Benchmark)
    public static class Data {
        Kernels k = new CpuKernels();
        Buf rewards, advantages, stats, logp, logpOld, ref, tokenAdv, scale, loss, weight, clipped, kl;
        final float[] advHost = new float[ROLLOUTS], tokenAdvHost = new float[M], scaleHost = new float[M];

        @Setup(Level.Trial)
        public void setUp() {
            SplittableRandom rng = new SplittableRandom(4);
            float[] r = new float[ROLLOUTS], lp = new float[M], old = new float[M], rf = new float[M];
            for (int i = 0; i < ROLLOUTS; i++) r[i] = (float) rng.nextDouble();
            for (int i = 0; i < M; i++) {
                // log-probs of sampled tokens, the old and reference ones nearby (ρ around 1, some clipped)
                lp[i] = (float) (-3 * rng.nextDouble());
                old[i] = lp[i] + (float) (0.4 * (rng.nextDouble() - 0.5));
                rf[i] = lp[i] + (float) (0.2 * (rng.nextDouble() - 0.5));
            }
            rewards = upload(r);
            logp = upload(lp);
            logpOld = upload(old);
            ref = upload(rf);
            advantages = k.allocF32(ROLLOUTS);
            stats = k.allocF32(2 * GROUPS);
            tokenAdv = k.allocF32(M);
            scale = k.allocF32(M);
            loss = k.allocF32(M);
            weight = k.allocF32(M);
            clipped = k.allocF32(M);
            kl = k.allocF32(M);
        }

        private Buf upload(float[] x) {
            Buf b = k.allocF32(x.length);
            k.upload(b, x);
            return b;
        }
    }

    @Benchmark
    public Buf lossPass(Data d) {
        Kernels k = d.k;
        k.grpoAdvantages(d.advantages, d.stats, d.rewards, GROUPS, GROUP_SIZE, false, 1e-4f);
        k.download(d.advantages, d.advHost);
        // positions PROMPT−1 … T−2 predict the completion; token-mean over all completion tokens
        float s = 1f / (ROLLOUTS * (T - PROMPT));
        for (int i = 0; i < ROLLOUTS; i++)
            for (int p = 0; p < T; p++) {
                boolean completion = p >= PROMPT - 1 && p < T - 1;
                d.tokenAdvHost[i * T + p] = completion ? d.advHost[i] : 0f;
                d.scaleHost[i * T + p] = completion ? s : 0f;
            }
        k.upload(d.tokenAdv, d.tokenAdvHost);
        k.upload(d.scale, d.scaleHost);
        k.grpoPolicyLoss(d.loss, d.weight, d.clipped, d.kl, d.logp, d.logpOld, d.ref, d.tokenAdv, d.scale,
                M, 0.2f, 0.28f, 0.04f);
        return d.weight;
    }
}
