package io.hintgrpo.benchmarks;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Just enough of ONNX's ModelProto, written by hand in the protobuf wire format (there is no onnx
 * or protobuf package here): nodes with int/ints attributes, float and int64 initializers, typed
 * graph inputs and outputs. Field numbers are onnx.proto's.
 */
final class Onnx {
    private Onnx() {}

    static final int IR_VERSION = 8;
    static final int OPSET = 17;
    static final int FLOAT = 1, INT64 = 7;                 // TensorProto.DataType
    private static final int ATTRIBUTE_INT = 2, ATTRIBUTE_INTS = 7;

    /** ModelProto {ir_version = 1, producer_name = 2, graph = 7, opset_import = 8} with the default domain at {@link #OPSET}. */
    static byte[] model(Pb graph) {
        Pb opset = new Pb().string(1, "").varint(2, OPSET);
        return new Pb().varint(1, IR_VERSION).string(2, "hintgrpo-benchmarks").message(7, graph).message(8, opset).bytes();
    }

    /** NodeProto {input = 1, output = 2, name = 3, op_type = 4}; attributes are added with {@link Pb#message}(5, …). */
    static Pb node(String op, String name, String[] inputs, String... outputs) {
        Pb n = new Pb();
        for (String in : inputs) n.string(1, in);
        for (String out : outputs) n.string(2, out);
        return n.string(3, name).string(4, op);
    }

    /** AttributeProto {name = 1, i = 3, type = 20}. */
    static Pb intAttribute(String name, long value) {
        return new Pb().string(1, name).varint(3, value).varint(20, ATTRIBUTE_INT);
    }

    /** AttributeProto {name = 1, ints = 8, type = 20}. */
    static Pb intsAttribute(String name, long... values) {
        Pb a = new Pb().string(1, name);
        for (long v : values) a.varint(8, v);
        return a.varint(20, ATTRIBUTE_INTS);
    }

    /** ValueInfoProto {name, type: TypeProto {tensor_type: {elem_type, shape: {dim: {dim_value}}}}}. */
    static Pb valueInfo(String name, int elemType, long... dims) {
        Pb shape = new Pb();
        for (long d : dims) shape.message(1, new Pb().varint(1, d));
        Pb tensor = new Pb().varint(1, elemType).message(2, shape);
        return new Pb().string(1, name).message(2, new Pb().message(1, tensor));
    }

    /** TensorProto {dims = 1, data_type = 2, name = 8, raw_data = 9 (little-endian)} of floats. */
    static Pb floatTensor(String name, float[] values, long... dims) {
        ByteBuffer raw = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        raw.asFloatBuffer().put(values);
        return tensor(name, FLOAT, raw.array(), dims);
    }

    static Pb int64Tensor(String name, long[] values, long... dims) {
        ByteBuffer raw = ByteBuffer.allocate(8 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        raw.asLongBuffer().put(values);
        return tensor(name, INT64, raw.array(), dims);
    }

    private static Pb tensor(String name, int type, byte[] raw, long[] dims) {
        Pb t = new Pb();
        for (long d : dims) t.varint(1, d);
        return t.varint(2, type).string(8, name).bytes(9, raw);
    }

    /** Protobuf wire format: varint (type 0) and length-delimited (type 2) fields. */
    static final class Pb {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Pb varint(int field, long value) {
            raw((long) field << 3);
            raw(value);
            return this;
        }

        Pb string(int field, String s) {
            return bytes(field, s.getBytes(StandardCharsets.UTF_8));
        }

        Pb message(int field, Pb m) {
            return bytes(field, m.bytes());
        }

        Pb bytes(int field, byte[] b) {
            raw(((long) field << 3) | 2);
            raw(b.length);
            out.write(b, 0, b.length);
            return this;
        }

        byte[] bytes() {
            return out.toByteArray();
        }

        /** Base-128 varint; a negative int64 takes all ten bytes, as protobuf writes it. */
        private void raw(long v) {
            while ((v & ~0x7FL) != 0) {
                out.write((int) ((v & 0x7F) | 0x80));
                v >>>= 7;
            }
            out.write((int) v);
        }
    }
}
