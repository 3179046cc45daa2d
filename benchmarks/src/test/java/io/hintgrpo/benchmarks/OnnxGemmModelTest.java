package io.hintgrpo.benchmarks;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.hintgrpo.engine.Kernels.Gemm;
import io.hintgrpo.engine.cpu.CpuGemm;
import org.junit.jupiter.api.Test;

import java.nio.FloatBuffer;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The hand-written ONNX Gemm graph computes what CpuGemm computes (the forward graph: trainer's OnnxExportTest). */
class OnnxGemmModelTest {
    private static final OrtEnvironment ENV = OrtEnvironment.getEnvironment();

    private static OrtSession session(byte[] model) throws OrtException {
        try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions()) {
            opts.setIntraOpNumThreads(1);
            return ENV.createSession(model, opts);
        }
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
