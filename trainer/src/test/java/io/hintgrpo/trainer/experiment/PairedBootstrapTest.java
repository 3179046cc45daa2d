package io.hintgrpo.trainer.experiment;

import io.hintgrpo.trainer.eval.Metrics;
import io.hintgrpo.trainer.eval.Prediction;
import io.hintgrpo.trainer.experiment.PairedBootstrap.Interval;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.ToDoubleFunction;

import static org.junit.jupiter.api.Assertions.*;

/** The paired bootstrap on cases whose answer is known without it. */
class PairedBootstrapTest {
    private static final List<ToDoubleFunction<Metrics.Scores>> MAE = List.of(Metrics.Scores::mae);

    /** Predictions label + offset[i] for labels drawn once from a fixed stream. */
    private static List<Prediction> predictions(double[] labels, double[] offset) {
        List<Prediction> out = new ArrayList<>();
        for (int i = 0; i < labels.length; i++)
            out.add(Prediction.ofScore("d", (float) labels[i], (float) (labels[i] + offset[i])));
        return out;
    }

    private static double[] labels(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        double[] y = new double[n];
        for (int i = 0; i < n; i++) y[i] = Math.round((r.nextDouble() * 6 - 3) * 10) / 10.0;
        return y;
    }

    private static double[] constant(int n, double v) {
        double[] o = new double[n];
        java.util.Arrays.fill(o, v);
        return o;
    }

    @Test
    void identicalMethodsDifferByExactlyZero() {
        double[] y = labels(300, 1);
        List<List<Prediction>> a = List.of(predictions(y, constant(300, 0.25)), predictions(y, constant(300, -0.5)));
        for (Interval i : PairedBootstrap.difference(a, a, List.of(Metrics.Scores::mae, Metrics.Scores::acc7, Metrics.Scores::corr), 500, 3))
            assertEquals(new Interval(0, 0, 0), i);
    }

    /** Every item's absolute error is 0.3 larger under A, in every seed: the interval is that one point. */
    @Test
    void aConstantPerItemDifferenceIsAPointInterval() {
        double[] y = labels(400, 2);
        List<List<Prediction>> a = new ArrayList<>(), b = new ArrayList<>();
        for (int s = 0; s < 3; s++) {
            a.add(predictions(y, constant(400, 0.4)));
            b.add(predictions(y, constant(400, 0.1)));
        }
        Interval i = PairedBootstrap.difference(a, b, MAE, 400, 4).get(0);
        assertEquals(0.3, i.estimate(), 1e-6);
        assertEquals(0.3, i.low(), 1e-6);
        assertEquals(0.3, i.high(), 1e-6);
        assertTrue(i.excludesZero());
    }

    /**
     * Seeds only: seed 0's difference is 0.1 on every item, seed 1's 0.3. Two seeds drawn with
     * replacement average to 0.1 (p 1/4), 0.2 (p 1/2) or 0.3 (p 1/4), so the 2.5 % and 97.5 %
     * points are 0.1 and 0.3 and the estimate 0.2.
     */
    @Test
    void theSeedSpreadAloneGivesTheInterval() {
        double[] y = labels(200, 5);
        List<List<Prediction>> a = List.of(predictions(y, constant(200, 0.1)), predictions(y, constant(200, 0.3)));
        List<List<Prediction>> b = List.of(predictions(y, constant(200, 0)), predictions(y, constant(200, 0)));
        Interval i = PairedBootstrap.difference(a, b, MAE, 4000, 6).get(0);
        assertEquals(0.2, i.estimate(), 1e-6);
        assertEquals(0.1, i.low(), 1e-6);
        assertEquals(0.3, i.high(), 1e-6);
    }

    /**
     * Items only (one seed): A's error is 1 on a random half of the items and 0 elsewhere, B is
     * exact. The MAE difference is then a mean of N Bernoulli(p̂) values, so the interval is the
     * normal one, p̂ ± 1.96·√(p̂(1 − p̂)/N), to within a few percent of its width at N = 4000.
     */
    @Test
    void theItemSamplingAloneGivesTheNormalInterval() {
        int n = 4000;
        double[] y = labels(n, 7), off = new double[n];
        SplittableRandom r = new SplittableRandom(8);
        int ones = 0;
        for (int i = 0; i < n; i++) if (r.nextBoolean()) { off[i] = 1; ones++; }
        double p = ones / (double) n, half = 1.96 * Math.sqrt(p * (1 - p) / n);
        Interval i = PairedBootstrap.difference(List.of(predictions(y, off)), List.of(predictions(y, constant(n, 0))), MAE, 3000, 9).get(0);
        assertEquals(p, i.estimate(), 1e-6);
        assertEquals(p - half, i.low(), 0.08 * half);
        assertEquals(p + half, i.high(), 0.08 * half);
        assertTrue(i.excludesZero());
    }

    @Test
    void mismatchedInputsAreRefused() {
        double[] y = labels(10, 1);
        List<Prediction> ten = predictions(y, constant(10, 0));
        assertThrows(IllegalArgumentException.class, () -> PairedBootstrap.difference(List.of(ten), List.of(ten, ten), MAE, 10, 1));
        assertThrows(IllegalArgumentException.class, () -> PairedBootstrap.difference(List.of(ten), List.of(ten.subList(0, 9)), MAE, 10, 1));
    }

    @Test
    void quantileInterpolatesLikeNumpy() {
        double[] v = {1, 2, 3, 4};
        assertEquals(1.075, PairedBootstrap.quantile(v, 0.025), 1e-12); // numpy.quantile([1,2,3,4], 0.025) = 1.075
        assertEquals(3.925, PairedBootstrap.quantile(v, 0.975), 1e-12);
    }
}
