package io.hintgrpo.trainer.tokenizer;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.trainer.data.SynthCorpus;
import io.hintgrpo.trainer.data.SynthCorpus.Sample;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.format.DcFormat;
import io.hintgrpo.trainer.format.Polarity;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class TokenizerTest {
    @TempDir
    static Path dir;
    static Tokenizer tok;
    static Map<String, Integer> vocab;

    @BeforeAll
    static void load() throws Exception {
        Path f = dir.resolve("tokenizer.json");
        Files.writeString(f, SynthCorpus.tokenizerJson());
        tok = Tokenizer.load(f);
        vocab = SynthCorpus.vocabulary();
    }

    @AfterAll
    static void close() {
        tok.close();
    }

    /** Everything the corpus makes a model read or write: transcripts, prompts, every (unfiltered) teacher chain. */
    static List<String> corpusTexts() {
        List<String> texts = new ArrayList<>();
        for (Sample s : SynthCorpus.generate(new SynthCorpus.Options(9, 2000, 0.5, 6, 6, 0.25, 0.5))) {
            Utterance u = s.utterance();
            texts.add(u.text());
            texts.add(DcFormat.prompt(u.audio().length, u.vision().length, u.text()));
            texts.add(DcFormat.completion(u.cot()));
        }
        return texts;
    }

    @Test
    void everyCorpusTextRoundTripsExactlyWithNoUnknownWord() {
        int unk = tok.idOf(SpecialTokens.UNK);
        for (String text : corpusTexts()) {
            int[] ids = tok.encode(text);
            for (int id : ids) assertNotEquals(unk, id, "unknown word in: " + text);
            assertEquals(text, tok.decode(ids));
        }
    }

    @Test
    void theJavaSplitterMatchesTheRustPreTokenizer() {
        List<String> texts = new ArrayList<>(corpusTexts().subList(0, 300));
        texts.addAll(List.of("a  b", " good", "good ", "x\n y", "<answer> -1.8</answer>", "no, 2 3!?", "(very) good.\n\n"));
        for (String text : texts) {
            int[] expected = WordLevelTokenizer.pieces(text).stream()
                    .mapToInt(p -> vocab.getOrDefault(p, vocab.get(SpecialTokens.UNK))).toArray();
            assertArrayEquals(expected, tok.encode(text), text);
        }
    }

    @Test
    void anyScoreTokenizesDigitByDigit() {
        for (int tenths = -30; tenths <= 30; tenths++) {
            String s = SpecialTokens.ANSWER_OPEN + DcFormat.formatScore(tenths / 10.0) + SpecialTokens.ANSWER_CLOSE;
            int[] ids = tok.encode(s);
            assertEquals(s, tok.decode(ids));
            assertEquals(tenths < 0 ? 6 : 5, ids.length, s);
        }
        assertEquals(List.of("about", "▁", "1", ".", "8"), WordLevelTokenizer.pieces("about 1.8"));
    }

    @Test
    void theHintPrefixTokenizesAsAPrefixOfTheFullChain() {
        for (Polarity p : Polarity.values()) {
            String full = DcFormat.response(p, "the cues agree.", "about 1.0 of 3.", p == Polarity.NEGATIVE ? -1 : p == Polarity.NEUTRAL ? 0 : 1);
            int[] prefix = tok.encode(DcFormat.hintPrefix(p)), all = tok.encode(full);
            assertArrayEquals(prefix, Arrays.copyOf(all, prefix.length));
        }
    }

    @Test
    void specialTokensAreSingleIdsAndTheVocabularyFitsTheDefaultModel() {
        Tokenizer.Specials sp = tok.specials();
        assertEquals(0, sp.pad());
        for (String s : SpecialTokens.REQUIRED) {
            int[] ids = tok.encode(s);
            assertEquals(1, ids.length, s);
            assertEquals(tok.idOf(s), ids[0]);
        }
        assertArrayEquals(new int[]{sp.audio(), sp.audio(), sp.vision()}, tok.encode("<|audio|><|audio|><|vision|>"));
        assertEquals(vocab.size(), tok.vocabSize());
        assertTrue(tok.vocabSize() <= SynthCorpus.MAX_VOCAB);
        assertTrue(tok.hasSpecials());
        assertEquals(-1, tok.idOf("zebra"));
    }

    @Test
    void longInputIsNeverTruncatedAndUnknownIdsDecodeToNothing() {
        String text = "very good ".repeat(2000).strip();
        assertEquals(4000, tok.encode(text).length);
        int good = tok.idOf("good");
        assertEquals("goodgood", tok.decode(new int[]{good, tok.vocabSize(), -1, 99999, good}));
    }

    @Test
    void badTokenizerFilesFailWithThePath() throws Exception {
        BadInputException e = assertThrows(BadInputException.class, () -> Tokenizer.load(dir.resolve("none.json")));
        assertEquals(dir.resolve("none.json") + ": file not found", e.getMessage());
        Path broken = dir.resolve("broken.json");
        Files.writeString(broken, "{\"model\": ");
        e = assertThrows(BadInputException.class, () -> Tokenizer.load(broken));
        assertTrue(e.getMessage().startsWith(broken + ": not valid JSON"), e.getMessage());
        Path noModel = dir.resolve("nomodel.json");
        Files.writeString(noModel, "{\"added_tokens\": []}");
        e = assertThrows(BadInputException.class, () -> Tokenizer.load(noModel));
        assertTrue(e.getMessage().contains("no model.vocab"), e.getMessage());
        Path wrongType = dir.resolve("wrongtype.json");
        Files.writeString(wrongType, "{\"model\": {\"type\": \"Nonsense\", \"vocab\": {\"a\": 0}}}");
        e = assertThrows(BadInputException.class, () -> Tokenizer.load(wrongType));
        assertTrue(e.getMessage().startsWith(wrongType + ": not a usable tokenizer.json"), e.getMessage());
    }

    @Test
    void aTokenizerWithoutTheDcTagsLoadsButNamesWhatItLacks() throws Exception {
        Path plain = dir.resolve("plain.json");
        Files.writeString(plain, """
                {"version": "1.0", "added_tokens": [{"id": 2, "content": "<|endoftext|>", "special": true,
                  "single_word": false, "lstrip": false, "rstrip": false, "normalized": false}],
                 "pre_tokenizer": {"type": "WhitespaceSplit"},
                 "model": {"type": "WordLevel", "vocab": {"<unk>": 0, "hello": 1, "<|endoftext|>": 2}, "unk_token": "<unk>"}}
                """);
        try (Tokenizer t = Tokenizer.load(plain)) {
            assertFalse(t.hasSpecials());
            BadInputException e = assertThrows(BadInputException.class, t::specials);
            assertTrue(e.getMessage().contains("lacks special tokens [<|im_start|>"), e.getMessage());
            assertArrayEquals(new int[]{1}, t.encode("hello"));
        }
    }
}
