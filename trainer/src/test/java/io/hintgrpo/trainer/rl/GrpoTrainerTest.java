package io.hintgrpo.trainer.rl;

import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.model.AdamW;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.Precision;
import io.hintgrpo.engine.model.Sequence;
import io.hintgrpo.trainer.checkpoint.Checkpoints;
import io.hintgrpo.trainer.data.SynthCorpus;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.format.DcFormat;
import io.hintgrpo.trainer.format.DcParser;
import io.hintgrpo.trainer.format.ParsedResponse;
import io.hintgrpo.trainer.format.Polarity;
import io.hintgrpo.trainer.loop.Run;
import io.hintgrpo.trainer.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

/** GRPO on a small random model with the corpus tokenizer: the loss identities, direction, hints, resume. */
class GrpoTrainerTest {
    @TempDir
    Path dir;
    Path modelDir;
    Tokenizer tok;
    ModelConfig cfg;
    List<Utterance> utterances;

    @BeforeEach
    void setUp() throws Exception {
        modelDir = dir.resolve("model");
        cfg = io.hintgrpo.trainer.TinyModels.write(modelDir, 4);
        tok = Tokenizer.load(modelDir);
        utterances = new ArrayList<>();
        for (SynthCorpus.Sample s : SynthCorpus.generate(SynthCorpus.Options.defaults(2, 40)).subList(0, 12)) utterances.add(s.utterance());
    }

    @AfterEach
    void tearDown() {
        tok.close();
    }

    private static GrpoConfig config(Map<String, Object> overrides) {
        Map<String, Object> flags = new LinkedHashMap<>(Map.of("steps", 3, "prompts_per_step", 2, "group_size", 4,
                "max_completion_tokens", 6, "eval_every", 100, "checkpoint_every", 100, "lr", 5e-3f));
        flags.putAll(overrides);
        return GrpoConfig.defaults().with(flags);
    }

    private static Run quiet(Path runDir) {
        return Run.in(runDir).log(s -> {}).stopWhen(() -> false);
    }

    private Model load() {
        return ModelDir.load(new CpuKernels(), modelDir, 0, m -> {});
    }

    /** A group of hand-made rollouts of an utterance: completions of the given lengths with the given rewards. */
    private Rollouts.Group group(Utterance u, int[] lengths, double[] rewards, int[] hint) {
        Rollouts.Group g = new Rollouts.Group(u, io.hintgrpo.trainer.format.Examples.prompt(u, tok, cfg));
        for (int i = 0; i < lengths.length; i++) {
            int[] tokens = new int[lengths[i]];
            for (int t = 0; t < tokens.length; t++) tokens[t] = 40 + (7 * i + 3 * t) % 50;
            ParsedResponse p = DcParser.parse("");
            g.rollouts.add(new Rollouts.Rollout(hint, tokens, false, "", p, new Rewards.Scored(rewards[i], new double[]{rewards[i]})));
        }
        return g;
    }

    private GrpoTrainer trainer(GrpoConfig c, Rewards rewards, Model m, AdamW opt, Model reference, List<Utterance> prompts) {
        return new GrpoTrainer(c, rewards, m, opt, reference, tok, prompts, 0, 0);
    }

    private PolicyUpdate.Stats update(Model m, List<Rollouts.Group> groups, GrpoConfig c) {
        try (AdamW opt = c.optimizer().adamw(m)) {
            float[] adv = trainer(c, Rewards.of(c.rewards()), m, opt, null, utterances).advantages(groups).values();
            return PolicyUpdate.apply(m, null, opt, PolicyUpdate.rows(groups, adv, c.update().maskTruncated()), c, c.optimizer().lr());
        }
    }

