package io.hintgrpo.engine.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.Bf16;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.ShortBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * One safetensors file: an 8-byte little-endian header length N, N bytes of JSON header
 * ({name: {dtype, shape, data_offsets: [begin, end]}} plus an optional "__metadata__" of strings),
 * then the tensor bytes, offsets relative to the byte after the header.
 *
 * <p>{@link #open} reads and validates the whole header, so a bad file fails before any tensor is
 * used; {@link #read} maps only that tensor's bytes (one Java mapping holds at most 2 GiB and
 * checkpoints are larger), converting F32, BF16 and F16 exactly to float. {@link #write} writes
 * F32 or BF16 the way Hugging Face expects.
 */
public final class Safetensors implements AutoCloseable {

    /** The float types this class reads; {@link #write} writes F32 and BF16. */
    public enum Dtype {
        F32(4), BF16(2), F16(2);

        public final int bytes;

        Dtype(int bytes) {
            this.bytes = bytes;
        }
    }

    /** A tensor's header entry; begin and end count bytes from the start of the data section. */
    public record Info(String name, String dtype, int[] shape, long begin, long end) {
        public long elements() {
            long n = 1;
            for (int d : shape) n *= d;
            return n;
        }
    }

    /** Every dtype the format defines that has a whole number of bytes, so a file holding other
     *  types (int buffers, F64) still validates; only reading them is refused. */
    private static final Map<String, Integer> DTYPE_BYTES = Map.ofEntries(
            Map.entry("BOOL", 1), Map.entry("U8", 1), Map.entry("I8", 1),
            Map.entry("F8_E4M3", 1), Map.entry("F8_E5M2", 1), Map.entry("F8_E8M0", 1),
            Map.entry("U16", 2), Map.entry("I16", 2), Map.entry("F16", 2), Map.entry("BF16", 2),
            Map.entry("U32", 4), Map.entry("I32", 4), Map.entry("F32", 4),
            Map.entry("U64", 8), Map.entry("I64", 8), Map.entry("F64", 8), Map.entry("C64", 8));

    /** Hugging Face's own reader refuses larger headers; a bigger value means this is not a safetensors file. */
    static final long MAX_HEADER = 100_000_000L;
    /** Bytes mapped at once when reading a tensor; under the 2 GiB limit of one mapping, a multiple of every dtype size. */
    private static final long MAP_CHUNK = 1L << 30;

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private final Path file;
    private final FileChannel channel;
    private final long dataStart;
    private final Map<String, Info> tensors;
    private final Map<String, String> metadata;

    private Safetensors(Path file, FileChannel channel, long dataStart, Map<String, Info> tensors, Map<String, String> metadata) {
        this.file = file;
        this.channel = channel;
        this.dataStart = dataStart;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    /** Opens the file and validates its header against the file size; fails with {@link BadInputException} naming the file. */
    public static Safetensors open(Path file) {
        String where = file.toString();
        FileChannel ch;
        try {
            ch = FileChannel.open(file, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new BadInputException(where, "file not found");
        } catch (IOException e) {
            throw new BadInputException(where, "cannot open: " + e);
        }
        try {
            long size = ch.size();
            if (size < 8) throw new BadInputException(where, "file is " + size + " bytes, shorter than the 8-byte header length");
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, lenBuf, 0);
            long n = lenBuf.getLong(0);
            if (n < 0 || n > MAX_HEADER)
                throw new BadInputException(where, "header length " + Long.toUnsignedString(n)
                        + " is implausible (limit " + MAX_HEADER + " bytes): not a safetensors file?");
            if (n > size - 8)
                throw new BadInputException(where, "header length " + n + " runs past the end of the file (" + size + " bytes)");
            ByteBuffer header = ByteBuffer.allocate((int) n);
            readFully(ch, header, 8);
            Safetensors st = parseHeader(file, ch, header.array(), 8 + n, size - 8 - n);
            ch = null; // owned by st now
            return st;
        } catch (IOException e) {
            throw new BadInputException(where, "cannot read: " + e);
        } finally {
            if (ch != null) closeQuietly(ch);
        }
    }

    private static Safetensors parseHeader(Path file, FileChannel ch, byte[] header, long dataStart, long bodyBytes) {
        String where = file.toString();
        JsonNode root;
        try {
            root = JSON.readTree(header);
        } catch (JsonProcessingException e) {
            throw new BadInputException(where, "header is not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new BadInputException(where, "header is not valid JSON: " + e.getMessage());
        }
        if (root == null || !root.isObject()) throw new BadInputException(where, "header is not a JSON object");

        Map<String, String> metadata = new LinkedHashMap<>();
        Map<String, Info> tensors = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> f : root.properties()) {
            String name = f.getKey();
            JsonNode e = f.getValue();
            if (name.equals("__metadata__")) {
                if (!e.isObject()) throw new BadInputException(where, "__metadata__ is not a JSON object");
                for (Map.Entry<String, JsonNode> kv : e.properties()) {
                    if (!kv.getValue().isTextual())
                        throw new BadInputException(where, "__metadata__ value for \"" + kv.getKey() + "\" is not a string");
                    metadata.put(kv.getKey(), kv.getValue().textValue());
                }
                continue;
            }
            tensors.put(name, parseEntry(where, name, e));
        }

        // Data ranges must not overlap and must lie inside the body (gaps are tolerated on read).
        List<Info> byBegin = new ArrayList<>(tensors.values());
        byBegin.sort(Comparator.comparingLong(Info::begin).thenComparingLong(Info::end));
        Info prev = null;
        long needed = 0;
        for (Info t : byBegin) {
            if (t.end == t.begin) continue; // empty tensors occupy nothing
            if (prev != null && t.begin < prev.end)
                throw new BadInputException(where, "tensors " + prev.name + " " + range(prev) + " and " + t.name + " "
                        + range(t) + " overlap");
            if (prev == null || t.end > prev.end) prev = t; // prev: the range reaching furthest so far
            needed = Math.max(needed, t.end);
        }
        if (needed > bodyBytes)
            throw new BadInputException(where, "truncated: tensor data runs to byte " + needed + " after the header but the file holds "
                    + bodyBytes);
        return new Safetensors(file, ch, dataStart, Collections.unmodifiableMap(tensors), Collections.unmodifiableMap(metadata));
    }

    private static Info parseEntry(String where, String name, JsonNode e) {
        if (!e.isObject()) throw new BadInputException(where, "header entry for tensor " + name + " is not a JSON object");
        for (String key : new String[]{"dtype", "shape", "data_offsets"})
            if (!e.has(key)) throw new BadInputException(where, "header entry for tensor " + name + " has no \"" + key + "\"");
        JsonNode dt = e.get("dtype"), sh = e.get("shape"), off = e.get("data_offsets");
        if (!dt.isTextual()) throw new BadInputException(where, "tensor " + name + ": dtype " + dt + " is not a string");
        String dtype = dt.textValue();
        Integer elemBytes = DTYPE_BYTES.get(dtype);
        if (elemBytes == null) throw new BadInputException(where, "tensor " + name + " has unknown dtype \"" + dtype + "\"");

        if (!sh.isArray()) throw new BadInputException(where, "tensor " + name + ": shape " + sh + " is not an array");
        int[] shape = new int[sh.size()];
        long elements = 1;
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = sh.get(i);
            if (!d.isIntegralNumber() || !d.canConvertToInt() || d.intValue() < 0)
                throw new BadInputException(where, "tensor " + name + ": shape " + sh + " has an invalid dimension " + d);
            shape[i] = d.intValue();
            try {
                elements = Math.multiplyExact(elements, shape[i]);
            } catch (ArithmeticException x) {
                throw new BadInputException(where, "tensor " + name + ": shape " + sh + " is too large");
            }
        }

        if (!off.isArray() || off.size() != 2 || !isLong(off.get(0)) || !isLong(off.get(1)))
            throw new BadInputException(where, "tensor " + name + ": data_offsets " + off + " is not a pair of integers");
        long begin = off.get(0).longValue(), end = off.get(1).longValue();
        if (begin < 0 || end < begin)
            throw new BadInputException(where, "tensor " + name + ": data_offsets " + off + " are out of order");
        long expected;
        try {
            expected = Math.multiplyExact(elements, elemBytes);
        } catch (ArithmeticException x) {
            throw new BadInputException(where, "tensor " + name + ": shape " + sh + " is too large");
        }
        if (end - begin != expected)
            throw new BadInputException(where, "tensor " + name + ": data_offsets " + off + " span " + (end - begin)
                    + " bytes but " + dtype + " shape " + Arrays.toString(shape) + " needs " + expected);
        return new Info(name, dtype, shape, begin, end);
    }

    private static boolean isLong(JsonNode n) {
        return n.isIntegralNumber() && n.canConvertToLong();
    }

    private static String range(Info t) {
        return "[" + t.begin + ", " + t.end + ")";
    }

    public Path file() {
        return file;
    }

    /** The "__metadata__" strings (empty when absent). */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** Header entries in header order. */
    public Map<String, Info> tensors() {
        return tensors;
    }

    public boolean has(String name) {
        return tensors.containsKey(name);
    }

    public Info info(String name) {
        Info t = tensors.get(name);
        if (t == null) throw new BadInputException(file.toString(), "no tensor named " + name);
        return t;
    }

    /** The tensor as floats, mapping only its own bytes; F32, BF16 and F16 convert exactly. */
    public float[] read(String name) {
        Info t = info(name);
        String where = file.toString();
        Dtype dtype = readable(t);
        long n = t.elements();
        if (n > Integer.MAX_VALUE - 16)
            throw new BadInputException(where, "tensor " + name + " has " + n + " elements, more than one Java array holds");
        float[] out = new float[(int) n];
        long bytes = t.end - t.begin;
        int done = 0;
        try {
            for (long pos = 0; pos < bytes; pos += MAP_CHUNK) {
                long len = Math.min(MAP_CHUNK, bytes - pos);
                ByteBuffer b = channel.map(FileChannel.MapMode.READ_ONLY, dataStart + t.begin + pos, len)
                        .order(ByteOrder.LITTLE_ENDIAN);
                int count = (int) (len / dtype.bytes);
                if (dtype == Dtype.F32) {
                    b.asFloatBuffer().get(out, done, count);
                } else {
                    ShortBuffer s = b.asShortBuffer();
                    if (dtype == Dtype.BF16) for (int i = 0; i < count; i++) out[done + i] = Bf16.toFloat(s.get(i));
                    else for (int i = 0; i < count; i++) out[done + i] = f16ToFloat(s.get(i));
                }
                done += count;
            }
        } catch (IOException e) {
            throw new BadInputException(where, "cannot read tensor " + name + ": " + e);
        }
        return out;
    }

    private Dtype readable(Info t) {
        switch (t.dtype) {
            case "F32": return Dtype.F32;
            case "BF16": return Dtype.BF16;
            case "F16": return Dtype.F16;
            default:
                String reason = t.dtype.startsWith("F")
                        ? t.dtype + " tensor " + t.name + " is a float type this loader does not read (it reads F32, BF16, F16)"
                        : t.dtype + " tensor " + t.name + " is not a float type this loader reads (F32, BF16, F16)";
                throw new BadInputException(file.toString(), reason);
        }
    }

    @Override
    public void close() {
        closeQuietly(channel);
    }

    // ---- writing ----

    /**
     * Writes tensors in the given order, one at a time ({@code values} is asked for each name
     * while writing, so the caller never holds them all), as F32 or BF16 (round to nearest even).
     * The header carries {@code "__metadata__": {"format": "pt"}} and is padded with spaces to a
     * multiple of 8 bytes; data is contiguous from offset 0, which is what Hugging Face requires.
     */
    public static void write(Path file, Dtype dtype, Map<String, int[]> shapes, Function<String, float[]> values) throws IOException {
        if (dtype == Dtype.F16) throw new IllegalArgumentException("this writer writes F32 and BF16, not F16");
        ObjectNode root = JSON.createObjectNode();
        root.putObject("__metadata__").put("format", "pt");
        long offset = 0;
        for (Map.Entry<String, int[]> e : shapes.entrySet()) {
            long n = 1;
            for (int d : e.getValue()) n = Math.multiplyExact(n, d);
            ObjectNode t = root.putObject(e.getKey());
            t.put("dtype", dtype.name());
            ArrayNode shape = t.putArray("shape");
            for (int d : e.getValue()) shape.add(d);
            t.putArray("data_offsets").add(offset).add(offset + n * dtype.bytes);
            offset += n * dtype.bytes;
        }
        byte[] json = JSON.writeValueAsBytes(root);
        int padded = (json.length + 7) / 8 * 8;

        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE)) {
            ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
            head.putLong(padded).put(json);
            while (head.hasRemaining()) head.put((byte) ' ');
            writeFully(ch, head.flip());

            ByteBuffer buf = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
            for (Map.Entry<String, int[]> e : shapes.entrySet()) {
                float[] v = values.apply(e.getKey());
                long n = 1;
                for (int d : e.getValue()) n *= d;
                if (v.length != n)
                    throw new IllegalArgumentException(e.getKey() + ": shape " + Arrays.toString(e.getValue())
                            + " has " + n + " elements, got " + v.length + " values");
                for (float x : v) {
                    if (buf.remaining() < 4) writeFully(ch, buf.flip());
                    if (dtype == Dtype.F32) buf.putFloat(x);
                    else buf.putShort(Bf16.fromFloat(x));
                }
            }
            writeFully(ch, buf.flip());
            ch.force(true);
        }
    }

    // ---- conversions (bf16: io.hintgrpo.engine.Bf16, shared with the kernels) ----

    /** IEEE binary16 → fp32, exact for every value: subnormals, ±0, ±inf, NaN (payload kept). */
    public static float f16ToFloat(short h) {
        int sign = (h & 0x8000) << 16;
        int exp = (h >>> 10) & 0x1F;
        int mant = h & 0x3FF;
        if (exp == 0) {
            // zero or subnormal: mant · 2^-24, exactly representable in fp32
            float v = mant * 0x1p-24f;
            return sign != 0 ? -v : v;
        }
        if (exp == 31) return Float.intBitsToFloat(sign | 0x7F800000 | (mant << 13));
        return Float.intBitsToFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
    }

    // ---- plumbing ----

    private static void readFully(FileChannel ch, ByteBuffer b, long pos) throws IOException {
        while (b.hasRemaining()) {
            int r = ch.read(b, pos + b.position());
            if (r < 0) throw new IOException("unexpected end of file");
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) ch.write(b);
        b.clear();
    }

    private static void closeQuietly(FileChannel ch) {
        try {
            ch.close();
        } catch (IOException ignored) {
            // read-only channel: nothing to lose
        }
    }
}
