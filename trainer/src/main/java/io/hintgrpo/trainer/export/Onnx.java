package io.hintgrpo.trainer.export;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Just enough of ONNX's ModelProto, written by hand in the protobuf wire format (there is no onnx
 * or protobuf package here): nodes with int/ints attributes, float and int64 initializers inline or
 * in an external data file, graph inputs and outputs with fixed or named (dynamic) dimensions.
 * Field numbers are onnx.proto's.
 */
public final class Onnx {
    private Onnx() {}

    public static final int IR_VERSION = 8;
    public static final int OPSET = 17;
    public static final int FLOAT = 1, BOOL = 9, INT64 = 7; // TensorProto.DataType
    private static final int ATTRIBUTE_INT = 2, ATTRIBUTE_INTS = 7;
    private static final int DATA_LOCATION_EXTERNAL = 1;

    /** ModelProto {ir_version = 1, producer_name = 2, graph = 7, opset_import = 8} with the default domain at {@link #OPSET}. */
    public static byte[] model(Pb graph) {
        Pb opset = new Pb().string(1, "").varint(2, OPSET);
        return new Pb().varint(1, IR_VERSION).string(2, "hintgrpo").message(7, graph).message(8, opset).bytes();
    }

    /** NodeProto {input = 1, output = 2, name = 3, op_type = 4}; attributes are added with {@link Pb#message}(5, …). */
    public static Pb node(String op, String name, String[] inputs, String... outputs) {
        Pb n = new Pb();
        for (String in : inputs) n.string(1, in);
        for (String out : outputs) n.string(2, out);
        return n.string(3, name).string(4, op);
    }

    /** AttributeProto {name = 1, i = 3, type = 20}. */
    public static Pb intAttribute(String name, long value) {
        return new Pb().string(1, name).varint(3, value).varint(20, ATTRIBUTE_INT);
    }

    /** AttributeProto {name = 1, ints = 8, type = 20}. */
    public static Pb intsAttribute(String name, long... values) {
        Pb a = new Pb().string(1, name);
        for (long v : values) a.varint(8, v);
        return a.varint(20, ATTRIBUTE_INTS);
    }

    /** ValueInfoProto {name, type: TypeProto {tensor_type: {elem_type, shape: {dim: {dim_value}}}}}. */
    public static Pb valueInfo(String name, int elemType, long... dims) {
        Object[] boxed = new Object[dims.length];
        for (int i = 0; i < dims.length; i++) boxed[i] = dims[i];
        return dynamicValueInfo(name, elemType, boxed);
    }

    /** As above; a dimension is a number (dim_value = 1) or a String naming a dynamic axis (dim_param = 2). */
    public static Pb dynamicValueInfo(String name, int elemType, Object... dims) {
        Pb shape = new Pb();
        for (Object d : dims)
            shape.message(1, d instanceof String s ? new Pb().string(2, s) : new Pb().varint(1, ((Number) d).longValue()));
        Pb tensor = new Pb().varint(1, elemType).message(2, shape);
        return new Pb().string(1, name).message(2, new Pb().message(1, tensor));
    }

    /** TensorProto {dims = 1, data_type = 2, name = 8, raw_data = 9 (little-endian)} of floats. */
    public static Pb floatTensor(String name, float[] values, long... dims) {
        ByteBuffer raw = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        raw.asFloatBuffer().put(values);
        return tensor(name, FLOAT, raw.array(), dims);
    }

    public static Pb int64Tensor(String name, long[] values, long... dims) {
        ByteBuffer raw = ByteBuffer.allocate(8 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        raw.asLongBuffer().put(values);
        return tensor(name, INT64, raw.array(), dims);
    }

    /**
     * A float TensorProto whose bytes lie in a file beside the model: external_data = 13
     * (location, offset, length) and data_location = 14 = EXTERNAL. The location is relative to
     * the model file's folder.
     */
    public static Pb externalFloatTensor(String name, String location, long offset, long length, long... dims) {
        Pb t = new Pb();
        for (long d : dims) t.varint(1, d);
        t.varint(2, FLOAT).string(8, name);
        t.message(13, new Pb().string(1, "location").string(2, location));
        t.message(13, new Pb().string(1, "offset").string(2, Long.toString(offset)));
        t.message(13, new Pb().string(1, "length").string(2, Long.toString(length)));
        return t.varint(14, DATA_LOCATION_EXTERNAL);
    }

    private static Pb tensor(String name, int type, byte[] raw, long[] dims) {
        Pb t = new Pb();
        for (long d : dims) t.varint(1, d);
        return t.varint(2, type).string(8, name).bytes(9, raw);
    }

    /** Protobuf wire format: varint (type 0) and length-delimited (type 2) fields. */
    public static final class Pb {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        public Pb varint(int field, long value) {
            raw((long) field << 3);
            raw(value);
            return this;
        }

        public Pb string(int field, String s) {
            return bytes(field, s.getBytes(StandardCharsets.UTF_8));
        }

        public Pb message(int field, Pb m) {
            return bytes(field, m.bytes());
        }

        public Pb bytes(int field, byte[] b) {
            raw(((long) field << 3) | 2);
            raw(b.length);
            out.write(b, 0, b.length);
            return this;
        }

        public byte[] bytes() {
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