    /**
     * β = 0, one pass, sequence-mean: Σ_i A_i = 0 in a group and every ρ = 1, so the loss is 0
     * while the gradient is not (users trip on this); token-mean over unequal lengths is not 0.
     */
    @Test
    void sequenceMeanLossIsZeroButTheGradientIsNot() {
        int[] lengths = {3, 7, 5, 9};
        double[] rewards = {1, 0, 0.5, 0.25};
        try (Model m = load()) {
            PolicyUpdate.Stats s = update(m, List.of(group(utterances.get(0), lengths, rewards, new int[0])),
                    config(Map.of("beta", 0f, "aggregation", "sequence-mean")));
            assertEquals(0, s.loss(), 1e-6, "sequence-mean loss");
            assertTrue(s.gradNorm() > 1e-4, "gradient norm " + s.gradNorm());
        }
        try (Model m = load()) {
            PolicyUpdate.Stats s = update(m, List.of(group(utterances.get(0), lengths, rewards, new int[0])),
                    config(Map.of("beta", 0f, "aggregation", "token-mean")));
            assertTrue(Math.abs(s.loss()) > 1e-3, "token-mean loss " + s.loss());
            assertTrue(s.gradNorm() > 1e-4);
        }
    }

    /**
     * The memory plan's GRPO update phase (the policy's state, one minibatch's training step, the
     * per-token loss inputs, a separate reference model with its forward's arena) against the peak
     * measured on cuda-emu for a real update, within 5 %.
     */
    @Test
    void grpoUpdatePeakOnTheCudaEmulatorMatchesTheMemoryPlan() {
        Utterance u = utterances.get(4);
        GrpoConfig c = config(Map.of("beta", 0.04f, "group_size", 6));
        try (io.hintgrpo.engine.cuda.CudaKernels k = (io.hintgrpo.engine.cuda.CudaKernels) io.hintgrpo.engine.Backends.open("cuda-emu")) {
            long before = k.memory().bytesInUse();
            k.memory().resetPeak();
            try (Model m = ModelDir.load(k, modelDir, 0, x -> {}); Model ref = ModelDir.load(k, modelDir, 0, x -> {});
                 AdamW opt = c.optimizer().adamw(m)) {
                List<Rollouts.Group> groups = List.of(group(u, new int[]{3, 5, 2, 4, 6, 1}, new double[]{1, 0.2, 0.6, 0, 0.4, 0.9}, new int[0]));
                GrpoTrainer t = trainer(c, Rewards.of(c.rewards()), m, opt, ref, utterances);
                List<PolicyUpdate.Row> rows = PolicyUpdate.rows(groups, t.advantages(groups).values(), false);
                PolicyUpdate.apply(m, ref, opt, rows, c, c.optimizer().lr());
                k.synchronize();
                long measured = k.memory().peakBytes() - before;
                Batch packed = Batch.pack(m.config, rows.stream().map(PolicyUpdate.Row::sequence).toList());
                io.hintgrpo.engine.model.MemoryPlan.Setup s = new io.hintgrpo.engine.model.MemoryPlan.Setup(m.config, null, Precision.FP32,
                        false, true, k.logitChunkFloats());
                io.hintgrpo.engine.model.MemoryPlan.Phase update = io.hintgrpo.engine.model.MemoryPlan.grpo(s,
                        new io.hintgrpo.engine.model.MemoryPlan.Grpo(1, rows.size(), packed.t, 0, 1, true),
                        new io.hintgrpo.engine.model.MemoryPlan.Features(packed.audio.n() / rows.size(), packed.vision.n() / rows.size())).get(1);
                double ratio = (double) update.total() / measured;
                System.out.printf(java.util.Locale.ROOT, "GrpoTrainerTest memory: plan %,d B, measured peak %,d B, plan/measured %.4f%n",
                        update.total(), measured, ratio);
                assertEquals(0, packed.audio.n() % rows.size(), "the same prompt in every row");
                assertTrue(Math.abs(ratio - 1) <= 0.05, "plan " + update.total() + " vs measured " + measured + ": " + update.items());
            }
        }
    }

