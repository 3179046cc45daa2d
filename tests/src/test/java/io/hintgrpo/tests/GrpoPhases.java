package io.hintgrpo.tests;

import io.hintgrpo.engine.model.AdamW;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Generator;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.Sequence;
import io.hintgrpo.trainer.rl.GrpoConfig;
import io.hintgrpo.trainer.rl.GrpoObjective;
import io.hintgrpo.trainer.rl.PolicyUpdate;
import io.hintgrpo.trainer.rl.Rollouts;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The GPU harness's GRPO step (io.hintgrpo.tests.GpuBench, section "grpo"): one step of the
 * trainer's work on synthetic token prompts, timed in its three phases.
 *
 * <ol>
 *   <li><b>generate</b>: {@link Generator} (CUDA graphs where the backend has them) samples G
 *   completions of each prompt at temperature 1 without stop tokens, so every completion runs to
 *   its full length, as the rollouts of {@link Rollouts#sample} do;</li>
 *   <li><b>reference log-probs</b>: the reference model's forward over the packed rollout batch
 *   (what {@link PolicyUpdate#apply} runs once per minibatch when β &gt; 0);</li>
 *   <li><b>update</b>: {@link PolicyUpdate#apply} itself, with β = 0 so the reference forward is not
 *   counted twice: one minibatch, one pass (μ = 1), so one forward+backward with the fused GRPO
 *   loss as the LM head's token weights, and one AdamW step.</li>
 * </ol>
 * Rewards are not computed (no tokenizer): advantages alternate ±1 within each group, which costs
 * the update exactly what real ones do. The cpu JMH benchmark of the update alone is
 * io.hintgrpo.benchmarks.GrpoStepBench.
 */
public final class GrpoPhases {
    private GrpoPhases() {}

    /**
     * Per phase, the milliseconds of each timed round (the first, warm-up round is dropped), and on a
     * CUDA backend each phase's peak device bytes in the last round (generate, reference, update;
     * zeros elsewhere).
     */
    public record Phases(double[] generate, double[] reference, double[] update, int sequences, int promptLength,
                         int completionTokens, int updateTokens, long[] peakBytes) {}

    /**
     * Runs 1 + rounds steps (the first is the warm-up) of prompts × groupSize rollouts of
     * completion tokens after random prompts of promptLength tokens. reference may be the policy
     * itself when it has a LoRA adapter: its forward then runs with the adapters off.
     */
    public static Phases run(Model policy, Model reference, AdamW opt, int prompts, int groupSize, int promptLength,
                             int completion, int rounds, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        int vocab = policy.config.vocabSize();
        // placeholder ids of a multimodal config sit at the top of the vocabulary: stay below them
        int textVocab = policy.config.hasAudio() ? Math.min(policy.config.audioTokenId(), policy.config.visionTokenId()) : vocab;
        List<Sequence> promptSeqs = new ArrayList<>();
        for (int p = 0; p < prompts; p++) {
            int[] ids = new int[promptLength];
            for (int i = 0; i < promptLength; i++) ids[i] = rng.nextInt(textVocab);
            for (int g = 0; g < groupSize; g++) promptSeqs.add(Sequence.text(ids));
        }
        GrpoConfig cfg = GrpoConfig.defaults().with(Map.of("beta", 0.0, "group_size", groupSize, "prompts_per_step", prompts,
                "max_completion_tokens", completion, "minibatches", 1, "mu", 1, "temperature", 1.0));
        Generator gen = new Generator(policy, policy.kernels.supportsGraphs());
        double[] generate = new double[rounds], ref = new double[rounds], update = new double[rounds];
        int updateTokens = 0;
        io.hintgrpo.engine.cuda.DeviceMemory memory = policy.kernels instanceof io.hintgrpo.engine.cuda.CudaKernels c ? c.memory() : null;
        long[] peaks = new long[3];
        boolean adaptersOff = reference == policy && policy.lora() != null;
        for (int r = 0; r <= rounds; r++) {
            policy.freeActivations(); // as generate does first: the phase's peak starts without the last update's arena
            if (memory != null) memory.resetPeak();
            long t0 = System.nanoTime();
            List<Generator.Completion> done = gen.generate(promptSeqs,
                    new Generator.Options(completion, 1f, 0, 1f, seed + r, null));
            long t1 = System.nanoTime();
            if (memory != null) {
                policy.kernels.synchronize();
                peaks[0] = memory.peakBytes();
            }
            List<PolicyUpdate.Row> rows = new ArrayList<>();
            for (int s = 0; s < done.size(); s++) {
                Sequence p = promptSeqs.get(s);
                int[] c = done.get(s).tokens();
                float advantage = (s % groupSize) % 2 == 0 ? 1f : -1f;
                rows.add(new PolicyUpdate.Row(Rollouts.row(p, new int[0], c), new GrpoObjective.Row(p.ids().length, 0, c.length, advantage)));
            }
            Batch batch = Batch.pack(policy.config, rows.stream().map(PolicyUpdate.Row::sequence).toList());
            if (memory != null) memory.resetPeak();
            long t2 = System.nanoTime();
            if (adaptersOff) policy.setAdaptersEnabled(false);
            try {
                reference.forward(batch, cfg.sampling().temperature());
            } finally {
                if (adaptersOff) policy.setAdaptersEnabled(true);
            }
            long t3 = System.nanoTime();
            if (memory != null) {
                peaks[1] = memory.peakBytes();
                memory.resetPeak();
            }
            PolicyUpdate.Stats stats = PolicyUpdate.apply(policy, null, opt, rows, cfg, cfg.optimizer().lr());
            long t4 = System.nanoTime();
            if (memory != null) {
                policy.kernels.synchronize();
                peaks[2] = memory.peakBytes();
            }
            if (r == 0) continue;
            generate[r - 1] = (t1 - t0) / 1e6;
            ref[r - 1] = (t3 - t2) / 1e6;
            update[r - 1] = (t4 - t3) / 1e6;
            updateTokens = stats.lossTokens();
        }
        return new Phases(generate, ref, update, promptSeqs.size(), promptLength, completion, updateTokens, peaks);
    }
}
