package io.hintgrpo.benchmarks;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.hintgrpo.engine.Kernels.Gemm;
import io.hintgrpo.engine.cpu.CpuGemm;
import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.Presets;
import org.junit.jupiter.api.Test;

import java.nio.FloatBuffer;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The hand-written ONNX graphs compute what our kernels and model compute. */
class OnnxForwardModelTest {
    private static final OrtEnvironment ENV = OrtEnvironment.getEnvironment();

    private static OrtSession session(byte[] model) throws OrtException {
        try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions()) {
            opts.setIntraOpNumThreads(1);
            return ENV.createSession(model, opts);
        }
    }

    private static double error(Model model, int b, int t) throws OrtException {
        Batch batch = BenchModels.textBatch(model.config, b, t, 7);
        try (OrtSession s = session(OnnxForwardModel.build(model, b, t))) {
            return OnnxForwardModel.relativeError(ENV, s, model, batch);
        }
    }

    @Test
    void forwardMatchesOurLogitsOnTheEmbeddedDefault() throws OrtException {
        Model model = new Model(new CpuKernels(), Presets.embeddedDefault()); // tied head, GQA 4/2
        model.initialize(3);
        double err = error(model, 2, 16);
        assertTrue(err < 1e-4, "relative error " + err);
    }

    @Test
    void forwardMatchesWithAnUntiedHeadAndFourQueryHeadsPerKvHead() throws OrtException {
        ModelConfig cfg = new ModelConfig(64, 96, 8, 2, 2, 300, 1e-6f, 10000f, false, 64, 0, 0, -1, -1, "linear");
        Model model = new Model(new CpuKernels(), cfg);
        model.initialize(5);
        // non-trivial biases and norm weights, so a swapped or dropped one shows
        for (String name : new String[]{"model.layers.1.self_attn.k_proj.bias", "model.layers.0.input_layernorm.weight", "model.norm.weight"}) {
            float[] v = BenchModels.random(model.layout.get(name).shape()[0], name.hashCode());
            for (int i = 0; i < v.length; i++) v[i] += 1f;
            model.upload(name, v);
        }
        double err = error(model, 3, 9);
        assertTrue(err < 1e-4, "relative error " + err);
    }

    @Test
    void aChangedWeightShowsAsADisagreement() throws OrtException {
        Model model = new Model(new CpuKernels(), Presets.embeddedDefault());
        model.initialize(3);
        Batch batch = BenchModels.textBatch(model.config, 2, 16, 7);
        try (OrtSession s = session(OnnxForwardModel.build(model, 2, 16))) {
            float[] w = model.download("model.layers.2.mlp.down_proj.weight");
            for (int i = 0; i < w.length; i++) w[i] *= 3;
            model.upload("model.layers.2.mlp.down_proj.weight", w);
            double err = OnnxForwardModel.relativeError(ENV, s, model, batch);
            assertTrue(err > 1e-3, "relative error " + err + " after changing a weight the graph holds");
        }
    }

    @Test
    void paddedBatchesAreRefused() {
        Model model = new Model(new CpuKernels(), Presets.embeddedDefault());
        Batch batch = Batch.pack(model.config, java.util.List.of(
                io.hintgrpo.engine.model.Sequence.text(new int[]{1, 2, 3}), io.hintgrpo.engine.model.Sequence.text(new int[]{4})));
        assertThrows(IllegalArgumentException.class, () -> OnnxForwardModel.inputIds(ENV, batch));
    }

    @Test
    void gemmModelMatchesCpuGemmInEveryLayout() throws OrtException {
        int m = 5, n = 7, k = 3;
        for (Gemm layout : Gemm.values()) {
            float[] a = BenchModels.random(m * k, 1), b = BenchModels.random(n * k, 2), ours = new float[m * n];
            CpuGemm.gemm(layout, ours, 0, a, 0, b, 0, null, 0, m, n, k, false);
            try (OrtSession s = session(OnnxGemmModel.build(layout, m, n, k));
                 OnnxTensor ta = OnnxTensor.createTensor(ENV, FloatBuffer.wrap(a), OnnxGemmModel.shapeA(layout, m, n, k));
                 OnnxTensor tb = OnnxTensor.createTensor(ENV, FloatBuffer.wrap(b), OnnxGemmModel.shapeB(layout, m, n, k));
                 OrtSession.Result r = s.run(Map.of("A", ta, "B", tb))) {
                FloatBuffer y = ((OnnxTensor) r.get(0)).getFloatBuffer();
                for (int i = 0; i < m * n; i++) assertEquals(ours[i], y.get(i), 1e-5, layout + " element " + i);
            }
        }
    }
}