    /**
     * The whole policy update (reference forward, β > 0, two passes so the second has ρ ≠ 1 and
     * reads the stored logp_old, a hint row) on the CUDA kernels under the emulator matches cpu.
     */
    @Test
    void policyUpdateOnTheCudaEmulatorMatchesCpu() {
        Utterance u = utterances.get(4);
        int[] hint = tok.encode(DcFormat.hintPrefix(Polarity.of(u.label())));
        GrpoConfig c = config(Map.of("beta", 0.04f, "mu", 2, "minibatches", 2, "lr", 1e-2f, "eps_low", 0.01f, "eps_high", 0.01f));
        float[][] params = new float[2][];
        PolicyUpdate.Stats[] stats = new PolicyUpdate.Stats[2];
        String[] backends = {"cpu", "cuda-emu"};
        for (int b = 0; b < 2; b++) {
            try (io.hintgrpo.engine.Kernels k = io.hintgrpo.engine.Backends.open(backends[b]);
                 Model m = ModelDir.load(k, modelDir, 0, x -> {}); Model ref = ModelDir.load(k, modelDir, 0, x -> {});
                 AdamW opt = c.optimizer().adamw(m)) {
                List<Rollouts.Group> groups = List.of(group(u, new int[]{3, 5, 2, 4}, new double[]{1, 0.2, 0.6, 0}, new int[0]),
                        group(utterances.get(5), new int[]{4, 2, 6, 3}, new double[]{0.1, 0.9, 0.5, 0.3}, hint));
                GrpoTrainer t = trainer(c, Rewards.of(c.rewards()), m, opt, ref, utterances);
                stats[b] = PolicyUpdate.apply(m, ref, opt, PolicyUpdate.rows(groups, t.advantages(groups).values(), false), c,
                        c.optimizer().lr());
                params[b] = new float[Math.toIntExact(m.params.length)];
                k.download(m.params, params[b]);
            }
        }
        assertEquals(4, stats[0].optimizerSteps());
        assertTrue(stats[0].kl() > 0 && stats[0].clipFraction() > 0, "the second pass moved ρ past the clip: " + stats[0]);
        assertEquals(stats[0].loss(), stats[1].loss(), 1e-4 * Math.abs(stats[0].loss()) + 1e-7);
        assertEquals(stats[0].kl(), stats[1].kl(), 1e-3 * stats[0].kl());
        assertEquals(stats[0].clipFraction(), stats[1].clipFraction(), 0.0);
        double diff = 0, norm = 0;
        for (int i = 0; i < params[0].length; i++) {
            diff += Math.pow(params[0][i] - params[1][i], 2);
            norm += Math.pow(params[0][i], 2);
        }
        assertTrue(Math.sqrt(diff / norm) < 1e-5, "parameters after the update differ by " + Math.sqrt(diff / norm));
    }

    /**
     * Hint tokens carry no loss: a row with hint H is trained exactly like the same row with H
     * folded into the prompt (bit-identical parameters after the update), and differently from one
     * where H counts as completion.
     */
    @Test
    void hintTokensGetZeroGradient() {
        Utterance u = utterances.get(1);
        int[] hint = tok.encode(DcFormat.hintPrefix(Polarity.of(u.label())));
        int[] lengths = {4, 6, 5, 3};
        double[] rewards = {0.9, 0.1, 0.4, 0.7};
        GrpoConfig c = config(Map.of("beta", 0f));
        float[] asHint, asPrompt, asCompletion;
        try (Model m = load()) {
            update(m, List.of(group(u, lengths, rewards, hint)), c);
            asHint = m.download("model.layers.0.mlp.down_proj.weight");
        }
        try (Model m = load()) {
            Rollouts.Group g = group(u, lengths, rewards, new int[0]);
            Sequence p = g.prompt.sequence();
            int[] ids = Arrays.copyOf(p.ids(), p.ids().length + hint.length);
            System.arraycopy(hint, 0, ids, p.ids().length, hint.length);
            Rollouts.Group folded = new Rollouts.Group(u, new io.hintgrpo.trainer.format.Examples.Prompt(ids,
                    new Sequence(ids, null, p.audio(), p.vision())));
            folded.rollouts.addAll(g.rollouts);
            update(m, List.of(folded), c);
            asPrompt = m.download("model.layers.0.mlp.down_proj.weight");
        }
        try (Model m = load()) {
            Rollouts.Group g = group(u, lengths, rewards, new int[0]);
            List<Rollouts.Rollout> withHintAsCompletion = new ArrayList<>();
            for (Rollouts.Rollout r : g.rollouts) {
                int[] t = Arrays.copyOf(hint, hint.length + r.tokens().length);
                System.arraycopy(r.tokens(), 0, t, hint.length, r.tokens().length);
                withHintAsCompletion.add(new Rollouts.Rollout(new int[0], t, false, "", r.parsed(), r.reward()));
            }
            g.rollouts.clear();
            g.rollouts.addAll(withHintAsCompletion);
            update(m, List.of(g), c);
            asCompletion = m.download("model.layers.0.mlp.down_proj.weight");
        }
        assertArrayEquals(asPrompt, asHint);
        assertFalse(Arrays.equals(asPrompt, asCompletion), "training on the hint tokens must change the update");
    }

