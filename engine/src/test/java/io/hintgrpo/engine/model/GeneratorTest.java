package io.hintgrpo.engine.model;

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
