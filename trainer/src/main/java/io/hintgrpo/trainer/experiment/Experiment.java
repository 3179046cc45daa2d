package io.hintgrpo.trainer.experiment;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.trainer.loop.Run;
import io.hintgrpo.trainer.loop.RunLock;
import io.hintgrpo.trainer.data.AtomicFiles;
import io.hintgrpo.trainer.data.Jsonl;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.eval.Evaluation;
import io.hintgrpo.trainer.eval.Metrics;
import io.hintgrpo.trainer.report.Chart;
import io.hintgrpo.trainer.rl.GrpoConfig;
import io.hintgrpo.trainer.rl.GrpoRun;
import io.hintgrpo.trainer.rl.GrpoTrainer;
import io.hintgrpo.trainer.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * The comparison the project exists for: from one SFT checkpoint, SFT only, plain GRPO, GRPO with
 * DAPO's dynamic sampling, and Hint-GRPO, each over several seeds with the same generation budget
 * (every completion counts: hint re-rolls and refills included, so those methods take fewer
 * steps). Every run is evaluated greedily in-domain, cross-domain and with audio and vision
 * dropped. Writes results.json, results.md (mean ± std over seeds) and PNG curves.
 */
public final class Experiment {
    private static final ObjectMapper JSON = new ObjectMapper().setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE);

    /** One arm of the comparison: a name and the GRPO settings it changes (null = SFT only). */
    public record Method(String name, GrpoConfig config) {}

    /**
     * @param budget    completions each RL run may generate (its steps = budget / (prompts · G))
     * @param testLimit test utterances per domain
     */
    public record Settings(Path sftModel, Path trainFile, Path validFile, Map<String, Path> testFiles, String trainDomain,
                           GrpoConfig base, long budget, List<Long> seeds, int testLimit) {}

    /** Evaluation of one run: condition ("in-domain", "cross-domain", "dropped") → scores. */
    public record RunResult(String method, long seed, Map<String, Metrics.Scores> scores, List<GrpoTrainer.StepMetrics> history,
                            List<double[]> validMae, int steps, long completions) {}

    private Experiment() {}

    public static List<Method> methods(GrpoConfig base, long budget) {
        int perStep = base.rollout().promptsPerStep() * base.rollout().groupSize();
        int steps = (int) Math.max(1, budget / perStep);
        return List.of(new Method("SFT only", null),
                new Method("GRPO", with(base, steps, budget, "none", false)),
                new Method("GRPO + dynamic sampling", with(base, steps, budget, "none", true)),
                new Method("Hint-GRPO", with(base, steps, budget, "replace", false)));
    }

    private static GrpoConfig with(GrpoConfig b, int steps, long budget, String hint, boolean dynamic) {
        return b.with(Map.of("steps", steps, "max_completions", budget, "hint", hint, "dynamic_sampling", dynamic));
    }

    /** The experiment with its runs in workDir (one process at a time, {@link RunLock}) and its table in outDir. */
    public static List<RunResult> run(Kernels kernels, Settings s, Path workDir, Path outDir, String command, Consumer<String> log,
                                      BooleanSupplier stop) throws IOException {
        AtomicFiles.probeFolder(outDir);
        try (RunLock lock = RunLock.acquire(workDir)) {
            return runLocked(kernels, s, workDir, outDir, command, log, stop);
        }
    }

    private static List<RunResult> runLocked(Kernels kernels, Settings s, Path workDir, Path outDir, String command, Consumer<String> log,
                                             BooleanSupplier stop) throws IOException {
        Path tokenizerJson = s.sftModel().resolve("tokenizer.json");
        Jsonl.Expect expect;
        try (Model m = ModelDir.load(kernels, s.sftModel(), 0, msg -> {})) {
            expect = Jsonl.Expect.of(m.config);
        }
        List<Utterance> train = Jsonl.read(s.trainFile(), expect), valid = Jsonl.read(s.validFile(), expect);
        Map<String, List<Utterance>> test = new LinkedHashMap<>();
        for (Map.Entry<String, Path> e : s.testFiles().entrySet()) {
            List<Utterance> d = Jsonl.read(e.getValue(), expect);
            test.put(e.getKey(), d.subList(0, Math.min(d.size(), s.testLimit())));
        }
        List<RunResult> results = new ArrayList<>();
        Files.createDirectories(outDir);
        for (Method method : methods(s.base(), s.budget())) {
            for (long seed : method.config() == null ? List.of(s.seeds().get(0)) : s.seeds()) {
                if (stop.getAsBoolean()) return results;
                String tag = slug(method.name()) + "-seed" + seed;
                Path runDir = workDir.resolve(tag);
                Path modelDir = s.sftModel();
                List<GrpoTrainer.StepMetrics> history = List.of();
                List<double[]> validMae = new ArrayList<>();
                int steps = 0;
                long completions = 0;
                if (method.config() != null) {
                    GrpoConfig c = method.config().with(Map.of("seed", seed));
                    log.accept(String.format(Locale.ROOT, "%s, seed %d: up to %d steps, budget %d completions", method.name(), seed,
                            c.loop().steps(), c.rollout().maxCompletions()));
                    GrpoRun.Outcome o = GrpoRun.run(kernels, GrpoRun.Job.of(s.sftModel(), train, valid, c),
                            Run.in(runDir).resuming(true).log(log).stopWhen(stop).fingerprint(Map.of("experiment", method.name())));
                    if (o.training().stoppedBySignal()) return results;
                    history = o.training().history();
                    steps = o.training().steps();
                    completions = o.completionsTotal();
                    validMae = validMae(runDir);
                    // the policy at the end of the budget, not the best checkpoint: the methods are compared as run
                    modelDir = new io.hintgrpo.trainer.checkpoint.Checkpoints(runDir).latest();
                }
                results.add(new RunResult(method.name(), seed, evaluate(kernels, modelDir, tokenizerJson, s, test, log), history,
                        validMae, steps, completions));
                write(outDir, s, results, command);
            }
        }
        plots(outDir, results);
        write(outDir, s, results, command);
        return results;
    }

    /** Greedy metrics in-domain, cross-domain (every other domain's test split) and in-domain with audio and vision zeroed. */
    private static Map<String, Metrics.Scores> evaluate(Kernels kernels, Path modelDir, Path tokenizerJson, Settings s,
                                                        Map<String, List<Utterance>> test, Consumer<String> log) {
        Map<String, Metrics.Scores> out = new LinkedHashMap<>();
        List<Utterance> inDomain = test.getOrDefault(s.trainDomain(), List.of()), cross = new ArrayList<>();
        test.forEach((d, us) -> {
            if (!d.equals(s.trainDomain())) cross.addAll(us);
        });
        try (Model m = ModelDir.load(kernels, modelDir, 0, msg -> {}); Tokenizer tok = Tokenizer.load(tokenizerJson)) {
            Evaluation.Options greedy = Evaluation.Options.greedy();
            out.put("in-domain", Evaluation.run(m, tok, inDomain, greedy, null).report().overall());
            if (!cross.isEmpty()) out.put("cross-domain", Evaluation.run(m, tok, cross, greedy, null).report().overall());
            out.put("dropped", Evaluation.run(m, tok, inDomain, greedy.withDrop(Evaluation.Drop.BOTH), null).report().overall());
        }
        log.accept("evaluated " + modelDir + ": in-domain MAE " + String.format(Locale.ROOT, "%.3f", out.get("in-domain").mae()));
        return out;
    }

    private static List<double[]> validMae(Path runDir) throws IOException {
        List<double[]> out = new ArrayList<>();
        for (String line : Files.readAllLines(runDir.resolve("metrics.jsonl"))) {
            var n = JSON.readTree(line);
            if (n.has("eval")) out.add(new double[]{n.get("step").asInt(), n.get("eval").path("valid_mae").asDouble(Double.NaN)});
        }
        return out;
    }

    private static String slug(String name) {
        return name.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9]+", "-").replaceAll("(^-|-$)", "");
    }

    // ---- report ----

    private static final String[][] COLUMNS = {{"in-domain", "mae"}, {"in-domain", "acc7"}, {"in-domain", "acc2"}, {"in-domain", "f1"},
            {"in-domain", "disc"}, {"cross-domain", "mae"}, {"cross-domain", "acc7"}, {"dropped", "mae"}, {"dropped", "acc7"}};

    private static double value(Metrics.Scores sc, String what) {
        if (sc == null) return Double.NaN;
        return switch (what) {
            case "mae" -> sc.mae();
            case "acc7" -> sc.acc7();
            case "acc2" -> sc.acc2Has0();
            case "f1" -> sc.f1Has0();
            case "disc" -> sc.discAccuracy();
            default -> throw new IllegalArgumentException(what);
        };
    }

    static void write(Path outDir, Settings s, List<RunResult> results, String command) throws IOException {
        ObjectNode json = JSON.createObjectNode();
        json.put("command", command);
        json.set("settings", JSON.valueToTree(Map.of("sft_model", s.sftModel().toString(), "train_domain", s.trainDomain(),
                "budget_completions", s.budget(), "seeds", s.seeds(), "test_limit", s.testLimit())));
        json.set("grpo_base", io.hintgrpo.trainer.config.Settings.flatten(s.base()));
        ArrayNode runs = json.putArray("runs");
        for (RunResult r : results) {
            ObjectNode o = runs.addObject();
            o.put("method", r.method());
            o.put("seed", r.seed());
            o.put("steps", r.steps());
            o.put("completions", r.completions());
            o.set("scores", JSON.valueToTree(r.scores()));
            if (!r.history().isEmpty()) {
                GrpoTrainer.StepMetrics last = r.history().get(r.history().size() - 1);
                o.put("final_reward", last.rewardBeforeHint());
                o.put("mean_hard_group_rate", r.history().stream().mapToDouble(GrpoTrainer.StepMetrics::hardGroupRate).average().orElse(0));
                o.put("mean_zero_advantage_share", r.history().stream()
                        .mapToDouble(GrpoTrainer.StepMetrics::zeroAdvantageShareBefore).average().orElse(0));
                o.put("under_filled_steps", r.history().stream().filter(GrpoTrainer.StepMetrics::underFilled).count());
                o.put("tokens_generated", r.history().stream().mapToLong(GrpoTrainer.StepMetrics::tokensGenerated).sum());
            }
        }
        AtomicFiles.writeString(outDir.resolve("results.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(json));

        StringBuilder md = new StringBuilder("# SFT vs GRPO vs GRPO + dynamic sampling vs Hint-GRPO\n\n");
        md.append("Produced by `").append(command).append("`.\n\n");
        md.append(String.format(Locale.ROOT, "From one SFT checkpoint (`%s`, trained on the `%s` domain); every RL run may generate %d "
                        + "completions (hint re-rolls and dynamic-sampling refills included) and is evaluated greedily at the end of its budget. "
                        + "In-domain: %s test split; cross-domain: the other domains' test splits; dropped: in-domain with audio and vision zeroed. "
                        + "Mean ± std (population) over seeds %s; SFT only is one deterministic evaluation.%n%n",
                s.sftModel().getFileName(), s.trainDomain(), s.budget(), s.trainDomain(), s.seeds()));
        md.append("| method | seeds | steps | in-domain MAE ↓ | Acc-7 ↑ | Acc-2 ↑ | F1 ↑ | disc acc ↑ | cross-domain MAE ↓ | cross Acc-7 ↑ "
                + "| dropped MAE | dropped Acc-7 | hard-group rate | zero-adv share | under-filled steps |\n");
        md.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        Map<String, List<RunResult>> byMethod = new LinkedHashMap<>();
        for (RunResult r : results) byMethod.computeIfAbsent(r.method(), k -> new ArrayList<>()).add(r);
        for (Map.Entry<String, List<RunResult>> e : byMethod.entrySet()) {
            List<RunResult> rs = e.getValue();
            md.append("| ").append(e.getKey()).append(" | ").append(rs.size()).append(" | ")
                    .append(meanStd(rs.stream().mapToDouble(RunResult::steps).toArray(), 1)).append(" |");
            for (String[] col : COLUMNS)
                md.append(' ').append(meanStd(rs.stream().mapToDouble(r -> value(r.scores().get(col[0]), col[1])).toArray(), 3)).append(" |");
            boolean rl = !rs.get(0).history().isEmpty();
            md.append(' ').append(rl ? meanStd(rs.stream().mapToDouble(r -> r.history().stream()
                    .mapToDouble(GrpoTrainer.StepMetrics::hardGroupRate).average().orElse(0)).toArray(), 3) : "–").append(" |");
            md.append(' ').append(rl ? meanStd(rs.stream().mapToDouble(r -> r.history().stream()
                    .mapToDouble(GrpoTrainer.StepMetrics::zeroAdvantageShareBefore).average().orElse(0)).toArray(), 3) : "–").append(" |");
            md.append(' ').append(rl ? meanStd(rs.stream().mapToDouble(r -> r.history().stream()
                    .filter(GrpoTrainer.StepMetrics::underFilled).count()).toArray(), 1) : "–").append(" |\n");
        }
        md.append("\nHard-group rate and zero-advantage share are means over a run's steps, measured on the free rollouts "
                + "(before hints); under-filled steps: steps that dynamic sampling ended with fewer groups than prompts_per_step "
                + "(still flat after the last refill round). Curves: `reward.png`, `zero_advantage.png`, `hard_groups.png`, `valid_mae.png` (mean over seeds per step).\n");
        AtomicFiles.writeString(outDir.resolve("results.md"), md.toString());
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

    /** One PNG per curve, one line per RL method: the mean over seeds at each step a seed reached. */
    static void plots(Path outDir, List<RunResult> results) throws IOException {
        record Curve(String file, String title, java.util.function.ToDoubleFunction<GrpoTrainer.StepMetrics> y) {}
        List<Curve> curves = List.of(
                new Curve("reward.png", "reward of the free rollouts", GrpoTrainer.StepMetrics::rewardBeforeHint),
                new Curve("zero_advantage.png", "zero-advantage share (free rollouts)", GrpoTrainer.StepMetrics::zeroAdvantageShareBefore),
                new Curve("hard_groups.png", "hard-group rate", GrpoTrainer.StepMetrics::hardGroupRate));
        Map<String, List<RunResult>> byMethod = new LinkedHashMap<>();
        for (RunResult r : results) if (!r.history().isEmpty()) byMethod.computeIfAbsent(r.method(), k -> new ArrayList<>()).add(r);
        for (Curve c : curves) {
            Chart plot = new Chart(c.title(), "step", c.title());
            byMethod.forEach((method, rs) -> {
                int n = rs.stream().mapToInt(r -> r.history().size()).max().orElse(0);
                double[] x = new double[n], y = new double[n];
                for (int i = 0; i < n; i++) {
                    x[i] = i + 1;
                    double sum = 0;
                    int k = 0;
                    for (RunResult r : rs) if (i < r.history().size()) { sum += c.y().applyAsDouble(r.history().get(i)); k++; }
                    y[i] = sum / k;
                }
                plot.add(method, x, y);
            });
            plot.write(outDir.resolve(c.file()), 760, 440);
        }
        Chart mae = new Chart("validation MAE (greedy)", "step", "MAE");
        byMethod.forEach((method, rs) -> {
            Map<Double, double[]> at = new java.util.TreeMap<>();
            for (RunResult r : rs)
                for (double[] p : r.validMae()) {
                    double[] acc = at.computeIfAbsent(p[0], k -> new double[2]);
                    acc[0] += p[1];
                    acc[1]++;
                }
            mae.add(method, at.keySet().stream().mapToDouble(Double::doubleValue).toArray(),
                    at.values().stream().mapToDouble(a -> a[0] / a[1]).toArray());
        });
        mae.write(outDir.resolve("valid_mae.png"), 760, 440);
    }
}
