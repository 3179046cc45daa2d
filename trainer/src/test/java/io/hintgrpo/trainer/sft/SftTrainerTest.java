package io.hintgrpo.trainer.sft;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.io.Safetensors;
import io.hintgrpo.engine.model.AdamW;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.ParamLayout;
import io.hintgrpo.engine.model.Sequence;
import io.hintgrpo.trainer.checkpoint.Checkpoints;
import io.hintgrpo.trainer.loop.DivergedException;
import io.hintgrpo.trainer.loop.LrSchedule;
import io.hintgrpo.trainer.loop.Run;
import io.hintgrpo.trainer.loop.TrainLoop;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class SftTrainerTest {
    private static final ModelConfig CONFIG = ModelConfig.parse("""
            {"hidden_size": 16, "intermediate_size": 24, "num_attention_heads": 4, "num_key_value_heads": 2,
             "num_hidden_layers": 2, "vocab_size": 23, "tie_word_embeddings": true, "max_position_embeddings": 64}""", "test");

    @TempDir
    Path dir;

    /** Prompt of random tokens, then a response that repeats a pattern the model can learn. */
    private static List<Sequence> data(int n, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        List<Sequence> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int prompt = 2 + rng.nextInt(4), response = 3 + rng.nextInt(4);
            int[] ids = new int[prompt + response];
            float[] w = new float[ids.length];
            for (int t = 0; t < prompt; t++) ids[t] = rng.nextInt(10);
            for (int t = prompt; t < ids.length; t++) ids[t] = 10 + (ids[t - 1] + 1) % 10;
            for (int t = prompt - 1; t < ids.length - 1; t++) w[t] = 1f; // predicting response tokens
            out.add(new Sequence(ids, w, null, null));
        }
        return out;
    }

    private static SftConfig config(int steps) {
        return SftConfig.defaults().with(Map.ofEntries(Map.entry("steps", steps), Map.entry("batch_size", 4), Map.entry("grad_accum", 2),
                Map.entry("lr", 5e-3f), Map.entry("min_lr_ratio", 0.1f), Map.entry("warmup_steps", 2), Map.entry("weight_decay", 0.01f),
                Map.entry("beta1", 0.9f), Map.entry("beta2", 0.95f), Map.entry("adam_epsilon", 1e-8f), Map.entry("max_grad_norm", 1f),
                Map.entry("eval_every", 100), Map.entry("checkpoint_every", 2), Map.entry("keep_last", 3), Map.entry("seed", 7),
                Map.entry("max_bad_steps_in_a_row", 3)));
    }

    /** A run in folder run whose stop signal comes after stopAfter steps. */
    private static Run run(Path run, int stopAfter) {
        int[] calls = {0};
        return Run.in(run).fingerprint(Map.of("data", "test")).log(msg -> {}).stopWhen(() -> calls[0]++ >= stopAfter);
    }

    /** What a checkpoint of this test's runs must agree with. */
    private static Map<String, String> fingerprint(SftConfig cfg) {
        return run(Path.of("."), 0).fingerprint(SftTrainer.fingerprint(cfg)).fingerprint();
    }

    private static TrainLoop.Result<SftTrainer.StepMetrics> train(SftConfig cfg, Run run, Model m, AdamW opt, Checkpoints.State start,
                                                                  List<Sequence> train) {
        return SftTrainer.train(cfg, run, null, m, opt, start, train, null);
    }

    @Test
    void resumedRunRepeatsTheUninterruptedLossesBitForBit() {
        List<Sequence> train = data(40, 1);
        SftConfig cfg = config(7);
        Model full = new Model(new CpuKernels(), CONFIG);
        full.initialize(5);
        TrainLoop.Result<SftTrainer.StepMetrics> uninterrupted = train(cfg, run(dir.resolve("a"), Integer.MAX_VALUE), full,
                cfg.optimizer().adamw(full), new Checkpoints.State(0, 0, 0, 0, Map.of()), train);
        assertEquals(7, uninterrupted.history().size());
        assertTrue(uninterrupted.history().get(6).loss() < uninterrupted.history().get(0).loss(), "it learns");

        Model first = new Model(new CpuKernels(), CONFIG);
        first.initialize(5);
        Path run = dir.resolve("b");
        TrainLoop.Result<SftTrainer.StepMetrics> part = train(cfg, run(run, 3), first, cfg.optimizer().adamw(first),
                new Checkpoints.State(0, 0, 0, 0, Map.of()), train);
        assertTrue(part.stoppedBySignal());
        assertEquals(3, part.history().size());

        Checkpoints.Loaded ck = assertDoesNotThrow(() -> Checkpoints.load(new Checkpoints(run).latest(), new CpuKernels(),
                fingerprint(cfg), cfg.optimizer(), null, msg -> {}));
        assertEquals(3, ck.state().step());
        TrainLoop.Result<SftTrainer.StepMetrics> rest = train(cfg, run(run, Integer.MAX_VALUE), ck.model(), ck.optimizer(), ck.state(),
                train);
        assertEquals(7, rest.history().size(), "history restored from metrics.jsonl plus the new steps");
        for (int i = 0; i < 7; i++)
            assertEquals(uninterrupted.history().get(i).loss(), rest.history().get(i).loss(), "step " + (i + 1));
    }

    /**
     * LoRA through TrainLoop.start, as SftRun does: checkpoints hold the adapter (PEFT files) and
     * its moments, not the frozen base; stopped and resumed onto a fresh copy of the base, a run
     * repeats the uninterrupted losses and adapter bit for bit, and the base never changes.
     */
    /** The base of a LoRA run: fp32, or a frozen bf16 base (as sft --lora-rank with --precision bf16 loads it). */
    private static Model loraBase(boolean frozenBf16) {
        Model m = frozenBf16 ? Model.frozenBf16(new CpuKernels(), CONFIG) : new Model(new CpuKernels(), CONFIG);
        m.initialize(5);
        return m;
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(booleans = {false, true})
    void loraResumeRepeatsTheUninterruptedRunAndCheckpointsHoldOnlyTheAdapter(boolean frozenBf16) throws Exception {
        List<Sequence> train = data(40, 4);
        SftConfig cfg = config(6).with(Map.of("lora_rank", 2, "lora_alpha", 4, "lora_targets", "q_proj,v_proj,down_proj", "lr", 2e-2f));
        Model base = loraBase(frozenBf16);
        float[] baseEmbedding = base.download("model.embed_tokens.weight"), baseQ = base.download("model.layers.1.self_attn.q_proj.weight");

        Run straight = run(dir.resolve("a"), Integer.MAX_VALUE).fingerprint(SftTrainer.fingerprint(cfg));
        TrainLoop.Start s0 = TrainLoop.start(new CpuKernels(), straight, "sft", cfg, () -> base);
        assertSame(base, s0.model());
        assertNotNull(base.lora());
        assertEquals(base.lora().layout, s0.optimizer().layout(), "AdamW trains the adapter");
        TrainLoop.Result<SftTrainer.StepMetrics> uninterrupted = SftTrainer.train(cfg, straight, null, base, s0.optimizer(), s0.state(), train, null);
        assertTrue(uninterrupted.history().get(5).loss() < uninterrupted.history().get(0).loss(), "the adapter learns");
        assertArrayEquals(baseEmbedding, base.download("model.embed_tokens.weight"), "the base is frozen");
        assertArrayEquals(baseQ, base.download("model.layers.1.self_attn.q_proj.weight"), "the base is frozen");

        Path ck = new Checkpoints(dir.resolve("a")).latest();
        assertFalse(Files.exists(ck.resolve("model.safetensors")), "no copy of the frozen base in a LoRA checkpoint");
        assertTrue(Files.isRegularFile(ck.resolve("adapter_config.json")) && Files.isRegularFile(ck.resolve("adapter_model.safetensors")));
        try (Safetensors moments = Safetensors.open(ck.resolve(Checkpoints.OPTIMIZER))) {
            assertTrue(moments.has("exp_avg_sq.base_model.model.model.layers.0.mlp.down_proj.lora_B.weight"), moments.tensors().keySet().toString());
            assertEquals(2 * base.lora().layout.entries().size(), moments.tensors().size(), "moments of the adapter only");
        }

        Model fresh = loraBase(frozenBf16);
        Path runB = dir.resolve("b");
        Run stopping = run(runB, 3).fingerprint(SftTrainer.fingerprint(cfg));
        TrainLoop.Start b0 = TrainLoop.start(new CpuKernels(), stopping, "sft", cfg, () -> fresh);
        assertTrue(SftTrainer.train(cfg, stopping, null, fresh, b0.optimizer(), b0.state(), train, null).stoppedBySignal());

        Model again = loraBase(frozenBf16);
        Run resumed = run(runB, Integer.MAX_VALUE).fingerprint(SftTrainer.fingerprint(cfg)).resuming(true);
        TrainLoop.Start b1 = TrainLoop.start(new CpuKernels(), resumed, "sft", cfg, () -> again);
        assertEquals(3, b1.state().step());
        assertSame(again, b1.model(), "the checkpoint's adapter goes onto the run's base");
        TrainLoop.Result<SftTrainer.StepMetrics> rest = SftTrainer.train(cfg, resumed, null, again, b1.optimizer(), b1.state(), train, null);
        assertEquals(6, rest.history().size());
        for (int i = 0; i < 6; i++)
            assertEquals(uninterrupted.history().get(i).loss(), rest.history().get(i).loss(), 0.0, "step " + (i + 1));
        for (ParamLayout.Entry e : base.lora().layout.entries())
            assertArrayEquals(base.lora().download(e.name()), again.lora().download(e.name()), 0f, e.name());

        // the same folder under other LoRA settings is another run
        SftConfig otherRank = cfg.with(Map.of("lora_rank", 3));
        Model third = new Model(new CpuKernels(), CONFIG);
        BadInputException e = assertThrows(BadInputException.class, () -> TrainLoop.start(new CpuKernels(),
                run(runB, 0).fingerprint(SftTrainer.fingerprint(otherRank)).resuming(true), "sft", otherRank, () -> third));
        assertTrue(e.getMessage().contains("lora_rank = 2, this run has 3"), e.getMessage());
    }

    @Test
    void corruptOrMismatchedCheckpointsAreRefusedAndThePreviousOneStillLoads() throws Exception {
        List<Sequence> train = data(20, 2);
        SftConfig cfg = config(4);
        Model m = new Model(new CpuKernels(), CONFIG);
        m.initialize(5);
        Path run = dir.resolve("run");
        train(cfg, run(run, Integer.MAX_VALUE), m, cfg.optimizer().adamw(m), new Checkpoints.State(0, 0, 0, 0, Map.of()), train);
        Checkpoints cks = new Checkpoints(run);
        assertEquals(List.of("step-0000002", "step-0000004"), cks.list());
        Path latest = cks.latest();
        Path weights = latest.resolve("model.safetensors");
        byte[] bytes = Files.readAllBytes(weights);
        bytes[bytes.length - 3] ^= 0x40;
        Files.write(weights, bytes);
        BadInputException e = assertThrows(BadInputException.class, () -> Checkpoints.load(latest, new CpuKernels(),
                fingerprint(cfg), cfg.optimizer(), null, msg -> {}));
        assertTrue(e.getMessage().contains("model.safetensors: checksum mismatch"), e.getMessage());

        Path previous = run.resolve("checkpoints/step-0000002");
        assertDoesNotThrow(() -> Checkpoints.load(previous, new CpuKernels(), fingerprint(cfg), cfg.optimizer(), null, msg -> {}));
        Map<String, String> otherSeed = new java.util.HashMap<>(fingerprint(cfg));
        otherSeed.put("seed", "99");
        e = assertThrows(BadInputException.class, () -> Checkpoints.load(previous, new CpuKernels(), otherSeed, cfg.optimizer(), null, msg -> {}));
        assertTrue(e.getMessage().contains("checkpoint was written with seed = 7, this run has 99"), e.getMessage());

        // a write that died halfway leaves only a hidden temporary folder, which is never taken for a checkpoint
        Files.createDirectories(run.resolve("checkpoints/.step-0000006.tmp-123"));
        Files.writeString(run.resolve("checkpoints/.step-0000006.tmp-123/model.safetensors"), "partial");
        assertEquals(List.of("step-0000002", "step-0000004"), cks.list());
        e = assertThrows(BadInputException.class, () -> Checkpoints.verify(run.resolve("checkpoints/.step-0000006.tmp-123")));
        assertTrue(e.getMessage().contains("not a complete checkpoint"), e.getMessage());
    }

    @Test
    void nonFiniteStepsAreSkippedThenTheRunStops() {
        List<Sequence> train = data(12, 3);
        SftConfig cfg = config(10);
        Model m = new Model(new CpuKernels(), CONFIG);
        m.initialize(5);
        float[] emb = m.download("model.embed_tokens.weight");
        emb[0] = Float.NaN; // every batch reads token 0 somewhere: loss is NaN from the start
        m.upload("model.embed_tokens.weight", emb);
        for (int i = 0; i < 12; i++) train.get(i).ids()[0] = 0;
        AdamW opt = cfg.optimizer().adamw(m);
        DivergedException e = assertThrows(DivergedException.class, () -> train(cfg, run(dir.resolve("nan"), Integer.MAX_VALUE), m, opt,
                new Checkpoints.State(0, 0, 0, 0, Map.of()), train));
        assertTrue(e.getMessage().contains("3 steps in a row had a non-finite loss or gradient"), e.getMessage());
        assertEquals(0, opt.steps(), "no update was applied");
    }

    @Test
    void scheduleWarmsUpThenDecaysToTheFloor() {
        LrSchedule s = new LrSchedule(1f, 4, 20, 0.1f);
        assertEquals(0.25f, s.at(0), 1e-6);
        assertEquals(1f, s.at(3), 1e-6);
        assertEquals(1f, s.at(4), 1e-6);
        assertEquals(0.55f, s.at(12), 1e-6);
        assertEquals(0.1f, s.at(20), 1e-6);
    }

    @Test
    void batchPlanIsAFunctionOfSeedAndEpochAndCoversEveryExample() {
        int[] lengths = new int[37];
        for (int i = 0; i < lengths.length; i++) lengths[i] = 3 + (i * 7) % 11;
        BatchPlan a = new BatchPlan(lengths, 5, 1), b = new BatchPlan(lengths, 5, 1);
        for (int e = 0; e < 3; e++) {
            List<int[]> x = a.epoch(e), y = b.epoch(e);
            assertEquals(x.size(), y.size());
            boolean[] seen = new boolean[lengths.length];
            for (int i = 0; i < x.size(); i++) {
                assertArrayEquals(x.get(i), y.get(i));
                for (int j : x.get(i)) { assertFalse(seen[j]); seen[j] = true; }
            }
            for (boolean s : seen) assertTrue(s);
        }
        assertNotEquals(a.epoch(0).get(0)[0] * 1000 + a.epoch(0).get(1)[0], a.epoch(1).get(0)[0] * 1000 + a.epoch(1).get(1)[0]);
    }
}
