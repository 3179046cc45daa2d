package io.hintgrpo.trainer.experiment;

import io.hintgrpo.trainer.eval.Metrics;
import io.hintgrpo.trainer.eval.Prediction;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.ToDoubleFunction;

/**
 * How sure a difference between two methods is, when both ran with the same seeds (each seed its
 * own SFT and its own RL draws) and were evaluated on the same test items. One resample draws S
 * seeds and N items with replacement; the item draw is shared by every drawn seed and by both
 * methods (items are crossed with seeds, and the comparison is paired); the statistic is the mean
 * over the drawn seeds of metric(A) − metric(B). Its 2.5th and 97.5th percentiles (linear
 * interpolation, numpy's default) over the resamples are the 95 % interval, so the interval holds
 * the seed-to-seed spread and the item sampling both. The estimate is the same statistic on the
 * data as measured.
 */
public final class PairedBootstrap {
    private PairedBootstrap() {}

    /** The measured difference and its 95 % interval; NaN where the metric is undefined (e.g. Corr of a constant predictor). */
    public record Interval(double estimate, double low, double high) {
        public boolean excludesZero() {
            return low > 0 || high < 0;
        }
    }

    /**
     * @param a         a.get(s): method A's predictions for seed s, one per test item
     * @param b         b.get(s): method B's for the same seed and the same items in the same order
     * @param metrics   what to compare, each read off the {@link Metrics.Scores} of one prediction set
     * @param resamples bootstrap resamples (e.g. 2000)
     * @param seed      the resampling stream: the same inputs and seed give the same intervals
     * @return one interval per metric, for metric(A) − metric(B)
     */
    public static List<Interval> difference(List<List<Prediction>> a, List<List<Prediction>> b,
                                            List<ToDoubleFunction<Metrics.Scores>> metrics, int resamples, long seed) {
        int seeds = a.size();
        if (seeds == 0 || b.size() != seeds) throw new IllegalArgumentException("need the same seeds (≥ 1) for both methods, got " + seeds + " and " + b.size());
        int items = a.get(0).size();
        for (int s = 0; s < seeds; s++)
            if (a.get(s).size() != items || b.get(s).size() != items)
                throw new IllegalArgumentException("seed " + s + ": " + a.get(s).size() + " and " + b.get(s).size() + " predictions, expected " + items);
        if (items == 0) throw new IllegalArgumentException("no test items");
        if (resamples < 1) throw new IllegalArgumentException("resamples must be ≥ 1, got " + resamples);

        int m = metrics.size();
        int[] allSeeds = new int[seeds], allItems = new int[items];
        Arrays.setAll(allSeeds, i -> i);
        Arrays.setAll(allItems, i -> i);
        double[] estimate = statistic(a, b, metrics, allSeeds, allItems);

        double[][] draws = new double[m][resamples];
        SplittableRandom rng = new SplittableRandom(seed);
        int[] seedDraw = new int[seeds], itemDraw = new int[items];
        for (int r = 0; r < resamples; r++) {
            for (int s = 0; s < seeds; s++) seedDraw[s] = rng.nextInt(seeds);
            for (int i = 0; i < items; i++) itemDraw[i] = rng.nextInt(items);
            double[] v = statistic(a, b, metrics, seedDraw, itemDraw);
            for (int k = 0; k < m; k++) draws[k][r] = v[k];
        }
        List<Interval> out = new ArrayList<>(m);
        for (int k = 0; k < m; k++) {
            // a resample where the metric is undefined (NaN) is left out; if most are, there is no interval
            double[] finite = Arrays.stream(draws[k]).filter(Double::isFinite).sorted().toArray();
            if (!Double.isFinite(estimate[k]) || finite.length < resamples / 2 + 1) out.add(new Interval(estimate[k], Double.NaN, Double.NaN));
            else out.add(new Interval(estimate[k], quantile(finite, 0.025), quantile(finite, 0.975)));
        }
        return out;
    }

    /** Mean over the drawn seeds of metric(A) − metric(B), both on the drawn items. */
    private static double[] statistic(List<List<Prediction>> a, List<List<Prediction>> b, List<ToDoubleFunction<Metrics.Scores>> metrics,
                                      int[] seedDraw, int[] itemDraw) {
        double[] sum = new double[metrics.size()];
        for (int s : seedDraw) {
            Metrics.Scores sa = Metrics.scores(pick(a.get(s), itemDraw)), sb = Metrics.scores(pick(b.get(s), itemDraw));
            for (int k = 0; k < sum.length; k++) sum[k] += metrics.get(k).applyAsDouble(sa) - metrics.get(k).applyAsDouble(sb);
        }
        for (int k = 0; k < sum.length; k++) sum[k] /= seedDraw.length;
        return sum;
    }

    private static List<Prediction> pick(List<Prediction> from, int[] idx) {
        List<Prediction> out = new ArrayList<>(idx.length);
        for (int i : idx) out.add(from.get(i));
        return out;
    }

    /** numpy.quantile's default ("linear"): the value at position q·(n − 1) of the sorted values, interpolated. */
    static double quantile(double[] sorted, double q) {
        double pos = q * (sorted.length - 1);
        int lo = (int) Math.floor(pos);
        int hi = Math.min(lo + 1, sorted.length - 1);
        return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
    }
}
