package io.hintgrpo.engine.model;

import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.Check;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.model.LoraConfig.Target;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * LoRA on the cpu backend: an adapter with B = 0 leaves the base's forward bit for bit, adapters
 * off is the base exactly (also after training), the adapter and projector gradients match finite
 * differences for every target, only the adapter's gradients exist, AdamW on the adapter lowers
 * the loss and leaves the base untouched, and a merged model (forward and generation) computes
 * what base + adapter did.
 */
class LoraTest {

    static final LoraConfig ALL = LoraConfig.of(3, 6, List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"));

    private static ModelConfig config(String name) {
        return name.equals("text") ? TestModels.textConfig() : TestModels.multimodalConfig(name);
    }

    static void randomizeB(Lora lora, long seed) {
        TestModels.randomizeLoraB(lora, seed, 0.3);
    }

    /** The base's every tensor, in layout order. */
    private static List<float[]> baseParams(Model m) {
        List<float[]> all = new ArrayList<>();
        for (ParamLayout.Entry e : m.layout.entries()) all.add(m.download(e.name()));
        return all;
    }

    private static void assertBaseUnchanged(Model m, List<float[]> before) {
        int i = 0;
        for (ParamLayout.Entry e : m.layout.entries())
            assertArrayEquals(before.get(i++), m.download(e.name()), 0f, e.name() + " of the frozen base changed");
    }

    private static Batch batch(ModelConfig cfg, long seed) {
        return Batch.pack(cfg, TestModels.randomSequences(cfg, new SplittableRandom(seed), 9, 5, 7));
    }

    // ---- config and layout ----

    @Test
    void configChecksItsArguments() {
        LoraConfig c = LoraConfig.of(8, 16, List.of("v_proj", "q_proj"));
        assertEquals(2f, c.scaling());
        assertEquals(List.of("q_proj", "v_proj"), c.targetNames(), "layer order, whatever the order given");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LoraConfig.of(8, 16, List.of("q_proj", "qkv_proj")));
        assertTrue(e.getMessage().contains("'qkv_proj'"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> LoraConfig.of(0, 16, List.of("q_proj")));
        assertThrows(IllegalArgumentException.class, () -> LoraConfig.of(4, 0, List.of("q_proj")));
        assertThrows(IllegalArgumentException.class, () -> LoraConfig.of(4, Double.NaN, List.of("q_proj")));
        assertThrows(IllegalArgumentException.class, () -> LoraConfig.of(4, 8, List.of()));
    }

    @Test
    void layoutHasPeftNamesMatricesFirstAndTheProjectors() {
        ModelConfig cfg = config("mlp");
        LoraConfig lc = LoraConfig.of(4, 8, List.of("k_proj", "down_proj"));
        ParamLayout l = new ParamLayout(cfg, lc);
        ParamLayout.Entry a = l.get("base_model.model.model.layers.1.self_attn.k_proj.lora_A.weight");
        ParamLayout.Entry b = l.get("base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight");
        assertArrayEquals(new int[]{4, cfg.hiddenSize()}, a.shape());
        assertArrayEquals(new int[]{cfg.kvDim(), 4}, b.shape());
        assertArrayEquals(new int[]{4, cfg.intermediateSize()}, l.get("base_model.model.model.layers.0.mlp.down_proj.lora_A.weight").shape());
        assertArrayEquals(new int[]{cfg.hiddenSize(), 4}, l.get("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight").shape());
        assertFalse(l.has("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
        // 2 layers × 2 targets × (A, B) + both modalities' linear_1 and linear_2, weights and biases
        assertEquals(8 + 8, l.entries().size());
        for (ParamLayout.Entry e : l.entries()) {
            assertEquals(e.shape().length == 2, e.decay(), e.name());
            assertEquals(e.decay(), e.offset() < l.decayEnd(), e.name() + ": matrices before decayEnd, vectors after");
            assertEquals(0, e.offset() % 16, e.name() + " aligned");
            assertEquals(new ParamLayout(cfg).has(e.name()), e.name().startsWith("multi_modal_projector."), e.name());
        }
    }

    /** A like PEFT's kaiming_uniform_(a = √5): within ±1/√in and spread over it, a function of (seed, name) only; B = 0; projectors copied. */
    @Test
    void initialisationFollowsPeftAndDependsOnSeedAndNameOnly() {
        ModelConfig cfg = config("linear");
        Model m = TestModels.perturbed(cfg, 4);
        Lora lora = m.attachLora(ALL, 9);
        String q = ParamLayout.loraA(1, Target.Q_PROJ);
        float[] a = lora.download(q);
        double bound = 1 / Math.sqrt(cfg.hiddenSize()), max = 0;
        for (float x : a) {
            assertTrue(Math.abs(x) <= bound, "A outside ±1/√in: " + x);
            max = Math.max(max, Math.abs(x));
        }
        assertTrue(max > 0.7 * bound, "A fills its range");
        assertArrayEquals(new float[cfg.kvDim() * 3], lora.download(ParamLayout.loraB(0, Target.V_PROJ)));
        assertArrayEquals(m.download("multi_modal_projector.vision.linear_1.weight"), lora.download("multi_modal_projector.vision.linear_1.weight"));
        assertArrayEquals(m.download("multi_modal_projector.audio.linear_1.bias"), lora.download("multi_modal_projector.audio.linear_1.bias"));

        Model other = TestModels.perturbed(cfg, 5);
        Lora fewer = other.attachLora(LoraConfig.of(3, 1, List.of("q_proj")), 9);
        assertArrayEquals(a, fewer.download(q), 0f, "same (seed, name), same values, whatever else is attached");
        other.detachLora();
        assertFalse(java.util.Arrays.equals(a, other.attachLora(LoraConfig.of(3, 1, List.of("q_proj")), 10).download(q)));
        assertThrows(IllegalStateException.class, () -> other.attachLora(ALL, 1), "one adapter at a time");
    }

    // ---- forward ----

    /** (a) B = 0: every adapter adds exactly zero, so the forward is the base's bit for bit. */
    @ParameterizedTest
    @ValueSource(strings = {"text", "mlp"})
    void zeroBLeavesTheBaseForwardBitForBit(String name) {
        ModelConfig cfg = config(name);
        Model m = TestModels.perturbed(cfg, 42);
        Batch batch = batch(cfg, 7);
        float[] base = m.logits(batch);
        float[] baseLp = m.forward(batch, 0.9f).logprobs();
        m.attachLora(ALL, 1);
        assertArrayEquals(base, m.logits(batch));
        assertArrayEquals(baseLp, m.forward(batch, 0.9f).logprobs());
    }

    /**
     * (c) Adapters off is the base exactly, even after AdamW steps moved the adapters and the
     * projectors' trainable copies; adapters on again gives the trained model back.
     */
    @Test
    void adaptersOffIsTheBaseAlsoAfterTraining() {
        ModelConfig cfg = config("mlp");
        Model m = TestModels.perturbed(cfg, 42);
        Batch batch = batch(cfg, 7);
        float[] base = m.logits(batch);
        Lora lora = m.attachLora(ALL, 1);
        String proj = "multi_modal_projector.audio.linear_2.weight";
        try (AdamW opt = new AdamW(m, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f)) {
            for (int step = 0; step < 3; step++) {
                m.zeroGrad();
                m.forwardBackward(batch, 1f);
                opt.step(1f);
            }
        }
        assertFalse(java.util.Arrays.equals(m.download(proj), lora.download(proj)), "the projector copy trained");
        float[] trained = m.logits(batch);
        assertFalse(java.util.Arrays.equals(base, trained), "training changed the adapted model");
        m.setAdaptersEnabled(false);
        assertFalse(m.adaptersEnabled());
        assertArrayEquals(base, m.logits(batch));
        assertThrows(IllegalStateException.class, () -> m.forwardBackward(batch, 1f), "no backward with adapters off");
        assertThrows(IllegalStateException.class, () -> m.lossHead(batch, 1f));
        m.setAdaptersEnabled(true);
        assertArrayEquals(trained, m.logits(batch));
    }

    // ---- backward ----

    /** s·(x·Aᵀ)·Bᵀ in double: x [m, in], A [r, in], B [out, r] → [m, out]. */
    private static double[] delta(double[] x, double[] a, double[] b, int m, int in, int r, int out, double s) {
        double[] u = new double[m * r], y = new double[m * out];
        for (int i = 0; i < m; i++)
            for (int k = 0; k < r; k++)
                for (int j = 0; j < in; j++) u[i * r + k] += x[i * in + j] * a[k * in + j];
        for (int i = 0; i < m; i++)
            for (int o = 0; o < out; o++) {
                double v = 0;
                for (int k = 0; k < r; k++) v += u[i * r + k] * b[o * r + k];
                y[i * out + o] = s * v;
            }
        return y;
    }

    /**
     * (b) One adapter's op on its own, for every target: the forward adds s·(x·Aᵀ)·Bᵀ into the
     * target's column block of its packed output and nothing elsewhere; the backward's dA, dB and dx
     * (accumulated onto the base's dx) match central differences of a double-precision reference
     * (Check.fdGrad, as the per-op checks of CpuKernelsGradTest).
     */
    @ParameterizedTest
    @EnumSource(Target.class)
    void adapterOpMatchesADoublePrecisionReference(Target t) {
        ModelConfig cfg = config("mlp");
        Model model = TestModels.perturbed(cfg, 1);
        Lora lora = model.attachLora(ALL, 3);
        randomizeB(lora, 4);
        Kernels k = model.kernels;
        SplittableRandom rng = new SplittableRandom(17 + t.ordinal());
        int m = 5, l = 1, r = ALL.rank(), in = t.in(cfg), out = t.out(cfg), width = t.packedWidth(cfg), col = t.column(cfg);
        double s = ALL.scaling();
        float[] x = Check.randn(rng, m * in, 1), y0 = Check.randn(rng, m * width, 1);
        float[] dy = Check.randn(rng, m * width, 1), dx0 = Check.randn(rng, m * in, 1);
        double[] xd = Check.toDouble(x), ad = Check.toDouble(lora.download(ParamLayout.loraA(l, t)));
        double[] bd = Check.toDouble(lora.download(ParamLayout.loraB(l, t)));
        Buf scratch = k.allocF32(m * lora.scratchPerRow()), xb = k.allocF32(x.length), yb = k.allocF32(y0.length);
        k.fill(scratch, Float.NaN);
        k.upload(xb, x);
        k.upload(yb, y0);
        lora.forward(l, xb, yb, m, scratch, t);
        float[] y = new float[y0.length];
        k.download(yb, y);
        double[] d = delta(xd, ad, bd, m, in, r, out, s);
        float[] block = new float[m * out];
        double[] want = new double[m * out], dyBlock = new double[m * out];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < width; j++) {
                int o = j - col;
                if (o < 0 || o >= out) {
                    assertEquals(y0[i * width + j], y[i * width + j], 0f, "column " + j + " outside " + t + "'s block");
                    continue;
                }
                block[i * out + o] = y[i * width + j];
                want[i * out + o] = y0[i * width + j] + d[i * out + o];
                dyBlock[i * out + o] = dy[i * width + j];
            }
        Check.assertClose(t + " forward", block, want, 1e-5);

        model.zeroGrad();
        Buf dyb = k.allocF32(dy.length), dxb = k.allocF32(dx0.length);
        k.upload(dyb, dy);
        k.upload(dxb, dx0);
        k.fill(scratch, Float.NaN);
        lora.backward(l, xb, dyb, dxb, m, scratch, t);
        double[] ga = Check.fdGrad(v -> delta(xd, v, bd, m, in, r, out, s), ad, dyBlock);
        double[] gb = Check.fdGrad(v -> delta(xd, ad, v, m, in, r, out, s), bd, dyBlock);
        double[] gx = Check.fdGrad(v -> delta(v, ad, bd, m, in, r, out, s), xd, dyBlock);
        for (int i = 0; i < gx.length; i++) gx[i] += dx0[i];
        Check.assertClose(t + " dA", lora.downloadGrad(ParamLayout.loraA(l, t)), ga, 1e-4);
        Check.assertClose(t + " dB", lora.downloadGrad(ParamLayout.loraB(l, t)), gb, 1e-4);
        float[] dx = new float[dx0.length];
        k.download(dxb, dx);
        Check.assertClose(t + " dx (accumulated)", dx, gx, 1e-4);
        // the other layer's adapter of this target got nothing
        assertArrayEquals(new float[r * in], lora.downloadGrad(ParamLayout.loraA(0, t)));
    }

    /**
     * (b) Every adapter (A and B of each target in each layer) and projector gradient against a
     * central difference of the loss along a random direction of that tensor, as
     * ModelTest.gradientMatchesDirectionalFiniteDifference does for the base (fp32 model, so a
     * Richardson-extrapolated step of 0.05 and a tolerance of 2 % of the gradient's norm).
     */
    @ParameterizedTest
    @ValueSource(strings = {"text", "mlp", "linear"})
    void adapterGradientsMatchFiniteDifferences(String name) {
        ModelConfig cfg = config(name);
        Model m = TestModels.perturbed(cfg, 42);
        Lora lora = m.attachLora(ALL, 3);
        randomizeB(lora, 4);
        SplittableRandom rng = new SplittableRandom(7);
        Batch batch = batch(cfg, 7);
        m.zeroGrad();
        m.forwardBackward(batch, 0.9f);
        int checked = 0;
        for (ParamLayout.Entry e : lora.layout.entries()) {
            float[] p = lora.download(e.name()), g = lora.downloadGrad(e.name());
            double[] d = new double[p.length];
            double dn = 0;
            for (int i = 0; i < d.length; i++) { d[i] = rng.nextGaussian(); dn += d[i] * d[i]; }
            dn = Math.sqrt(dn);
            double analytic = 0, gnorm = 0;
            for (int i = 0; i < d.length; i++) { d[i] /= dn; analytic += g[i] * d[i]; gnorm += (double) g[i] * g[i]; }
            gnorm = Math.sqrt(gnorm);
            assertTrue(gnorm > 0, e.name() + ": zero gradient");
            double h = 0.05;
            double d1 = (lossAt(m, lora, batch, e.name(), p, d, h) - lossAt(m, lora, batch, e.name(), p, d, -h)) / (2 * h);
            double d2 = (lossAt(m, lora, batch, e.name(), p, d, 2 * h) - lossAt(m, lora, batch, e.name(), p, d, -2 * h)) / (4 * h);
            lora.upload(e.name(), p);
            double numeric = (4 * d1 - d2) / 3;
            assertTrue(Math.abs(numeric - analytic) <= 2e-2 * gnorm + 2e-5,
                    e.name() + ": analytic " + analytic + " vs numeric " + numeric + " (|g| = " + gnorm + ")");
            checked++;
        }
        assertEquals(lora.layout.entries().size(), checked);
        assertEquals(cfg.numLayers() * 7 * 2 + (name.equals("text") ? 0 : name.equals("mlp") ? 8 : 4), checked);
    }

    private static double lossAt(Model m, Lora lora, Batch batch, String name, float[] p, double[] d, double h) {
        float[] q = new float[p.length];
        for (int i = 0; i < p.length; i++) q[i] = (float) (p[i] + h * d[i]);
        lora.upload(name, q);
        return m.forward(batch, 0.9f).loss();
    }

    /** (e) With LoRA the base has no gradient buffer: attaching frees one, a training step never makes one, grads() refuses. */
    @Test
    void noBaseGradientsWithLora() {
        ModelConfig cfg = config("mlp");
        Model m = TestModels.perturbed(cfg, 42);
        m.zeroGrad();
        assertTrue(m.hasGrads());
        assertSame(m, m.trainable());
        Lora lora = m.attachLora(ALL, 1);
        assertFalse(m.hasGrads(), "attaching frees the base gradients");
        assertSame(lora, m.trainable());
        try (AdamW opt = new AdamW(m, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f)) {
            assertSame(lora.layout, opt.layout());
            m.zeroGrad();
            m.forwardBackward(batch(cfg, 7), 1f);
            Model.LossHead head = m.lossHead(batch(cfg, 8), 1f);
            for (int c = 0; c < head.chunks(); c++) { head.forward(c); head.backward(c); }
            head.finish();
            opt.step(1f);
        }
        assertFalse(m.hasGrads(), "a LoRA step allocated base gradients");
        assertThrows(IllegalStateException.class, m::grads);
        assertThrows(IllegalStateException.class, () -> m.downloadGrad("model.norm.weight"));
    }

    /** (f) AdamW on the adapter set lowers the loss of a batch it trains on; the base stays bit for bit. */
    @Test
    void adamwOnTheAdapterLowersTheLossAndLeavesTheBase() {
        ModelConfig cfg = config("mlp");
        Model m = TestModels.perturbed(cfg, 42);
        List<float[]> base = baseParams(m);
        Batch batch = Batch.pack(cfg, TestModels.randomSequences(cfg, new SplittableRandom(11), 9, 6).stream()
                .map(s -> { // SFT weights: every token 1
                    float[] ones = new float[s.length()];
                    java.util.Arrays.fill(ones, 1f);
                    return new Sequence(s.ids(), ones, s.audio(), s.vision());
                }).toList());
        Lora lora = m.attachLora(LoraConfig.of(4, 8, List.of("q_proj", "v_proj", "down_proj")), 2);
        double first = Double.NaN, last = Double.NaN;
        try (AdamW opt = new AdamW(m, 5e-2f, 0.9f, 0.95f, 1e-8f, 0.01f)) {
            for (int step = 0; step < 15; step++) {
                m.zeroGrad();
                double loss = m.forwardBackward(batch, 1f).loss();
                if (step == 0) first = loss;
                last = loss;
                assertTrue(Double.isFinite(opt.step(1f)));
            }
            assertEquals(15, opt.steps());
            assertNotNull(opt.downloadMoment("exp_avg", ParamLayout.loraB(0, Target.V_PROJ)));
            assertThrows(IllegalArgumentException.class, () -> opt.downloadMoment("exp_avg", "model.norm.weight"));
            m.detachLora();
            assertThrows(IllegalStateException.class, () -> opt.step(1f), "the trainable set went away");
        }
        System.out.printf("LoraTest: loss %.4f → %.4f over 15 adapter steps%n", first, last);
        assertTrue(last < 0.95 * first, "loss " + first + " → " + last);
        assertBaseUnchanged(m, base);
        assertNull(m.lora());
    }

    // ---- merge ----

    /** (d) The merged model's logits are base + adapter's within 1e-5; the projectors merged back; the adapter gone. */
    @ParameterizedTest
    @ValueSource(strings = {"text", "mlp"})
    void mergedModelComputesWhatBasePlusAdapterDid(String name) {
        ModelConfig cfg = config(name);
        Model m = TestModels.perturbed(cfg, 42);
        Batch batch = batch(cfg, 7);
        Lora lora = m.attachLora(ALL, 5);
        randomizeB(lora, 6);
        try (AdamW opt = new AdamW(m, 1e-2f, 0.9f, 0.95f, 1e-8f, 0f)) { // the projectors move too
            m.zeroGrad();
            m.forwardBackward(batch, 1f);
            opt.step(1f);
        }
        float[] adapted = m.logits(batch);
        List<float[]> projectors = new ArrayList<>();
        for (ParamLayout.Entry e : lora.layout.entries())
            if (e.name().startsWith("multi_modal_projector.")) projectors.add(lora.download(e.name()));
        m.mergeLora();
        assertNull(m.lora());
        assertSame(m, m.trainable());
        float[] merged = m.logits(batch);
        double worst = 0;
        for (int i = 0; i < merged.length; i++) worst = Math.max(worst, Math.abs(merged[i] - adapted[i]));
        System.out.printf("LoraTest %s: merged vs adapted logits, max |Δ| %.2e%n", name, worst);
        assertArrayEquals(adapted, merged, 1e-5f);
        int i = 0;
        for (ParamLayout.Entry e : new ParamLayout(cfg, ALL).entries())
            if (e.name().startsWith("multi_modal_projector.")) assertArrayEquals(projectors.get(i++), m.download(e.name()), 0f, e.name());
        assertThrows(IllegalStateException.class, m::mergeLora);
        assertThrows(IllegalStateException.class, () -> m.setAdaptersEnabled(false));
    }

    /** (h) Decode applies the adapters: greedy generation of base + adapter equals the merged model's (tokens, and log-probs to fp32 rounding). */
    @Test
    void generationWithLoraEqualsTheMergedModels() {
        ModelConfig cfg = config("mlp");
        Model m = TestModels.perturbed(cfg, 42);
        List<Sequence> prompts = TestModels.randomSequences(cfg, new SplittableRandom(3), 9, 4, 6);
        Generator.Options greedy = new Generator.Options(8, 0f, 0, 1f, 1, null).withLogprobs();
        List<Generator.Completion> base = new Generator(m).generate(prompts, greedy);
        Lora lora = m.attachLora(ALL, 5);
        randomizeB(lora, 6);
        List<Generator.Completion> adapted = new Generator(m).generate(prompts, greedy);
        m.setAdaptersEnabled(false);
        List<Generator.Completion> off = new Generator(m).generate(prompts, greedy);
        m.setAdaptersEnabled(true);
        m.mergeLora();
        List<Generator.Completion> merged = new Generator(m).generate(prompts, greedy);
        boolean differs = false;
        for (int s = 0; s < prompts.size(); s++) {
            assertArrayEquals(merged.get(s).tokens(), adapted.get(s).tokens(), "sequence " + s);
            assertArrayEquals(merged.get(s).logprobs(), adapted.get(s).logprobs(), 1e-5f, "sequence " + s);
            assertArrayEquals(base.get(s).tokens(), off.get(s).tokens(), "adapters off decodes as the base");
            assertArrayEquals(base.get(s).logprobs(), off.get(s).logprobs(), 0f);
            differs |= !java.util.Arrays.equals(base.get(s).tokens(), adapted.get(s).tokens());
        }
        assertTrue(differs, "the adapters should change some greedy tokens");
    }

    // ---- a frozen bf16 base ----

    /** A copy of m whose matrices hold their bf16 values (in fp32), so an fp32 model and a frozen bf16 base hold the same numbers. */
    static Model bf16Rounded(Model m, boolean frozen) {
        Model out = frozen ? Model.frozenBf16(m.kernels, m.config) : new Model(m.kernels, m.config);
        for (ParamLayout.Entry e : m.layout.entries()) {
            float[] v = m.download(e.name());
            if (e.shape().length == 2) for (int i = 0; i < v.length; i++) v[i] = io.hintgrpo.engine.Bf16.toFloat(io.hintgrpo.engine.Bf16.fromFloat(v[i]));
            out.upload(e.name(), v);
        }
        return out;
    }

    /**
     * A frozen bf16 base computes exactly what an fp32 model at BF16 precision with the same
     * (bf16-valued) weights computes: logits, log-probs, adapter gradients and two AdamW steps bit
     * for bit, adapters off too; the base's matrices are stored once, as bf16.
     */
    @ParameterizedTest
    @ValueSource(strings = {"text", "mlp"})
    void frozenBf16BaseMatchesTheBf16ModelBitForBit(String name) {
        ModelConfig cfg = config(name);
        Model source = TestModels.perturbed(cfg, 42);
        Model full = bf16Rounded(source, false), frozen = bf16Rounded(source, true);
        full.setPrecision(Precision.BF16);
        assertTrue(frozen.isFrozenBf16());
        assertEquals(Precision.BF16, frozen.precision());
        assertEquals(Buf.Type.BF16, frozen.param("model.layers.0.mlp.down_proj.weight").type, "matrices are bf16");
        assertEquals(Buf.Type.F32, frozen.param("model.norm.weight").type, "vectors stay fp32");
        assertEquals(frozen.layout.size() - frozen.layout.decayEnd(), frozen.params.length, "no fp32 copy of the matrices");
        for (ParamLayout.Entry e : full.layout.entries())
            assertArrayEquals(full.download(e.name()), frozen.download(e.name()), 0f, e.name());

        Batch batch = batch(cfg, 7);
        Model[] m = {full, frozen};
        Lora[] lora = new Lora[2];
        AdamW[] opt = new AdamW[2];
        for (int i = 0; i < 2; i++) {
            lora[i] = m[i].attachLora(ALL, 5);
            randomizeB(lora[i], 6);
            opt[i] = new AdamW(m[i], 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f);
        }
        assertArrayEquals(full.logits(batch), frozen.logits(batch), 0f, "logits");
        for (int step = 0; step < 2; step++) {
            Model.ForwardResult[] r = new Model.ForwardResult[2];
            for (int i = 0; i < 2; i++) {
                m[i].zeroGrad();
                r[i] = m[i].forwardBackward(batch, 0.8f);
            }
            assertArrayEquals(r[0].logprobs(), r[1].logprobs(), 0f, "logprobs at step " + step);
            for (ParamLayout.Entry e : lora[0].layout.entries())
                assertArrayEquals(lora[0].downloadGrad(e.name()), lora[1].downloadGrad(e.name()), 0f, "grad " + e.name());
            assertEquals(opt[0].step(1f), opt[1].step(1f), 0.0, "gradient norm");
        }
        for (ParamLayout.Entry e : lora[0].layout.entries())
            assertArrayEquals(lora[0].download(e.name()), lora[1].download(e.name()), 0f, e.name());
        for (Model x : m) x.setAdaptersEnabled(false);
        assertArrayEquals(full.logits(batch), frozen.logits(batch), 0f, "adapters off: the frozen base");
        for (AdamW o : opt) o.close();
    }

    /** Greedy decode on a frozen bf16 base with an adapter: the fp32-at-BF16 model's tokens and log-probs bit for bit. */
    @Test
    void frozenBf16BaseDecodesAsTheBf16Model() {
        ModelConfig cfg = config("mlp");
        Model source = TestModels.perturbed(cfg, 42);
        Model full = bf16Rounded(source, false), frozen = bf16Rounded(source, true);
        full.setPrecision(Precision.BF16);
        for (Model x : new Model[]{full, frozen}) randomizeB(x.attachLora(ALL, 5), 6);
        List<Sequence> prompts = TestModels.randomSequences(cfg, new SplittableRandom(3), 9, 4, 6);
        Generator.Options greedy = new Generator.Options(8, 0f, 0, 1f, 1, null).withLogprobs();
        List<Generator.Completion> want = new Generator(full).generate(prompts, greedy), got = new Generator(frozen).generate(prompts, greedy);
        for (int s = 0; s < prompts.size(); s++) {
            assertArrayEquals(want.get(s).tokens(), got.get(s).tokens(), "sequence " + s);
            assertArrayEquals(want.get(s).logprobs(), got.get(s).logprobs(), 0f, "sequence " + s);
        }
    }

    /**
     * A frozen bf16 base refuses what would need an fp32 copy or base gradients, and its merge is
     * written on the host: saveMerged's tensors are W + s·B·A in double (to fp32 rounding), the
     * adapter's projectors, the rest of the base as it is; the model itself is left unmerged.
     */
    @Test
    void frozenBf16BaseRefusesFullTrainingAndMergesOnTheHost(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        ModelConfig cfg = config("mlp");
        Model frozen = bf16Rounded(TestModels.perturbed(cfg, 42), true);
        assertThrows(IllegalStateException.class, frozen::grads);
        assertThrows(IllegalStateException.class, frozen::trainable);
        assertThrows(IllegalStateException.class, () -> frozen.setPrecision(Precision.FP32));
        frozen.setPrecision(Precision.BF16); // what it is: nothing to do
        Lora lora = frozen.attachLora(ALL, 5);
        randomizeB(lora, 6);
        try (AdamW opt = new AdamW(frozen, 1e-2f, 0.9f, 0.95f, 1e-8f, 0f)) { // the projectors move away from the base's
            frozen.zeroGrad();
            frozen.forwardBackward(batch(cfg, 7), 1f);
            opt.step(1f);
        }
        assertThrows(IllegalStateException.class, frozen::mergeLora);
        assertThrows(IllegalStateException.class, frozen::grads);
        float[] before = frozen.logits(batch(cfg, 7));

        io.hintgrpo.engine.io.ModelDir.saveMerged(frozen, dir, io.hintgrpo.engine.io.Safetensors.Dtype.F32);
        assertSame(lora, frozen.lora(), "still attached, unmerged");
        assertArrayEquals(before, frozen.logits(batch(cfg, 7)), 0f);
        int r = ALL.rank();
        double s = ALL.scaling();
        try (io.hintgrpo.engine.io.ModelDir.Tensors saved = io.hintgrpo.engine.io.ModelDir.Tensors.open(dir)) {
            for (ParamLayout.Entry e : frozen.layout.entries()) {
                float[] got = saved.read(e.name()), base = frozen.download(e.name());
                if (e.name().startsWith("multi_modal_projector.")) {
                    assertArrayEquals(lora.download(e.name()), got, 0f, e.name());
                    assertFalse(java.util.Arrays.equals(base, got), e.name() + " should be the trained copy");
                    continue;
                }
                Target target = null;
                int layer = -1;
                for (int l = 0; l < cfg.numLayers(); l++)
                    for (Target t : ALL.targets()) if (e.name().equals(t.path(l) + ".weight")) { target = t; layer = l; }
                if (target == null) {
                    assertArrayEquals(base, got, 0f, e.name());
                    continue;
                }
                int in = target.in(cfg), out = target.out(cfg);
                float[] a = lora.download(ParamLayout.loraA(layer, target)), b = lora.download(ParamLayout.loraB(layer, target));
                for (int o = 0; o < out; o++)
                    for (int i = 0; i < in; i++) {
                        double d = 0;
                        for (int k = 0; k < r; k++) d += (double) b[o * r + k] * a[k * in + i];
                        double want = base[o * in + i] + s * d;
                        assertEquals(want, got[o * in + i], 1e-6 * Math.max(1, Math.abs(want)), e.name() + "[" + o + "," + i + "]");
                    }
            }
        }
        // the merged model (fp32) computes what the frozen base + adapter did, to bf16 rounding of activations
        Model merged = io.hintgrpo.engine.io.ModelDir.load(frozen.kernels, dir, 0, null);
        double err = Bf16PrecisionTest.relativeError(before, merged.logits(batch(cfg, 7)));
        assertTrue(err <= 2e-2, "merged fp32 vs frozen bf16 + adapter logits: relative error " + err);
    }

    // ---- precision ----

    /** BF16 with LoRA: adapter GEMMs on bf16 operands (the adapter buffer is cast per GEMM), results near fp32's. */
    @Test
    void bf16LoraStaysCloseToFp32() {
        ModelConfig cfg = config("mlp");
        Model m = TestModels.perturbed(cfg, 42);
        Lora lora = m.attachLora(ALL, 5);
        TestModels.randomizeLoraB(lora, 6, 0.05);
        Batch batch = batch(cfg, 7);
        float[] logits32 = m.logits(batch);
        m.zeroGrad();
        m.forwardBackward(batch, 0.9f);
        List<float[]> grads32 = new ArrayList<>();
        for (ParamLayout.Entry e : lora.layout.entries()) grads32.add(lora.downloadGrad(e.name()));
        m.setPrecision(Precision.BF16);
        double logitErr = Bf16PrecisionTest.relativeError(m.logits(batch), logits32);
        assertTrue(logitErr > 0 && logitErr <= 2e-2, "logits: relative error " + logitErr);
        m.zeroGrad();
        m.forwardBackward(batch, 0.9f);
        int i = 0;
        for (ParamLayout.Entry e : lora.layout.entries()) {
            double err = Bf16PrecisionTest.relativeError(lora.downloadGrad(e.name()), grads32.get(i++));
            assertTrue(err <= 5e-2, "grad " + e.name() + ": relative error " + err);
        }
    }

    @Test
    void targetsKnowTheirShapesAndColumns() {
        ModelConfig cfg = config("mlp");
        int col = 0;
        for (Target t : EnumSet.of(Target.Q_PROJ, Target.K_PROJ, Target.V_PROJ)) {
            assertEquals(col, t.column(cfg));
            assertEquals(cfg.qkvDim(), t.packedWidth(cfg));
            col += t.out(cfg);
        }
        assertEquals(cfg.qkvDim(), col);
        assertEquals(cfg.intermediateSize(), Target.UP_PROJ.column(cfg));
        assertEquals("model.layers.3.mlp.gate_proj", Target.GATE_PROJ.path(3));
        assertEquals(cfg.qDim(), Target.O_PROJ.in(cfg));
    }
}