    /** A random model never names the right polarity: every group is hard and its re-rolls start with the ground-truth prefix. */
    @Test
    void hardGroupsAreReRolledFromTheGroundTruthPrefix() {
        GrpoConfig c = config(Map.of("hint", "replace", "beta", 0f));
        List<Rollouts.Group> seen = new ArrayList<>();
        try (Model m = load(); AdamW opt = c.optimizer().adamw(m)) {
            GrpoTrainer t = trainer(c, Rewards.of(c.rewards()), m, opt, null, utterances);
            Rollouts ro = new Rollouts(m, tok, Rewards.of(c.rewards()), c.rollout().maxCompletionTokens(), c.sampling());
            // the step's groups, after hints, are what the update trains on: capture them through a planted hard group
            Rollouts.Group planted = ro.group(utterances.get(2));
            ro.sample(List.of(new Rollouts.Request(planted, new int[0], 4)), 7).forEach(planted.rollouts::add);
            assertTrue(t.isHard(planted, t.advantages(List.of(planted)).flat()[0]), "a random model's group has no correct polarity");
            int[] hint = ro.hintIds(planted.utterance);
            List<Rollouts.Rollout> again = ro.sample(List.of(new Rollouts.Request(planted, hint, 4)), 8);
            String prefix = DcFormat.hintPrefix(Polarity.of(planted.utterance.label()));
            for (Rollouts.Rollout r : again) {
                assertArrayEquals(hint, r.hint());
                assertTrue(r.response().startsWith(prefix), r.response());
                assertEquals(Polarity.of(planted.utterance.label()), r.parsed().polarity());
                assertEquals(1.0, r.reward().components()[1], "the hinted polarity is right by construction");
            }
            GrpoTrainer.StepMetrics s = t.run(0, List.of());
            assertEquals(1.0, s.hardGroupRate());
            assertEquals(2, s.hintedGroups());
            assertEquals(16, s.completionsGenerated(), "8 free + 8 hinted re-rolls count against the budget");
            assertTrue(s.rewardAfterHint() > s.rewardBeforeHint(), "the hint pays the polarity term");
        }
    }

    /**
     * One-token completions and a reward paying one specific token (the first non-empty one the
     * first step draws): after a few GRPO steps that token is more likely, identically for the seed.
     */
    @Test
    void rewardedTokenGetsMoreLikely() {
        double[] first = null;
        Utterance u = utterances.get(3);
        for (int run = 0; run < 2; run++) {
            String[] paid = new String[1];
            Rewards rewards = new Rewards(List.of(new Rewards.Term(new Reward() {
                public String name() { return "one-token"; }
                public double score(Utterance x, String response, ParsedResponse parsed) {
                    if (paid[0] == null && !response.isEmpty()) paid[0] = response;
                    return response.equals(paid[0]) ? 1 : 0;
                }
            }, 1.0)));
            GrpoConfig c = config(Map.of("beta", 0f, "hint", "none", "steps", 4, "prompts_per_step", 1, "group_size", 8,
                    "max_completion_tokens", 1, "lr", 1e-2f));
            try (Model m = load(); AdamW opt = c.optimizer().adamw(m); Model fresh = load()) {
                GrpoTrainer t = trainer(c, rewards, m, opt, null, List.of(u));
                for (int step = 0; step < c.loop().steps(); step++) t.run(step, List.of());
                assertNotNull(paid[0], "some rollout drew a visible token");
                double before = probabilityOfText(fresh, u, paid[0]), after = probabilityOfText(m, u, paid[0]);
                assertTrue(after > 1.5 * before, "p(\"" + paid[0] + "\") " + before + " → " + after);
                if (first == null) first = new double[]{before, after};
                else assertArrayEquals(first, new double[]{before, after}, 0.0, "same seed, same run");
            }
        }
    }

