package io.hintgrpo.engine.model;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.cpu.Parallel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class ModelTest {

    private static ModelConfig config(String name) {
        return name.equals("text") ? TestModels.textConfig() : TestModels.multimodalConfig(name);
    }

    private static Model model(ModelConfig cfg, long seed) {
        return TestModels.perturbed(cfg, seed);
    }

    /**
     * Each parameter tensor's gradient against a central difference of the loss along a random
     * direction of that tensor. The model is fp32, so the step is large and the tolerance loose
     * (it catches wiring: a wrong tensor, sign or factor); the per-op double-precision checks and
     * the PyTorch oracle carry the exactness.
     */
    @ParameterizedTest
    @ValueSource(strings = {"text", "mlp", "linear"})
    void gradientMatchesDirectionalFiniteDifference(String name) {
        ModelConfig cfg = config(name);
        Model m = model(cfg, 42);
        SplittableRandom rng = new SplittableRandom(7);
        Batch batch = Batch.pack(cfg, TestModels.randomSequences(cfg, rng, 9, 5, 7));
        m.zeroGrad();
        m.forwardBackward(batch, 0.9f);
        for (ParamLayout.Entry e : m.layout.entries()) {
            float[] p = m.download(e.name()), g = m.downloadGrad(e.name());
            double[] d = new double[p.length];
            double dn = 0;
            for (int i = 0; i < d.length; i++) { d[i] = rng.nextGaussian(); dn += d[i] * d[i]; }
            dn = Math.sqrt(dn);
            double analytic = 0;
            for (int i = 0; i < d.length; i++) { d[i] /= dn; analytic += g[i] * d[i]; }
            // Richardson-extrapolated central differences: O(h⁴) truncation with a step large enough
            // that fp32 rounding of the loss stays small beside it
            double h = 0.05;
            double d1 = (lossAt(m, batch, e.name(), p, d, h) - lossAt(m, batch, e.name(), p, d, -h)) / (2 * h);
            double d2 = (lossAt(m, batch, e.name(), p, d, 2 * h) - lossAt(m, batch, e.name(), p, d, -2 * h)) / (4 * h);
            m.upload(e.name(), p);
            double numeric = (4 * d1 - d2) / 3;
            double gnorm = 0;
            for (float x : g) gnorm += x * x;
            gnorm = Math.sqrt(gnorm);
            // error relative to the gradient's norm (the largest a directional derivative can be)
            assertTrue(Math.abs(numeric - analytic) <= 2e-2 * gnorm + 2e-5,
                    e.name() + ": analytic " + analytic + " vs numeric " + numeric + " (|g| = " + gnorm + ")");
        }
    }

    private static double lossAt(Model m, Batch batch, String name, float[] p, double[] d, double h) {
        float[] q = new float[p.length];
        for (int i = 0; i < p.length; i++) q[i] = (float) (p[i] + h * d[i]);
        m.upload(name, q);
        return m.forward(batch, 0.9f).loss();
    }

    /**
     * Activation recompute gives every gradient bit for bit (full training and LoRA, fp32 and
     * bf16, the loss head's chunks too), and its arena holds one layer's saved tensors instead of
     * every layer's.
     */
    @ParameterizedTest
    @ValueSource(strings = {"text", "mlp", "lora", "bf16-lora"})
    void recomputeGivesTheSameGradientsBitForBit(String variant) {
        ModelConfig cfg = config(variant.equals("text") ? "text" : "mlp");
        Batch batch = Batch.pack(cfg, TestModels.randomSequences(cfg, new SplittableRandom(7), 9, 5, 7));
        java.util.function.Function<Boolean, List<float[]>> run = recompute -> {
            Model m = model(cfg, 42);
            if (variant.endsWith("lora")) LoraTest.randomizeB(m.attachLora(LoraTest.ALL, 5), 6);
            if (variant.startsWith("bf16")) m.setPrecision(Precision.BF16);
            m.setRecompute(recompute);
            assertEquals(recompute, m.recompute());
            List<float[]> out = new java.util.ArrayList<>();
            for (int step = 0; step < 2; step++) { // the second on the arena the first made
                m.zeroGrad();
                out.add(m.forwardBackward(batch, 0.9f).logprobs());
            }
            Trainable t = m.trainable();
            for (ParamLayout.Entry e : t.layout().entries()) {
                float[] g = new float[Math.toIntExact(e.size())];
                m.kernels.download(t.grads().slice(e.offset(), e.size()), g);
                out.add(g);
            }
            // the loss head's path (GRPO's) too
            m.zeroGrad();
            Model.LossHead head = m.lossHead(batch, 0.9f);
            for (int c = 0; c < head.chunks(); c++) {
                head.forward(c);
                m.kernels.upload(head.weights().slice(head.rowStart(c), head.rows(c)),
                        Arrays.copyOfRange(batch.weights, head.rowStart(c), head.rowStart(c) + head.rows(c)));
                head.backward(c);
            }
            head.finish();
            float[] g = new float[Math.toIntExact(t.grads().length)];
            m.kernels.download(t.grads(), g);
            out.add(g);
            return out;
        };
        List<float[]> plain = run.apply(false), recomputed = run.apply(true);
        assertEquals(plain.size(), recomputed.size());
        for (int i = 0; i < plain.size(); i++) assertArrayEquals(plain.get(i), recomputed.get(i), 0f, "tensor " + i);
    }

    /** Recompute keeps one layer's saved tensors instead of every layer's; a forward-only arena also drops the layer inputs but two and the backward's scratch. */
    @Test
    void recomputeAndForwardOnlyArenasKeepOneLayersActivations() {
        ModelConfig cfg = config("mlp");
        long perLayer = Activations.perLayerFloats(cfg, 3, 11), m = 33, mc = m * cfg.hiddenSize();
        CpuKernels k = new CpuKernels();
        long plain = new Activations(k, cfg, 3, 11, 0, false, true).floatsLength();
        long recomputed = new Activations(k, cfg, 3, 11, 0, true, true).floatsLength();
        long forwardOnly = new Activations(k, cfg, 3, 11, 0, false, false).floatsLength();
        assertTrue(cfg.numLayers() >= 2);
        assertEquals((long) (cfg.numLayers() - 1) * perLayer, plain - recomputed);
        long backwardScratch = 2 * mc + m * cfg.qkvDim() + m * cfg.qDim() + 3 * m * cfg.intermediateSize();
        assertEquals((cfg.numLayers() - 1) * mc + backwardScratch, recomputed - forwardOnly);
    }

    /** Forward-only passes (their own small arena) give the log-probs a training forward gives, bit for bit, text and multimodal. */
    @ParameterizedTest
    @ValueSource(strings = {"text", "mlp"})
    void forwardOnlyArenaGivesTheSameLogprobs(String name) {
        ModelConfig cfg = config(name);
        Batch batch = Batch.pack(cfg, TestModels.randomSequences(cfg, new SplittableRandom(7), 9, 5, 7));
        Model fresh = model(cfg, 42), trained = model(cfg, 42);
        float[] forwardOnly = fresh.forward(batch, 0.9f).logprobs();
        trained.zeroGrad();
        float[] withBackward = trained.forwardBackward(batch, 0.9f).logprobs();
        assertArrayEquals(withBackward, forwardOnly, 0f);
        assertArrayEquals(withBackward, trained.forward(batch, 0.9f).logprobs(), 0f, "a forward on the backward arena");
        assertArrayEquals(fresh.logits(batch), trained.logits(batch), 0f);
    }

    /**
     * The loss head (chunk by chunk: forward, the caller's weights from the chunk's log-probs,
     * backward) gives exactly the gradient of the same weights passed up front, over one chunk and
     * over many (a backend with 3-row chunks), and refuses its steps out of order.
     */
    @ParameterizedTest
    @ValueSource(ints = {0, 3})
    void lossHeadWeightsMatchGivenWeights(int rowsPerChunk) {
        ModelConfig cfg = config("mlp");
        Model m = new Model(rowsPerChunk == 0 ? new CpuKernels() : new CpuKernels((long) rowsPerChunk * cfg.vocabSize()), cfg);
        m.initialize(5);
        List<Sequence> seqs = TestModels.randomSequences(cfg, new SplittableRandom(4), 6, 9, 3);
        Batch batch = Batch.pack(cfg, seqs);
        m.zeroGrad();
        Model.ForwardResult given = m.forwardBackward(batch, 0.8f);
        float[] expected = m.downloadGrad("model.layers.0.mlp.down_proj.weight");
        float[] expectedHead = m.downloadGrad(m.lmHeadName());
        // the caller sees each chunk's log-probs and writes the same weights as batch.weights
        Batch zeroed = Batch.pack(cfg, seqs.stream().map(q -> new Sequence(q.ids(), null, q.audio(), q.vision())).toList());
        float[] seen = new float[batch.rows()];
        m.zeroGrad();
        Model.LossHead head = m.lossHead(zeroed, 0.8f);
        assertEquals(rowsPerChunk == 0 ? 1 : (batch.rows() + 2) / 3, head.chunks());
        assertThrows(IllegalStateException.class, () -> head.backward(0), "a backward before its forward");
        for (int c = 0; c < head.chunks(); c++) {
            int r0 = head.rowStart(c), n = head.rows(c);
            head.forward(c);
            float[] lp = new float[n];
            m.kernels.download(head.logprob().slice(r0, n), lp);
            System.arraycopy(lp, 0, seen, r0, n);
            m.kernels.upload(head.weights().slice(r0, n), java.util.Arrays.copyOfRange(batch.weights, r0, r0 + n));
            head.backward(c);
        }
        Model.ForwardResult computed = head.finish();
        assertThrows(IllegalStateException.class, head::finish, "a head finishes once");
        assertArrayEquals(given.logprobs(), seen);
        assertEquals(given.loss(), computed.loss(), 0.0);
        assertArrayEquals(expected, m.downloadGrad("model.layers.0.mlp.down_proj.weight"));
        assertArrayEquals(expectedHead, m.downloadGrad(m.lmHeadName()));

        // the device-side log-probs of a forward are the host ones
        Buf out = m.kernels.allocF32(batch.rows());
        m.logprobs(batch, 0.8f, out);
        float[] device = new float[batch.rows()];
        m.kernels.download(out, device);
        assertArrayEquals(given.logprobs(), device);
        Model.LossHead stale = m.lossHead(zeroed, 0.8f);
        m.forward(batch, 1f);
        assertThrows(IllegalStateException.class, () -> stale.forward(0), "another forward ends a head");
    }

    /**
     * While generation holds the weights, NT GEMMs read them prepared: the logits of a text batch of
     * ≥ 16 rows (every GEMM packs then, held or not) are bit for bit the unheld ones; a weight written
     * during a hold is seen at once (the prepared copies are dropped); holds nest; an unmatched
     * release fails.
     */
    @Test
    void heldWeightsGiveTheSameLogitsAndNeverGoStale() {
        ModelConfig cfg = config("text");
        Model m = model(cfg, 6);
        Batch batch = Batch.pack(cfg, TestModels.randomSequences(cfg, new SplittableRandom(5), 9, 11));
        float[] free = m.logits(batch);
        m.holdWeights();
        m.holdWeights();
        assertArrayEquals(free, m.logits(batch), 0f, "prepared weights, same rounding");
        m.releaseWeights();
        assertArrayEquals(free, m.logits(batch), 0f, "still held once");
        String w = "model.layers.0.mlp.down_proj.weight";
        float[] v = m.download(w);
        for (int i = 0; i < v.length; i++) v[i] *= -2;
        m.upload(w, v);
        float[] changed = m.logits(batch);
        m.releaseWeights();
        assertArrayEquals(m.logits(batch), changed, 0f, "a write during a hold is used at once");
        assertFalse(java.util.Arrays.equals(free, changed));
        assertThrows(IllegalStateException.class, m::releaseWeights);
    }

    @Test
    void paddingDoesNotChangeASequencesResults() {
        ModelConfig cfg = config("mlp");
        Model m = model(cfg, 3);
        List<Sequence> seqs = TestModels.randomSequences(cfg, new SplittableRandom(9), 11, 4, 8);
        Model.ForwardResult together = m.forward(Batch.pack(cfg, seqs), 1f);
        for (int s = 0; s < seqs.size(); s++) {
            Model.ForwardResult alone = m.forward(Batch.pack(cfg, List.of(seqs.get(s))), 1f);
            assertArrayEquals(alone.logprobs(0), together.logprobs(s), 1e-5f, "sequence " + s);
            assertEquals(seqs.get(s).length() - 1, together.logprobs(s).length);
        }
    }

    @Test
    void modalityRowsReplaceThePlaceholderEmbedding() {
        ModelConfig cfg = config("mlp");
        Model m = model(cfg, 3);
        List<Sequence> seqs = TestModels.randomSequences(cfg, new SplittableRandom(2), 12);
        Batch batch = Batch.pack(cfg, seqs);
        assertTrue(batch.audio.n() > 0 && batch.vision.n() > 0, "test sequence should hold both modalities");
        float[] before = m.forward(batch, 1f).logprobs();
        // the placeholder tokens' own embedding rows are never read
        float[] emb = m.download("model.embed_tokens.weight");
        for (int j = 0; j < cfg.hiddenSize(); j++) {
            emb[cfg.audioTokenId() * cfg.hiddenSize() + j] = 100f;
            emb[cfg.visionTokenId() * cfg.hiddenSize() + j] = -100f;
        }
        m.upload("model.embed_tokens.weight", emb);
        float[] after = m.forward(batch, 1f).logprobs();
        // tied head: the placeholder rows are also LM-head rows, so only targets other than them are unchanged
        for (int i = 0; i < batch.rows(); i++) {
            int target = batch.targets[i];
            if (target >= 0 && target != cfg.audioTokenId() && target != cfg.visionTokenId())
                assertNotEquals(Float.NaN, after[i]);
        }
        // changing a feature row changes the output
        seqs.get(0).audio()[0][0] += 1f;
        float[] changed = m.forward(Batch.pack(cfg, seqs), 1f).logprobs();
        assertFalse(Arrays.equals(after, changed));
        assertEquals(before.length, after.length);
    }

    @Test
    void bitIdenticalForAnyThreadCount() {
        ModelConfig cfg = config("mlp");
        Batch batch = Batch.pack(cfg, TestModels.randomSequences(cfg, new SplittableRandom(4), 13, 6));
        float[][] grads = new float[3][];
        double[] losses = new double[3];
        int saved = Parallel.threads();
        try {
            for (int threads = 1; threads <= 3; threads++) {
                Parallel.setThreads(threads);
                Model m = model(cfg, 5);
                m.zeroGrad();
                losses[threads - 1] = m.forwardBackward(batch, 1f).loss();
                AdamW opt = new AdamW(m, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f);
                opt.step(1f);
                float[] all = new float[(int) m.layout.size()];
                m.kernels.download(m.params, all);
                grads[threads - 1] = all;
            }
        } finally {
            Parallel.setThreads(saved);
        }
        assertEquals(losses[0], losses[1]);
        assertEquals(losses[0], losses[2]);
        assertArrayEquals(grads[0], grads[1]);
        assertArrayEquals(grads[0], grads[2]);
    }

    @Test
    void initialisationIsDeterministicBySeed() {
        ModelConfig cfg = config("text");
        float[] a = new float[(int) new ParamLayout(cfg).size()], b = a.clone(), c = a.clone();
        Model m1 = model(cfg, 1), m2 = model(cfg, 1), m3 = model(cfg, 2);
        m1.kernels.download(m1.params, a);
        m2.kernels.download(m2.params, b);
        m3.kernels.download(m3.params, c);
        assertArrayEquals(a, b);
        assertFalse(Arrays.equals(a, c));
    }

    @Test
    void adamwOverfitsOneBatch() {
        ModelConfig cfg = config("linear");
        Model m = model(cfg, 8);
        List<Sequence> seqs = TestModels.randomSequences(cfg, new SplittableRandom(1), 10, 7);
        for (Sequence s : seqs) Arrays.fill(s.weights(), 1f / 17);
        Batch batch = Batch.pack(cfg, seqs);
        AdamW opt = new AdamW(m, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.01f);
        double first = 0, last = 0;
        for (int step = 0; step < 60; step++) {
            m.zeroGrad();
            last = m.forwardBackward(batch, 1f).loss();
            if (step == 0) first = last;
            opt.step(1f);
        }
        assertTrue(first > 3 && last < 0.5 * first, "loss " + first + " → " + last);
    }

    /** Moments and step restored into a fresh optimizer continue the run bit for bit. */
    @Test
    void optimizerStateRestoresExactly() {
        ModelConfig cfg = config("text");
        Batch batch = Batch.pack(cfg, TestModels.randomSequences(cfg, new SplittableRandom(6), 8, 5));
        Model a = model(cfg, 4), b = model(cfg, 4);
        AdamW optA = new AdamW(a, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f);
        for (int i = 0; i < 3; i++) { a.zeroGrad(); a.forwardBackward(batch, 1f); optA.step(1f); }
        // copy params and moments into b with a new optimizer, then take one more step on both
        AdamW optB = new AdamW(b, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f);
        for (ParamLayout.Entry e : a.layout.entries()) {
            b.upload(e.name(), a.download(e.name()));
            for (String which : new String[]{"exp_avg", "exp_avg_sq"})
                optB.uploadMoment(which, e.name(), optA.downloadMoment(which, e.name()));
        }
        optB.setSteps(optA.steps());
        a.zeroGrad(); double la = a.forwardBackward(batch, 1f).loss(); optA.step(1f);
        b.zeroGrad(); double lb = b.forwardBackward(batch, 1f).loss(); optB.step(1f);
        assertEquals(la, lb);
        for (ParamLayout.Entry e : a.layout.entries()) assertArrayEquals(a.download(e.name()), b.download(e.name()), e.name());
    }

    @Test
    void nonFiniteGradientsSkipTheUpdate() {
        ModelConfig cfg = config("text");
        Model m = model(cfg, 4);
        AdamW opt = new AdamW(m, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f);
        float[] before = m.download("model.norm.weight");
        m.zeroGrad();
        m.kernels.fill(m.grads().slice(5, 1), Float.NaN);
        assertTrue(Double.isNaN(opt.step(1f)));
        assertEquals(0, opt.steps());
        assertArrayEquals(before, m.download("model.norm.weight"));
    }

    @Test
    void badBatchesAreRefusedWithTheReason() {
        ModelConfig cfg = config("mlp");
        Exception e = assertThrows(BadInputException.class, () -> Batch.pack(cfg,
                List.of(new Sequence(new int[]{1, cfg.audioTokenId(), 2}, null, null, null))));
        assertTrue(e.getMessage().contains("1 audio placeholder tokens but 0 audio feature rows"), e.getMessage());
        e = assertThrows(BadInputException.class, () -> Batch.pack(cfg, List.of(Sequence.text(new int[]{1, 99}))));
        assertTrue(e.getMessage().contains("outside the vocabulary"), e.getMessage());
        e = assertThrows(BadInputException.class, () -> Batch.pack(cfg,
                List.of(new Sequence(new int[]{cfg.audioTokenId()}, null, new float[][]{{1, 2}}, null))));
        assertTrue(e.getMessage().contains("has 2 values, the model expects 5"), e.getMessage());
    }
}
