package io.hintgrpo.trainer.experiment;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.trainer.data.AtomicFiles;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.eval.Metrics;
import io.hintgrpo.trainer.eval.Prediction;
import io.hintgrpo.trainer.experiment.Experiment.Arm;
import io.hintgrpo.trainer.experiment.Experiment.Item;
import io.hintgrpo.trainer.experiment.Experiment.Regime;
import io.hintgrpo.trainer.experiment.Experiment.RunResult;
import io.hintgrpo.trainer.experiment.Experiment.Settings;
import io.hintgrpo.trainer.experiment.Experiment.StepPoint;
import io.hintgrpo.trainer.report.Chart;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Predicate;
import java.util.function.ToDoubleFunction;

/** results.json, results.md and the curves of the experiment, from whatever runs have finished. */
final class Report {
    private Report() {}

    /** A slice of the test items: in-domain, cross-domain, and the hard subset of each. */
    record Condition(String name, Predicate<Item> where) {}

    record Metric(String name, String header, ToDoubleFunction<Metrics.Scores> value) {}

    static List<Condition> conditions(String trainDomain) {
        Predicate<Item> in = i -> i.domain().equals(trainDomain), hard = i -> Utterance.HARD.equals(i.subset());
        return List.of(new Condition("in-domain", in), new Condition("in-domain hard", in.and(hard)),
                new Condition("cross-domain", in.negate()), new Condition("cross-domain hard", in.negate().and(hard)));
    }

    /** The MMSA set plus the DC rates, as fractions. */
    static final List<Metric> METRICS = List.of(
            new Metric("mae", "MAE ↓", Metrics.Scores::mae), new Metric("corr", "Corr ↑", Metrics.Scores::corr),
            new Metric("acc2_has0", "Acc-2 has-0 ↑", Metrics.Scores::acc2Has0), new Metric("acc2_non0", "Acc-2 non-0 ↑", Metrics.Scores::acc2Non0),
            new Metric("f1_has0", "F1 has-0 ↑", Metrics.Scores::f1Has0), new Metric("f1_non0", "F1 non-0 ↑", Metrics.Scores::f1Non0),
            new Metric("acc7", "Acc-7 ↑", Metrics.Scores::acc7), new Metric("disc_acc", "disc acc ↑", Metrics.Scores::discAccuracy),
            new Metric("format_valid", "format valid ↑", Metrics.Scores::formatValidRate),
            new Metric("dc_consistency", "DC consistency ↑", Metrics.Scores::dcConsistency));

    /** The metrics whose paired differences get intervals. */
    static final List<String> DELTA_METRICS = List.of("mae", "corr", "acc2_has0", "f1_has0", "acc7", "disc_acc");

    /** RL steps at the start of a run that the regime check reads (the target: ≥ 15 % hard groups while format-valid ≥ 0.9). */
    static final int START_STEPS = 4;

