package io.hintgrpo.trainer.eval;

import io.hintgrpo.trainer.format.Polarity;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Sentiment-regression metrics with the MMSA conventions (the numbers papers on CMU-MOSI, MOSEI
 * and CH-SIMS report), plus the DC-format rates. Every function takes predictions p and labels y
 * as parallel arrays; an empty set gives NaN.
 *
 * <ul>
 *   <li>MAE = mean |p − y|; Corr = Pearson's r (NaN when either side is constant).</li>
 *   <li>Acc-2 / F1 "has-0": classes y ≥ 0 vs y < 0 (same for p). "non-0": utterances with y = 0
 *       dropped, classes y > 0 vs y ≤ 0. F1 is sklearn's weighted F1: per-class F1 weighted by the
 *       class's support in y.</li>
 *   <li>Acc-5: p and y clipped to [−2, 2] then rounded half to even (numpy.round); Acc-7 the same
 *       with [−3, 3].</li>
 *   <li>Format-valid rate; discrimination accuracy (the disc polarity equals the label's class;
 *       no polarity counts as wrong); DC consistency (the disc polarity equals the answer's class;
 *       a missing polarity or answer counts as inconsistent). All over every utterance.</li>
 *   <li>An unparseable answer predicts 0 for every regression metric and is counted.</li>
 * </ul>
 */
public final class Metrics {
    private Metrics() {}

    /** All metrics of one set of predictions (one domain, or all). Rates are fractions in [0, 1]. */
    public record Scores(int n, double mae, double corr,
                         double acc2Has0, double f1Has0, int nNon0, double acc2Non0, double f1Non0,
                         double acc5, double acc7,
                         double formatValidRate, double discAccuracy, double dcConsistency, int unparseable) {}

    /** Scores over everything and per domain (sorted by name). */
    public static EvalReport evaluate(List<Prediction> predictions) {
        Map<String, List<Prediction>> byDomain = new TreeMap<>();
        for (Prediction p : predictions) byDomain.computeIfAbsent(p.domain(), d -> new ArrayList<>()).add(p);
        Map<String, Scores> perDomain = new TreeMap<>();
        byDomain.forEach((d, ps) -> perDomain.put(d, scores(ps)));
        Map<String, List<Prediction>> bySubset = new TreeMap<>();
        for (Prediction p : predictions) if (p.subset() != null) bySubset.computeIfAbsent(p.subset(), s -> new ArrayList<>()).add(p);
        Map<String, Scores> perSubset = new TreeMap<>();
        bySubset.forEach((s, ps) -> perSubset.put(s, scores(ps)));
        return new EvalReport(scores(predictions), perDomain, perSubset);
    }

    public static Scores scores(List<Prediction> ps) {
        int n = ps.size();
        double[] p = new double[n], y = new double[n];
        int valid = 0, discRight = 0, consistent = 0, unparseable = 0;
        for (int i = 0; i < n; i++) {
            Prediction q = ps.get(i);
            p[i] = q.scoreOrZero();
            y[i] = q.label();
            if (!q.parsed()) unparseable++;
            if (q.formatValid()) valid++;
            if (q.disc() != null && q.disc() == Polarity.of(q.label())) discRight++;
            if (q.disc() != null && q.parsed() && q.disc() == Polarity.of(q.score())) consistent++;
        }
        double[][] non0 = dropZeroLabels(p, y);
        return new Scores(n, mae(p, y), pearson(p, y),
                acc2Has0(p, y), f1Has0(p, y), non0[1].length, acc2Non0(p, y), f1Non0(p, y),
                accRounded(p, y, 2), accRounded(p, y, 3),
                rate(valid, n), rate(discRight, n), rate(consistent, n), unparseable);
    }

    public static double mae(double[] p, double[] y) {
        if (p.length == 0) return Double.NaN;
        double sum = 0;
        for (int i = 0; i < p.length; i++) sum += Math.abs(p[i] - y[i]);
        return sum / p.length;
    }

