package io.hintgrpo.trainer.format;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

class DcParserTest {
    static final String VALID = "<disc>polarity: negative. the words are positive (good); the voice is flat and the face shows a frown; "
            + "the face and voice outweigh the words.</disc><calib>the energy is low and the expression is clear, so the intensity is clear: "
            + "about 1.8 of 3.</calib><answer>-1.8</answer>";

    @Test
    void aValidResponseReportsEverySegment() {
        ParsedResponse r = DcParser.parse(VALID);
        assertTrue(r.formatValid(), r.problem());
        assertNull(r.problem());
        assertEquals(Polarity.NEGATIVE, r.polarity());
        assertEquals(-1.8f, r.score());
        assertTrue(r.dcConsistent());
        assertTrue(r.disc().startsWith("polarity: negative. the words"));
        assertTrue(r.calib().endsWith("about 1.8 of 3."));
        assertEquals("-1.8", r.answer());
    }

    @Test
    void theGrammarWriterAndParserAgree() {
        for (int tenths = -30; tenths <= 30; tenths++) {
            double y = tenths / 10.0;
            String s = DcFormat.response(Polarity.of(y), "evidence.", "intensity.", y);
            ParsedResponse r = DcParser.parse(s);
            assertTrue(r.formatValid(), s);
            assertEquals((float) y, r.score());
            assertEquals(Polarity.of(y), r.polarity());
            assertTrue(r.dcConsistent());
        }
        assertEquals("0.0", DcFormat.formatScore(-0.04));
        assertEquals("-1.8", DcFormat.formatScore(-1.8f));
        assertEquals("<disc>polarity: neutral.", DcFormat.hintPrefix(Polarity.NEUTRAL));
    }

    @Test
    void theEndOfTurnAndSurroundingWhitespaceAreAllowed() {
        assertTrue(DcParser.parse(VALID + "<|im_end|>").formatValid());
        assertTrue(DcParser.parse("\n " + VALID + " <|endoftext|>\n").formatValid());
        assertTrue(DcParser.parse(VALID.replace("<answer>-1.8<", "<answer> -1.8 <")).formatValid());
    }

    @Test
    void everyTruncationIsInvalidButKeepsWhatItHas() {
        for (int cut = 0; cut < VALID.length(); cut++) {
            ParsedResponse r = DcParser.parse(VALID.substring(0, cut));
            assertFalse(r.formatValid(), "cut at " + cut);
            assertNotNull(r.problem());
            assertFalse(r.hasScore(), "an unterminated answer is not read: cut at " + cut);
        }
        ParsedResponse r = DcParser.parse(VALID.substring(0, VALID.indexOf("the voice")));
        assertEquals(Polarity.NEGATIVE, r.polarity(), "the polarity of a truncated response still counts");
        assertEquals("missing </disc> (truncated or unterminated)", r.problem());
        assertEquals("missing </answer> (truncated or unterminated)", DcParser.parse(VALID.substring(0, VALID.length() - 3)).problem());
    }

    @Test
    void structuralFaultsNameTheFirstProblem() {
        assertProblem("", "empty response");
        assertProblem("the movie was good", "missing <disc>");
        assertProblem(VALID.replace("<calib>", "").replace("</calib>", ""), "missing <calib>");
        assertProblem(VALID.replace("<calib>", ""), "</calib> without <calib>");
        assertProblem(VALID.replace("<answer>-1.8</answer>", ""), "missing <answer>");
        assertProblem("<disc><disc>polarity: negative. x</disc></disc><calib>c</calib><answer>-1</answer>", "<disc> appears 2 times");
        assertProblem("<disc>polarity: negative. <calib>x</disc></calib><answer>-1</answer>", "tag <calib> inside <disc>…</disc>");
        assertProblem("<disc>polarity: negative. <answer>-1</answer></disc><calib>c</calib>", "tag <answer> inside <disc>…</disc>");
        assertProblem("<calib>c</calib><disc>polarity: negative. x</disc><answer>-1</answer>", "segments out of order");
        assertProblem("so: " + VALID, "text before <disc>");
        assertProblem(VALID.replace("</disc><calib>", "</disc> <calib>"), "text between </disc> and <calib>");
        assertProblem(VALID.replace("</calib><answer>", "</calib>x<answer>"), "text between </calib> and <answer>");
        assertProblem(VALID + " and more", "text after </answer>");
        assertProblem(VALID + "<|im_end|><|im_end|>", "text after </answer>");
        assertProblem(VALID.replace("the voice", "<|audio|> the voice"), "special token <|audio|> inside the response");
        assertProblem(VALID.replace("polarity: negative.", "polarity: sad."), "<disc> does not start with \"polarity: <negative|neutral|positive>.\"");
        assertProblem(VALID.replace("polarity: negative.", "the polarity: negative."), "<disc> does not start with");
    }

