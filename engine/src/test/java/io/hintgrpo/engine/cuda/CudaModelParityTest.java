package io.hintgrpo.engine.cuda;

import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.model.AdamW;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Generator;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.ParamLayout;
import io.hintgrpo.engine.model.Sequence;
import io.hintgrpo.engine.model.TestModels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The whole model on {@link CudaKernels} against {@link CpuKernels}: a full fp32 training step
 * (forward, LM-head cross-entropy, backward, AdamW) and batched decode, on the small test configs.
 * Logits, loss and log-probs ≤ 1e-4 relative, every gradient ≤ 1e-3, parameters after AdamW
 * ≤ 1e-4; decode draws the same tokens for the same seed with matching log-probs. The driver is
 * chosen as in {@link CudaParityTest}; each config runs in another emulator thread order.
 */
class CudaModelParityTest {

    private static final Map<String, Double> WORST = new TreeMap<>();

    @AfterAll
    static void report() {
        CudaParityTest.report(WORST, "CudaModelParityTest");
    }

    private static ModelConfig config(String name) {
        return name.equals("text") || name.equals("long") ? TestModels.textConfig() : TestModels.multimodalConfig(name);
    }

    /** The configs take turns over the thread orders, so each order runs a whole model. */
    private static String order(String name) {
        List<String> orders = CudaParityTest.orders();
        int i = switch (name) {
            case "text" -> 0;
            case "mlp", "long" -> 1;
            default -> 2;
        };
        return orders.get(i % orders.size());
    }

    private static CudaKernels open(String name) {
        return new CudaKernels(CudaParityTest.openDriver(order(name)),
                CudaParityTest.driverKind().equals("cuda") ? "cuda" : "cuda-emu");
    }

    /** A cpu model with seeded weights and perturbed norms and biases, and a copy of it on the device. */
    static Model[] twinModels(ModelConfig cfg, CudaKernels gpu) {
        Model cpu = new Model(new CpuKernels(), cfg);
        cpu.initialize(42);
        SplittableRandom rng = new SplittableRandom(43);
        for (ParamLayout.Entry e : cpu.layout.entries()) {
            if (e.shape().length == 1) { // non-trivial norms and biases, so their gradients matter
                float[] v = cpu.download(e.name());
                for (int i = 0; i < v.length; i++) v[i] += (float) (0.1 * rng.nextGaussian());
                cpu.upload(e.name(), v);
            }
        }
        Model dev = new Model(gpu, cfg);
        for (ParamLayout.Entry e : cpu.layout.entries()) dev.upload(e.name(), cpu.download(e.name()));
        return new Model[]{cpu, dev};
    }

    private static void within(String what, float[] got, float[] want, double tolerance) {
        double err = CudaParityTest.relativeError(got, want);
        synchronized (WORST) {
            WORST.merge(what.replaceAll("model\\.layers\\.\\d+\\.", "model.layers.*."), err, Math::max);
        }
        assertTrue(err <= tolerance, what + ": relative error " + err + " > " + tolerance);
    }

