package io.hintgrpo.engine.model;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.cpu.CpuKernels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@link Precision#BF16} on the cpu backend (its gemmBf16 rounds the operands to bf16 exactly as
 * the device does and sums in fp32) against {@link Precision#FP32} of the same model: logits
 * within 2e-2 and every gradient within 5e-2 relative (‖bf16 − fp32‖ / ‖fp32‖), a 50-step AdamW
 * run on one batch within 2 % of the fp32 loss at every step; the bf16 weight copy follows every
 * change of the master weights; FP32 after BF16 is bit-identical to never having switched.
 */
class Bf16PrecisionTest {

    private static ModelConfig config(String name) {
        if (name.equals("tc")) return TestModels.tensorCoreAttentionConfig(); // head dim 16: attentionBf16
        return name.equals("text") ? TestModels.textConfig() : TestModels.multimodalConfig(name);
    }

    private static Model model(ModelConfig cfg, long seed) {
        return TestModels.perturbed(cfg, seed);
    }

    static double relativeError(float[] got, float[] ref) {
        assertEquals(ref.length, got.length);
        double diff = 0, norm = 0;
        for (int i = 0; i < ref.length; i++) {
            diff += Math.pow((double) got[i] - ref[i], 2);
            norm += Math.pow(ref[i], 2);
        }
        return norm == 0 ? Math.sqrt(diff) : Math.sqrt(diff / norm);
    }

    /**
     * bf16 keeps 8 significant bits: each operand is off by up to 2⁻⁹ relative, so a dot product
     * of random-signed terms is off by about 2⁻⁹ of its terms' size, a few 1e-3 of the result.
     * Gradients pass through more rounded GEMMs (the backward's dOut is rounded too, layer after
     * layer), hence their looser bound; both bounds leave several times the measured error.
     */
    @ParameterizedTest
    @ValueSource(strings = {"text", "mlp", "linear", "tc"})
    void bf16LogitsAndGradientsStayCloseToFp32(String name) {
        ModelConfig cfg = config(name);
        Batch batch = Batch.pack(cfg, TestModels.randomSequences(cfg, new SplittableRandom(7), 9, 5, 7));
        try (Model m = model(cfg, 42)) {
            float[] logits32 = m.logits(batch);
            m.zeroGrad();
            double loss32 = m.forwardBackward(batch, 0.9f).loss();
            List<float[]> grads32 = new ArrayList<>();
            for (ParamLayout.Entry e : m.layout.entries()) grads32.add(m.downloadGrad(e.name()));

            m.setPrecision(Precision.BF16);
            float[] logits16 = m.logits(batch);
            double logitErr = relativeError(logits16, logits32);
            assertTrue(logitErr > 0, "bf16 logits equal fp32 bit for bit: the GEMMs did not run on bf16");
            assertTrue(logitErr <= 2e-2, "logits: relative error " + logitErr);
            m.zeroGrad();
            double loss16 = m.forwardBackward(batch, 0.9f).loss();
            double worst = 0;
            String worstName = "";
            int i = 0;
            for (ParamLayout.Entry e : m.layout.entries()) {
                double err = relativeError(m.downloadGrad(e.name()), grads32.get(i++));
                if (err > worst) { worst = err; worstName = e.name(); }
                assertTrue(err <= 5e-2, "grad " + e.name() + ": relative error " + err);
            }
            System.out.printf("Bf16PrecisionTest %s: logits %.2e, loss %.2e, worst gradient %.2e (%s)%n",
                    name, logitErr, Math.abs(loss16 - loss32) / Math.abs(loss32), worst, worstName);
        }
    }

    /** SFT-like: unit weights on every next-token prediction, token-mean loss, clipping, decay, warm lr. */
    @Test
    void bf16LossCurveTracksFp32Over50AdamWSteps() {
        ModelConfig cfg = TestModels.textConfig();
        SplittableRandom rng = new SplittableRandom(11);
        List<Sequence> seqs = new ArrayList<>();
        int[] lengths = {12, 9, 16, 7};
        int tokens = 0;
        for (int len : lengths) tokens += len - 1;
        for (int len : lengths) {
            int[] ids = new int[len];
            for (int t = 0; t < len; t++) ids[t] = rng.nextInt(cfg.vocabSize());
            float[] w = new float[len];
            Arrays.fill(w, 0, len - 1, 1f / tokens);
            seqs.add(new Sequence(ids, w, null, null));
        }
        Batch batch = Batch.pack(cfg, seqs);
        double[][] curve = new double[2][50];
        for (Precision p : Precision.values()) {
            try (Model m = model(cfg, 5); AdamW opt = new AdamW(m, 3e-3f, 0.9f, 0.95f, 1e-8f, 0.01f)) {
                m.setPrecision(p);
                for (int s = 0; s < 50; s++) {
                    m.zeroGrad();
                    curve[p.ordinal()][s] = m.forwardBackward(batch, 1f).loss();
                    opt.step(1f);
                }
            }
        }
        double worst = 0;
        for (int s = 0; s < 50; s++) {
            double dev = Math.abs(curve[1][s] - curve[0][s]) / curve[0][s];
            worst = Math.max(worst, dev);
            assertTrue(dev <= 0.02, "step " + s + ": bf16 loss " + curve[1][s] + " vs fp32 " + curve[0][s]);
        }
        // the run must actually learn, or tracking a flat curve proves little
        assertTrue(curve[0][49] < 0.7 * curve[0][0], "fp32 loss " + curve[0][0] + " → " + curve[0][49]);
        System.out.printf("Bf16PrecisionTest loss curve: fp32 %.4f → %.4f, bf16 %.4f → %.4f, worst step deviation %.2e%n",
                curve[0][0], curve[0][49], curve[1][0], curve[1][49], worst);
    }

    /** After an upload or an optimizer step, bf16 results equal those of a fresh bf16 model holding the same weights. */
    @Test
    void bf16WeightCopyFollowsEveryChangeOfTheMasterWeights() {
        ModelConfig cfg = TestModels.multimodalConfig("mlp");
        Batch batch = Batch.pack(cfg, TestModels.randomSequences(cfg, new SplittableRandom(3), 8, 6));
        try (Model m = model(cfg, 1); AdamW opt = new AdamW(m, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f)) {
            m.setPrecision(Precision.BF16);
            m.logits(batch); // the copy is current now
            m.upload("lm_head.weight".equals(m.lmHeadName()) ? "lm_head.weight" : "model.embed_tokens.weight",
                    model(cfg, 2).download(m.lmHeadName()));
            assertArrayEquals(freshBf16Logits(m, batch), m.logits(batch), "after an upload");
            m.zeroGrad();
            m.forwardBackward(batch, 1f);
            opt.step(1f);
            assertArrayEquals(freshBf16Logits(m, batch), m.logits(batch), "after an AdamW step");
        }
    }

    private static float[] freshBf16Logits(Model m, Batch batch) {
        try (Model fresh = new Model(new CpuKernels(), m.config)) {
            for (ParamLayout.Entry e : m.layout.entries()) fresh.upload(e.name(), m.download(e.name()));
            fresh.setPrecision(Precision.BF16);
            return fresh.logits(batch);
        }
    }

    @Test
    void fp32AfterBf16IsBitIdenticalToNeverSwitching() {
        ModelConfig cfg = TestModels.multimodalConfig("linear");
        Batch batch = Batch.pack(cfg, TestModels.randomSequences(cfg, new SplittableRandom(5), 7, 9));
        try (Model a = model(cfg, 3); Model b = model(cfg, 3)) {
            b.setPrecision(Precision.BF16);
            b.zeroGrad();
            b.forwardBackward(batch, 1f);
            b.setPrecision(Precision.FP32);
            assertEquals(Precision.FP32, b.precision());
            a.zeroGrad();
            b.zeroGrad();
            assertEquals(a.forwardBackward(batch, 1f).loss(), b.forwardBackward(batch, 1f).loss());
            for (ParamLayout.Entry e : a.layout.entries())
                assertArrayEquals(a.downloadGrad(e.name()), b.downloadGrad(e.name()), e.name());
        }
    }

    @Test
    void precisionNamesParseAndBadOnesNameTheFlag() {
        assertEquals(Precision.BF16, Precision.parse("bf16"));
        assertEquals(Precision.FP32, Precision.parse("FP32"));
        assertEquals("bf16", Precision.BF16.flag());
        BadInputException e = assertThrows(BadInputException.class, () -> Precision.parse("fp16"));
        assertTrue(e.getMessage().startsWith("--precision: ") && e.getMessage().contains("fp16")
                && e.getMessage().contains("fp32, bf16"), e.getMessage());
    }
}
