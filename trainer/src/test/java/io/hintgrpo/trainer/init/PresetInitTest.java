package io.hintgrpo.trainer.init;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.hintgrpo.engine.Bf16;
import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.io.Safetensors;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.ParamLayout;
import io.hintgrpo.engine.model.Presets;
import io.hintgrpo.trainer.QwenTokenizerFiles;
import io.hintgrpo.trainer.cli.CliRun;
import io.hintgrpo.trainer.cli.Main;
import io.hintgrpo.trainer.data.SynthCorpus;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.format.Examples;
import io.hintgrpo.trainer.tokenizer.SpecialTokens;
import io.hintgrpo.trainer.tokenizer.Tokenizer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** {@code init --preset NAME --tokenizer FILE}: named shapes, random weights from the seed, fp32 or bf16 written tensor by tensor. */
class PresetInitTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;
    Path corpus;
    Utterance utterance;

    @BeforeEach
    void writeCorpusTokenizer() throws Exception {
        corpus = dir.resolve("corpus");
        Files.createDirectories(corpus);
        Files.writeString(corpus.resolve(SynthCorpus.TOKENIZER_FILE), SynthCorpus.tokenizerJson());
        utterance = SynthCorpus.generate(SynthCorpus.Options.defaults(3, 20)).get(0).utterance();
    }

    @Test
    void thePublishedQwenShapes() {
        Map<String, Long> published = Map.of("qwen2.5-0.5b", 494_032_768L, "qwen2.5-1.5b", 1_543_714_304L, "qwen2.5-7b", 7_615_616_512L);
        List<String> names = Presets.all().stream().map(Presets.Named::name).toList();
        assertEquals(List.of("embedded", "25m", "125m", "qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-7b"), names);
        for (Presets.Named p : Presets.all()) {
            ModelConfig c = p.shape();
            assertEquals(p.name().startsWith("qwen"), p.publishedVocab(), p.name());
            if (!p.publishedVocab()) continue;
            assertEquals(published.get(p.name()), new ParamLayout(c).count(), p.name() + " has the released model's parameter count");
            assertEquals(1e6f, c.ropeTheta());
            assertEquals(1e-6f, c.rmsNormEps());
        }
        ModelConfig b7 = Presets.qwen25_7b();
        assertEquals(List.of(3584, 18944, 28, 4, 28, 152064, 0), List.of(b7.hiddenSize(), b7.intermediateSize(), b7.numHeads(),
                b7.numKvHeads(), b7.numLayers(), b7.vocabSize(), b7.tieWordEmbeddings() ? 1 : 0));
        // vocab: the tokenizer's ids rounded up to 64, never below a published vocab_size
        Presets.Named q05 = Presets.all().get(3), m25 = Presets.all().get(1);
        assertEquals(151_936, ModelInit.presetVocab(q05, 151_677), "Qwen's tokenizer + our 8 tokens fit the published rows");
        assertEquals(152_064, ModelInit.presetVocab(q05, 152_001));
        assertEquals(2_048, ModelInit.presetVocab(m25, 2_000), "a small shape's vocabulary follows the tokenizer");
    }

    /** --embedded CORPUS, --preset embedded --tokenizer CORPUS and Model.initialize + ModelDir.save write the same bytes. */
    @Test
    void theEmbeddedPresetIsTheInMemoryModel() throws Exception {
        Path viaEmbedded = dir.resolve("a"), viaPreset = dir.resolve("b"), inMemory = dir.resolve("c");
        CliRun r = CliRun.of("init", "--embedded", corpus.toString(), "--out", viaEmbedded.toString(), "--seed", "3");
        assertEquals(0, r.code(), r.err());
        r = CliRun.of("init", "--preset", "embedded", "--tokenizer", corpus.toString(), "--out", viaPreset.toString(), "--seed", "3");
        assertEquals(0, r.code(), r.err());
        try (Tokenizer tok = Tokenizer.load(corpus); Model m = new Model(new CpuKernels(), SynthCorpus.modelConfig(tok))) {
            m.initialize(3);
            ModelDir.save(m, inMemory, Safetensors.Dtype.F32);
        }
        for (String f : List.of(ModelDir.WEIGHTS, ModelDir.CONFIG)) {
            assertArrayEquals(Files.readAllBytes(inMemory.resolve(f)), Files.readAllBytes(viaEmbedded.resolve(f)), f);
            assertArrayEquals(Files.readAllBytes(inMemory.resolve(f)), Files.readAllBytes(viaPreset.resolve(f)), f);
        }
        assertArrayEquals(Files.readAllBytes(corpus.resolve("tokenizer.json")), Files.readAllBytes(viaPreset.resolve("tokenizer.json")),
                "nothing to add: the tokenizer is copied as is");
        JsonNode manifest = JSON.readTree(Files.readString(viaPreset.resolve(ModelInit.MANIFEST)));
        assertEquals("embedded", manifest.get("preset").asText());
        assertEquals("F32", manifest.get("dtype").asText());
    }

    /** Past the fp32 limit (forced here on a tiny shape) the weights are bf16: the fp32 model's values rounded, and it scores as that. */
    @Test
    void pastTheFp32LimitTheWeightsAreTheRoundedModelInBf16() throws Exception {
        ModelInit.Options opt = new ModelInit.Options(16, 16, "mlp", 5);
        Path f32 = dir.resolve("f32"), bf16 = dir.resolve("bf16");
        ModelInit.preset("embedded", corpus, f32, opt, m -> {}, Long.MAX_VALUE);
        ModelInit.Result r = ModelInit.preset("embedded", corpus, bf16, opt, m -> {}, 0);
        try (Safetensors st = Safetensors.open(bf16.resolve(ModelDir.WEIGHTS))) {
            assertTrue(st.tensors().values().stream().allMatch(t -> t.dtype().equals("BF16")));
            assertEquals("pt", st.metadata().get("format"));
        }
        assertEquals("bfloat16", JSON.readTree(Files.readString(bf16.resolve(ModelDir.CONFIG))).get("torch_dtype").asText());
        assertEquals(r.config(), ModelConfig.load(f32.resolve(ModelDir.CONFIG)));

        try (CpuKernels cpu = new CpuKernels(); Tokenizer tok = Tokenizer.load(bf16);
             Model full = ModelDir.load(cpu, f32, 0, m -> {}); Model half = ModelDir.load(cpu, bf16, 0, m -> {})) {
            Batch batch = Batch.pack(full.config, List.of(Examples.sft(utterance, tok, full.config).sequence()));
            double fullLoss = full.forward(batch, 1f).loss();
            for (ParamLayout.Entry e : full.layout.entries()) {
                float[] v = full.download(e.name());
                for (int i = 0; i < v.length; i++) v[i] = Bf16.toFloat(Bf16.fromFloat(v[i]));
                assertArrayEquals(v, half.download(e.name()), e.name());
                full.upload(e.name(), v);
            }
            double rounded = full.forward(batch, 1f).loss(), loaded = half.forward(batch, 1f).loss();
            assertEquals(rounded, loaded, "the bf16 directory scores exactly as the rounded in-memory model");
            assertEquals(fullLoss, loaded, 1e-2 * fullLoss, "and close to the fp32 one");
        }
    }

    /** Qwen's real tokenizer with its tokenizer_config.json: the special tokens added, the vocabulary grown, the files carried along. */
    @Test
    void aPresetForQwensTokenizer() throws Exception {
        Path qwen = QwenTokenizerFiles.dir(), out = dir.resolve("qwen-embedded");
        // bf16 (forced) halves the 151k-row embedding written here
        ModelInit.Result r = ModelInit.preset("embedded", qwen.resolve("tokenizer.json"), out,
                new ModelInit.Options(0, SynthCorpus.VISION_DIM, "linear", 1), m -> {}, 0);
        assertEquals(8, r.addedTokens().size());
        assertEquals(151_680, r.config().vocabSize(), "151,669 ids + 8 added, rounded up to 64");
        JsonNode tc = JSON.readTree(Files.readString(out.resolve("tokenizer_config.json")));
        assertEquals(JSON.readTree(Files.readString(qwen.resolve("tokenizer_config.json"))).get("chat_template"), tc.get("chat_template"));
        assertEquals(SpecialTokens.DISC_OPEN, tc.get("added_tokens_decoder").get(String.valueOf(r.addedTokens().get(SpecialTokens.DISC_OPEN)))
                .get("content").asText());
        try (Tokenizer tok = Tokenizer.load(out); CpuKernels cpu = new CpuKernels(); Model m = ModelDir.load(cpu, out, 0, x -> {})) {
            assertEquals(tok.idOf(SpecialTokens.VISION), m.config.visionTokenId());
            assertFalse(m.config.hasAudio());
            Examples.Sft sft = Examples.sft(utterance, tok, m.config);
            double perToken = m.forward(Batch.pack(m.config, List.of(sft.sequence())), 1f).loss() / sft.responseIds().length;
            assertEquals(Math.log(151_680), perToken, 0.05 * perToken, "a random model's loss per token is about log(vocab)");
        }
    }

    @Test
    void badFlagsAndFailuresLeaveNothingBehind() throws Exception {
        Path out = dir.resolve("m");
        expectError("--preset: unknown preset \"qwen3-8b\"; known: embedded, 25m, 125m, qwen2.5-0.5b, qwen2.5-1.5b, qwen2.5-7b",
                "init", "--preset", "qwen3-8b", "--tokenizer", corpus.toString(), "--out", out.toString());
        expectError("--tokenizer: required with --preset (a tokenizer.json, or a folder holding one)",
                "init", "--preset", "25m", "--out", out.toString());
        expectError(dir.resolve("nowhere.json") + ": file not found (--tokenizer takes a tokenizer.json or a folder holding one: "
                + "a corpus of data synth, a model directory)",
                "init", "--preset", "25m", "--tokenizer", dir.resolve("nowhere.json").toString(), "--out", out.toString());
        expectError("--from / --preset / --embedded: give exactly one of them",
                "init", "--preset", "25m", "--from", corpus.toString(), "--tokenizer", corpus.toString(), "--out", out.toString());
        expectError("--tokenizer: only with --preset (--from uses the directory's tokenizer.json, --embedded the corpus's)",
                "init", "--embedded", corpus.toString(), "--tokenizer", corpus.toString(), "--out", out.toString());
        assertFalse(Files.exists(out));

        // an existing model is never touched
        Files.createDirectories(out);
        Files.writeString(out.resolve("keep.txt"), "mine");
        expectError(out + ": already exists and is not an empty directory; init writes a new model directory",
                "init", "--preset", "embedded", "--tokenizer", corpus.toString(), "--out", out.toString());
        assertEquals(List.of("keep.txt"), ModelInitTest.listNames(out));

        // a failure after the weights were written (a broken tokenizer_config.json beside a tokenizer that needs
        // the special tokens listed in it): the empty output folder stays empty, no temporary folder is left
        Path broken = dir.resolve("broken");
        Files.createDirectories(broken);
        Files.writeString(broken.resolve("tokenizer.json"), JSON.writeValueAsString(ModelInitTest.tokenizerWithoutOurSpecials()));
        Files.writeString(broken.resolve("tokenizer_config.json"), "[1]");
        Path empty = dir.resolve("empty");
        Files.createDirectories(empty);
        List<String> before = ModelInitTest.listNames(dir);
        expectError(broken.resolve("tokenizer_config.json") + ": expected a JSON object",
                "init", "--preset", "embedded", "--tokenizer", broken.toString(), "--out", empty.toString());
        assertEquals(List.of(), ModelInitTest.listNames(empty));
        assertEquals(before, ModelInitTest.listNames(dir));
    }

    private static void expectError(String message, String... args) {
        CliRun r = CliRun.of(args);
        assertEquals(Main.EXIT_BAD_INPUT, r.code(), r.err());
        assertEquals("hintgrpo: error: " + message, r.err().strip().lines().reduce((a, b) -> b).orElse(""), r.err());
    }
}
