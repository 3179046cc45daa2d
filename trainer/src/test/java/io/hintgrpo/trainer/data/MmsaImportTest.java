package io.hintgrpo.trainer.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.trainer.cli.CliRun;
import io.hintgrpo.trainer.cli.Main;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * data import-mmsa on MMSA-style pickles that numpy writes at test time (Debian's /usr/bin/python3,
 * python3-numpy; scripts/test.sh installs python3-torch, which brings it): every layout the issue
 * lists is imported and compared with what numpy computes for it (mmsa_pickles.py writes both), and
 * every bad pickle ends with one error line and no output. Without numpy these tests fail, never skip.
 *
 * <p>The whole door: a synthetic pickle → import → {@code init --preset embedded} with Qwen's real
 * tokenizer → {@code grpo} → {@code eval} ({@link #anImportedCorpusTrainsWithGrpoAndEvaluates}).
 */
class MmsaImportTest {
    static final String PYTHON = "/usr/bin/python3";
    static final ObjectMapper JSON = new ObjectMapper();

    /** The pickles mmsa_pickles.py writes: name → options (see the script). */
    static final Map<String, String> VARIANTS = new LinkedHashMap<>();

    static {
        VARIANTS.put("p4", "");
        VARIANTS.put("p5_np2_unicode_object", "proto=5,np2,text=unicode,ids=object");
        VARIANTS.put("p4_np2_lengths", "np2,lengths,text=object,ids=unicode");
        VARIANTS.put("p5_lengths", "proto=5,lengths,text=object");
        VARIANTS.put("p3", "proto=3,ids=object");
        VARIANTS.put("p2", "proto=2,text=unicode,lengths");
        VARIANTS.put("left", "pad=left,ids=unicode");
        VARIANTS.put("both_nan", "pad=both,nan,proto=5");
        VARIANTS.put("nan_lengths", "nan,lengths");
        VARIANTS.put("sims", "sims,lengths,text=unicode,proto=5");
        VARIANTS.put("sims_np2_2d", "sims,np2,labels2d,text=object");
        VARIANTS.put("pool", "pool=3,lengths");
        VARIANTS.put("f64", "f64,pad=left");
        VARIANTS.put("bigendian", "bigendian,proto=5,nan");
        VARIANTS.put("big4", "big,nan,pool=16");
        VARIANTS.put("big5_np2", "big,proto=5,np2,lengths,nan");
        VARIANTS.put("extra", "extra");
        VARIANTS.put("left_lengths", "lengths,pad=left");
        VARIANTS.put("no_valid", "drop=valid");
        VARIANTS.put("no_labels", "dropkey=regression_labels");
        VARIANTS.put("no_vision", "dropkey=vision");
        VARIANTS.put("wrong_shape", "wrongshape");
        VARIANTS.put("short_rows", "shortrows");
        VARIANTS.put("evil", "evil");
        VARIANTS.put("bad_label", "badlabel");
        VARIANTS.put("p0", "proto=0");
    }

    @TempDir
    static Path pickles;
    @TempDir
    Path dir;

    @BeforeAll
    static void writePickles() throws Exception {
        String why = numpyMissing();
        if (why != null) fail("these tests build MMSA pickles with numpy: " + why + " (apt-get install python3-numpy; "
                + "scripts/test.sh installs python3-torch, which brings it)");
        Path script = pickles.resolve("mmsa_pickles.py");
        try (InputStream in = MmsaImportTest.class.getResourceAsStream("mmsa_pickles.py")) {
            Files.copy(in, script);
        }
        List<String> cmd = new ArrayList<>(List.of(PYTHON, script.toString(), pickles.toString()));
        VARIANTS.forEach((name, options) -> cmd.add(name + "=" + options));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "mmsa_pickles.py did not finish");
        assertEquals(0, p.exitValue(), "mmsa_pickles.py failed:\n" + out);
    }

    /** Null when /usr/bin/python3 imports numpy, else why not. */
    static String numpyMissing() {
        if (!Files.isExecutable(Path.of(PYTHON))) return PYTHON + " is missing";
        try {
            Process p = new ProcessBuilder(PYTHON, "-c", "import numpy").redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(60, TimeUnit.SECONDS)) return PYTHON + " -c 'import numpy' did not finish";
            return p.exitValue() == 0 ? null : PYTHON + " cannot import numpy: " + out.strip();
        } catch (Exception e) {
            return PYTHON + " did not run: " + e;
        }
    }

    private MmsaImport.Summary importVariant(String variant, Path out) throws Exception {
        String options = VARIANTS.get(variant);
        int pool = 0;
        for (String o : options.split(",")) if (o.startsWith("pool=")) pool = Integer.parseInt(o.substring(5));
        return MmsaImport.run(new MmsaImport.Options(pickles.resolve(variant + ".pkl"), out, "mosi", pool), msg -> {});
    }

    /** Every layout: the records, features, labels, non-finite counts and train statistics numpy computed. */
    @ParameterizedTest
    @ValueSource(strings = {"p4", "p5_np2_unicode_object", "p4_np2_lengths", "p5_lengths", "p3", "p2", "left", "both_nan",
            "nan_lengths", "sims", "sims_np2_2d", "pool", "f64", "bigendian", "big4", "big5_np2", "extra"})
    void everyLayoutImportsAsNumpySaysItShould(String variant) throws Exception {
        Path out = dir.resolve("out");
        MmsaImport.Summary s = importVariant(variant, out);
        JsonNode expected = JSON.readTree(pickles.resolve(variant + ".expected.json").toFile());
        JsonNode manifest = JSON.readTree(out.resolve(MmsaImport.MANIFEST_FILE).toFile());
        assertEquals(s.toJson(), Files.readString(out.resolve(MmsaImport.MANIFEST_FILE)));
        String options = VARIANTS.get(variant);
        int protocol = options.contains("proto=") ? options.charAt(options.indexOf("proto=") + 6) - '0' : 4;
        assertEquals(protocol, manifest.path("pickle").path("protocol").asInt());
        assertEquals(options.contains("np2") ? "numpy._core" : "numpy.core", manifest.path("pickle").path("numpy_module").asText());
        boolean sims = options.contains("sims");
        assertEquals(sims ? 3 : 1, manifest.path("labels").path("scale").asInt());

        for (String split : MmsaImport.SPLITS) {
            Path file = out.resolve("mosi").resolve(split + ".jsonl");
            List<Utterance> got = Jsonl.read(file, Jsonl.Expect.any());
            List<String> lines = Files.readAllLines(file);
            JsonNode want = expected.path("splits").path(split);
            assertEquals(want.size(), got.size(), split);
            for (int i = 0; i < got.size(); i++) {
                Utterance u = got.get(i);
                JsonNode w = want.get(i), line = JSON.readTree(lines.get(i));
                String at = variant + " " + split + "[" + i + "]";
                assertEquals(w.path("id").asText(), u.id(), at);
                assertEquals(w.path("text").asText(), u.text(), at);
                assertEquals((float) w.path("label").asDouble(), u.label(), 1e-6f, at);
                assertEquals("mosi", u.domain(), at);
                assertNull(u.cot(), at);
                assertNull(u.subset(), at);
                assertFalse(line.has("cot") || line.has("subset"), at);
                assertFrames(w.path("audio"), u.audio(), at + " audio");
                assertFrames(w.path("vision"), u.vision(), at + " vision");
                for (String f : List.of("label_text", "label_audio", "label_vision")) {
                    assertEquals(sims, line.has(f), at + " " + f);
                    if (sims) assertEquals(w.path(f).asDouble(), line.path(f).asDouble(), 1e-6, at + " " + f);
                }
            }
            for (String m : List.of("audio", "vision")) {
                JsonNode byDim = manifest.path("splits").path(split).path(m).path("non_finite").path("by_dim");
                JsonNode wantCounts = expected.path("non_finite").path(split).path(m);
                long total = 0;
                for (int j = 0; j < wantCounts.size(); j++) {
                    assertEquals(wantCounts.get(j).asLong(), byDim.path(String.valueOf(j)).asLong(0), variant + " " + split + " " + m + " dim " + j);
                    total += wantCounts.get(j).asLong();
                }
                assertEquals(total, manifest.path("splits").path(split).path(m).path("non_finite").path("total").asLong());
                if (options.contains("nan")) assertTrue(total > 0 || !split.equals("train"), variant + ": NaN/inf were injected");
            }
        }
        for (String m : List.of("audio", "vision")) {
            JsonNode want = expected.path("train_stats").path(m), got = manifest.path("train_stats").path(m);
            assertEquals(want.path("frames").asLong(), got.path("frames").asLong(), m);
            for (String k : List.of("mean", "std"))
                for (int j = 0; j < want.path(k).size(); j++)
                    assertEquals(want.path(k).get(j).asDouble(), got.path(k).get(j).asDouble(), 1e-5, m + " " + k + "[" + j + "]");
        }
        assertTrue(s.report().contains("| train | 6 |"), s.report());
    }

    private static void assertFrames(JsonNode want, float[][] got, String at) {
        assertEquals(want.size(), got.length, at + " frames");
        for (int t = 0; t < got.length; t++) {
            assertEquals(want.get(t).size(), got[t].length, at + " width");
            for (int j = 0; j < got[t].length; j++) {
                double w = want.get(t).get(j).asDouble();
                assertEquals(w, got[t][j], 1e-6 * Math.max(1, Math.abs(w)), at + " [" + t + "][" + j + "]");
            }
        }
    }

    /** The command line: the report, the corpus data check accepts at the pickle's widths, the name from the path. */
    @Test
    void theCommandWritesACorpusThatDataCheckAccepts() throws Exception {
        Path mosei = dir.resolve("CMU-MOSEI/Processed");
        Files.createDirectories(mosei);
        Files.copy(pickles.resolve("nan_lengths.pkl"), mosei.resolve("unaligned_50.pkl"));
        Path out = dir.resolve("corpus");
        CliRun r = CliRun.of("data", "import-mmsa", "--pkl", mosei.resolve("unaligned_50.pkl").toString(), "--out", out.toString(),
                "--pool-frames", "4");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("mosei: "), r.out());
        assertTrue(r.out().contains("labels: CMU-MOSI/MOSEI scale [-3, 3], copied"), r.out());
        assertTrue(r.out().contains("audio: 5 features per frame, padding cut by audio_lengths"), r.out());
        assertTrue(r.out().contains("| split | records |"), r.out());
        assertTrue(r.out().contains("| valid | 3 |"), r.out());
        assertTrue(r.out().matches("(?s).*non-finite values replaced by 0 in train audio, by dimension: \\d+: \\d+.*"), r.out());
        assertTrue(r.out().contains("keys not used: annotations, classification_labels, text, text_bert"), r.out());
        assertTrue(r.err().contains("hintgrpo: train: 6 records written"), r.err());
        for (String split : MmsaImport.SPLITS) {
            Path f = out.resolve("mosei").resolve(split + ".jsonl");
            CliRun c = CliRun.of("data", "check", f.toString(), "--audio-dim", "5", "--vision-dim", "4");
            assertEquals(0, c.code(), c.err());
            assertTrue(c.out().contains("mosei: negative"), c.out());
            for (Utterance u : Jsonl.read(f, new Jsonl.Expect(5, 4))) {
                assertTrue(u.audio().length >= 1 && u.audio().length <= 4, u.id());
                assertTrue(u.vision().length >= 1 && u.vision().length <= 4, u.id());
            }
        }
        assertTrue(Files.isRegularFile(out.resolve("mmsa.json")));
        try (var files = Files.list(out.resolve("mosei/features"))) {
            assertEquals(2 * 12, files.count());
        }
    }

    /** An unknown key is ignored and reported (MMSA exports vary); a length cut that leaves real frames behind is a warning. */
    @Test
    void unknownKeysAreReportedAndLeftLengthsWarned() throws Exception {
        MmsaImport.Summary s = importVariant("extra", dir.resolve("a"));
        assertTrue(s.report().contains("unknown keys ignored: speaker (train, valid, test)"), s.report());
        assertEquals(List.of("train", "valid", "test"), JSON.convertValue(s.manifest().path("ignored_keys").path("unknown").path("speaker"), List.class));
        s = importVariant("left_lengths", dir.resolve("b"));
        assertTrue(s.report().contains("warning: train audio: "), s.report());
        assertTrue(s.report().contains("have non-zero frames after audio_lengths (is the padding on the left?)"), s.report());
        assertTrue(s.manifest().path("splits").path("train").path("audio").path("nonzero_after_length").asInt() > 0);
    }

    /** Bad pickles and flags: exit 2, one line naming the file, split and key, and no output folder. */
    @Test
    void badPicklesEndWithOneErrorLineAndNoOutput() throws Exception {
        expectError("no_valid", "no 'valid' split (the pickle has train, test)");
        expectError("no_labels", ": train: missing 'regression_labels' (the split has raw_text, id, audio, vision, text, text_bert, classification_labels, annotations)");
        expectError("no_vision", ": train: missing 'vision'");
        expectError("wrong_shape", ": train: audio: has shape (6, 5), expected 3-D [N, T, D]");
        expectError("short_rows", ": train: vision: has 5 rows, regression_labels has 6");
        expectError("bad_label", ": train: regression_labels: element 1 is 7, outside [-3, 3]");
        expectError("evil", "global posix.system is not allowed");
        expectError("p0", "not a pickle of protocol 2 to 5 (it starts with byte 0x28; protocols 0 and 1 are not read)");

        Path big = pickles.resolve("big4.pkl");
        long size = Files.size(big);
        byte[] all = Files.readAllBytes(big);
        for (long cut : new long[]{size / 2, size - 1, 20, 0}) {
            Path t = dir.resolve("cut" + cut + ".pkl");
            Files.write(t, Arrays.copyOf(all, (int) cut));
            CliRun r = run(t, dir.resolve("out"), "mosi");
            assertEquals(Main.EXIT_BAD_INPUT, r.code());
            assertTrue(errorLine(r).startsWith("hintgrpo: error: " + t + ": truncated pickle: the file ends at byte " + cut), r.err());
            assertFalse(Files.exists(dir.resolve("out")));
        }

        Path p4 = pickles.resolve("p4.pkl");
        CliRun r = CliRun.of("data", "import-mmsa", "--pkl", p4.toString(), "--out", dir.resolve("x").toString());
        assertEquals(Main.EXIT_BAD_INPUT, r.code());
        assertEquals("hintgrpo: error: --name: the path " + p4 + " names no dataset (mosi, mosei or sims); give --name", r.err().strip());
        r = CliRun.of("data", "import-mmsa", "--pkl", p4.toString(), "--out", dir.resolve("x").toString(), "--name", "mosi", "--pool-frames", "-1");
        assertEquals("hintgrpo: error: --pool-frames: must be ≥ 1, or 0 to keep every frame, got -1", r.err().strip());
        r = CliRun.of("data", "import-mmsa", "--pkl", p4.toString(), "--out", dir.resolve("x").toString(), "--name", "a/b");
        assertTrue(r.err().contains("--name: \"a/b\" is not a folder name"), r.err());
        r = run(dir.resolve("missing.pkl"), dir.resolve("x"), "mosi");
        assertEquals("hintgrpo: error: " + dir.resolve("missing.pkl") + ": file not found", errorLine(r));
        assertFalse(Files.exists(dir.resolve("x")));

        // an existing corpus is refused before the pickle is read, and left as it was
        Path taken = dir.resolve("taken");
        Files.createDirectories(taken);
        Files.writeString(taken.resolve("keep.txt"), "mine");
        r = run(p4, taken, "mosi");
        assertEquals("hintgrpo: error: " + taken + ": folder exists and is not empty; refusing to overwrite", r.err().strip());
        assertEquals("mine", Files.readString(taken.resolve("keep.txt")));
        try (var files = Files.list(dir)) { // no temporary folder left behind by any failure above
            assertTrue(files.noneMatch(f -> f.getFileName().toString().startsWith(".")), "leftover temporary folder");
        }
    }

    private void expectError(String variant, String message) {
        Path out = dir.resolve("out-" + variant);
        CliRun r = run(pickles.resolve(variant + ".pkl"), out, "mosi");
        assertEquals(Main.EXIT_BAD_INPUT, r.code(), variant + ": " + r.out());
        String line = errorLine(r);
        assertTrue(line.startsWith("hintgrpo: error: " + pickles.resolve(variant + ".pkl")), line);
        assertTrue(line.contains(message), variant + ": " + line);
        assertFalse(Files.exists(out), variant + ": no output");
    }

    /** The error line, the only line on stderr (docs/reliability.md: every check runs before the first progress line). */
    private static String errorLine(CliRun r) {
        String e = r.err().strip();
        assertTrue(e.startsWith("hintgrpo: error: ") && e.lines().count() == 1, "one line: " + r.err());
        return e;
    }

    private static CliRun run(Path pkl, Path out, String name) {
        return CliRun.of("data", "import-mmsa", "--pkl", pkl.toString(), "--out", out.toString(), "--name", name);
    }

    /** The feature arrays are read from the file when used, not while the pickle is parsed. */
    @Test
    void largeArraysStayInTheFileUntilRead() throws Exception {
        Path copy = dir.resolve("big.pkl");
        Files.copy(pickles.resolve("big4.pkl"), copy);
        try (Pickle p = Pickle.open(copy)) {
            Pickle.NdArray audio = (Pickle.NdArray) ((Map<?, ?>) ((Map<?, ?>) p.root()).get("train")).get("audio");
            assertArrayEquals(new long[]{6, 300, 60}, audio.shape());
            float[] frame = new float[60];
            audio.floats(0, frame);
            assertNotEquals(0f, frame[0]);
            Files.write(copy, new byte[(int) Files.size(copy)]); // the same file, now all zeros
            audio.floats(0, frame);
            assertEquals(0f, frame[0]);
        }
    }

    /** A model of other feature widths evaluates an imported corpus text-only (docs/data.md: cross-dataset evaluation). */
    @Test
    void anotherDatasetEvaluatesTextOnly() throws Exception {
        Path out = dir.resolve("c");
        importVariant("p4", out); // 5 audio and 4 vision features
        Path model = dir.resolve("model");
        io.hintgrpo.trainer.TinyModels.write(model, 1); // 16 and 16
        String test = out.resolve("mosi/test.jsonl").toString();
        CliRun r = CliRun.of("eval", "--model", model.toString(), "--data", test, "--backend", "cpu", "--max-new-tokens", "4");
        assertEquals(Main.EXIT_BAD_INPUT, r.code());
        assertTrue(errorLine(r).endsWith("test.jsonl:1: audio has 5 features per frame, expected 16"), r.err());
        r = CliRun.of("eval", "--model", model.toString(), "--data", test, "--backend", "cpu", "--max-new-tokens", "4", "--drop-modality", "both");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("mosi"), r.out());
    }

    /**
     * Real data end to end on the cpu backend: an MMSA pickle (English, Chinese and emoji text; 5
     * audio and 4 vision features) → import → a new embedded-shape model for Qwen's tokenizer at
     * those widths → GRPO (imported data has no teacher chains; GRPO needs none) → eval of the
     * trained model on the imported test split.
     */
    @Test
    void anImportedCorpusTrainsWithGrpoAndEvaluates() throws Exception {
        Path qwen = io.hintgrpo.trainer.QwenTokenizerFiles.dir();
        Path corpus = dir.resolve("corpus"), model = dir.resolve("model"), run = dir.resolve("run"), eval = dir.resolve("eval.json");
        CliRun r = CliRun.of("data", "import-mmsa", "--pkl", pickles.resolve("p5_lengths.pkl").toString(), "--out", corpus.toString(),
                "--name", "mosi", "--pool-frames", "4");
        assertEquals(0, r.code(), r.err());
        r = CliRun.of("init", "--preset", "embedded", "--tokenizer", qwen.resolve("tokenizer.json").toString(), "--audio-dim", "5",
                "--vision-dim", "4", "--seed", "3", "--out", model.toString());
        assertEquals(0, r.code(), r.err());
        String train = corpus.resolve("mosi/train.jsonl").toString(), test = corpus.resolve("mosi/test.jsonl").toString();
        r = CliRun.of("grpo", "--model", model.toString(), "--train", train, "--out", run.toString(), "--backend", "cpu",
                "--steps", "1", "--prompts-per-step", "2", "--group-size", "2", "--max-completion-tokens", "6");
        assertEquals(0, r.code(), r.err());
        assertTrue(Files.isRegularFile(run.resolve("model/config.json")), "the trained model");
        r = CliRun.of("eval", "--model", run.resolve("model").toString(), "--data", test, "--out", eval.toString(), "--backend", "cpu",
                "--max-new-tokens", "6");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("mosi"), r.out());
        assertTrue(Files.readString(eval).contains("\"mosi\""), "the JSON report has the imported domain");
    }

    @Test
    void theNameComesFromThePathWhenItNamesADataset() {
        assertEquals("mosei", MmsaImport.nameFromPath(Path.of("/data/CMU-MOSEI/Processed/unaligned_50.pkl")));
        assertEquals("mosi", MmsaImport.nameFromPath(Path.of("/data/MOSI/Processed/aligned_50.pkl")));
        assertEquals("sims", MmsaImport.nameFromPath(Path.of("/data/SIMS/Processed/unaligned_39.pkl")));
        assertEquals("simsv2", MmsaImport.nameFromPath(Path.of("/data/ch-simsv2/unaligned.pkl")));
        assertEquals("mosi", MmsaImport.nameFromPath(Path.of("/data/x/mosi_unaligned_50.pkl")));
        assertThrows(BadInputException.class, () -> MmsaImport.nameFromPath(Path.of("/home/simson/features.pkl")));
    }

    /** numpy.array_split's chunks: 7 frames to 3 are 3 + 2 + 2; short sequences are left alone. */
    @Test
    void poolingAveragesConsecutiveChunksLikeArraySplit() {
        float[][] x = new float[7][];
        for (int t = 0; t < 7; t++) x[t] = new float[]{t, 10 * t};
        float[][] p = MmsaImport.pool(x, 3);
        assertArrayEquals(new float[]{1, 10}, p[0]);
        assertArrayEquals(new float[]{3.5f, 35}, p[1]);
        assertArrayEquals(new float[]{5.5f, 55}, p[2]);
        assertSame(x, MmsaImport.pool(x, 7));
        assertSame(x, MmsaImport.pool(x, 0));
    }
}