    /** "long": the text config with sequences past the attention kernels' 32-row tiles. */
    @ParameterizedTest
    @ValueSource(strings = {"text", "mlp", "linear", "long"})
    void trainingStepMatchesCpu(String name) {
        ModelConfig cfg = config(name);
        int[] lengths = name.equals("long") ? new int[]{40, 17, 33} : new int[]{9, 5, 7};
        try (CudaKernels gpu = open(name)) {
            Model[] m = twinModels(cfg, gpu);
            Batch batch = Batch.pack(cfg, TestModels.randomSequences(cfg, new SplittableRandom(7), lengths));

            within("logits", m[1].logits(batch), m[0].logits(batch), 1e-4);

            AdamW[] opt = {new AdamW(m[0], 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f), new AdamW(m[1], 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f)};
            long inUseAfterFirstStep = 0;
            for (int step = 0; step < 2; step++) {
                Model.ForwardResult[] r = new Model.ForwardResult[2];
                double[] norm = new double[2];
                for (int i = 0; i < 2; i++) {
                    m[i].zeroGrad();
                    r[i] = m[i].forwardBackward(batch, 0.8f);
                }
                // signed weights: the loss can cancel, so its scale is Σ |weight · logprob|
                double scale = 0;
                for (int i = 0; i < batch.weights.length; i++) scale += Math.abs(batch.weights[i] * r[0].logprobs()[i]);
                double lossErr = Math.abs(r[1].loss() - r[0].loss()) / scale;
                synchronized (WORST) {
                    WORST.merge("loss", lossErr, Math::max);
                }
                assertTrue(lossErr <= 1e-4, "loss at step " + step + ": " + r[1].loss() + " vs " + r[0].loss());
                within("logprobs", r[1].logprobs(), r[0].logprobs(), 1e-4);
                within("entropy", r[1].entropy(), r[0].entropy(), 1e-4);
                for (ParamLayout.Entry e : m[0].layout.entries())
                    within("grad " + e.name(), m[1].downloadGrad(e.name()), m[0].downloadGrad(e.name()), 1e-3);
                for (int i = 0; i < 2; i++) norm[i] = opt[i].step(1.0f);
                assertEquals(norm[0], norm[1], 1e-4 * norm[0], "gradient norm at step " + step);
                for (ParamLayout.Entry e : m[0].layout.entries())
                    within("params after adamw", m[1].download(e.name()), m[0].download(e.name()), 1e-4);
                // a step allocates only what it frees again
                if (step == 0) inUseAfterFirstStep = gpu.memory().bytesInUse();
                else assertEquals(inUseAfterFirstStep, gpu.memory().bytesInUse(), "device bytes in use grew over a step");
            }
            opt[1].close();
            m[1].close();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"text", "mlp"})
    void decodeMatchesCpu(String name) {
        ModelConfig cfg = config(name);
        try (CudaKernels gpu = open(name)) {
            Model[] m = twinModels(cfg, gpu);
            List<Sequence> prompts = TestModels.randomSequences(cfg, new SplittableRandom(3), 9, 4, 6);
            for (Generator.Options opt : List.of(
                    new Generator.Options(6, 0f, 0, 1f, 1, null).withLogprobs(),
                    new Generator.Options(6, 0.8f, 10, 0.9f, 7, null).withLogprobs(),
                    new Generator.Options(6, 1.3f, 0, 1f, 11, null).withLogprobs())) {
                List<Generator.Completion> want = new Generator(m[0]).generate(prompts, opt);
                List<Generator.Completion> got = new Generator(m[1]).generate(prompts, opt);
                List<Sequence> full = new ArrayList<>();
                for (int s = 0; s < prompts.size(); s++) {
                    String what = "sequence " + s + " at T=" + opt.temperature();
                    assertArrayEquals(want.get(s).tokens(), got.get(s).tokens(), what + ": tokens");
                    within("decode logprobs", got.get(s).logprobs(), want.get(s).logprobs(), 1e-4);
                    assertEquals(want.get(s).stopped(), got.get(s).stopped(), what);
                    Sequence p = prompts.get(s);
                    int[] ids = Arrays.copyOf(p.ids(), p.length() + got.get(s).tokens().length);
                    System.arraycopy(got.get(s).tokens(), 0, ids, p.length(), got.get(s).tokens().length);
                    full.add(new Sequence(ids, null, p.audio(), p.vision()));
                }
                // the cache path's log-probs equal a full training forward over prompt + completion, on the device
                Model.ForwardResult ref = m[1].forward(Batch.pack(cfg, full), opt.temperature() == 0 ? 1f : opt.temperature());
                for (int s = 0; s < prompts.size(); s++) {
                    float[] all = ref.logprobs(s);
                    within("decode logprobs vs full forward", got.get(s).logprobs(),
                            Arrays.copyOfRange(all, prompts.get(s).length() - 1, all.length), 1e-4);
                }
            }
            m[1].close();
        }
    }

    /**
     * Activation recompute on the device: the same gradients bit for bit (the emulator's kernels
     * are deterministic), and the step's peak memory lower by exactly (layers − 1) × one layer's
     * saved activations.
     */
    @ParameterizedTest
    @ValueSource(strings = {"text", "mlp"})
    void recomputeSavesOneLayerSetPerLayerOnTheDevice(String name) {
        ModelConfig cfg = config(name);
        try (CudaKernels gpu = open(name)) {
            Model dev = twinModels(cfg, gpu)[1];
            Batch batch = Batch.pack(cfg, TestModels.randomSequences(cfg, new SplittableRandom(7), 9, 5, 7));
            long[] peak = new long[2];
            float[][] grads = new float[2][];
            for (int r = 0; r < 2; r++) {
                dev.setRecompute(r == 1);
                dev.zeroGrad();
                dev.forwardBackward(batch, 0.9f); // sizes the arena for this setting
                gpu.memory().resetPeak();
                dev.zeroGrad();
                dev.forwardBackward(batch, 0.9f);
                peak[r] = gpu.memory().peakBytes();
                grads[r] = new float[Math.toIntExact(dev.grads().length)];
                gpu.download(dev.grads(), grads[r]);
            }
            if (CudaParityTest.driverKind().equals("emu")) assertArrayEquals(grads[0], grads[1], 0f, "gradients with and without recompute");
            else within("recompute gradients", grads[1], grads[0], 1e-5);
            long m = (long) batch.b * batch.t, c = cfg.hiddenSize(), inter = cfg.intermediateSize();
            long perLayer = 3 * m * c + 2 * m + m * cfg.qkvDim() + m * cfg.qDim() + (long) batch.b * cfg.numHeads() * batch.t + 3 * m * inter;
            assertEquals(4L * (cfg.numLayers() - 1) * perLayer, peak[0] - peak[1], "peak bytes saved by recompute");
            dev.close();
        }
    }
}