    static void write(Path outDir, Settings s, Map<Regime, List<RunResult>> results, String command, Experiment.Corpus corpus)
            throws IOException {
        ObjectNode json = Experiment.JSON.createObjectNode();
        json.put("command", command);
        ObjectNode set = json.putObject("settings");
        set.put("corpus_seed", s.corpusSeed()).put("corpus_size", s.corpusSize()).put("eval_size", s.evalSize())
                .put("blind_spot", s.blindSpot()).put("train_domain", s.trainDomain()).put("budget_completions", s.budget())
                .put("score_band", s.scoreBand()).put("eval_max_new_tokens", s.evalTokens()).put("bootstrap_resamples", s.resamples());
        set.set("seeds", Experiment.JSON.valueToTree(s.seeds()));
        set.set("hard_test_items", Experiment.JSON.valueToTree(corpus.hardTest()));
        json.set("sft", io.hintgrpo.trainer.config.Settings.flatten(s.sft()));
        json.set("grpo_base", io.hintgrpo.trainer.config.Settings.flatten(s.base()));
        ArrayNode regimesJson = json.putArray("regimes");

        StringBuilder md = new StringBuilder("# Hint-GRPO where it matters: SFT vs GRPO vs dynamic sampling vs Hint-GRPO\n\n");
        md.append("Produced by `").append(command).append("`.\n\n");
        md.append(setup(s, corpus));
        List<Condition> conditions = conditions(s.trainDomain());
        for (Map.Entry<Regime, List<RunResult>> e : results.entrySet()) {
            Regime regime = e.getKey();
            List<RunResult> runs = e.getValue();
            ObjectNode rj = regimesJson.addObject();
            rj.put("regime", regime.key());
            md.append("\n## ").append(title(regime, s)).append("\n\n");
            if (runs.isEmpty()) {
                md.append("No run has finished yet.\n");
                continue;
            }
            Map<String, List<RunResult>> byArm = byArm(s, runs);
            runsJson(rj.putArray("runs"), runs, conditions);
            md.append(startOfRl(byArm.get(Experiment.GRPO)));
            for (Condition c : conditions) md.append(metricsTable(c, byArm));
            md.append(trainingTable(byArm));
            md.append(differences(rj.putArray("differences"), s, conditions, byArm));
            String slug = regime.slug();
            curves(outDir, slug, byArm, s.base().rollout().promptsPerStep() * s.base().rollout().groupSize());
            md.append(String.format(Locale.ROOT, "%nCurves (mean over seeds, band ± 1 std): `%s-hard-disc.png` (greedy disc accuracy on the "
                    + "%s validation split's hard utterances against completions generated; 0 = the SFT policy), `%s-reward.png` (the "
                    + "free rollouts' mean reward per step).%n%n![hard-subset disc accuracy](%s-hard-disc.png)%n![reward](%s-reward.png)%n",
                    slug, s.trainDomain(), slug, slug, slug));
        }
        AtomicFiles.writeString(outDir.resolve("results.json"), Experiment.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(json));
        AtomicFiles.writeString(outDir.resolve("results.md"), md.toString());
    }

    private static String title(Regime r, Settings s) {
        return (r.blindSpot() ? String.format(Locale.ROOT, "Blind-spot corpus (teacher wrong on %.0f %% of the hard training chains)", 100 * s.blindSpot())
                : "Default corpus") + ", " + (r.banded() ? String.format(Locale.ROOT, "banded score reward (1 when |ŷ − y| ≤ %s)", s.scoreBand())
                : "continuous score reward");
    }

    private static String setup(Settings s, Experiment.Corpus corpus) {
        return String.format(Locale.ROOT, """
                Per corpus and seed: a %d-step SFT of the embedded default model initialised from that seed, on the `%s` training \
                split (%d utterances; teacher chains the filter dropped are not trained on). From it, per reward, each RL arm may \
                generate %d completions (%d prompts × G %d per step; hint re-rolls and dynamic-sampling refills count, so those arms \
                take fewer steps) with the seed as its RL seed. Every policy is evaluated greedily (at most %d new tokens) at the end \
                of its budget, not at its best checkpoint, on the whole test split of every domain: %d utterances, of which hard \
                (words that disagree with face and voice) %s. Seeds: %s. Metrics are fractions (MAE and Corr as usual); an \
                unparseable answer predicts 0. Mean ± std (population) over seeds.
                """, s.sft().loop().steps(), s.trainDomain(), corpus.train().size(), s.budget(), s.base().rollout().promptsPerStep(),
                s.base().rollout().groupSize(), s.evalTokens(), corpus.test().size(), corpus.hardTest(), s.seeds());
    }

    private static Map<String, List<RunResult>> byArm(Settings s, List<RunResult> runs) {
        Map<String, List<RunResult>> byArm = new LinkedHashMap<>();
        for (Arm a : Experiment.arms(s.base(), s.budget())) byArm.put(a.name(), new ArrayList<>());
        for (RunResult r : runs) byArm.computeIfAbsent(r.arm(), k -> new ArrayList<>()).add(r);
        byArm.values().removeIf(List::isEmpty);
        return byArm;
    }

