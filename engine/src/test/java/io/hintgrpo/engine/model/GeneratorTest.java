package io.hintgrpo.engine.model;

import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.cpu.CpuKernels;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class GeneratorTest {

    private static Model model(ModelConfig cfg) {
        Model m = new Model(new CpuKernels(), cfg);
        m.initialize(21);
        return m;
    }

    /** The cache path's log-probs of what it generated equal a full training forward over prompt + completion. */
    @Test
    void decodeLogprobsMatchAFullForward() {
        ModelConfig cfg = TestModels.multimodalConfig("mlp");
        Model m = model(cfg);
        List<Sequence> prompts = TestModels.randomSequences(cfg, new SplittableRandom(3), 9, 4, 6);
        for (float temperature : new float[]{0f, 0.8f}) {
            List<Generator.Completion> out = new Generator(m).generate(prompts,
                    new Generator.Options(7, temperature, 0, 1f, 99, null).withLogprobs());
            List<Sequence> full = new ArrayList<>();
            for (int s = 0; s < prompts.size(); s++) {
                Sequence p = prompts.get(s);
                int[] ids = Arrays.copyOf(p.ids(), p.length() + out.get(s).tokens().length);
                System.arraycopy(out.get(s).tokens(), 0, ids, p.length(), out.get(s).tokens().length);
                full.add(new Sequence(ids, null, p.audio(), p.vision()));
                assertEquals(7, out.get(s).tokens().length);
                assertFalse(out.get(s).stopped());
            }
            Model.ForwardResult ref = m.forward(Batch.pack(cfg, full), temperature == 0 ? 1f : temperature);
            for (int s = 0; s < prompts.size(); s++) {
                float[] all = ref.logprobs(s);
                float[] tail = Arrays.copyOfRange(all, prompts.get(s).length() - 1, all.length);
                assertArrayEquals(tail, out.get(s).logprobs(), 1e-4f, "sequence " + s + " at T=" + temperature);
            }
        }
    }

    @Test
    void greedyPicksTheArgmaxAndASeedReproducesSamples() {
        ModelConfig cfg = TestModels.textConfig();
        Model m = model(cfg);
        List<Sequence> prompts = TestModels.randomSequences(cfg, new SplittableRandom(8), 5, 3);
        Generator g = new Generator(m);
        List<Generator.Completion> greedy = g.generate(prompts, new Generator.Options(6, 0f, 0, 1f, 1, null).withLogprobs());
        for (Generator.Completion c : greedy)
            for (float lp : c.logprobs()) assertTrue(lp > Math.log(1.0 / cfg.vocabSize()), "argmax is at least as likely as uniform");
        // without asking, no log-probs are taken, and the tokens are the same
        List<Generator.Completion> plain = g.generate(prompts, new Generator.Options(6, 0f, 0, 1f, 1, null));
        for (int s = 0; s < prompts.size(); s++) {
            assertNull(plain.get(s).logprobs());
            assertArrayEquals(greedy.get(s).tokens(), plain.get(s).tokens());
        }
        List<Generator.Completion> a = g.generate(prompts, new Generator.Options(6, 1.5f, 10, 0.9f, 7, null));
        List<Generator.Completion> b = g.generate(prompts, new Generator.Options(6, 1.5f, 10, 0.9f, 7, null));
        List<Generator.Completion> c = g.generate(prompts, new Generator.Options(6, 1.5f, 10, 0.9f, 8, null));
        for (int s = 0; s < prompts.size(); s++) assertArrayEquals(a.get(s).tokens(), b.get(s).tokens());
        assertFalse(Arrays.equals(a.get(0).tokens(), c.get(0).tokens()) && Arrays.equals(a.get(1).tokens(), c.get(1).tokens()));
    }

    /** With a stream key per prompt, a prompt's sampled tokens are the same alone, in any batch, at any position. */
    @Test
    void perPromptStreamsDoNotDependOnTheBatch() {
        ModelConfig cfg = TestModels.multimodalConfig("linear");
        Model m = model(cfg);
        List<Sequence> prompts = TestModels.randomSequences(cfg, new SplittableRandom(12), 5, 9, 3, 7, 4);
        long[] keys = new long[prompts.size()];
        for (int s = 0; s < keys.length; s++) keys[s] = io.hintgrpo.engine.Kernels.streamKey(33, s);
        Generator g = new Generator(m);
        Generator.Options opt = new Generator.Options(6, 1.3f, 0, 0.95f, 0, null).withLogprobs();
        List<Generator.Completion> all = g.generate(prompts, opt, keys);
        List<Sequence> reversed = new ArrayList<>(prompts);
        java.util.Collections.reverse(reversed);
        long[] reversedKeys = new long[keys.length];
        for (int s = 0; s < keys.length; s++) reversedKeys[s] = keys[keys.length - 1 - s];
        List<Generator.Completion> back = g.generate(reversed, opt, reversedKeys);
        for (int s = 0; s < prompts.size(); s++) {
            Generator.Completion alone = g.generate(List.of(prompts.get(s)), opt, new long[]{keys[s]}).get(0);
            assertArrayEquals(all.get(s).tokens(), alone.tokens(), "prompt " + s + " alone");
            assertArrayEquals(all.get(s).tokens(), back.get(prompts.size() - 1 - s).tokens(), "prompt " + s + " in reversed order");
            assertArrayEquals(all.get(s).logprobs(), alone.logprobs(), 1e-5f, "prompt " + s + " log-probs alone");
        }
        // and the draws are random: other keys give other tokens somewhere
        long[] other = keys.clone();
        for (int s = 0; s < other.length; s++) other[s] ^= 0x5555L;
        List<Generator.Completion> moved = g.generate(prompts, opt, other);
        boolean differs = false;
        for (int s = 0; s < prompts.size(); s++) differs |= !Arrays.equals(all.get(s).tokens(), moved.get(s).tokens());
        assertTrue(differs, "other keys, other samples");
        assertThrows(IllegalArgumentException.class, () -> g.generate(prompts, opt, new long[2]));
    }

    /**
     * Continuous batching: requests join a running decode batch as slots free up, with their own
     * keys, budgets and stop tokens, and each gets exactly the tokens (and log-probs) it gets when
     * generated alone.
     */
    @Test
    void aDecodeBatchAdmitsRowsMidRunAndEachGetsItsOwnTokens() {
        ModelConfig cfg = TestModels.multimodalConfig("mlp");
        Model m = model(cfg);
        List<Sequence> prompts = TestModels.randomSequences(cfg, new SplittableRandom(15), 5, 8, 3, 6, 4, 7, 5);
        int n = prompts.size();
        int[] budgets = {5, 2, 7, 3, 6, 4, 5};
        Generator g = new Generator(m);
        Generator.Options opt = new Generator.Options(8, 1.2f, 0, 0.95f, 0, null).withLogprobs();
        // a stop token sequence 2 draws on its own mid-way, so that row ends early in the batch
        int stop = g.generate(List.of(prompts.get(2)), new Generator.Options(7, 1.2f, 0, 0.95f, 0, null), new long[]{Kernels.streamKey(5, 2)})
                .get(0).tokens()[2];
        List<List<Integer>> got = new ArrayList<>();
        List<List<Float>> gotLp = new ArrayList<>();
        for (int i = 0; i < n; i++) { got.add(new ArrayList<>()); gotLp.add(new ArrayList<>()); }
        int[] requestOf = new int[3];
        int next = 0, steps = 0;
        try (Generator.DecodeBatch batch = g.new DecodeBatch(3, 16, opt)) {
            assertThrows(IllegalArgumentException.class, () -> batch.admit(prompts.get(0), 1, 12, null), "8 + 12 > 16 positions");
            while (next < n || batch.active() > 0) {
                // admit one request per step while a slot is free: rows start at different times
                if (next < n && batch.freeSlot() >= 0) {
                    Generator.Token t = batch.admit(prompts.get(next), Kernels.streamKey(5, next), budgets[next], new int[]{stop});
                    requestOf[t.slot()] = next;
                    got.get(next).add(t.token());
                    gotLp.get(next).add(t.logprob());
                    next++;
                }
                for (Generator.Token t : batch.step()) {
                    got.get(requestOf[t.slot()]).add(t.token());
                    gotLp.get(requestOf[t.slot()]).add(t.logprob());
                }
                steps++;
            }
            assertEquals(0, batch.step().size(), "nothing active, nothing drawn");
            while (batch.freeSlot() >= 0) batch.admit(prompts.get(1), 9, 3, null);
            assertThrows(IllegalStateException.class, () -> batch.admit(prompts.get(1), 9, 3, null), "full");
            batch.retire(1);
            assertEquals(1, batch.freeSlot());
        }
        assertTrue(steps < java.util.Arrays.stream(budgets).sum(), "rows overlapped: " + steps + " steps");
        for (int i = 0; i < n; i++) {
            Generator.Completion alone = g.generate(List.of(prompts.get(i)),
                    new Generator.Options(budgets[i], 1.2f, 0, 0.95f, 0, new int[]{stop}).withLogprobs(), new long[]{Kernels.streamKey(5, i)}).get(0);
            int[] tokens = got.get(i).stream().mapToInt(Integer::intValue).toArray();
            assertArrayEquals(alone.tokens(), tokens, "request " + i);
            for (int t = 0; t < tokens.length; t++) assertEquals(alone.logprobs()[t], gotLp.get(i).get(t), 1e-5, "request " + i + " token " + t);
        }
        assertTrue(got.get(2).size() <= 3, "request 2 stopped at its stop token");
    }

    @Test
    void stopsAtAStopTokenPerSequence() {
        ModelConfig cfg = TestModels.textConfig();
        Model m = model(cfg);
        List<Sequence> prompts = TestModels.randomSequences(cfg, new SplittableRandom(4), 5, 7);
        Generator g = new Generator(m);
        List<Generator.Completion> free = g.generate(prompts, new Generator.Options(8, 0f, 0, 1f, 1, null));
        int stop = free.get(0).tokens()[2]; // greedy is deterministic: sequence 0 meets this token by step 3
        List<Generator.Completion> cut = g.generate(prompts, new Generator.Options(8, 0f, 0, 1f, 1, new int[]{stop}));
        int first = 0;
        while (free.get(0).tokens()[first] != stop) first++;
        assertTrue(cut.get(0).stopped());
        assertArrayEquals(Arrays.copyOf(free.get(0).tokens(), first + 1), cut.get(0).tokens());
        for (int s = 0; s < prompts.size(); s++) {
            int[] t = free.get(s).tokens();
            int n = 0;
            while (n < t.length && t[n] != stop) n++;
            assertEquals(Math.min(t.length, n + 1), cut.get(s).tokens().length, "sequence " + s);
        }
    }
}
