package io.hintgrpo.engine.cuda;

import io.hintgrpo.engine.Backends;
import io.hintgrpo.engine.model.AdamW;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Generator;
import io.hintgrpo.engine.model.LoraConfig;
import io.hintgrpo.engine.model.MemoryPlan;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.Precision;
import io.hintgrpo.engine.model.Sequence;
import io.hintgrpo.engine.model.TestModels;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The memory plan against the peak DeviceMemory measures on cuda-emu, within 5 %: training steps
 * and generation over shapes and settings (full training and LoRA, fp32 and bf16, a frozen bf16
 * base, recompute, text-only and with both projectors).
 */
class MemoryPlanTest {
    private static final LoraConfig LORA = LoraConfig.of(4, 8, List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"));

    private static ModelConfig config(String name) {
        return name.equals("text") ? TestModels.textConfig() : TestModels.multimodalConfig(name);
    }

    /** n lengths, the first the longest (len), the rest between len / 2 and len. */
    private static int[] lengths(int n, int len) {
        int[] out = new int[n];
        for (int i = 0; i < n; i++) out[i] = i == 0 ? len : len / 2 + (i * 7) % (len - len / 2 + 1);
        return out;
    }

    private static Model model(CudaKernels k, MemoryPlan.Setup s) {
        Model m = s.frozenBf16() ? Model.frozenBf16(k, s.config()) : new Model(k, s.config());
        m.initialize(3);
        if (s.lora() != null) m.attachLora(s.lora(), 4);
        m.setPrecision(s.precision());
        m.setRecompute(s.recompute());
        return m;
    }

    private static void within5(MemoryPlan.Phase plan, long measured) {
        double ratio = (double) plan.total() / measured;
        System.out.printf(java.util.Locale.ROOT, "MemoryPlanTest %s: plan %,d B, measured peak %,d B, plan/measured %.4f%n",
                plan.name(), plan.total(), measured, ratio);
        assertTrue(Math.abs(ratio - 1) <= 0.05, plan.name() + ": plan " + plan.total() + " vs measured peak " + measured + " " + plan.items());
    }

    @ParameterizedTest
    @CsvSource({"text, fp32, false, false, 3, 11", "text, bf16, false, true, 5, 7", "mlp, fp32, false, false, 4, 9",
            "mlp, bf16, false, false, 2, 16", "mlp, fp32, true, false, 4, 9", "mlp, bf16, true, false, 4, 9",
            "mlp, bf16, true, true, 6, 12", "linear, fp32, false, true, 3, 20"})
    void trainingStepPeakMatchesThePlan(String name, String precision, boolean lora, boolean recompute, int n, int len) {
        ModelConfig cfg = config(name);
        CudaKernels k = (CudaKernels) Backends.open("cuda-emu");
        try {
            MemoryPlan.Setup s = new MemoryPlan.Setup(cfg, lora ? LORA : null, Precision.parse(precision), recompute, true, k.logitChunkFloats());
            Batch batch = Batch.pack(cfg, TestModels.randomSequences(cfg, new SplittableRandom(n * 31L + len), lengths(n, len)));
            k.memory().resetPeak();
            long before = k.memory().bytesInUse();
            try (Model m = model(k, s); AdamW opt = new AdamW(m, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f)) {
                for (int step = 0; step < 2; step++) {
                    m.zeroGrad();
                    m.forwardBackward(batch, 1f);
                    opt.step(1f);
                }
                k.synchronize();
                within5(MemoryPlan.trainingStep(s, batch.b, batch.t, new MemoryPlan.Features(batch.audio.n(), batch.vision.n())),
                        k.memory().peakBytes() - before);
            }
        } finally {
            k.close();
        }
    }

    @ParameterizedTest
    @CsvSource({"text, fp32, false, 4, 6", "mlp, fp32, false, 3, 8", "mlp, bf16, true, 5, 6", "linear, bf16, false, 2, 10", "mlp, fp32, true, 5, 6", "mlp, bf16, false, 5, 6", "mlp, fp32, false, 5, 6"})
    void generationPeakMatchesThePlan(String name, String precision, boolean lora, int n, int maxNew) {
        ModelConfig cfg = config(name);
        CudaKernels k = (CudaKernels) Backends.open("cuda-emu");
        try {
            MemoryPlan.Setup s = new MemoryPlan.Setup(cfg, lora ? LORA : null, Precision.parse(precision), false, false, k.logitChunkFloats());
            List<Sequence> prompts = TestModels.randomSequences(cfg, new SplittableRandom(n), lengths(n, 9));
            Batch packed = Batch.pack(cfg, prompts);
            k.memory().resetPeak();
            long before = k.memory().bytesInUse();
            try (Model m = model(k, s)) {
                new Generator(m).generate(prompts, new Generator.Options(maxNew, 1f, 0, 1f, 1, null));
                k.synchronize();
                within5(MemoryPlan.generation(s, n, packed.t, maxNew, new MemoryPlan.Features(packed.audio.n(), packed.vision.n())),
                        k.memory().peakBytes() - before);
            }
        } finally {
            k.close();
        }
    }
}
