package io.hintgrpo.trainer.init;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.io.Safetensors;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.trainer.cli.Main;
import io.hintgrpo.trainer.data.SynthCorpus;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.eval.Evaluation;
import io.hintgrpo.trainer.format.Examples;
import io.hintgrpo.trainer.tokenizer.SpecialTokens;
import io.hintgrpo.trainer.tokenizer.Tokenizer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * init on a tiny Qwen2-format directory written here: config.json with the usual Hugging Face
 * extras, random weights, a word-level tokenizer.json holding only the chat tokens (as Qwen's
 * does), tokenizer_config.json with a chat template, generation_config.json.
 */
class ModelInitTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String TEMPLATE = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}";

    @TempDir
    Path dir;
    Path hf;
    int tokensBefore, vocabBefore;

    @BeforeEach
    void writeHfDirectory() throws Exception {
        hf = dir.resolve("hf");
        Files.createDirectories(hf);
        Files.writeString(hf.resolve("tokenizer.json"), JSON.writeValueAsString(tokenizerWithoutOurSpecials()));
        try (Tokenizer t = Tokenizer.load(hf)) {
            assertFalse(t.hasSpecials());
            tokensBefore = t.vocabSize();
        }
        vocabBefore = (tokensBefore + 63) / 64 * 64;
        ModelConfig cfg = ModelConfig.parse("""
                {"hidden_size": 32, "intermediate_size": 48, "num_attention_heads": 4, "num_key_value_heads": 2,
                 "num_hidden_layers": 2, "vocab_size": %d, "tie_word_embeddings": false, "max_position_embeddings": 512}"""
                .formatted(vocabBefore), "test");
        try (Model m = new Model(new CpuKernels(), cfg)) {
            m.initialize(5);
            ModelDir.save(m, hf, Safetensors.Dtype.F32);
        }
        ObjectNode config = (ObjectNode) JSON.readTree(Files.readString(hf.resolve("config.json")));
        config.put("bos_token_id", 0).put("eos_token_id", 2).put("transformers_version", "4.43.1").put("sliding_window", 512);
        Files.writeString(hf.resolve("config.json"), JSON.writeValueAsString(config));
        ObjectNode tc = JSON.createObjectNode();
        tc.putObject("added_tokens_decoder").putObject("0").put("content", SpecialTokens.PAD).put("special", true);
        tc.putArray("additional_special_tokens").add(SpecialTokens.IM_START).add(SpecialTokens.IM_END);
        tc.put("chat_template", TEMPLATE);
        tc.put("eos_token", SpecialTokens.IM_END);
        Files.writeString(hf.resolve("tokenizer_config.json"), JSON.writeValueAsString(tc));
        Files.writeString(hf.resolve("generation_config.json"), "{\"eos_token_id\": [2, 0], \"temperature\": 0.7}\n");
        Files.writeString(hf.resolve("pytorch_model.bin"), "stale weights");
    }

    @Test
    void addsTheSpecialTokensGrowsTheRowsAndInitialisesTheProjectors() throws Exception {
        Path out = dir.resolve("init");
        ModelInit.Result r = ModelInit.run(hf, out, new ModelInit.Options(16, 16, "mlp", 9), msg -> {});

        int added = SpecialTokens.REQUIRED.size() - 3;
        assertEquals(added, r.addedTokens().size());
        int vocab = r.config().vocabSize();
        assertEquals(Math.max(vocabBefore, (tokensBefore + added + 63) / 64 * 64), vocab, "a multiple of 64 stays one");
        assertEquals("tokenizer_config.json", r.chatTemplate());

        try (Tokenizer src = Tokenizer.load(hf); Tokenizer tok = Tokenizer.load(out)) {
            assertTrue(tok.hasSpecials());
            for (String t : List.of(SpecialTokens.PAD, SpecialTokens.IM_START, SpecialTokens.IM_END))
                assertEquals(src.idOf(t), tok.idOf(t), "existing tokens keep their ids");
            List<Integer> newIds = new ArrayList<>();
            for (String t : SpecialTokens.REQUIRED) if (src.idOf(t) < 0) newIds.add(tok.idOf(t));
            for (int i = 0; i < newIds.size(); i++) assertEquals(tokensBefore + i, newIds.get(i), "new ids follow the highest");
            for (String t : SpecialTokens.DC_TAGS) assertArrayEquals(new int[]{tok.idOf(t)}, tok.encode(t), t + " is one token");
            assertArrayEquals(src.encode("very good movie"), tok.encode("very good movie"), "ordinary text tokenizes as before");
            assertEquals(tok.idOf(SpecialTokens.AUDIO), r.config().audioTokenId());
            assertEquals(tok.idOf(SpecialTokens.VISION), r.config().visionTokenId());

            try (Model before = ModelDir.load(new CpuKernels(), hf, 0, msg -> {});
                 Model after = ModelDir.load(new CpuKernels(), out, 0, msg -> {})) {
                assertEquals(r.config(), after.config);
                assertTrue(after.config.mlpProjector() && after.config.hasAudio() && after.config.hasVision());
                int h = after.config.hiddenSize();
                for (String name : List.of("model.embed_tokens.weight", "lm_head.weight")) {
                    float[] old = before.download(name), now = after.download(name);
                    assertEquals(vocab * h, now.length);
                    for (int row = 0; row < vocabBefore; row++) {
                        if (newIds.contains(row)) continue;
                        for (int j = 0; j < h; j++) assertEquals(old[row * h + j], now[row * h + j], name + " row " + row + " unchanged");
                    }
                    for (int j = 0; j < h; j++) {
                        double mean = 0;
                        for (int row = 0; row < tokensBefore; row++) mean += old[row * h + j];
                        mean /= tokensBefore;
                        for (int id : newIds) assertEquals(mean, now[id * h + j], 1e-6, name + " row " + id + " is the mean");
                    }
                }
                assertArrayEquals(before.download("model.layers.1.mlp.down_proj.weight"), after.download("model.layers.1.mlp.down_proj.weight"));
                float[] proj = after.download("multi_modal_projector.audio.linear_1.weight");
                assertTrue(proj.length > 0 && java.util.Arrays.stream(toDoubles(proj)).anyMatch(x -> x != 0), "projector initialised");

                // the model scores and generates with the DC prompt
                Utterance u = SynthCorpus.generate(SynthCorpus.Options.defaults(3, 20)).get(0).utterance();
                double loss = after.forward(Batch.pack(after.config, List.of(Examples.sft(u, tok, after.config).sequence())), 1f).loss();
                assertTrue(Double.isFinite(loss) && loss > 0, "loss " + loss);
                List<Evaluation.Row> rows = Evaluation.generate(after, tok, List.of(u),
                        new Evaluation.Options(6, 0f, 0, 1f, 1, 0, Evaluation.Drop.NONE), null);
                assertTrue(rows.get(0).tokens() >= 1 && rows.get(0).tokens() <= 6);
            }
        }

        JsonNode config = JSON.readTree(Files.readString(out.resolve("config.json")));
        assertEquals("4.43.1", config.get("transformers_version").asText(), "other config fields are kept");
        assertEquals(vocab, config.get("vocab_size").asInt());
        JsonNode tc = JSON.readTree(Files.readString(out.resolve("tokenizer_config.json")));
        assertEquals(TEMPLATE, tc.get("chat_template").asText(), "the chat template is kept");
        assertEquals(SpecialTokens.IM_END, tc.get("eos_token").asText());
        for (int id = tokensBefore; id < tokensBefore + added; id++)
            assertTrue(tc.get("added_tokens_decoder").get(String.valueOf(id)).get("special").asBoolean());
        assertEquals(2 + added, tc.get("additional_special_tokens").size());
        assertEquals(Files.readString(hf.resolve("generation_config.json")), Files.readString(out.resolve("generation_config.json")),
                "end of turn was there already: copied unchanged");
        assertFalse(Files.exists(out.resolve("pytorch_model.bin")), "stale weights are left out");
        JsonNode manifest = JSON.readTree(Files.readString(out.resolve(ModelInit.MANIFEST)));
        assertTrue(manifest.get("chat_template_kept").asBoolean());
        assertEquals(added, manifest.get("added_tokens").size());
        assertEquals(List.of("init"), listNames(dir).stream().filter(n -> !n.equals("hf")).toList(), "no temporary folder left");
    }

    @Test
    void aMissingEndOfTurnIsAddedAndListedAsEos() throws Exception {
        ObjectNode tok = (ObjectNode) JSON.readTree(Files.readString(hf.resolve("tokenizer.json")));
        for (Iterator<JsonNode> it = tok.withArray("added_tokens").iterator(); it.hasNext(); )
            if (it.next().get("content").asText().equals(SpecialTokens.IM_END)) it.remove();
        ((ObjectNode) tok.get("model").get("vocab")).remove(SpecialTokens.IM_END);
        renumber((ObjectNode) tok.get("model").get("vocab"));
        for (JsonNode t : tok.withArray("added_tokens")) ((ObjectNode) t).put("id", tok.get("model").get("vocab").get(t.get("content").asText()).asInt());
        Files.writeString(hf.resolve("tokenizer.json"), JSON.writeValueAsString(tok));
        Path out = dir.resolve("init");
        ModelInit.Result r = ModelInit.run(hf, out, new ModelInit.Options(0, 16, "linear", 1), msg -> {});
        int imEnd = r.addedTokens().get(SpecialTokens.IM_END);
        try (Tokenizer t = Tokenizer.load(out)) {
            assertEquals(imEnd, t.idOf(SpecialTokens.IM_END));
        }
        ArrayNode eos = (ArrayNode) JSON.readTree(Files.readString(out.resolve("generation_config.json"))).get("eos_token_id");
        assertEquals(imEnd, eos.get(eos.size() - 1).asInt());
        assertFalse(r.config().hasAudio());
        assertEquals(-1, r.config().audioTokenId());
    }

    @Test
    void badInputsFailClearlyAndWriteNothing() throws Exception {
        Path out = dir.resolve("init");
        assertFails(dir.resolve("nowhere"), out, "does not exist");

        Path noTok = copyOf(hf, "no-tokenizer");
        Files.delete(noTok.resolve("tokenizer.json"));
        assertFails(noTok, out, "tokenizer.json: file not found");

        Path small = copyOf(hf, "small-vocab");
        ObjectNode config = (ObjectNode) JSON.readTree(Files.readString(small.resolve("config.json")));
        config.put("vocab_size", tokensBefore - 5);
        Files.writeString(small.resolve("config.json"), JSON.writeValueAsString(config));
        assertFails(small, out, "vocab_size " + (tokensBefore - 5) + " is smaller than the " + tokensBefore + " token ids");

        Path wide = copyOf(hf, "wrong-shape");
        config = (ObjectNode) JSON.readTree(Files.readString(wide.resolve("config.json")));
        config.put("intermediate_size", 64);
        Files.writeString(wide.resolve("config.json"), JSON.writeValueAsString(config));
        assertFails(wide, out, "config.json expects");

        Path llama = copyOf(hf, "llama");
        config = (ObjectNode) JSON.readTree(Files.readString(llama.resolve("config.json")));
        config.put("model_type", "llama");
        Files.writeString(llama.resolve("config.json"), JSON.writeValueAsString(config));
        assertFails(llama, out, "model_type \"llama\" is not supported");

        Files.createDirectories(out);
        Files.writeString(out.resolve("keep.txt"), "mine");
        BadInputException e = assertThrows(BadInputException.class, () -> ModelInit.run(hf, out, ModelInit.Options.defaults(), m -> {}));
        assertTrue(e.getMessage().contains("not an empty directory"), e.getMessage());
        assertEquals(List.of("keep.txt"), listNames(out), "an existing directory is never touched");
    }

    @Test
    void theCommandLineWritesTheModelOrOneErrorLine() throws Exception {
        Path out = dir.resolve("cli-init");
        StringWriter err = new StringWriter();
        int code = Main.run(new PrintWriter(new StringWriter(), true), new PrintWriter(err, true),
                "init", "--from", hf.toString(), "--out", out.toString(), "--audio-dim", "4", "--vision-dim", "0", "--seed", "2");
        assertEquals(0, code, err.toString());
        assertEquals(4, ModelConfig.load(out.resolve("config.json")).audioFeatureSize());

        err = new StringWriter();
        code = Main.run(new PrintWriter(new StringWriter(), true), new PrintWriter(err, true),
                "init", "--from", hf.toString(), "--out", dir.resolve("other").toString(), "--projector", "conv");
        assertEquals(Main.EXIT_BAD_INPUT, code);
        assertEquals("hintgrpo: error: --projector: expected mlp or linear, got \"conv\"", err.toString().strip());
        assertFalse(Files.exists(dir.resolve("other")));
    }

    private void assertFails(Path from, Path out, String message) throws Exception {
        List<String> before = listNames(dir);
        BadInputException e = assertThrows(BadInputException.class, () -> ModelInit.run(from, out, ModelInit.Options.defaults(), m -> {}));
        assertTrue(e.getMessage().contains(message), "expected \"" + message + "\" in: " + e.getMessage());
        assertEquals(before, listNames(dir), "nothing written for: " + e.getMessage());
    }

    /** The corpus tokenizer without our special tokens, as Qwen's: only <|endoftext|>, <|im_start|>, <|im_end|>, <unk>. */
    static ObjectNode tokenizerWithoutOurSpecials() throws Exception {
        ObjectNode tok = (ObjectNode) JSON.readTree(SynthCorpus.tokenizerJson());
        Set<String> ours = new HashSet<>(SpecialTokens.REQUIRED);
        ours.removeAll(List.of(SpecialTokens.PAD, SpecialTokens.IM_START, SpecialTokens.IM_END));
        for (Iterator<JsonNode> it = tok.withArray("added_tokens").iterator(); it.hasNext(); )
            if (ours.contains(it.next().get("content").asText())) it.remove();
        ObjectNode vocab = (ObjectNode) tok.get("model").get("vocab");
        ours.forEach(vocab::remove);
        renumber(vocab);
        return tok;
    }

    /** Ids 0, 1, 2, ... in the old order: a real vocabulary has no gaps (the tokenizers library numbers added tokens after it). */
    private static void renumber(ObjectNode vocab) {
        List<String> tokens = new ArrayList<>();
        vocab.properties().forEach(e -> tokens.add(e.getKey()));
        tokens.sort(java.util.Comparator.comparingInt(t -> vocab.get(t).asInt()));
        for (int i = 0; i < tokens.size(); i++) vocab.put(tokens.get(i), i);
    }

    private Path copyOf(Path src, String name) throws Exception {
        Path to = dir.resolve(name);
        Files.createDirectories(to);
        try (Stream<Path> s = Files.list(src)) {
            for (Path f : s.toList()) Files.copy(f, to.resolve(f.getFileName()));
        }
        return to;
    }

    static List<String> listNames(Path p) throws Exception {
        try (Stream<Path> s = Files.list(p)) {
            return s.map(f -> f.getFileName().toString()).sorted().toList();
        }
    }

    private static double[] toDoubles(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) d[i] = v[i];
        return d;
    }
}
