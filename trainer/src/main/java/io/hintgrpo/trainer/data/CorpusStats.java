package io.hintgrpo.trainer.data;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.trainer.data.SynthCorpus.Conflict;
import io.hintgrpo.trainer.data.SynthCorpus.Sample;
import io.hintgrpo.trainer.format.Polarity;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * How much the corpus needs its non-text modalities, measured with simple predictors fitted on
 * train and scored on test (MAE against the label): the best a reader of the words alone can do
 * (the mean label of each lexicon score seen in training) against a linear probe on the words'
 * score plus the mean audio and vision frame, and the same probe without the words.
 */
final class CorpusStats {
    private CorpusStats() {}

    record TextOnly(double lexiconClassAgreement, double lexiconMae, double lexiconMaeOnConflicts,
                    double textOnlyTestMae, double featuresOnlyProbeTestMae, double multimodalProbeTestMae,
                    double textOnlyTestMaeOnConflicts, double multimodalProbeTestMaeOnConflicts) {
        ObjectNode toJson(ObjectMapper json) {
            ObjectNode o = json.createObjectNode();
            o.put("lexicon_class_agreement", round(lexiconClassAgreement));
            o.put("lexicon_mae", round(lexiconMae));
            o.put("lexicon_mae_on_conflicts", round(lexiconMaeOnConflicts));
            o.put("text_only_test_mae", round(textOnlyTestMae));
            o.put("features_only_probe_test_mae", round(featuresOnlyProbeTestMae));
            o.put("multimodal_probe_test_mae", round(multimodalProbeTestMae));
            o.put("text_only_test_mae_on_conflicts", round(textOnlyTestMaeOnConflicts));
            o.put("multimodal_probe_test_mae_on_conflicts", round(multimodalProbeTestMaeOnConflicts));
            return o;
        }

        private static double round(double v) {
            return Double.isNaN(v) ? v : Math.round(v * 1e4) / 1e4;
        }
    }

    static TextOnly compute(List<Sample> samples) {
        int agree = 0, conflicts = 0;
        double lexErr = 0, lexErrConflicts = 0;
        for (Sample s : samples) {
            float y = s.utterance().label();
            if (Polarity.of(s.textScore()) == Polarity.of(y)) agree++;
            double e = Math.abs(s.textScore() - y);
            lexErr += e;
            if (s.conflict() != Conflict.NONE) { lexErrConflicts += e; conflicts++; }
        }
        double[] textOnly = {0, 0}, probe = {0, 0}; // {all, conflicts}
        double featuresOnly = 0;
        int nTest = 0, nTestConflicts = 0;
        for (String domain : SynthCorpus.domains()) {
            List<Sample> train = new ArrayList<>(), test = new ArrayList<>();
            for (Sample s : samples) {
                if (!s.utterance().domain().equals(domain)) continue;
                if (s.split().equals("train")) train.add(s);
                else if (s.split().equals("test")) test.add(s);
            }
            Map<Float, double[]> byScore = new HashMap<>(); // lexicon score → {sum of labels, count}
            for (Sample s : train) {
                double[] acc = byScore.computeIfAbsent(s.textScore(), k -> new double[2]);
                acc[0] += s.utterance().label();
                acc[1]++;
            }
            double[] w = ridge(train, 1e-3, true), wf = ridge(train, 1e-3, false);
            for (Sample s : test) {
                double[] acc = byScore.get(s.textScore());
                double textPred = acc == null ? s.textScore() : acc[0] / acc[1];
                double probePred = Math.max(-3, Math.min(3, dot(w, features(s, true))));
                featuresOnly += Math.abs(Math.max(-3, Math.min(3, dot(wf, features(s, false)))) - s.utterance().label());
                double y = s.utterance().label();
                boolean conflict = s.conflict() != Conflict.NONE;
                textOnly[0] += Math.abs(textPred - y);
                probe[0] += Math.abs(probePred - y);
                nTest++;
                if (conflict) {
                    textOnly[1] += Math.abs(textPred - y);
                    probe[1] += Math.abs(probePred - y);
                    nTestConflicts++;
                }
            }
        }
        int n = samples.size();
        return new TextOnly((double) agree / n, lexErr / n, conflicts == 0 ? Double.NaN : lexErrConflicts / conflicts,
                textOnly[0] / nTest, featuresOnly / nTest, probe[0] / nTest,
                nTestConflicts == 0 ? Double.NaN : textOnly[1] / nTestConflicts,
                nTestConflicts == 0 ? Double.NaN : probe[1] / nTestConflicts);
    }

    /** [1, lexicon score (0 without text), mean audio frame, mean vision frame]. */
    private static double[] features(Sample s, boolean withText) {
        float[][] a = s.utterance().audio(), v = s.utterance().vision();
        double[] x = new double[2 + a[0].length + v[0].length];
        x[0] = 1;
        x[1] = withText ? s.textScore() : 0;
        for (float[] row : a) for (int j = 0; j < row.length; j++) x[2 + j] += row[j] / a.length;
        for (float[] row : v) for (int j = 0; j < row.length; j++) x[2 + a[0].length + j] += row[j] / v.length;
        return x;
    }

    /** Least squares with a small ridge: solves (XᵀX + λ·n·I) w = Xᵀy by Gaussian elimination. */
    private static double[] ridge(List<Sample> train, double lambda, boolean withText) {
        int d = features(train.get(0), withText).length;
        double[][] a = new double[d][d + 1];
        for (Sample s : train) {
            double[] x = features(s, withText);
            for (int i = 0; i < d; i++) {
                for (int j = 0; j < d; j++) a[i][j] += x[i] * x[j];
                a[i][d] += x[i] * s.utterance().label();
            }
        }
        for (int i = 0; i < d; i++) a[i][i] += lambda * train.size();
        for (int col = 0; col < d; col++) {
            int pivot = col;
            for (int r = col + 1; r < d; r++) if (Math.abs(a[r][col]) > Math.abs(a[pivot][col])) pivot = r;
            double[] t = a[col]; a[col] = a[pivot]; a[pivot] = t;
            for (int r = 0; r < d; r++) {
                if (r == col) continue;
                double f = a[r][col] / a[col][col];
                for (int c = col; c <= d; c++) a[r][c] -= f * a[col][c];
            }
        }
        double[] w = new double[d];
        for (int i = 0; i < d; i++) w[i] = a[i][d] / a[i][i];
        return w;
    }

    private static double dot(double[] w, double[] x) {
        double s = 0;
        for (int i = 0; i < w.length; i++) s += w[i] * x[i];
        return s;
    }
}