    /** Probability that the first response token decodes to text (summed over the ids that do). */
    private double probabilityOfText(Model m, Utterance u, String text) {
        Sequence p = io.hintgrpo.trainer.format.Examples.prompt(u, tok, cfg).sequence();
        List<Sequence> seqs = new ArrayList<>();
        for (int id = 0; id < cfg.vocabSize(); id++) {
            if (!tok.decode(new int[]{id}).equals(text)) continue;
            int[] ids = Arrays.copyOf(p.ids(), p.ids().length + 1);
            ids[ids.length - 1] = id;
            seqs.add(new Sequence(ids, null, p.audio(), p.vision()));
        }
        assertFalse(seqs.isEmpty());
        Model.ForwardResult fr = m.forward(Batch.pack(cfg, seqs), 1f);
        double sum = 0;
        for (int s = 0; s < seqs.size(); s++) {
            float[] lp = fr.logprobs(s);
            sum += Math.exp(lp[lp.length - 1]);
        }
        return sum;
    }

    /** Stopped after 2 steps and resumed, a run ends with exactly the weights and step metrics of an uninterrupted one. */
    @Test
    void resumeRepeatsAnUninterruptedRun() throws Exception {
        GrpoConfig c = config(Map.of("steps", 4, "checkpoint_every", 2, "hint", "replace", "beta", 0.04f));
        Path straight = dir.resolve("straight"), resumed = dir.resolve("resumed");
        GrpoRun.Job job = GrpoRun.Job.of(modelDir, utterances, List.of(), c);
        GrpoRun.Outcome a = GrpoRun.run(new CpuKernels(), job, quiet(straight));
        AtomicInteger calls = new AtomicInteger();
        GrpoRun.Outcome b1 = GrpoRun.run(new CpuKernels(), job, quiet(resumed).stopWhen(() -> calls.incrementAndGet() > 2));
        assertTrue(b1.training().stoppedBySignal());
        assertEquals(2, b1.training().steps());
        GrpoRun.Outcome b = GrpoRun.run(new CpuKernels(), job, quiet(resumed).resuming(true));
        assertEquals(4, b.training().steps());
        assertEquals(a.completionsTotal(), b.completionsTotal());
        assertArrayEquals(Files.readAllBytes(a.modelDir().resolve("model.safetensors")),
                Files.readAllBytes(b.modelDir().resolve("model.safetensors")));
        List<GrpoTrainer.StepMetrics> ha = a.training().history(), hb = b.training().history();
        assertEquals(ha.size(), hb.size());
        for (int i = 0; i < ha.size(); i++) {
            assertEquals(ha.get(i).loss(), hb.get(i).loss(), 0.0, "step " + (i + 1));
            assertEquals(ha.get(i).reward(), hb.get(i).reward(), 0.0);
            assertEquals(ha.get(i).kl(), hb.get(i).kl(), 0.0);
        }
        assertTrue(Files.isRegularFile(straight.resolve("grpo.png")));
        assertTrue(Files.isDirectory(new Checkpoints(resumed).root().resolve("step-0000002")), "the stop wrote a checkpoint");
    }

