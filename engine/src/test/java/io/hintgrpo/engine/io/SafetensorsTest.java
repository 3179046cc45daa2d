package io.hintgrpo.engine.io;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.Bf16;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class SafetensorsTest {
    @TempDir
    Path tmp;

    /** A file of our own making: 8-byte length, header exactly as given, body bytes. */
    static Path raw(Path file, String header, byte[] body) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        return rawWithLength(file, h.length, concat(h, body));
    }

    static Path rawWithLength(Path file, long headerLength, byte[] rest) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(8 + rest.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(headerLength).put(rest);
        Files.write(file, b.array());
        return file;
    }

    static byte[] concat(byte[] a, byte[] b) {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        o.writeBytes(a);
        o.writeBytes(b);
        return o.toByteArray();
    }

    static byte[] shortsLE(int... v) {
        ByteBuffer b = ByteBuffer.allocate(2 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (int x : v) b.putShort((short) x);
        return b.array();
    }

    static int[] bits(float[] v) {
        int[] r = new int[v.length];
        for (int i = 0; i < v.length; i++) r[i] = Float.floatToRawIntBits(v[i]);
        return r;
    }

    /** Opens the file and reads every tensor, expecting a BadInputException naming the file and each phrase. */
    static BadInputException assertBad(Path file, String... phrases) {
        BadInputException e = assertThrows(BadInputException.class, () -> {
            try (Safetensors st = Safetensors.open(file)) {
                for (String name : st.tensors().keySet()) st.read(name);
            }
        });
        assertTrue(e.getMessage().contains(file.toString()), () -> "message does not name the file: " + e.getMessage());
        for (String p : phrases)
            assertTrue(e.getMessage().contains(p), () -> "message lacks \"" + p + "\": " + e.getMessage());
        return e;
    }

    // ---- round trips ----

    @Test
    void f32RoundTripIsBitExactAndHeaderIsWhatHuggingFaceExpects() throws IOException {
        Map<String, float[]> values = new LinkedHashMap<>();
        Map<String, int[]> shapes = new LinkedHashMap<>();
        shapes.put("a.weight", new int[]{2, 3});
        values.put("a.weight", new float[]{1.5f, -0f, Float.MIN_VALUE, Float.MAX_VALUE, Float.NEGATIVE_INFINITY,
                Float.intBitsToFloat(0x7FC00123)});
        shapes.put("b", new int[]{5});
        values.put("b", new float[]{0.1f, -3.25e-20f, 7e30f, 1f / 3, 42f});
        shapes.put("scalar", new int[]{});
        values.put("scalar", new float[]{-2.5f});
        shapes.put("empty", new int[]{0, 4});
        values.put("empty", new float[0]);
        Path f = tmp.resolve("x.safetensors");
        Safetensors.write(f, Safetensors.Dtype.F32, shapes, values::get);

        try (Safetensors st = Safetensors.open(f)) {
            assertEquals(Map.of("format", "pt"), st.metadata());
            assertEquals(shapes.keySet(), st.tensors().keySet());
            for (String name : shapes.keySet()) {
                assertEquals("F32", st.info(name).dtype());
                assertArrayEquals(shapes.get(name), st.info(name).shape());
                assertArrayEquals(bits(values.get(name)), bits(st.read(name)), name);
            }
        }
        // header padded with spaces to a multiple of 8; data contiguous from 0 to the end of the file
        byte[] all = Files.readAllBytes(f);
        long n = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        assertEquals(0, n % 8);
        String header = new String(all, 8, (int) n, StandardCharsets.UTF_8);
        assertTrue(header.startsWith("{\"__metadata__\":{\"format\":\"pt\"}"), header);
        assertTrue(header.stripTrailing().endsWith("}"));
        assertTrue(header.substring(header.stripTrailing().length()).chars().allMatch(c -> c == ' '));
        assertTrue(header.contains("\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}"), header);
        assertEquals(8 + n + 4 * (6 + 5 + 1), all.length);
    }

    /** (fp32 bits, bf16 bits) worked out by hand: round to nearest, ties to even, NaN stays NaN. */
    static final int[][] BF16_CASES = {
            {0x3F800000, 0x3F80}, // 1.0 exact
            {0x3F808000, 0x3F80}, // 1 + 2^-8: a tie, lsb 0 stays (even)
            {0x3F818000, 0x3F82}, // a tie with lsb 1 rounds up to even
            {0x3F808001, 0x3F81}, // just above the tie rounds up
            {0x3F807FFF, 0x3F80}, // just below the tie rounds down
            {0xBF818000, 0xBF82}, // negative tie, odd: away from zero to even
            {0xBF808000, 0xBF80}, // negative tie, even
            {0x3F80FFFF, 0x3F81}, // carries within the mantissa
            {0x3FFFFFFF, 0x4000}, // carries into the exponent
            {0x7F7FFFFF, 0x7F80}, // max float rounds up to +inf
            {0x7F7F7FFF, 0x7F7F}, // below the tie stays the largest finite bf16
            {0x7F800000, 0x7F80}, // +inf
            {0xFF800000, 0xFF80}, // -inf
            {0x80000000, 0x8000}, // -0
            {0x00000001, 0x0000}, // smallest subnormal rounds to 0
            {0x00008000, 0x0000}, // subnormal tie, even
            {0x00018000, 0x0002}, // subnormal tie, odd
            {0x7FC00000, 0x7FC0}, // quiet NaN
            {0x7F800001, 0x7FC0}, // signalling NaN with payload only in the low half: stays NaN, not inf
            {0xFFC12345, 0xFFC1}, // negative NaN keeps sign and high payload
    };

    @Test
    void bf16RoundsToNearestEven() {
        for (int[] c : BF16_CASES) {
            short got = Bf16.fromFloat(Float.intBitsToFloat(c[0]));
            assertEquals(c[1], got & 0xFFFF, () -> String.format("0x%08X -> 0x%04X, want 0x%04X", c[0], got & 0xFFFF, c[1]));
        }
    }

    @Test
    void bf16FileHoldsRoundedBitsAndReadsBackExactly() throws IOException {
        float[] v = new float[BF16_CASES.length];
        for (int i = 0; i < v.length; i++) v[i] = Float.intBitsToFloat(BF16_CASES[i][0]);
        Path f = tmp.resolve("b.safetensors");
        Safetensors.write(f, Safetensors.Dtype.BF16, Map.of("t", new int[]{v.length}), n -> v);

        byte[] all = Files.readAllBytes(f);
        ByteBuffer b = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
        int start = 8 + (int) b.getLong(0);
        assertEquals(start + 2 * v.length, all.length);
        try (Safetensors st = Safetensors.open(f)) {
            assertEquals("BF16", st.info("t").dtype());
            float[] back = st.read("t");
            for (int i = 0; i < v.length; i++) {
                assertEquals(BF16_CASES[i][1], b.getShort(start + 2 * i) & 0xFFFF, "stored bits of case " + i);
                assertEquals(BF16_CASES[i][1] << 16, Float.floatToRawIntBits(back[i]), "read back case " + i);
            }
        }
    }

    @Test
    void f16ReadsExactlyIncludingSubnormalsInfNanAndNegativeZero() throws IOException {
        int[] h = {0x3C00, 0xC000, 0x3555, 0x7BFF, 0x0400, 0x0001, 0x03FF, 0x8001, 0x7C00, 0xFC00, 0x8000, 0x0000, 0x7E00};
        float[] want = {1f, -2f, 0.333251953125f, 65504f, 0x1p-14f, 0x1p-24f, 1023 * 0x1p-24f, -0x1p-24f,
                Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, -0f, 0f, Float.NaN};
        Path f = raw(tmp.resolve("h.safetensors"),
                "{\"h\":{\"dtype\":\"F16\",\"shape\":[" + h.length + "],\"data_offsets\":[0," + 2 * h.length + "]}}",
                shortsLE(h));
        try (Safetensors st = Safetensors.open(f)) {
            assertTrue(st.metadata().isEmpty());
            float[] got = st.read("h");
            for (int i = 0; i < h.length - 1; i++)
                assertEquals(Float.floatToRawIntBits(want[i]), Float.floatToRawIntBits(got[i]), "f16 0x" + Integer.toHexString(h[i]));
            assertTrue(Float.isNaN(got[h.length - 1]));
        }
        assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(Safetensors.f16ToFloat((short) 0x8000)));
    }

    @Test
    void readsMixedDtypesAndSkipsTensorsItDoesNotRead() throws IOException {
        // an I64 buffer next to float tensors: the file opens, the floats read, the I64 read is refused by name
        byte[] body = concat(new byte[16], shortsLE(0x3F80, 0x4000));
        Path f = raw(tmp.resolve("m.safetensors"),
                "{\"pos\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]},"
                        + "\"w\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[16,20]},\"__metadata__\":{\"k\":\"v\"}}", body);
        try (Safetensors st = Safetensors.open(f)) {
            assertArrayEquals(new float[]{1f, 2f}, st.read("w"));
            assertEquals(Map.of("k", "v"), st.metadata());
        }
        assertBad(f, "I64 tensor pos is not a float type this loader reads");
    }

    // ---- bad input: one test per way a file can be wrong ----

    @Test
    void fileShorterThanEightBytes() throws IOException {
        Path f = Files.write(tmp.resolve("short.safetensors"), new byte[5]);
        assertBad(f, "5 bytes", "shorter than the 8-byte header length");
    }

    @Test
    void missingFile() {
        assertBad(tmp.resolve("nope.safetensors"), "file not found");
    }

    @Test
    void headerLengthAbsurd() throws IOException {
        assertBad(rawWithLength(tmp.resolve("a.safetensors"), 1L << 40, new byte[64]), "header length 1099511627776", "implausible");
        assertBad(rawWithLength(tmp.resolve("n.safetensors"), -1L, new byte[64]), "implausible");
    }

    @Test
    void headerLengthBeyondFile() throws IOException {
        assertBad(rawWithLength(tmp.resolve("b.safetensors"), 500, "{}".getBytes(StandardCharsets.UTF_8)),
                "header length 500 runs past the end of the file (10 bytes)");
    }

    @Test
    void headerNotJson() throws IOException {
        assertBad(raw(tmp.resolve("j.safetensors"), "{\"a\": {dtype", new byte[0]), "header is not valid JSON");
        assertBad(raw(tmp.resolve("k.safetensors"), "[1, 2]", new byte[0]), "header is not a JSON object");
        assertBad(raw(tmp.resolve("d.safetensors"), "{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[4,8]}}", new byte[8]), "header is not valid JSON", "Duplicate");
    }

    @Test
    void entryMissingAField() throws IOException {
        String[] entries = {
                "{\"shape\":[1],\"data_offsets\":[0,4]}",
                "{\"dtype\":\"F32\",\"data_offsets\":[0,4]}",
                "{\"dtype\":\"F32\",\"shape\":[1]}"};
        String[] missing = {"dtype", "shape", "data_offsets"};
        for (int i = 0; i < entries.length; i++)
            assertBad(raw(tmp.resolve("e" + i + ".safetensors"), "{\"model.x\":" + entries[i] + "}", new byte[4]),
                    "tensor model.x has no \"" + missing[i] + "\"");
    }

    @Test
    void malformedShapeOrOffsets() throws IOException {
        assertBad(raw(tmp.resolve("s.safetensors"), "{\"x\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]}}",
                new byte[4]), "tensor x", "invalid dimension -1");
        assertBad(raw(tmp.resolve("o.safetensors"), "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}",
                new byte[4]), "tensor x", "not a pair of integers");
    }

    @Test
    void unknownDtype() throws IOException {
        assertBad(raw(tmp.resolve("u.safetensors"), "{\"model.x\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                new byte[4]), "tensor model.x has unknown dtype \"Q7\"");
    }

    @Test
    void unsupportedDtype() throws IOException {
        assertBad(raw(tmp.resolve("i.safetensors"), "{\"model.x\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}",
                new byte[8]), "I64 tensor model.x is not a float type this loader reads");
        assertBad(raw(tmp.resolve("f.safetensors"), "{\"model.y\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}",
                new byte[8]), "F64 tensor model.y", "reads F32, BF16, F16");
    }

    @Test
    void offsetsOutOfOrder() throws IOException {
        assertBad(raw(tmp.resolve("r.safetensors"), "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}",
                new byte[8]), "tensor x: data_offsets [8,4] are out of order");
    }

    @Test
    void offsetsOverlap() throws IOException {
        assertBad(raw(tmp.resolve("v.safetensors"),
                "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                        + "\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", new byte[16]),
                "tensors x [0, 16) and y [8, 16) overlap");
        // overlapping a longer earlier range, not only the one right before
        assertBad(raw(tmp.resolve("w.safetensors"),
                "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                        + "\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                        + "\"z\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", new byte[16]),
                "overlap");
    }

    @Test
    void sizeDisagreesWithShape() throws IOException {
        assertBad(raw(tmp.resolve("z.safetensors"), "{\"x\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,24]}}",
                new byte[24]), "tensor x", "span 24 bytes but BF16 shape [2, 3] needs 12");
    }

    @Test
    void offsetsBeyondBody() throws IOException {
        assertBad(raw(tmp.resolve("t.safetensors"), "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
                new byte[8]), "truncated", "runs to byte 16", "holds 8");
    }

    @Test
    void truncatedBody() throws IOException {
        Path f = tmp.resolve("cut.safetensors");
        Safetensors.write(f, Safetensors.Dtype.F32, Map.of("w", new int[]{4, 4}), n -> new float[16]);
        byte[] all = Files.readAllBytes(f);
        Files.write(f, Arrays.copyOf(all, all.length - 10));
        assertBad(f, "truncated", "runs to byte 64", "holds 54");
    }
}
