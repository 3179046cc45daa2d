package io.hintgrpo.trainer.init;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.io.Safetensors;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.trainer.QwenTokenizerFiles;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.eval.Evaluation;
import io.hintgrpo.trainer.format.DcFormat;
import io.hintgrpo.trainer.format.DcParser;
import io.hintgrpo.trainer.format.Examples;
import io.hintgrpo.trainer.format.ParsedResponse;
import io.hintgrpo.trainer.format.Polarity;
import io.hintgrpo.trainer.tokenizer.SpecialTokens;
import io.hintgrpo.trainer.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Qwen's real byte-level BPE tokenizer (Qwen3's tokenizer.json, 151,643 BPE tokens + 26 added
 * tokens; {@link QwenTokenizerFiles}) through {@code init --from} a tiny random Qwen2 directory
 * that carries it with its tokenizer_config.json: the special tokens init adds, the DC grammar,
 * Chinese text (CH-SIMS) and the DC prompt.
 */
class QwenTokenizerTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Qwen's own ids: the vocabulary's size, its chat tokens and a few plain tokens. */
    private static final int QWEN_BPE = 151_643, ENDOFTEXT = 151_643, IM_START = 151_644, IM_END = 151_645,
            QWEN_IDS = 151_669, NEWLINE = 198, USER = 872, ASSISTANT = 77_091;
    /** CH-SIMS-like transcripts: Chinese, with full-width punctuation and a mix of scripts. */
    private static final List<String> CHINESE = List.of("这部电影的剧情很感人，但是演员的表演有点生硬。",
            "我真的不知道该说什么……太失望了！", "他笑着说：“还行吧，OK 的。” 2024年");

    @TempDir
    static Path dir;
    static Path hf, out;
    static ModelInit.Result init;
    static Tokenizer qwen, tok;

    /** Once for the class; in BeforeEach so that missing files mark every test skipped, with the reason, not the class silently. */
    @BeforeEach
    void initFromATinyQwen2Directory() throws Exception {
        Path files = QwenTokenizerFiles.dir();
        if (init != null) return;
        hf = dir.resolve("qwen2-tiny");
        Files.createDirectories(hf);
        Files.copy(files.resolve("tokenizer.json"), hf.resolve("tokenizer.json"));
        Files.copy(files.resolve("tokenizer_config.json"), hf.resolve("tokenizer_config.json"));
        // vocab_size = the tokenizer's ids exactly (not a multiple of 64), so init grows the rows for its new tokens;
        // hidden 16 keeps the 151k-row embedding and LM head small
        ModelConfig cfg = ModelConfig.parse("""
                {"hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 4, "num_key_value_heads": 2,
                 "num_hidden_layers": 2, "vocab_size": %d, "tie_word_embeddings": false, "rope_theta": 1000000.0,
                 "max_position_embeddings": 4096}""".formatted(QWEN_IDS), "test");
        try (Model m = new Model(new CpuKernels(), cfg)) {
            m.initialize(7);
            ModelDir.save(m, hf, Safetensors.Dtype.BF16); // Qwen publishes bf16
        }
        ObjectNode config = (ObjectNode) JSON.readTree(Files.readString(hf.resolve("config.json")));
        config.put("bos_token_id", ENDOFTEXT).put("eos_token_id", IM_END).put("transformers_version", "4.51.0");
        Files.writeString(hf.resolve("config.json"), JSON.writeValueAsString(config));

        out = dir.resolve("init");
        init = ModelInit.run(hf, out, new ModelInit.Options(4, 4, "mlp", 1), msg -> {});
        qwen = Tokenizer.load(hf);
        tok = Tokenizer.load(out);
    }

    @AfterAll
    static void close() {
        if (qwen != null) qwen.close();
        if (tok != null) tok.close();
    }

    @Test
    void theRealTokenizerLoadsAsBpe() {
        assertEquals(QWEN_IDS, qwen.vocabSize(), "151,643 BPE tokens + 26 added tokens");
        assertEquals(ENDOFTEXT, qwen.idOf(SpecialTokens.PAD));
        assertEquals(IM_START, qwen.idOf(SpecialTokens.IM_START));
        assertEquals(IM_END, qwen.idOf(SpecialTokens.IM_END));
        assertArrayEquals(new int[]{USER, NEWLINE}, qwen.encode("user\n"));
        assertArrayEquals(new int[]{ASSISTANT}, qwen.encode("assistant"));
        for (String t : SpecialTokens.DC_TAGS) assertTrue(qwen.encode(t).length > 1, t + " is split before init adds it");
    }

    @Test
    void initAddsThePlaceholdersAndDcTagsAfterQwensIds() throws Exception {
        List<String> expected = new ArrayList<>(SpecialTokens.REQUIRED);
        expected.removeAll(List.of(SpecialTokens.PAD, SpecialTokens.IM_START, SpecialTokens.IM_END));
        assertEquals(expected, List.copyOf(init.addedTokens().keySet()), "Qwen has the chat tokens; the rest is added in order");
        for (int i = 0; i < expected.size(); i++) {
            assertEquals(QWEN_IDS + i, init.addedTokens().get(expected.get(i)));
            assertEquals(QWEN_IDS + i, tok.idOf(expected.get(i)));
        }
        assertEquals(QWEN_IDS + expected.size(), tok.vocabSize());
        assertEquals(QWEN_IDS + expected.size(), init.config().vocabSize(), "vocab_size grows to cover the new ids");
        assertEquals(tok.idOf(SpecialTokens.AUDIO), init.config().audioTokenId());
        assertEquals(tok.idOf(SpecialTokens.VISION), init.config().visionTokenId());
        for (String t : List.of(SpecialTokens.PAD, SpecialTokens.IM_START, SpecialTokens.IM_END, "<think>", "<|vision_pad|>"))
            assertEquals(qwen.idOf(t), tok.idOf(t), t + " keeps its id");

        // the chat template travels unchanged; the new tokens are listed as special in tokenizer_config.json
        JsonNode before = JSON.readTree(Files.readString(hf.resolve("tokenizer_config.json")));
        JsonNode after = JSON.readTree(Files.readString(out.resolve("tokenizer_config.json")));
        assertEquals(before.get("chat_template"), after.get("chat_template"));
        assertEquals("<|im_end|>", after.get("eos_token").asText());
        for (String t : expected) {
            JsonNode entry = after.get("added_tokens_decoder").get(String.valueOf(tok.idOf(t)));
            assertEquals(t, entry.get("content").asText());
            assertTrue(entry.get("special").asBoolean());
        }
        JsonNode manifest = JSON.readTree(Files.readString(out.resolve(ModelInit.MANIFEST)));
        assertEquals("tokenizer_config.json", manifest.get("chat_template_file").asText());
    }

    @Test
    void specialTokensAreSingleIdsNeverSplit() {
        for (String t : SpecialTokens.REQUIRED) {
            int id = tok.idOf(t);
            assertArrayEquals(new int[]{id}, tok.encode(t), t);
            // glued to words and to each other, with no space around
            int[] ids = tok.encode("ok" + t + t + "不错");
            assertEquals(2, IntStream.of(ids).filter(x -> x == id).count(), t + " in " + Arrays.toString(ids));
            assertEquals("ok" + t + t + "不错", tok.decode(ids));
        }
        int[] frames = tok.encode(SpecialTokens.AUDIO.repeat(3) + SpecialTokens.VISION.repeat(2));
        int a = tok.idOf(SpecialTokens.AUDIO), v = tok.idOf(SpecialTokens.VISION);
        assertArrayEquals(new int[]{a, a, a, v, v}, frames);
    }

    @Test
    void theDcGrammarRoundTrips() {
        String response = DcFormat.completion(DcFormat.response(Polarity.NEGATIVE,
                "the words praise the plot, but the voice is flat and the face frowns.", "clearly but not extremely negative", -1.8));
        int[] ids = tok.encode(response);
        assertEquals(response, tok.decode(ids));
        for (String t : SpecialTokens.DC_TAGS) assertEquals(1, IntStream.of(ids).filter(x -> x == tok.idOf(t)).count(), t);
        assertEquals(IM_END, ids[ids.length - 1]);
        ParsedResponse parsed = DcParser.parse(tok.decode(Arrays.copyOf(ids, ids.length - 1)));
        assertTrue(parsed.formatValid(), parsed.problem());
        assertEquals(-1.8f, parsed.score());
        assertEquals(Polarity.NEGATIVE, parsed.polarity());

        // a Chinese chain too: evidence and intensity in the transcript's language
        String zh = DcFormat.response(Polarity.POSITIVE, "语气轻快，面带微笑。", "比较积极", 1.2);
        assertEquals(zh, tok.decode(tok.encode(zh)));
    }

    @Test
    void chineseTextRoundTripsThroughRealMerges() {
        for (String text : CHINESE) {
            int[] ids = tok.encode(text);
            assertEquals(text, tok.decode(ids), text);
            assertArrayEquals(qwen.encode(text), ids, "init's added tokens leave ordinary text alone");
            assertTrue(IntStream.of(ids).allMatch(id -> id < QWEN_BPE), "plain text maps to BPE ids only");
            // real merges: far fewer tokens than the UTF-8 bytes a byte fallback would give
            assertTrue(ids.length * 2 < text.getBytes(StandardCharsets.UTF_8).length, text + " → " + ids.length + " tokens");
        }
    }

    @Test
    void promptsComeFromTheDcFormatNotTheChatTemplate() {
        String text = CHINESE.get(0);
        Utterance u = new Utterance("sims-1", text, -0.6f, "sims", frames(2, 4), frames(3, 4), null);
        int[] ids = Examples.prompt(u, tok, init.config()).promptIds();
        int a = tok.idOf(SpecialTokens.AUDIO), v = tok.idOf(SpecialTokens.VISION);
        List<Integer> expected = new ArrayList<>(List.of(IM_START, USER, NEWLINE, a, a, v, v, v));
        for (int id : tok.encode("\n" + DcFormat.INSTRUCTION + "\n" + DcFormat.TRANSCRIPT_LABEL + text)) expected.add(id);
        expected.addAll(List.of(IM_END, NEWLINE, IM_START, ASSISTANT, NEWLINE));
        assertEquals(expected, IntStream.of(ids).boxed().toList());
        assertEquals(DcFormat.prompt(2, 3, text), tok.decode(ids));
    }

    @Test
    void theInitialisedModelTrainsAndGeneratesWithIt() throws Exception {
        String chain = DcFormat.response(Polarity.NEGATIVE, "语气生硬。", "略微消极", -0.6);
        Utterance u = new Utterance("sims-2", CHINESE.get(0), -0.6f, "sims", frames(2, 4), frames(2, 4), chain);
        try (CpuKernels cpu = new CpuKernels(); Model m = ModelDir.load(cpu, out, 0, msg -> {})) {
            assertEquals(init.config(), m.config);
            Examples.Sft sft = Examples.sft(u, tok, m.config);
            double loss = m.forward(Batch.pack(m.config, List.of(sft.sequence())), 1f).loss();
            assertTrue(Double.isFinite(loss) && loss > 0, "loss " + loss);
            List<Evaluation.Row> rows = Evaluation.generate(m, tok, List.of(u),
                    new Evaluation.Options(4, 0f, 0, 1f, 1, 0, Evaluation.Drop.NONE), null);
            assertTrue(rows.get(0).tokens() >= 1 && rows.get(0).tokens() <= 4);
        }
    }

    private static float[][] frames(int t, int d) {
        float[][] f = new float[t][d];
        for (int i = 0; i < t; i++)
            for (int j = 0; j < d; j++) f[i][j] = (float) Math.sin(1 + i * d + j);
        return f;
    }
}