    /**
     * GRPO with LoRA: the policy is the starting model with fresh adapters (B = 0), so the first
     * step's KL to the reference (the same model with its adapters off) is exactly 0, and later
     * ones are not; stopped and resumed, the run ends with the same metrics, adapter and merged
     * model; the run folder has model/ (merged, loadable as any model) and adapter/ (PEFT files),
     * and the starting model directory is untouched.
     */
    @Test
    void loraPolicyStartsAtItsReferenceAndResumesExactly() throws Exception {
        GrpoConfig c = config(Map.of("steps", 4, "checkpoint_every", 2, "beta", 0.04f, "lora_rank", 4, "lora_alpha", 8, "lr", 2e-2f));
        Rewards rewards = new Rewards(List.of(new Rewards.Term(new Reward() {
            public String name() { return "length"; }
            public double score(Utterance x, String response, ParsedResponse parsed) { return response.length() % 5; }
        }, 1.0)));
        byte[] start = Files.readAllBytes(modelDir.resolve("model.safetensors"));
        GrpoRun.Job job = GrpoRun.Job.of(modelDir, utterances, List.of(), c).rewards(rewards);
        Path straight = dir.resolve("lora-straight"), resumed = dir.resolve("lora-resumed");
        GrpoRun.Outcome a = GrpoRun.run(new CpuKernels(), job, quiet(straight));
        List<GrpoTrainer.StepMetrics> ha = a.training().history();
        assertEquals(0.0, ha.get(0).kl(), "KL on the first step: B = 0, the policy is its reference");
        assertTrue(ha.get(3).kl() > 0, "the adapter moved the policy away from its base: " + ha.get(3).kl());

        AtomicInteger calls = new AtomicInteger();
        GrpoRun.run(new CpuKernels(), job, quiet(resumed).stopWhen(() -> calls.incrementAndGet() > 2));
        GrpoRun.Outcome b = GrpoRun.run(new CpuKernels(), job, quiet(resumed).resuming(true));
        List<GrpoTrainer.StepMetrics> hb = b.training().history();
        for (int i = 0; i < ha.size(); i++) {
            assertEquals(ha.get(i).loss(), hb.get(i).loss(), 0.0, "step " + (i + 1));
            assertEquals(ha.get(i).kl(), hb.get(i).kl(), 0.0, "step " + (i + 1));
        }
        assertArrayEquals(Files.readAllBytes(a.adapterDir().resolve("adapter_model.safetensors")),
                Files.readAllBytes(b.adapterDir().resolve("adapter_model.safetensors")));
        assertArrayEquals(Files.readAllBytes(a.modelDir().resolve("model.safetensors")),
                Files.readAllBytes(b.modelDir().resolve("model.safetensors")));

        assertArrayEquals(start, Files.readAllBytes(modelDir.resolve("model.safetensors")), "the starting model is untouched");
        assertEquals(straight.resolve("adapter"), a.adapterDir());
        assertTrue(Files.readString(a.adapterDir().resolve("adapter_config.json")).contains(modelDir.toAbsolutePath().normalize().toString()),
                "base_model_name_or_path names the starting model");
        for (String f : new String[]{"config.json", "model.safetensors", "tokenizer.json"})
            assertTrue(Files.isRegularFile(a.modelDir().resolve(f)), f);
        assertFalse(Files.exists(new Checkpoints(straight).latest().resolve("model.safetensors")), "checkpoints hold the adapter only");
        // model/ is base + the best adapter, merged: it computes what the base with adapter/ attached does
        Batch batch = Batch.pack(cfg, List.of(io.hintgrpo.trainer.format.Examples.prompt(utterances.get(0), tok, cfg).sequence()));
        try (Model merged = ModelDir.load(new CpuKernels(), a.modelDir(), 0, m -> {}); Model withAdapter = load()) {
            io.hintgrpo.engine.io.PeftAdapter.load(withAdapter, a.adapterDir());
            float[] x = merged.logits(batch), y = withAdapter.logits(batch);
            double num = 0, den = 0;
            for (int i = 0; i < x.length; i++) {
                num += (x[i] - y[i]) * (double) (x[i] - y[i]);
                den += (double) y[i] * y[i];
            }
            assertTrue(Math.sqrt(num / den) <= 1e-5, "merged vs base + adapter: " + Math.sqrt(num / den));
            try (Model startModel = load()) {
                assertFalse(Arrays.equals(startModel.logits(batch), x), "the run trained something");
            }
        }
    }

    /**
     * bf16: policy and reference share the precision (the first step, whose weights are the
     * reference's, has KL exactly 0), a resumed run is bf16 again (the weights of an uninterrupted
     * one), and the result differs from fp32 (the precision reached the GEMMs).
     */
    @Test
    void bf16PolicyAndReferenceAndResumeStayBf16() throws Exception {
        GrpoConfig c = config(Map.of("steps", 3, "checkpoint_every", 1, "beta", 0.04f, "mu", 1, "minibatches", 1));
        // rollouts of a random model rarely differ in the built-in rewards; response length always does
        Rewards rewards = new Rewards(List.of(new Rewards.Term(new Reward() {
            public String name() { return "length"; }
            public double score(Utterance x, String response, ParsedResponse parsed) { return response.length() % 5; }
        }, 1.0)));
        GrpoRun.Job job = GrpoRun.Job.of(modelDir, utterances, List.of(), c).rewards(rewards);
        GrpoRun.Outcome fp32 = GrpoRun.run(new CpuKernels(), job.precision(Precision.FP32), quiet(dir.resolve("fp32")));
        GrpoRun.Outcome a = GrpoRun.run(new CpuKernels(), job.precision(Precision.BF16), quiet(dir.resolve("bf16")));
        assertEquals(0.0, a.training().history().get(0).kl(), "KL on the first step");
        Path resumed = dir.resolve("bf16-resumed");
        AtomicInteger calls = new AtomicInteger();
        GrpoRun.run(new CpuKernels(), job.precision(Precision.BF16), quiet(resumed).stopWhen(() -> calls.incrementAndGet() > 1));
        GrpoRun.Outcome b = GrpoRun.run(new CpuKernels(), job.precision(Precision.BF16), quiet(resumed).resuming(true));
        assertEquals(3, b.training().steps());
        byte[] bf16Weights = Files.readAllBytes(a.modelDir().resolve("model.safetensors"));
        assertArrayEquals(bf16Weights, Files.readAllBytes(b.modelDir().resolve("model.safetensors")), "resumed in bf16");
        assertFalse(Arrays.equals(bf16Weights, Files.readAllBytes(fp32.modelDir().resolve("model.safetensors"))),
                "bf16 and fp32 runs saved the same weights");
    }

