package io.hintgrpo.trainer.data;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.trainer.data.Jsonl.Expect;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class JsonlTest {
    @TempDir
    Path dir;

    static final String GOOD = "{\"id\": \"ok\", \"text\": \"fine.\", \"label\": 0.5, \"domain\": \"d\", \"audio\": [[1, 2]], \"vision\": [[3, 4, 5]]}";
    static final Expect DIMS = new Expect(2, 3);

    private static Utterance sample(String id, String cot) {
        return new Utterance(id, "the plot was good.", -1.8f, "reviews",
                new float[][]{{0.5f, -1f}, {2f, 3.25f}}, new float[][]{{1f, 2f, 3f}}, cot);
    }

    @Test
    void roundTripInlineAndNpy() throws Exception {
        List<Utterance> in = List.of(sample("a/1", "<disc>polarity: negative. x</disc><calib>y</calib><answer>-1.8</answer>"),
                sample("b", null), new Utterance("c", "", 3f, "interviews", null, null, null));
        for (Jsonl.Features how : Jsonl.Features.values()) {
            Path f = dir.resolve(how + "/x.jsonl");
            Jsonl.write(f, in, how);
            List<Utterance> out = Jsonl.read(f, DIMS);
            assertEquals(in.size(), out.size());
            for (int i = 0; i < in.size(); i++) assertSame(in.get(i), out.get(i));
            if (how == Jsonl.Features.NPY) {
                assertTrue(Files.readString(f).contains("\"audio\":\"features/a_1.audio.npy\""), "unsafe id characters become _");
                assertTrue(Files.exists(f.resolveSibling("features/b.vision.npy")));
            }
        }
    }

    private static void assertSame(Utterance a, Utterance b) {
        assertEquals(a.id(), b.id());
        assertEquals(a.text(), b.text());
        assertEquals(a.label(), b.label());
        assertEquals(a.domain(), b.domain());
        assertEquals(a.cot(), b.cot());
        assertFramesEqual(a.audio(), b.audio());
        assertFramesEqual(a.vision(), b.vision());
    }

    private static void assertFramesEqual(float[][] a, float[][] b) {
        if (a == null) { assertNull(b); return; }
        assertEquals(a.length, b.length);
        for (int t = 0; t < a.length; t++) assertArrayEquals(a[t], b[t]);
    }

    @Test
    void relativeNpyPathsResolveAgainstTheFileFolderAndAbsoluteOnesWork() throws Exception {
        Path sub = dir.resolve("corpus");
        Npy.write(sub.resolve("feats/a.npy"), new float[][]{{1, 2}, {3, 4}});
        Npy.write(dir.resolve("v.npy"), new float[][]{{1, 2, 3}});
        Path f = sub.resolve("x.jsonl");
        Files.writeString(f, "{\"id\": \"a\", \"text\": \"t\", \"label\": -3, \"audio\": \"feats/a.npy\", \"vision\": \""
                + dir.resolve("v.npy").toString().replace("\\", "\\\\") + "\", \"extra\": 1}\n\n");
        Utterance u = Jsonl.read(f, DIMS).get(0);
        assertEquals(2, u.audio().length);
        assertEquals(4f, u.audio()[1][1]);
        assertEquals(Jsonl.DEFAULT_DOMAIN, u.domain(), "a record without a domain gets the default one");
        assertNull(u.cot());
    }

    @Test
    void anyWidthIsAcceptedWhenNotExpected() throws Exception {
        Path f = write(GOOD);
        assertEquals(1, Jsonl.read(f, Expect.any()).size());
    }

    @Test
    void everyMalformedRecordNamesFileLineAndReason() throws Exception {
        Files.writeString(dir.resolve("bad-dtype.npy"), "");
        Files.write(dir.resolve("f8.npy"), NpyTest.npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }", 16));
        Files.write(dir.resolve("nan.npy"), Npy.encode(new float[][]{{1f, Float.NaN}}));
        Npy.write(dir.resolve("wide.npy"), new float[][]{{1, 2, 3, 4}});
        String[][] cases = {
                {"{\"id\": \"x\", \"text\": ", "not valid JSON"},
                {"{\"id\": \"x\", \"text\": \"t\", \"label\": 1} trailing", "not valid JSON"},
                {"[1, 2]", "expected a JSON object"},
                {"{\"text\": \"t\", \"label\": 1}", "missing \"id\""},
                {"{\"id\": 7, \"text\": \"t\", \"label\": 1}", "\"id\" must be a string, got 7"},
                {"{\"id\": \"\", \"text\": \"t\", \"label\": 1}", "\"id\" is empty"},
                {"{\"id\": \"x\", \"label\": 1}", "missing \"text\""},
                {"{\"id\": \"x\", \"text\": \"t\"}", "missing \"label\""},
                {"{\"id\": \"x\", \"text\": \"t\", \"label\": null}", "missing \"label\""},
                {"{\"id\": \"x\", \"text\": \"t\", \"label\": \"1.5\"}", "\"label\" must be a number"},
                {"{\"id\": \"x\", \"text\": \"t\", \"label\": NaN}", "label NaN is not finite"},
                {"{\"id\": \"x\", \"text\": \"t\", \"label\": -Infinity}", "label -Infinity is not finite"},
                {"{\"id\": \"x\", \"text\": \"t\", \"label\": 3.01}", "label 3.01 is outside [-3, 3]"},
                {"{\"id\": \"x\", \"text\": \"t\", \"label\": -4}", "label -4 is outside [-3, 3]"},
                {"{\"id\": \"x\", \"text\": \"t\", \"label\": 1, \"domain\": 3}", "\"domain\" must be a string"},
                {"{\"id\": \"x\", \"text\": \"t\", \"label\": 1, \"cot\": [1]}", "\"cot\" must be a string"},
                {"{\"id\": \"x\", \"text\": \"t\", \"label\": 1, \"audio\": [[1, 2, 3]]}", "audio has 3 features per frame, expected 2"},
                {"{\"id\": \"x\", \"text\": \"t\", \"label\": 1, \"vision\": [[1, 2]]}", "vision has 2 features per frame, expected 3"},
                {"{\"id\": \"x\", \"text\": \"t\", \"label\": 1, \"audio\": [[1, 2], [1]]}", "audio is ragged: row 1 has 1 values, row 0 has 2"},
                {"{\"id\": \"x\", \"text\": \"t\", \"label\": 1, \"audio\": [[1, \"a\"]]}", "audio[0][1] is not a number"},
                {"{\"id\": \"x\", \"text\": \"t\", \"label\": 1, \"audio\": [1, 2]}", "audio[0] is not an array of numbers"},
                {"{\"id\": \"x\", \"text\": \"t\", \"label\": 1, \"audio\": []}", "audio has no frames"},
                {"{\"id\": \"x\", \"text\": \"t\", \"label\": 1, \"audio\": [[]]}", "audio frames have no features"},
                {"{\"id\": \"x\", \"text\": \"t\", \"label\": 1, \"audio\": [[1, NaN]]}", "audio frame 0 feature 1 is not finite"},
                {"{\"id\": \"x\", \"text\": \"t\", \"label\": 1, \"audio\": 5}", "\"audio\" must be a path to a .npy file or a T × D array"},
                {"{\"id\": \"x\", \"text\": \"t\", \"label\": 1, \"audio\": \"missing.npy\"}", "missing.npy: file not found"},
                {"{\"id\": \"x\", \"text\": \"t\", \"label\": 1, \"audio\": \"bad-dtype.npy\"}", "bad-dtype.npy: not an .npy file"},
                {"{\"id\": \"x\", \"text\": \"t\", \"label\": 1, \"audio\": \"f8.npy\"}", "f8.npy: dtype '<f8' is not little-endian float32"},
                {"{\"id\": \"x\", \"text\": \"t\", \"label\": 1, \"audio\": \"nan.npy\"}", "audio frame 0 feature 1 is not finite (NaN)"},
                {"{\"id\": \"x\", \"text\": \"t\", \"label\": 1, \"audio\": \"wide.npy\"}", "audio has 4 features per frame, expected 2"},
                {"{\"id\": \"ok\", \"text\": \"t\", \"label\": 1}", "duplicate id \"ok\" (first at line 1)"},
        };
        for (String[] c : cases) {
            Path f = write(GOOD, c[0]);
            BadInputException e = assertThrows(BadInputException.class, () -> Jsonl.read(f, DIMS), c[0]);
            assertTrue(e.getMessage().startsWith(f + ":2: "), e.getMessage());
            assertTrue(e.getMessage().contains(c[1]), "expected \"" + c[1] + "\" in: " + e.getMessage());
        }
    }

    @Test
    void skipBadSkipsAndCountsMalformedLines() throws Exception {
        Path f = write(GOOD, "{oops", "{\"id\": \"y\", \"text\": \"t\", \"label\": 9}",
                GOOD.replace("\"ok\"", "\"ok2\""));
        Jsonl.Loaded l = Jsonl.read(f, DIMS, true);
        assertEquals(2, l.utterances().size());
        assertEquals(2, l.skipped());
        assertEquals(2, l.problems().size());
        assertTrue(l.problems().get(0).startsWith(f + ":2: not valid JSON"), l.problems().get(0));
        assertTrue(l.problems().get(1).startsWith(f + ":3: label 9 is outside"), l.problems().get(1));
        assertThrows(BadInputException.class, () -> Jsonl.read(f, DIMS, false));
    }

    @Test
    void promptsMayLackALabelButCorporaMayNot() throws Exception {
        String unlabelled = "{\"id\": \"u\", \"text\": \"so so.\", \"audio\": [[1, 2]], \"extra\": 7}";
        Path f = write(GOOD, "", unlabelled);
        List<Jsonl.Record> prompts = Jsonl.readPrompts(f, DIMS);
        assertEquals(2, prompts.size());
        assertEquals(0.5f, prompts.get(0).utterance().label());
        assertEquals(3, prompts.get(1).line());
        assertTrue(Float.isNaN(prompts.get(1).utterance().label()), "no label reads as NaN");
        assertEquals(7, prompts.get(1).json().get("extra").asInt(), "the record keeps every field as written");
        BadInputException e = assertThrows(BadInputException.class, () -> Jsonl.read(f, DIMS));
        assertEquals(f + ":3: missing \"label\"", e.getMessage(), "the corpus reader still requires it");
        Path bad = write(unlabelled, "{\"id\": \"y\", \"text\": \"t\", \"label\": 9}");
        e = assertThrows(BadInputException.class, () -> Jsonl.readPrompts(bad, DIMS));
        assertTrue(e.getMessage().startsWith(bad + ":2: label 9 is outside"), "a label given is checked: " + e.getMessage());
    }

    @Test
    void missingOrNonUtf8FilesFailClearly() throws Exception {
        BadInputException e = assertThrows(BadInputException.class, () -> Jsonl.read(dir.resolve("none.jsonl"), DIMS));
        assertEquals(dir.resolve("none.jsonl") + ": file not found", e.getMessage());
        Path latin = dir.resolve("latin.jsonl");
        Files.write(latin, new byte[]{'{', (byte) 0xE9, '}', '\n'});
        e = assertThrows(BadInputException.class, () -> Jsonl.read(latin, DIMS));
        assertEquals(latin + ":1: not UTF-8 text (byte 0xe9 at byte column 2)", e.getMessage());
        // the line that is not UTF-8 is named, after good lines (a reader that decodes ahead would name the file only)
        Path third = dir.resolve("third.jsonl");
        byte[] good = "\u2003 \u2003\r\n".getBytes(java.nio.charset.StandardCharsets.UTF_8); // blank lines of 3-byte characters
        java.io.ByteArrayOutputStream b = new java.io.ByteArrayOutputStream();
        for (int i = 0; i < 2000; i++) b.write(good); // far beyond any decoder's read-ahead (blank lines are skipped, still counted)
        b.write(new byte[]{'{', '"', (byte) 0xC3, '(', '"', '}', '\n'});
        Files.write(third, b.toByteArray());
        e = assertThrows(BadInputException.class, () -> Jsonl.read(third, DIMS));
        assertEquals(third + ":2001: not UTF-8 text (byte 0xc3 at byte column 3)", e.getMessage());
    }

    /** Lines are read into the tree ObjectMapper.readTree makes: node types, numbers, NaN, repeated keys, nesting. */
    @Test
    void aLinesTreeIsObjectMappers() throws Exception {
        String[] lines = {
                GOOD,
                "{\"id\": \"n\", \"text\": \"t\\u00e9\\n\", \"label\": -0, \"x\": 12345678901, \"y\": 123456789012345678901234567890}",
                "{\"id\": \"m\", \"text\": \"t\", \"label\": 2.5e-1, \"label\": 1, \"cot\": null, \"extra\": {\"a\": [true, false, null, [[1.5]], {}]}, \"e\": []}",
                "{\"id\": \"q\", \"text\": \"t\", \"x\": NaN, \"y\": -Infinity, \"z\": 1e400}",
        };
        List<Jsonl.Record> read = Jsonl.readPrompts(write(lines), Expect.any());
        com.fasterxml.jackson.databind.ObjectMapper mapper = new com.fasterxml.jackson.databind.ObjectMapper()
                .enable(com.fasterxml.jackson.core.JsonParser.Feature.ALLOW_NON_NUMERIC_NUMBERS);
        for (int i = 0; i < lines.length; i++) {
            com.fasterxml.jackson.databind.JsonNode expected = mapper.readTree(lines[i]), got = read.get(i).json();
            assertEquals(expected, got, lines[i]);
            assertEquals(mapper.writeValueAsString(expected), mapper.writeValueAsString(got), "node types of " + lines[i]);
        }
    }

    private Path write(String... lines) throws Exception {
        Path f = Files.createTempFile(dir, "c", ".jsonl");
        Files.writeString(f, String.join("\n", lines) + "\n");
        return f;
    }
}
