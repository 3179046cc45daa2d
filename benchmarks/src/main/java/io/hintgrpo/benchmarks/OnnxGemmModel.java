package io.hintgrpo.benchmarks;

import io.hintgrpo.engine.Kernels.Gemm;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * A one-node ONNX model Y = op(A)·op(B) for one {@link Gemm} layout, written as ModelProto bytes by
 * hand (protobuf wire format; no onnx package here). A and B are graph inputs, not initializers, so
 * ONNX Runtime packs B on every run as our gemm does.
 *
 * <p>NN is a MatMul; NT is Gemm with transB = 1 (A[m,k], B[n,k]); TN is Gemm with transA = 1
 * (A[k,m], B[k,n]). Output Y is [m, n].
 */
final class OnnxGemmModel {
    private OnnxGemmModel() {}

    static final int IR_VERSION = 8;
    static final int OPSET = 17;
    private static final int FLOAT = 1;          // TensorProto.DataType.FLOAT
    private static final int ATTRIBUTE_INT = 2;  // AttributeProto.AttributeType.INT

    static long[] shapeA(Gemm layout, int m, int n, int k) {
        return layout == Gemm.TN ? new long[]{k, m} : new long[]{m, k};
    }

    static long[] shapeB(Gemm layout, int m, int n, int k) {
        return layout == Gemm.NT ? new long[]{n, k} : new long[]{k, n};
    }

    static byte[] build(Gemm layout, int m, int n, int k) {
        Pb node = new Pb().string(1, "A").string(1, "B").string(2, "Y").string(3, "gemm");
        switch (layout) {
            case NN -> node.string(4, "MatMul");
            case NT -> node.string(4, "Gemm").message(5, intAttribute("transB", 1));
            case TN -> node.string(4, "Gemm").message(5, intAttribute("transA", 1));
        }
        Pb graph = new Pb()
                .message(1, node)
                .string(2, "gemm_" + layout)
                .message(11, valueInfo("A", shapeA(layout, m, n, k)))
                .message(11, valueInfo("B", shapeB(layout, m, n, k)))
                .message(12, valueInfo("Y", new long[]{m, n}));
        Pb opset = new Pb().string(1, "").varint(2, OPSET);
        return new Pb()
                .varint(1, IR_VERSION)
                .string(2, "hintgrpo-benchmarks")
                .message(7, graph)
                .message(8, opset)
                .bytes();
    }

    /** AttributeProto {name = 1, i = 3, type = 20}. */
    private static Pb intAttribute(String name, long value) {
        return new Pb().string(1, name).varint(3, value).varint(20, ATTRIBUTE_INT);
    }

    /** ValueInfoProto {name, type: TypeProto {tensor_type: {elem_type, shape: {dim: {dim_value}}}}}. */
    private static Pb valueInfo(String name, long[] dims) {
        Pb shape = new Pb();
        for (long d : dims) shape.message(1, new Pb().varint(1, d));
        Pb tensor = new Pb().varint(1, FLOAT).message(2, shape);
        return new Pb().string(1, name).message(2, new Pb().message(1, tensor));
    }

    /** Just enough of the protobuf wire format: varint (type 0) and length-delimited (type 2) fields. */
    private static final class Pb {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Pb varint(int field, long value) {
            raw((long) field << 3);
            raw(value);
            return this;
        }

        Pb string(int field, String s) {
            return lengthDelimited(field, s.getBytes(StandardCharsets.UTF_8));
        }

        Pb message(int field, Pb m) {
            return lengthDelimited(field, m.bytes());
        }

        byte[] bytes() {
            return out.toByteArray();
        }

        private Pb lengthDelimited(int field, byte[] b) {
            raw(((long) field << 3) | 2);
            raw(b.length);
            out.write(b, 0, b.length);
            return this;
        }

        private void raw(long v) {
            while ((v & ~0x7FL) != 0) {
                out.write((int) ((v & 0x7F) | 0x80));
                v >>>= 7;
            }
            out.write((int) v);
        }
    }
}