    /**
     * The advantage has one place, the grpo_advantages kernel: its stats decide the flat groups
     * (all rewards equal: std exactly 0, every advantage exactly 0), which the zero-advantage
     * share, the all-equal hard rule and dynamic sampling all read, on cpu and on the emulated GPU.
     */
    @Test
    void flatGroupsAreTheKernelsZeroStdGroups() {
        Utterance u = utterances.get(0);
        GrpoConfig c = config(Map.of("beta", 0f, "hard_rule", "all-equal"));
        for (String backend : new String[]{"cpu", "cuda-emu"}) {
            try (io.hintgrpo.engine.Kernels k = io.hintgrpo.engine.Backends.open(backend);
                 Model m = ModelDir.load(k, modelDir, 0, x -> {}); AdamW opt = c.optimizer().adamw(m)) {
                GrpoTrainer t = trainer(c, Rewards.of(c.rewards()), m, opt, null, utterances);
                List<Rollouts.Group> groups = List.of(group(u, new int[]{2, 3, 4, 5}, new double[]{0.7, 0.7, 0.7, 0.7}, new int[0]),
                        group(u, new int[]{2, 3, 4, 5}, new double[]{0.1, 0.7, 0.7, 0.7}, new int[0]),
                        group(u, new int[]{2, 3, 4, 5}, new double[]{1.0 / 3, 1.0 / 3, 1.0 / 3, 1.0 / 3}, new int[0]));
                GrpoTrainer.Advantages a = t.advantages(groups);
                assertArrayEquals(new boolean[]{true, false, true}, a.flat(), backend);
                for (int i : new int[]{0, 1, 2, 3, 8, 9, 10, 11}) assertEquals(0f, a.values()[i], backend + " advantage " + i);
                assertTrue(a.values()[4] < 0 && a.values()[5] > 0, backend);
                assertEquals(2 / 3.0, a.flatShare(), 1e-12);
                assertTrue(t.isHard(groups.get(0), a.flat()[0]) && !t.isHard(groups.get(1), a.flat()[1]), "all-equal rule");
            }
        }
    }

    /**
     * logp_old is the policy that sampled the rollouts: with several minibatches it is taken by one
     * no-grad forward per minibatch before the first update, so the later minibatches' first (and
     * only) pass sees ρ ≠ 1 after the earlier updates and the clip acts (it never did when each
     * minibatch took logp_old on its first visit). With one minibatch there is no extra forward and
     * ρ = 1 exactly on the first pass.
     */
    @Test
    void severalMinibatchesTakeLogpOldBeforeTheFirstUpdate() {
        Utterance u = utterances.get(6);
        List<Rollouts.Group> groups = List.of(group(u, new int[]{3, 5, 2, 4}, new double[]{1, 0.2, 0.6, 0}, new int[0]),
                group(utterances.get(7), new int[]{4, 2, 6, 3}, new double[]{0.1, 0.9, 0.5, 0.3}, new int[0]));
        GrpoConfig several = config(Map.of("beta", 0f, "mu", 1, "minibatches", 4, "lr", 1e-1f, "eps_low", 0.05f, "eps_high", 0.05f));
        try (Model m = load()) {
            int before = m.forwardPasses();
            PolicyUpdate.Stats s = update(m, groups, several);
            assertEquals(8, m.forwardPasses() - before, "4 no-grad forwards for logp_old, then 4 training passes");
            assertEquals(4, s.optimizerSteps());
            assertTrue(s.clipFraction() > 0, "later minibatches see the moved policy: " + s);
        }
        GrpoConfig one = config(Map.of("beta", 0f, "mu", 1, "minibatches", 1, "lr", 1e-1f, "eps_low", 0.05f, "eps_high", 0.05f));
        try (Model m = load()) {
            int before = m.forwardPasses();
            PolicyUpdate.Stats s = update(m, groups, one);
            assertEquals(1, m.forwardPasses() - before, "one minibatch: logp_old is its own first forward");
            assertEquals(0.0, s.clipFraction(), "ρ = 1 exactly on the first pass");
        }
    }