    @Test
    void sloppyPolarityIsReadButNotValid() {
        ParsedResponse r = DcParser.parse(VALID.replace("polarity: negative.", " polarity:negative ."));
        assertEquals(Polarity.NEGATIVE, r.polarity());
        assertFalse(r.formatValid());
        assertEquals(-1.8f, r.score(), "the score is read even when the format is not valid");
    }

    @Test
    void answersMustBePlainNumbersInRange() {
        for (String bad : new String[]{"high", "-1.8.2", "1e0", "+1.5", "", "1,5", ".5", "-", "NaN", "Infinity", "- 1.8"}) {
            ParsedResponse r = DcParser.parse(VALID.replace("<answer>-1.8<", "<answer>" + bad + "<"));
            assertFalse(r.formatValid(), bad);
            assertFalse(r.hasScore(), bad);
            assertTrue(r.problem().contains("is not a number"), r.problem());
        }
        for (String out : new String[]{"3.1", "-3.01", "10", "99999999999999999999"}) {
            ParsedResponse r = DcParser.parse(VALID.replace("<answer>-1.8<", "<answer>" + out + "<"));
            assertFalse(r.hasScore(), out);
            assertTrue(r.problem().contains("outside [-3, 3]"), r.problem());
        }
        assertTrue(DcParser.parse(VALID.replace("<answer>-1.8<", "<answer>3<")).hasScore());
        assertTrue(DcParser.parse(VALID.replace("<answer>-1.8<", "<answer>-3.00<")).hasScore());
    }

    @Test
    void dcConsistencyComparesTheDiscWithTheAnswersClass() {
        assertFalse(DcParser.parse(VALID.replace("<answer>-1.8<", "<answer>0.5<")).dcConsistent());
        assertTrue(DcParser.parse(VALID.replace("negative.", "neutral.").replace("<answer>-1.8<", "<answer>-0.5<")).dcConsistent());
        assertFalse(DcParser.parse(VALID.replace("<answer>-1.8<", "<answer>x<")).dcConsistent());
    }

    @Test
    void neverThrowsOnAnyText() {
        String[] atoms = {"<disc>", "</disc>", "<calib>", "</calib>", "<answer>", "</answer>", "<|im_end|>", "<|audio|>",
                "polarity: ", "negative", "neutral", "positive", ".", " ", "-", "1", "9", "x", "\n", "<", ">", "/", "\u0000", "\uD83D"};
        Random rnd = new Random(7);
        for (int i = 0; i < 20000; i++) {
            StringBuilder sb = new StringBuilder();
            int n = rnd.nextInt(12);
            for (int j = 0; j < n; j++) sb.append(atoms[rnd.nextInt(atoms.length)]);
            ParsedResponse r = assertDoesNotThrow(() -> DcParser.parse(sb.toString()));
            assertEquals(r.formatValid(), r.problem() == null);
        }
        assertFalse(DcParser.parse(null).formatValid());
    }

    private static void assertProblem(String response, String expected) {
        ParsedResponse r = DcParser.parse(response);
        assertFalse(r.formatValid(), response);
        assertNotNull(r.problem());
        assertTrue(r.problem().startsWith(expected), "expected \"" + expected + "\", got \"" + r.problem() + "\"");
    }
}
