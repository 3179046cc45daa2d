package io.hintgrpo.benchmarks;

import io.hintgrpo.engine.Kernels.Gemm;
import io.hintgrpo.trainer.export.Onnx;

/**
 * A one-node ONNX model Y = op(A)·op(B) for one {@link Gemm} layout, written as ModelProto bytes by
 * hand ({@link Onnx}). A and B are graph inputs, not initializers, so
 * ONNX Runtime packs B on every run as our gemm does.
 *
 * <p>NN is a MatMul; NT is Gemm with transB = 1 (A[m,k], B[n,k]); TN is Gemm with transA = 1
 * (A[k,m], B[k,n]). Output Y is [m, n].
 */
final class OnnxGemmModel {
    private OnnxGemmModel() {}

    static long[] shapeA(Gemm layout, int m, int n, int k) {
        return layout == Gemm.TN ? new long[]{k, m} : new long[]{m, k};
    }

    static long[] shapeB(Gemm layout, int m, int n, int k) {
        return layout == Gemm.NT ? new long[]{n, k} : new long[]{k, n};
    }

    static byte[] build(Gemm layout, int m, int n, int k) {
        Onnx.Pb node = Onnx.node(layout == Gemm.NN ? "MatMul" : "Gemm", "gemm", new String[]{"A", "B"}, "Y");
        if (layout == Gemm.NT) node.message(5, Onnx.intAttribute("transB", 1));
        if (layout == Gemm.TN) node.message(5, Onnx.intAttribute("transA", 1));
        return Onnx.model(new Onnx.Pb()
                .message(1, node)
                .string(2, "gemm_" + layout)
                .message(11, Onnx.valueInfo("A", Onnx.FLOAT, shapeA(layout, m, n, k)))
                .message(11, Onnx.valueInfo("B", Onnx.FLOAT, shapeB(layout, m, n, k)))
                .message(12, Onnx.valueInfo("Y", Onnx.FLOAT, m, n)));
    }
}