    /**
     * Dynamic sampling with a reward that scores every rollout alike: every group stays flat through
     * every refill round, so the step ends under-filled with nothing to train on, and the tokens of
     * every dropped rollout still count as generated.
     */
    @Test
    void underFilledStepsAndEveryGeneratedTokenAreCounted() {
        Rewards flat = new Rewards(List.of(new Rewards.Term(new Reward() {
            public String name() { return "constant"; }
            public double score(Utterance x, String response, ParsedResponse parsed) { return 0.5; }
        }, 1.0)));
        GrpoConfig c = config(Map.of("beta", 0f, "hint", "none", "dynamic_sampling", true, "max_refill_rounds", 2));
        try (Model m = load(); AdamW opt = c.optimizer().adamw(m)) {
            GrpoTrainer.StepMetrics s = trainer(c, flat, m, opt, null, utterances).run(0, List.of());
            assertTrue(s.underFilled());
            assertEquals(0, s.groups());
            assertEquals(3 * 2 * 4, s.completionsGenerated(), "the first draw and two refills of 2 groups × 4");
            assertTrue(s.tokensGenerated() >= s.completionsGenerated(), "every completion has a token: " + s.tokensGenerated());
        }
    }

    /** The sparse score: 1 within the band, else 0; 0 without a readable answer. */
    @Test
    void bandedScoreIsOneInsideTheBandOnly() {
        Utterance o = utterances.get(0);
        Utterance u = new Utterance(o.id(), o.text(), 1.2f, o.domain(), o.audio(), o.vision(), o.cot());
        Reward banded = Rewards.bandedScore(0.5);
        assertEquals(1.0, banded.score(u, "", DcParser.parse("<disc>polarity: positive.</disc><calib>x</calib><answer>1.6</answer>")));
        assertEquals(1.0, banded.score(u, "", DcParser.parse("<disc>polarity: positive.</disc><calib>x</calib><answer>0.7</answer>")));
        assertEquals(0.0, banded.score(u, "", DcParser.parse("<disc>polarity: positive.</disc><calib>x</calib><answer>1.8</answer>")));
        assertEquals(0.0, banded.score(u, "", DcParser.parse("no answer")));
        Rewards sparse = Rewards.of(config(Map.of("score_band", 0.5)).rewards());
        assertEquals(List.of("format", "polarity", "score"), sparse.names());
    }

    /** Bad settings are refused naming the setting. */
    @Test
    void badConfigIsRefusedNamingTheSetting() {
        var e = assertThrows(io.hintgrpo.engine.BadInputException.class, () -> config(Map.of("aggregation", "token_mean")));
        assertTrue(e.getMessage().contains("aggregation"), e.getMessage());
        e = assertThrows(io.hintgrpo.engine.BadInputException.class, () -> config(Map.of("group_size", 1)));
        assertTrue(e.getMessage().contains("group_size"), e.getMessage());
        e = assertThrows(io.hintgrpo.engine.BadInputException.class, () -> config(Map.of("hint_rate_end", 1.5)));
        assertTrue(e.getMessage().contains("hint rates"), e.getMessage());
        // every key the messages name is a key a config file can set
        assertEquals(7, config(Map.of("max_bad_steps_in_a_row", 7)).loop().maxBadStepsInARow());
        e = assertThrows(io.hintgrpo.engine.BadInputException.class, () -> config(Map.of("max_bad_steps_in_a_row", 0)));
        assertTrue(e.getMessage().contains("max_bad_steps_in_a_row"), e.getMessage());
    }
}