    /** Pearson correlation; NaN for fewer than 2 points or a constant side (numpy's corrcoef gives nan there too). */
    public static double pearson(double[] p, double[] y) {
        int n = p.length;
        if (n < 2) return Double.NaN;
        double mp = 0, my = 0;
        for (int i = 0; i < n; i++) { mp += p[i]; my += y[i]; }
        mp /= n;
        my /= n;
        double spy = 0, spp = 0, syy = 0;
        for (int i = 0; i < n; i++) {
            double dp = p[i] - mp, dy = y[i] - my;
            spy += dp * dy;
            spp += dp * dp;
            syy += dy * dy;
        }
        if (spp == 0 || syy == 0) return Double.NaN;
        return spy / Math.sqrt(spp * syy);
    }

    public static double acc2Has0(double[] p, double[] y) {
        return accuracy(binarize(p, true), binarize(y, true));
    }

    public static double f1Has0(double[] p, double[] y) {
        return weightedF1(binarize(p, true), binarize(y, true));
    }

    public static double acc2Non0(double[] p, double[] y) {
        double[][] d = dropZeroLabels(p, y);
        return accuracy(binarize(d[0], false), binarize(d[1], false));
    }

    public static double f1Non0(double[] p, double[] y) {
        double[][] d = dropZeroLabels(p, y);
        return weightedF1(binarize(d[0], false), binarize(d[1], false));
    }

    /** Acc-5 (bound 2) or Acc-7 (bound 3): clip both to [−bound, bound], round half to even, compare. */
    public static double accRounded(double[] p, double[] y, int bound) {
        if (p.length == 0) return Double.NaN;
        int right = 0;
        for (int i = 0; i < p.length; i++)
            if (Math.rint(clip(p[i], bound)) == Math.rint(clip(y[i], bound))) right++;
        return (double) right / p.length;
    }

    private static double clip(double v, int bound) {
        return Math.max(-bound, Math.min(bound, v));
    }

    /** has-0: v ≥ 0 is positive; non-0: v > 0 is positive. */
    private static boolean[] binarize(double[] v, boolean zeroIsPositive) {
        boolean[] out = new boolean[v.length];
        for (int i = 0; i < v.length; i++) out[i] = zeroIsPositive ? v[i] >= 0 : v[i] > 0;
        return out;
    }

    /** {predictions, labels} without the utterances whose label is exactly 0. */
    private static double[][] dropZeroLabels(double[] p, double[] y) {
        int keep = 0;
        for (double v : y) if (v != 0) keep++;
        double[] pp = new double[keep], yy = new double[keep];
        for (int i = 0, j = 0; i < y.length; i++)
            if (y[i] != 0) { pp[j] = p[i]; yy[j++] = y[i]; }
        return new double[][]{pp, yy};
    }

    private static double accuracy(boolean[] p, boolean[] y) {
        if (p.length == 0) return Double.NaN;
        int right = 0;
        for (int i = 0; i < p.length; i++) if (p[i] == y[i]) right++;
        return (double) right / p.length;
    }

    /** sklearn f1_score(average='weighted'): Σ_c support_c · F1_c / n, F1_c = 2tp / (2tp + fp + fn), 0 when undefined. */
    static double weightedF1(boolean[] p, boolean[] y) {
        if (p.length == 0) return Double.NaN;
        double sum = 0;
        for (boolean c : new boolean[]{false, true}) {
            int tp = 0, fp = 0, fn = 0, support = 0;
            for (int i = 0; i < p.length; i++) {
                if (y[i] == c) support++;
                if (p[i] == c && y[i] == c) tp++;
                else if (p[i] == c) fp++;
                else if (y[i] == c) fn++;
            }
            int denom = 2 * tp + fp + fn;
            double f1 = denom == 0 ? 0 : 2.0 * tp / denom;
            sum += support * f1;
        }
        return sum / p.length;
    }

    private static double rate(int count, int n) {
        return n == 0 ? Double.NaN : (double) count / n;
    }
}
