package io.hintgrpo.trainer.eval;

import io.hintgrpo.trainer.eval.Metrics.Scores;
import io.hintgrpo.trainer.format.DcParser;
import io.hintgrpo.trainer.format.Polarity;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class MetricsTest {
    static final double EPS = 1e-12;
    // hand-computed case: y and p below
    static final double[] Y = {-2, -0.4, 0, 1.5, 2.6};
    static final double[] P = {-1.5, 0.5, 0.2, 1.5, 2.5};

    @Test
    void maeAndPearson() {
        assertEquals((0.5 + 0.9 + 0.2 + 0 + 0.1) / 5, Metrics.mae(P, Y), EPS);
        // means: p 0.64, y 0.34; Σdp·dy = 10.462, Σdp² = 8.992, Σdy² = 12.592
        assertEquals(10.462 / Math.sqrt(8.992 * 12.592), Metrics.pearson(P, Y), 1e-9);
        assertEquals(1.0, Metrics.pearson(new double[]{1, 2, 3}, new double[]{2, 4, 6}), EPS);
        assertEquals(-1.0, Metrics.pearson(new double[]{1, 2, 3}, new double[]{3, 2, 1}), EPS);
    }

    @Test
    void acc2AndWeightedF1HasZeroAndNonZero() {
        // has-0: truth ≥ 0 = F F T T T, pred ≥ 0 = F T T T T → 4 of 5 right
        assertEquals(0.8, Metrics.acc2Has0(P, Y), EPS);
        // class T: tp 3 fp 1 fn 0 → F1 6/7 (support 3); class F: tp 1 fp 0 fn 1 → F1 2/3 (support 2)
        assertEquals((3 * 6.0 / 7 + 2 * 2.0 / 3) / 5, Metrics.f1Has0(P, Y), EPS);
        // non-0 drops y = 0: truth > 0 = F F T T, pred > 0 = F T T T → 3 of 4
        assertEquals(0.75, Metrics.acc2Non0(P, Y), EPS);
        // class T: tp 2 fp 1 → 4/5 (support 2); class F: tp 1 fn 1 → 2/3 (support 2)
        assertEquals((2 * 0.8 + 2 * 2.0 / 3) / 4, Metrics.f1Non0(P, Y), EPS);
        // a class absent from the truth weighs nothing (sklearn: weights are the true supports)
        assertEquals(0.8, Metrics.f1Has0(new double[]{1, -1, 2}, new double[]{1, 2, 3}), EPS);
        // a zero prediction is positive for has-0 and negative for non-0
        assertEquals(1.0, Metrics.acc2Has0(new double[]{0}, new double[]{1}), EPS);
        assertEquals(0.0, Metrics.acc2Non0(new double[]{0}, new double[]{1}), EPS);
    }

    @Test
    void acc5AndAcc7ClipThenRoundHalfToEven() {
        // Acc-7: p → -2 (−1.5 half to even) 0 0 2 2 (2.5 half to even); y → -2 -0 0 2 3 → 4 of 5
        assertEquals(0.8, Metrics.accRounded(P, Y, 3), EPS);
        // Acc-5: clipped to ±2 the last pair agrees too
        assertEquals(1.0, Metrics.accRounded(P, Y, 2), EPS);
        assertEquals(1.0, Metrics.accRounded(new double[]{0.5, -0.5, 1.5, -2.5}, new double[]{0, 0, 2, -2}, 3), EPS);
        assertEquals(0.0, Metrics.accRounded(new double[]{2.5}, new double[]{3}, 3), EPS);
        assertEquals(1.0, Metrics.accRounded(new double[]{-2.5}, new double[]{-3}, 2), EPS, "both clip to -2");
        assertEquals(0.0, Metrics.accRounded(new double[]{-2.5}, new double[]{-3}, 3), EPS);
        assertEquals(1.0, Metrics.accRounded(new double[]{7}, new double[]{3}, 3), EPS);
    }

    @Test
    void constantPredictionsHaveNoCorrelationAndTheReportSaysSo() {
        List<Prediction> ps = new ArrayList<>();
        for (double y : Y) ps.add(Prediction.ofScore("d", (float) y, 0.3f));
        Scores s = Metrics.scores(ps);
        assertTrue(Double.isNaN(s.corr()));
        EvalReport r = Metrics.evaluate(ps);
        assertTrue(r.toJson().contains("\"corr\" : null"), r.toJson());
        assertTrue(r.toMarkdown().contains("| n/a |"));
        assertTrue(Double.isNaN(EvalReport.fromJson(r.toJson(), "r.json").overall().corr()));
    }

    @Test
    void emptySetsGiveNaNNotErrors() {
        Scores s = Metrics.scores(List.of());
        assertEquals(0, s.n());
        assertTrue(Double.isNaN(s.mae()) && Double.isNaN(s.acc7()) && Double.isNaN(s.f1Has0()) && Double.isNaN(s.formatValidRate()));
        assertEquals(0, s.unparseable());
        // all-zero labels: the non-0 set is empty
        Scores z = Metrics.scores(List.of(Prediction.ofScore("d", 0f, 1f)));
        assertEquals(0, z.nNon0());
        assertTrue(Double.isNaN(z.acc2Non0()) && Double.isNaN(z.f1Non0()));
        assertEquals(1.0, z.acc2Has0(), EPS);
        assertTrue(Metrics.evaluate(List.of()).byDomain().isEmpty());
    }

    @Test
    void unparseableAnswersPredictZeroAndAreCounted() {
        String valid = "<disc>polarity: negative. x</disc><calib>y</calib><answer>-1.0</answer>";
        List<Prediction> ps = List.of(
                Prediction.of("a", 1.0f, DcParser.parse("<disc>polarity: positive. x</disc><calib>y</calib><answer>lots</answer>")),
                Prediction.of("a", -1.0f, DcParser.parse(valid)),
                Prediction.of("b", -2.0f, DcParser.parse("garbage")),
                Prediction.of("b", 0.4f, DcParser.parse(valid.replace("-1.0", "2.0"))));
        Scores s = Metrics.scores(ps);
        assertEquals(2, s.unparseable());
        assertEquals((1.0 + 0 + 2.0 + 1.6) / 4, s.mae(), 1e-6);
        assertEquals(0.5, s.formatValidRate(), EPS, "the second and fourth follow the grammar");
    }

    @Test
    void formatDiscriminationAndConsistencyRates() {
        String ok = "<disc>polarity: %s. x</disc><calib>y</calib><answer>%s</answer>";
        List<Prediction> ps = List.of(
                Prediction.of("a", -1.0f, DcParser.parse(ok.formatted("negative", "-1.0"))),   // valid, disc right, consistent
                Prediction.of("a", -1.0f, DcParser.parse(ok.formatted("negative", "1.0"))),    // valid, disc right, inconsistent
                Prediction.of("a", 2.0f, DcParser.parse(ok.formatted("neutral", "0.0"))),      // valid, disc wrong, consistent
                Prediction.of("b", 0.0f, DcParser.parse("<disc>polarity: neutral. x")));       // invalid, disc right, no answer
        Scores s = Metrics.scores(ps);
        assertEquals(0.75, s.formatValidRate(), EPS);
        assertEquals(0.75, s.discAccuracy(), EPS);
        assertEquals(0.5, s.dcConsistency(), EPS);
        assertEquals(1, s.unparseable());
        EvalReport r = Metrics.evaluate(ps);
        assertEquals(List.of("a", "b"), List.copyOf(r.byDomain().keySet()));
        assertEquals(3, r.byDomain().get("a").n());
        assertEquals(1.0, r.byDomain().get("b").discAccuracy(), EPS);
        assertEquals(Polarity.NEUTRAL, ps.get(3).disc());
    }

    @Test
    void reportRoundTripsThroughJsonAndRendersMarkdown() {
        List<Prediction> ps = new ArrayList<>();
        for (int i = 0; i < Y.length; i++) ps.add(Prediction.ofScore(i < 2 ? "reviews" : "interviews", (float) Y[i], (float) P[i]));
        EvalReport r = Metrics.evaluate(ps);
        EvalReport back = EvalReport.fromJson(r.toJson(), "r.json");
        assertEquals(r.overall().n(), back.overall().n());
        assertEquals(r.overall().mae(), back.overall().mae(), EPS);
        assertEquals(r.byDomain().get("reviews").acc7(), back.byDomain().get("reviews").acc7(), EPS);
        String md = r.toMarkdown();
        assertTrue(md.startsWith("| domain | n | MAE | Corr |"));
        assertTrue(md.contains("| interviews | 3 |"));
        assertTrue(md.contains("| **all** | 5 | " + String.format(java.util.Locale.ROOT, "%.3f", Metrics.mae(P, Y)) + " |"));
        assertTrue(md.contains("| 80.0 |"), md);
    }

    /** Predictions that carry a subset get per-subset rows (JSON and markdown); without subsets there are none. */
    @Test
    void subsetsGetTheirOwnRows() {
        List<Prediction> ps = new ArrayList<>();
        for (int i = 0; i < Y.length; i++) ps.add(Prediction.ofScore("reviews", (float) Y[i], (float) P[i], i % 2 == 0 ? "hard" : "easy"));
        EvalReport r = Metrics.evaluate(ps);
        assertEquals(3, r.bySubset().get("hard").n());
        assertEquals(2, r.bySubset().get("easy").n());
        List<Prediction> hard = List.of(ps.get(0), ps.get(2), ps.get(4));
        assertEquals(Metrics.scores(hard).mae(), r.bySubset().get("hard").mae(), EPS);
        EvalReport back = EvalReport.fromJson(r.toJson(), "r.json");
        assertEquals(r.bySubset().get("hard").mae(), back.bySubset().get("hard").mae(), EPS);
        assertTrue(r.toMarkdown().contains("| hard subset | 3 |"), r.toMarkdown());
        EvalReport none = Metrics.evaluate(List.of(Prediction.ofScore("d", 0f, 1f)));
        assertTrue(none.bySubset().isEmpty());
        assertFalse(none.toJson().contains("subsets"));
    }
}
