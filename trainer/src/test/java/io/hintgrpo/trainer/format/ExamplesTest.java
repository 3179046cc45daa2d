package io.hintgrpo.trainer.format;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.trainer.data.SynthCorpus;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.tokenizer.SpecialTokens;
import io.hintgrpo.trainer.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class ExamplesTest {
    @TempDir
    static Path dir;
    static Tokenizer tok;
    static ModelConfig cfg;
    static Utterance u;

    @BeforeAll
    static void setUp() throws Exception {
        Path f = dir.resolve("tokenizer.json");
        Files.writeString(f, SynthCorpus.tokenizerJson());
        tok = Tokenizer.load(f);
        cfg = SynthCorpus.modelConfig(tok);
        u = SynthCorpus.generate(SynthCorpus.Options.defaults(1, 20)).get(0).utterance();
    }

    @AfterAll
    static void close() {
        tok.close();
    }

    @Test
    void thePromptHasOnePlaceholderPerFrameAndOpensTheAssistantTurn() {
        String p = DcFormat.prompt(2, 3, "the plot was good.");
        assertEquals("<|im_start|>user\n<|audio|><|audio|><|vision|><|vision|><|vision|>\n" + DcFormat.INSTRUCTION
                + "\ntranscript: the plot was good.<|im_end|>\n<|im_start|>assistant\n", p);
        Examples.Prompt ex = Examples.prompt(u, tok, cfg);
        assertEquals(u.audio().length, count(ex.promptIds(), cfg.audioTokenId()));
        assertEquals(u.vision().length, count(ex.promptIds(), cfg.visionTokenId()));
        assertEquals(DcFormat.prompt(u.audio().length, u.vision().length, u.text()), tok.decode(ex.promptIds()));
        assertNull(ex.sequence().weights());
        assertSame(u.audio(), ex.sequence().audio());
    }

    @Test
    void sftWeightsCoverExactlyThePredictionsOfResponseTokens() {
        Examples.Sft ex = Examples.sft(u, tok, cfg);
        int p = ex.promptIds().length, n = ex.sequence().length();
        assertEquals(p + ex.responseIds().length, n);
        assertArrayEquals(ex.promptIds(), Arrays.copyOf(ex.sequence().ids(), p));
        assertEquals(DcFormat.completion(u.cot()), tok.decode(ex.responseIds()));
        assertEquals(tok.idOf(SpecialTokens.IM_END), ex.sequence().ids()[n - 1], "the end of turn is learned too");
        float[] w = ex.sequence().weights();
        for (int t = 0; t < n; t++)
            assertEquals(t >= p - 1 && t < n - 1 ? 1f : 0f, w[t], "weights[t] weighs predicting ids[t+1]; t = " + t);
        Batch b = Batch.pack(cfg, List.of(ex.sequence(), Examples.prompt(u, tok, cfg).sequence()));
        assertEquals(2, b.b);
        assertEquals(2 * u.audio().length, b.audio.n());
    }

    @Test
    void aModelWithoutAModalityGetsNoPlaceholdersForIt() {
        ModelConfig textOnly = cfg.withModalities(0, 0, -1, -1, "linear");
        Examples.Sft ex = Examples.sft(u, tok, textOnly);
        assertEquals(0, count(ex.promptIds(), tok.idOf(SpecialTokens.AUDIO)));
        assertNull(ex.sequence().audio());
        ModelConfig audioOnly = cfg.withModalities(cfg.audioFeatureSize(), 0, cfg.audioTokenId(), -1, "linear");
        assertEquals(0, count(Examples.prompt(u, tok, audioOnly).promptIds(), tok.idOf(SpecialTokens.VISION)));
    }

    @Test
    void mismatchedPlaceholderIdsAndMissingChainsAreRefused() {
        ModelConfig wrong = cfg.withModalities(16, 16, cfg.visionTokenId(), cfg.audioTokenId(), "mlp");
        BadInputException e = assertThrows(BadInputException.class, () -> Examples.prompt(u, tok, wrong));
        assertTrue(e.getMessage().contains("audio_token_id"), e.getMessage());
        e = assertThrows(BadInputException.class, () -> Examples.sft(u.withCot(null), tok, cfg));
        assertEquals("utterance " + u.id() + ": no teacher chain (cot) to train on", e.getMessage());
        ModelConfig narrow = cfg.withModalities(8, 16, cfg.audioTokenId(), cfg.visionTokenId(), "mlp");
        e = assertThrows(BadInputException.class, () -> Examples.prompt(u, tok, narrow));
        assertTrue(e.getMessage().contains("audio row 0 has 16 values, the model expects 8"), e.getMessage());
    }

    @Test
    void zeroedModalitiesKeepTheirShape() {
        Utterance z = u.withZeroed(true, false);
        assertEquals(u.audio().length, z.audio().length);
        assertEquals(0f, z.audio()[0][0]);
        assertSame(u.vision(), z.vision());
    }

    private static int count(int[] ids, int id) {
        int n = 0;
        for (int x : ids) if (x == id) n++;
        return n;
    }
}