    private static void runsJson(ArrayNode out, List<RunResult> runs, List<Condition> conditions) {
        for (RunResult r : runs) {
            ObjectNode o = out.addObject();
            o.put("arm", r.arm()).put("seed", r.seed()).put("steps", r.steps()).put("completions", r.completions())
                    .put("train_seconds", r.trainSeconds()).put("eval_seconds", r.evalSeconds());
            ObjectNode scores = o.putObject("scores");
            for (Condition c : conditions) {
                Metrics.Scores sc = Metrics.scores(r.predictions(c.where()));
                ObjectNode cj = scores.putObject(c.name());
                cj.put("n", sc.n());
                for (Metric m : METRICS) cj.put(m.name(), m.value().applyAsDouble(sc));
            }
            if (!r.history().isEmpty()) {
                o.put("hard_group_rate", mean(r.history(), StepPoint::hardGroupRate));
                o.put("flat_group_share", mean(r.history(), StepPoint::flatShare));
                o.put("under_filled_steps", r.history().stream().filter(StepPoint::underFilled).count());
                o.put("hinted_groups", r.history().stream().mapToInt(StepPoint::hintedGroups).sum());
                o.put("tokens_generated", r.history().stream().mapToLong(StepPoint::tokens).sum());
            }
            o.set("history", Experiment.JSON.valueToTree(r.history()));
            o.set("hard_curve", Experiment.JSON.valueToTree(r.curve()));
        }
    }

    /** The regime check: how often the plain GRPO arm's first steps found hard groups, and whether its rollouts kept the format. */
    private static String startOfRl(List<RunResult> grpo) {
        if (grpo == null) return "";
        double[] hard = new double[grpo.size()], valid = new double[grpo.size()];
        for (int i = 0; i < grpo.size(); i++) {
            List<StepPoint> first = grpo.get(i).history().subList(0, Math.min(START_STEPS, grpo.get(i).history().size()));
            hard[i] = mean(first, StepPoint::hardGroupRate);
            valid[i] = first.stream().mapToDouble(StepPoint::formatValid).min().orElse(Double.NaN);
        }
        return String.format(Locale.ROOT, "Start of RL (plain GRPO, steps 1–%d, free rollouts): hard-group rate %s (per seed %s); "
                        + "lowest format-valid rate %s (per seed %s).%n%n", START_STEPS, meanStd(hard, 3), list(hard), meanStd(valid, 3), list(valid));
    }

    private static String metricsTable(Condition c, Map<String, List<RunResult>> byArm) {
        StringBuilder md = new StringBuilder();
        int n = Metrics.scores(byArm.values().iterator().next().get(0).predictions(c.where())).n();
        md.append("**").append(c.name()).append("** (").append(n).append(" test utterances)\n\n| arm | seeds |");
        for (Metric m : METRICS) md.append(' ').append(m.header()).append(" |");
        md.append("\n|---|---:|").append("---:|".repeat(METRICS.size())).append('\n');
        byArm.forEach((arm, rs) -> {
            md.append("| ").append(arm).append(" | ").append(rs.size()).append(" |");
            List<Metrics.Scores> sc = rs.stream().map(r -> Metrics.scores(r.predictions(c.where()))).toList();
            for (Metric m : METRICS) md.append(' ').append(meanStd(sc.stream().mapToDouble(m.value()).toArray(), 3)).append(" |");
            md.append('\n');
        });
        return md.append('\n').toString();
    }

