package io.hintgrpo.engine.cuda;

import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.model.AdamW;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Generator;
import io.hintgrpo.engine.model.Lora;
import io.hintgrpo.engine.model.LoraConfig;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.ParamLayout;
import io.hintgrpo.engine.model.Sequence;
import io.hintgrpo.engine.model.TestModels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * LoRA on {@link CudaKernels} against {@link io.hintgrpo.engine.cpu.CpuKernels}, in the style of
 * {@link CudaParityTest} and {@link CudaModelParityTest} (same driver choice, thread orders and
 * report): the {@code add_block} kernel and the frozen-norm rmsnorm backward (dweight null) on
 * random inputs between guards, ≤ 1e-5 relative; a LoRA training step on a whole model (logits,
 * loss and log-probs ≤ 1e-4, every adapter and projector gradient ≤ 1e-3, the adapter after
 * AdamW ≤ 1e-4, the base untouched, adapters off = the device's base bit for bit); greedy decode
 * with adapters (through graphs where the backend has them) drawing cpu's tokens.
 */
class CudaLoraParityTest extends GuardedTwins {

    private static final Suite SUITE = new Suite("CudaLoraParityTest");
    private static final LoraConfig ALL = LoraConfig.of(3, 6, List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"));

    static List<String> orders() {
        return CudaParityTest.orders();
    }

    @AfterAll
    static void closeAndReport() {
        SUITE.closeAndReport();
    }

    CudaLoraParityTest() {
        super(SUITE);
    }

    /** Column blocks of packed rows (first, middle, last block; strides equal to n too), and a gather into zeros. */
    @ParameterizedTest
    @MethodSource("orders")
    void addBlock(String order) {
        begin(order, 31);
        for (int[] s : new int[][]{{1, 1, 1, 1, 0}, {7, 5, 13, 5, 8}, {9, 16, 48, 16, 16}, {33, 40, 40, 100, 0}, {300, 3, 7, 3, 2}}) {
            int m = s[0], n = s[1], ldDst = s[2], ldSrc = s[3], col = s[4];
            float alpha = (float) rng.nextGaussian();
            Buf[] dst = twin(random(m * ldDst)), src = twin(random(m * ldSrc));
            for (int i = 0; i < 2; i++) {
                var k = i == 0 ? cpu : gpu;
                k.addBlock(dst[i].slice(col, (long) (m - 1) * ldDst + n), ldDst, src[i], ldSrc, m, n, alpha);
            }
            check("add_block", dst, 1e-5, m + "×" + n + " at column " + col + " of " + ldDst);
            // a column block gathered out of packed rows (src the packed one), as the LoRA backward does
            Buf[] gathered = twin(new float[m * n]);
            for (int i = 0; i < 2; i++) {
                var k = i == 0 ? cpu : gpu;
                k.addBlock(gathered[i], n, dst[i].slice(col, (long) (m - 1) * ldDst + n), ldDst, m, n, 1f);
            }
            check("add_block gather", gathered, 1e-5, m + "×" + n);
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> gpu.addBlock(twin(random(8))[1], 2, twin(random(8))[1], 4, 2, 3, 1f));
        assertTrue(e.getMessage().contains("addBlock: row strides"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> gpu.addBlock(twin(random(8))[1], 4, twin(random(8))[1], 4, 3, 3, 1f));
        assertTrue(e.getMessage().contains("addBlock: dst holds 8 elements, needs 11"), e.getMessage());
        end();
    }

    /** A frozen norm's backward: dx as with a dweight, nothing else written. */
    @ParameterizedTest
    @MethodSource("orders")
    void rmsnormBackwardWithoutDweight(String order) {
        begin(order, 32);
        for (int[] s : new int[][]{{1, 1}, {7, 33}, {3, 300}}) {
            int m = s[0], c = s[1];
            Buf[] x = twin(random(m * c)), w = twin(random(c)), out = output(m * c), rstd = output(m);
            for (int i = 0; i < 2; i++) (i == 0 ? cpu : gpu).rmsnorm(out[i], rstd[i], x[i], w[i], m, c, 1e-5f);
            Buf[] dx = twin(random(m * c)), dy = twin(random(m * c));
            for (int i = 0; i < 2; i++) (i == 0 ? cpu : gpu).rmsnormBackward(dx[i], null, dy[i], x[i], w[i], rstd[i], m, c);
            check("rmsnorm_backward_dx (frozen norm)", dx, 1e-5, m + "×" + c);
        }
        end();
    }

    private static ModelConfig config(String name) {
        return name.equals("text") ? TestModels.textConfig() : TestModels.multimodalConfig(name);
    }

    private static CudaKernels open(String name) {
        List<String> orders = CudaParityTest.orders();
        String order = orders.get((name.equals("text") ? 0 : 1) % orders.size());
        return new CudaKernels(CudaParityTest.openDriver(order), CudaParityTest.driverKind().equals("cuda") ? "cuda" : "cuda-emu");
    }

    private void within(String what, float[] got, float[] want, double tolerance) {
        double err = CudaParityTest.relativeError(got, want);
        record(what.replaceAll("layers\\.\\d+\\.", "layers.*."), err);
        assertTrue(err <= tolerance, what + ": relative error " + err + " > " + tolerance);
    }

    /** The same adapter on both: A from the same seed (drawn on the host), the same random B. */
    private static Lora[] attach(Model[] m) {
        Lora[] l = new Lora[2];
        for (int i = 0; i < 2; i++) {
            l[i] = m[i].attachLora(ALL, 3);
            TestModels.randomizeLoraB(l[i], 4, 0.05);
        }
        return l;
    }

    @ParameterizedTest
    @ValueSource(strings = {"text", "mlp"})
    void loraTrainingStepMatchesCpu(String name) {
        ModelConfig cfg = config(name);
        try (CudaKernels gpu = open(name)) {
            Model[] m = CudaModelParityTest.twinModels(cfg, gpu);
            Batch batch = Batch.pack(cfg, TestModels.randomSequences(cfg, new SplittableRandom(7), 9, 5, 7));
            float[] baseLogits = m[1].logits(batch);
            List<float[]> base = new ArrayList<>();
            for (ParamLayout.Entry e : m[1].layout.entries()) base.add(m[1].download(e.name()));
            Lora[] lora = attach(m);
            within("lora logits", m[1].logits(batch), m[0].logits(batch), 1e-4);

            AdamW[] opt = {new AdamW(m[0], 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f), new AdamW(m[1], 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f)};
            for (int step = 0; step < 2; step++) {
                Model.ForwardResult[] r = new Model.ForwardResult[2];
                for (int i = 0; i < 2; i++) {
                    m[i].zeroGrad();
                    r[i] = m[i].forwardBackward(batch, 0.8f);
                }
                within("lora logprobs", r[1].logprobs(), r[0].logprobs(), 1e-4);
                for (ParamLayout.Entry e : lora[0].layout.entries())
                    within("lora grad " + e.name(), lora[1].downloadGrad(e.name()), lora[0].downloadGrad(e.name()), 1e-3);
                double[] norm = {opt[0].step(1f), opt[1].step(1f)};
                assertEquals(norm[0], norm[1], 1e-4 * norm[0], "gradient norm at step " + step);
                for (ParamLayout.Entry e : lora[0].layout.entries())
                    within("lora params after adamw", lora[1].download(e.name()), lora[0].download(e.name()), 1e-4);
            }
            assertFalse(m[1].hasGrads(), "no base gradients on the device");
            int i = 0;
            for (ParamLayout.Entry e : m[1].layout.entries())
                assertArrayEquals(base.get(i++), m[1].download(e.name()), 0f, e.name() + " of the frozen base changed");
            m[1].setAdaptersEnabled(false);
            assertArrayEquals(baseLogits, m[1].logits(batch), 0f, "adapters off = the base");
            opt[1].close();
            m[1].close();
        }
    }

    /** Greedy decode with adapters: cpu's tokens, log-probs ≤ 1e-4 (on a backend with graphs, the captured step carries the adapters). */
    @ParameterizedTest
    @ValueSource(strings = {"text", "mlp"})
    void loraDecodeMatchesCpu(String name) {
        ModelConfig cfg = config(name);
        try (CudaKernels gpu = open(name)) {
            Model[] m = CudaModelParityTest.twinModels(cfg, gpu);
            attach(m);
            List<Sequence> prompts = TestModels.randomSequences(cfg, new SplittableRandom(3), 9, 4, 6);
            Generator.Options greedy = new Generator.Options(6, 0f, 0, 1f, 1, null).withLogprobs();
            List<Generator.Completion> want = new Generator(m[0]).generate(prompts, greedy);
            List<Generator.Completion> got = new Generator(m[1]).generate(prompts, greedy);
            for (int s = 0; s < prompts.size(); s++) {
                assertArrayEquals(want.get(s).tokens(), got.get(s).tokens(), "sequence " + s);
                within("lora decode logprobs", got.get(s).logprobs(), want.get(s).logprobs(), 1e-4);
            }
            m[1].close();
        }
    }

    /**
     * A frozen bf16 base on the device (LoRA's memory for a large model): its parameters take 2
     * bytes per matrix element and 4 per vector element, nothing else; a LoRA training step and a
     * greedy decode agree with the same frozen base on cpu under the bf16 rule (≤ 1e-2 relative;
     * the attention runs on tensor cores in bf16), the same greedy tokens, and the base is unchanged.
     */
    @ParameterizedTest
    @ValueSource(strings = {"text", "mlp"})
    void frozenBf16BaseMatchesCpu(String name) {
        ModelConfig cfg = config(name);
        try (CudaKernels gpu = open(name)) {
            Model source = CudaModelParityTest.twinModels(cfg, gpu)[0];
            long before = gpu.memory().bytesInUse();
            Model[] m = {Model.frozenBf16(source.kernels, cfg), Model.frozenBf16(gpu, cfg)};
            ParamLayout layout = m[0].layout;
            assertEquals(2 * layout.decayEnd() + 4 * (layout.size() - layout.decayEnd()), gpu.memory().bytesInUse() - before,
                    "device bytes of a frozen bf16 base");
            for (Model x : m) for (ParamLayout.Entry e : layout.entries()) x.upload(e.name(), source.download(e.name()));
            List<float[]> base = new ArrayList<>();
            for (ParamLayout.Entry e : layout.entries()) {
                base.add(m[1].download(e.name()));
                assertArrayEquals(m[0].download(e.name()), base.get(base.size() - 1), 0f, "the same bf16 rounding: " + e.name());
            }
            Lora[] lora = attach(m);
            Batch batch = Batch.pack(cfg, TestModels.randomSequences(cfg, new SplittableRandom(7), 9, 5, 7));
            within("frozen bf16 logits", m[1].logits(batch), m[0].logits(batch), 1e-2);
            AdamW[] opt = {new AdamW(m[0], 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f), new AdamW(m[1], 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f)};
            Model.ForwardResult[] r = new Model.ForwardResult[2];
            for (int i = 0; i < 2; i++) {
                m[i].zeroGrad();
                r[i] = m[i].forwardBackward(batch, 0.8f);
                opt[i].step(1f);
            }
            within("frozen bf16 logprobs", r[1].logprobs(), r[0].logprobs(), 1e-2);
            for (ParamLayout.Entry e : lora[0].layout.entries())
                within("frozen bf16 lora params after adamw", lora[1].download(e.name()), lora[0].download(e.name()), 1e-2);
            int i = 0;
            for (ParamLayout.Entry e : layout.entries())
                assertArrayEquals(base.get(i++), m[1].download(e.name()), 0f, e.name() + " of the frozen base changed");
            List<Sequence> prompts = TestModels.randomSequences(cfg, new SplittableRandom(3), 9, 4, 6);
            Generator.Options greedy = new Generator.Options(6, 0f, 0, 1f, 1, null).withLogprobs();
            List<Generator.Completion> want = new Generator(m[0]).generate(prompts, greedy), got = new Generator(m[1]).generate(prompts, greedy);
            for (int s = 0; s < prompts.size(); s++) {
                assertArrayEquals(want.get(s).tokens(), got.get(s).tokens(), "sequence " + s);
                within("frozen bf16 decode logprobs", got.get(s).logprobs(), want.get(s).logprobs(), 1e-2);
            }
            opt[1].close();
            m[1].close();
        }
    }
}