    private static String trainingTable(Map<String, List<RunResult>> byArm) {
        StringBuilder md = new StringBuilder("**Training** (RL arms; rates are means over a run's steps, on the free rollouts before hints; "
                + "flat: all G rewards equal; under-filled: dynamic sampling ended the step short of prompts_per_step groups; "
                + "wall clock on the machine that ran it)\n\n");
        md.append("| arm | seeds | steps | completions | hard-group rate | flat-group share | hinted groups | under-filled steps | "
                + "tokens generated | RL wall clock (s) | eval wall clock (s) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        byArm.forEach((arm, rs) -> {
            boolean rl = !rs.get(0).history().isEmpty();
            md.append("| ").append(arm).append(" | ").append(rs.size()).append(" | ");
            if (!rl) {
                md.append("– | – | – | – | – | – | – | ").append(meanStd(rs.stream().mapToDouble(RunResult::trainSeconds).toArray(), 0))
                        .append(" (SFT) | ").append(meanStd(rs.stream().mapToDouble(RunResult::evalSeconds).toArray(), 0)).append(" |\n");
                return;
            }
            md.append(meanStd(rs.stream().mapToDouble(RunResult::steps).toArray(), 1)).append(" | ")
                    .append(meanStd(rs.stream().mapToDouble(RunResult::completions).toArray(), 0)).append(" | ")
                    .append(meanStd(rs.stream().mapToDouble(r -> mean(r.history(), StepPoint::hardGroupRate)).toArray(), 3)).append(" | ")
                    .append(meanStd(rs.stream().mapToDouble(r -> mean(r.history(), StepPoint::flatShare)).toArray(), 3)).append(" | ")
                    .append(meanStd(rs.stream().mapToDouble(r -> r.history().stream().mapToInt(StepPoint::hintedGroups).sum()).toArray(), 1)).append(" | ")
                    .append(meanStd(rs.stream().mapToDouble(r -> r.history().stream().filter(StepPoint::underFilled).count()).toArray(), 1)).append(" | ")
                    .append(meanStd(rs.stream().mapToDouble(r -> r.history().stream().mapToLong(StepPoint::tokens).sum()).toArray(), 0)).append(" | ")
                    .append(meanStd(rs.stream().mapToDouble(RunResult::trainSeconds).toArray(), 0)).append(" | ")
                    .append(meanStd(rs.stream().mapToDouble(RunResult::evalSeconds).toArray(), 0)).append(" |\n");
        });
        return md.append('\n').toString();
    }

    /** Each arm against plain GRPO on the seeds both have, per condition, with the paired bootstrap interval. */
    private static String differences(ArrayNode out, Settings s, List<Condition> conditions, Map<String, List<RunResult>> byArm) {
        List<RunResult> grpo = byArm.get(Experiment.GRPO);
        if (grpo == null) return "";
        List<Metric> metrics = METRICS.stream().filter(m -> DELTA_METRICS.contains(m.name())).toList();
        StringBuilder md = new StringBuilder(String.format(Locale.ROOT, "**Paired difference to plain GRPO** (arm − GRPO, mean over "
                + "the seeds both have; [95 %% bootstrap interval, %d resamples of seeds and test items]; **bold**: the interval "
                + "excludes 0)%n%n| arm | condition | seeds |", s.resamples()));
        for (Metric m : metrics) md.append(" Δ ").append(m.header()).append(" |");
        md.append("\n|---|---|---:|").append("---:|".repeat(metrics.size())).append('\n');
        for (Map.Entry<String, List<RunResult>> e : byArm.entrySet()) {
            if (e.getKey().equals(Experiment.GRPO)) continue;
            List<RunResult> paired = new ArrayList<>(), base = new ArrayList<>();
            for (RunResult r : e.getValue())
                for (RunResult g : grpo) if (g.seed() == r.seed()) { paired.add(r); base.add(g); }
            if (paired.isEmpty()) continue;
            for (Condition c : conditions) {
                List<List<Prediction>> a = paired.stream().map(r -> r.predictions(c.where())).toList();
                List<List<Prediction>> b = base.stream().map(r -> r.predictions(c.where())).toList();
                if (a.get(0).isEmpty()) continue;
                // one resampling stream per (arm, condition), fixed: the report is the same every time it is written
                long stream = (e.getKey() + "|" + c.name()).hashCode();
                List<PairedBootstrap.Interval> iv = PairedBootstrap.difference(a, b, metrics.stream().map(Metric::value).toList(),
                        s.resamples(), stream);
                md.append("| ").append(e.getKey()).append(" | ").append(c.name()).append(" | ").append(paired.size()).append(" |");
                for (int k = 0; k < metrics.size(); k++) {
                    PairedBootstrap.Interval i = iv.get(k);
                    ObjectNode o = out.addObject();
                    o.put("arm", e.getKey()).put("condition", c.name()).put("metric", metrics.get(k).name()).put("seeds", paired.size())
                            .put("estimate", i.estimate()).put("low", i.low()).put("high", i.high());
                    String cell = String.format(Locale.ROOT, "%+.3f [%+.3f, %+.3f]", i.estimate(), i.low(), i.high());
                    md.append(' ').append(i.excludesZero() ? "**" + cell + "**" : cell).append(" |");
                }
                md.append('\n');
            }
        }
        return md.append('\n').toString();
    }

    /** Hard-subset disc accuracy and free-rollout reward against completions, one line per arm with a ± 1 std band over seeds. */
    private static void curves(Path outDir, String slug, Map<String, List<RunResult>> byArm, int perStep) throws IOException {
        long most = byArm.values().stream().flatMap(List::stream).mapToLong(RunResult::completions).max().orElse(0);
        int points = (int) (most / perStep) + 1;
        double[] x = new double[points];
        for (int k = 0; k < points; k++) x[k] = (double) k * perStep;
        Chart disc = new Chart("Hard-subset disc accuracy (greedy, validation)", "completions generated", "disc accuracy");
        Chart reward = new Chart("Reward of the free rollouts", "completions generated", "mean reward");
        byArm.forEach((arm, rs) -> {
            if (rs.get(0).history().isEmpty()) return; // SFT only: the curves start from it (x = 0)
            List<double[][]> discSeeds = new ArrayList<>(), rewardSeeds = new ArrayList<>();
            for (RunResult r : rs) {
                discSeeds.add(new double[][]{r.curve().stream().mapToDouble(p -> p.completions()).toArray(),
                        r.curve().stream().mapToDouble(Experiment.CurvePoint::hardDiscAccuracy).toArray()});
                rewardSeeds.add(new double[][]{r.history().stream().mapToDouble(StepPoint::completions).toArray(),
                        r.history().stream().mapToDouble(StepPoint::reward).toArray()});
            }
            double[][] d = band(x, discSeeds), w = band(x, rewardSeeds);
            disc.band(arm, x, d[0], d[1], d[2]);
            reward.band(arm, x, w[0], w[1], w[2]);
        });
        disc.write(outDir.resolve(slug + "-hard-disc.png"), 820, 480);
        reward.write(outDir.resolve(slug + "-reward.png"), 820, 480);
    }

    /**
     * {mean, mean − std, mean + std} over seeds at each x, each seed read as a step function (its
     * last point at or before x); NaN where some seed has no point yet.
     */
    static double[][] band(double[] x, List<double[][]> seeds) {
        double[] mean = new double[x.length], lo = new double[x.length], hi = new double[x.length];
        for (int k = 0; k < x.length; k++) {
            double[] v = new double[seeds.size()];
            for (int s = 0; s < v.length; s++) v[s] = stepAt(seeds.get(s)[0], seeds.get(s)[1], x[k]);
            double m = 0, var = 0;
            for (double a : v) m += a / v.length;
            for (double a : v) var += (a - m) * (a - m) / v.length;
            mean[k] = m;
            lo[k] = m - Math.sqrt(var);
            hi[k] = m + Math.sqrt(var);
        }
        return new double[][]{mean, lo, hi};
    }

    private static double stepAt(double[] xs, double[] ys, double x) {
        double v = Double.NaN;
        for (int i = 0; i < xs.length && xs[i] <= x; i++) v = ys[i];
        return v;
    }

    private static <T> double mean(List<T> xs, ToDoubleFunction<T> f) {
        return xs.stream().mapToDouble(f).average().orElse(Double.NaN);
    }

    private static String list(double[] v) {
        StringBuilder sb = new StringBuilder();
        for (double a : v) sb.append(sb.length() == 0 ? "" : ", ").append(String.format(Locale.ROOT, "%.3f", a));
        return sb.toString();
    }

    static String meanStd(double[] v, int decimals) {
        double mean = 0;
        for (double x : v) mean += x / v.length;
        double var = 0;
        for (double x : v) var += (x - mean) * (x - mean) / v.length;
        if (!Double.isFinite(mean)) return "n/a";
        String f = "%." + decimals + "f";
        return v.length > 1 ? String.format(Locale.ROOT, f + " ± " + f, mean, Math.sqrt(var)) : String.format(Locale.ROOT, f, mean);
    }
}
