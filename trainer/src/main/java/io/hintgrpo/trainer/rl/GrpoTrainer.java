package io.hintgrpo.trainer.rl;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.model.AdamW;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.trainer.checkpoint.Checkpoints;
import io.hintgrpo.trainer.data.Rng;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.format.Polarity;
import io.hintgrpo.trainer.report.LinePlot;
import io.hintgrpo.trainer.report.RunLog;
import io.hintgrpo.trainer.sft.SftTrainer;
import io.hintgrpo.trainer.tokenizer.Tokenizer;

import java.io.IOException;
import java.io.UncheckedIOException;
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
 * GRPO and Hint-GRPO (DESIGN.md): per step, groups of rollouts of fresh prompts, rewards, hints
 * for hard groups (or DAPO's dynamic sampling), group advantages on the backend, then the policy
 * update ({@link PolicyUpdate}). Everything random is a function of (seed, step), and the prompt
 * order a function of (seed, epoch), so a resumed run repeats an uninterrupted one on cpu.
 * Every completion generated counts against the budget (hint re-rolls and refills included).
 */
public final class GrpoTrainer {
    static final ObjectMapper JSON = new ObjectMapper().setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE);
    private static final long ROLLOUT_KEY = 0x726f6c6cL, HINT_KEY = 0x68696e74L, ORDER_KEY = 0x6f726472L;

    /**
     * What one step did. Rewards are means over rollouts; "before hint" is the free rollouts of the
     * step's first groups, "after" the batch the update trained on. A group is hard by the config's
     * rule on its free rollouts; zero-advantage groups have all rewards equal. kl, clip fraction and
     * entropy are means over loss-bearing tokens; completion length counts response tokens (hint
     * included).
     */
    public record StepMetrics(int step, double loss, double gradNorm, float lr, double reward, Map<String, Double> rewardComponents,
                              double rewardBeforeHint, double rewardAfterHint, double hardGroupRate, int hintedGroups,
                              double zeroAdvantageShareBefore, double zeroAdvantageShareAfter, double meanCompletionLength,
                              double truncatedRate, double formatValidRate, double polarityAccuracy, double kl,
                              double clipFraction, double entropy, int groups, int completionsGenerated, long completionsTotal,
                              long tokensGenerated, double generationSeconds, double updateSeconds, boolean skipped) {}

    public record Result(int steps, int skippedSteps, List<StepMetrics> history, Map<String, Double> lastEval,
                         Path lastCheckpoint, boolean stoppedBySignal, long completionsTotal) {}

    private final GrpoConfig cfg;
    private final Rewards rewards;
    private final Path runDir;
    private final Path tokenizerJson;
    private final Map<String, String> fingerprint;
    private final Consumer<String> log;
    private final BooleanSupplier stopRequested;
    private final List<Consumer<StepMetrics>> listeners = new ArrayList<>();

    public GrpoTrainer(GrpoConfig cfg, Rewards rewards, Path runDir, Path tokenizerJson, Map<String, String> fingerprint,
                       Consumer<String> log, BooleanSupplier stopRequested) {
        this.cfg = cfg;
        this.rewards = rewards;
        this.runDir = runDir;
        this.tokenizerJson = tokenizerJson;
        this.fingerprint = new LinkedHashMap<>(fingerprint);
        this.fingerprint.put("seed", Long.toString(cfg.seed()));
        this.fingerprint.put("method", cfg.methodName());
        this.fingerprint.put("prompts_per_step", Integer.toString(cfg.promptsPerStep()));
        this.fingerprint.put("group_size", Integer.toString(cfg.groupSize()));
        this.log = log;
        this.stopRequested = stopRequested;
    }

    /** Called after every step with its metrics (on the training thread). */
    public GrpoTrainer onStep(Consumer<StepMetrics> listener) {
        listeners.add(listener);
        return this;
    }

    public Map<String, String> fingerprint() {
        return fingerprint;
    }

    public static AdamW optimizer(Model model, GrpoConfig cfg) {
        return new AdamW(model, cfg.lr(), cfg.beta1(), cfg.beta2(), cfg.eps(), cfg.weightDecay());
    }

    /** Where the next prompt comes from: a seeded permutation per epoch. */
    PromptSource promptSource(List<Utterance> prompts, int epoch, int position) {
        return new PromptSource(prompts, epoch, position);
    }

    final class PromptSource {
        final List<Utterance> prompts;
        int epoch, position;
        int[] order;

        private PromptSource(List<Utterance> prompts, int epoch, int position) {
            this.prompts = prompts;
            this.epoch = epoch;
            this.position = position;
            this.order = permutation(epoch);
        }

        int[] permutation(int e) {
            int[] p = new int[prompts.size()];
            for (int i = 0; i < p.length; i++) p[i] = i;
            Rng rng = Rng.of(cfg.seed(), ORDER_KEY, e);
            for (int i = p.length - 1; i > 0; i--) {
                int j = rng.below(i + 1), t = p[i];
                p[i] = p[j];
                p[j] = t;
            }
            return p;
        }

        Utterance next() {
            if (position == order.length) {
                epoch++;
                position = 0;
                order = permutation(epoch);
            }
            return prompts.get(order[position++]);
        }
    }

    /**
     * Trains from {@code start} to cfg.steps (or the completion budget). reference may be null
     * only when beta = 0.
     */
    public Result train(Model policy, AdamW opt, Model reference, Tokenizer tok, Checkpoints.State start, List<Utterance> prompts,
                        SftTrainer.Evaluator evaluator) {
        if (prompts.isEmpty()) throw new io.hintgrpo.engine.BadInputException("grpo", "no training prompts");
        try {
            Files.createDirectories(runDir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Checkpoints checkpoints = new Checkpoints(runDir);
        RunLog runLog = new RunLog(runDir.resolve("metrics.jsonl"), cfg.steps());
        List<StepMetrics> history = new ArrayList<>();
        List<double[]> evals = new ArrayList<>(); // (step, valid_mae) for the plot
        for (JsonNode n : runLog.restore(start.step())) {
            if (n.has("eval")) evals.add(new double[]{n.get("step").asInt(), n.get("eval").path("valid_mae").asDouble(Double.NaN)});
            else history.add(fromJson(n));
        }
        long completions = history.isEmpty() ? 0 : history.get(history.size() - 1).completionsTotal();
        Rollouts rollouts = new Rollouts(policy, tok, rewards, cfg.maxCompletionTokens(), cfg.temperature(), cfg.topK(), cfg.topP());
        PromptSource order = promptSource(prompts, start.epoch(), start.position());
        int skipped = start.skippedSteps(), badInARow = 0;
        Map<String, Double> lastEval = Map.of();
        Path lastCheckpoint = null;
        long runStart = System.nanoTime();
        boolean stopped = false;
        int step = start.step();
        while (step < cfg.steps() && (cfg.maxCompletions() == 0 || completions < cfg.maxCompletions())) {
            if (stopRequested.getAsBoolean()) {
                stopped = true;
                lastCheckpoint = checkpoints.write(policy, opt, tokenizerJson,
                        new Checkpoints.State(step, order.epoch, order.position, skipped, fingerprint), Double.NaN, cfg.keepLast());
                log.accept("stopped at step " + step + "; checkpoint " + lastCheckpoint + " (resume with --resume)");
                break;
            }
            StepMetrics m = step(step, policy, opt, reference, rollouts, order, completions);
            completions = m.completionsTotal();
            step++;
            if (m.skipped()) {
                skipped++;
                badInARow++;
                log.accept(String.format(Locale.ROOT, "step %d: non-finite loss or gradient, update skipped", step));
                if (badInARow >= cfg.maxBadStepsInARow())
                    throw new SftTrainer.DivergedException(badInARow + " steps in a row had a non-finite loss or gradient (last at step "
                            + step + "); lower the learning rate or check the rewards");
            } else {
                badInARow = 0;
            }
            history.add(m);
            runLog.append(JSON.valueToTree(m));
            for (Consumer<StepMetrics> l : listeners) l.accept(m);
            runLog.progress(step, step - start.step(), (System.nanoTime() - runStart) / 1e9, String.format(Locale.ROOT,
                    "reward %.3f (before hints %.3f)  hard %.2f  zero-adv %.2f  kl %.4f  len %.0f  %d completions",
                    m.reward(), m.rewardBeforeHint(), m.hardGroupRate(), m.zeroAdvantageShareAfter(), m.kl(),
                    m.meanCompletionLength(), m.completionsTotal()));

            boolean last = step == cfg.steps() || (cfg.maxCompletions() > 0 && completions >= cfg.maxCompletions());
            double metric = Double.NaN;
            if (evaluator != null && (step % cfg.evalEvery() == 0 || last)) {
                lastEval = evaluator.evaluate(policy);
                metric = lastEval.getOrDefault("valid_mae", Double.NaN);
                evals.add(new double[]{step, metric});
                ObjectNode e = JSON.createObjectNode();
                e.put("step", step);
                ObjectNode values = e.putObject("eval");
                lastEval.forEach(values::put);
                runLog.append(e);
                runLog.breakLine();
                log.accept("eval at step " + step + ": " + format(lastEval));
            }
            if (step % cfg.checkpointEvery() == 0 || last) {
                lastCheckpoint = checkpoints.write(policy, opt, tokenizerJson,
                        new Checkpoints.State(step, order.epoch, order.position, skipped, fingerprint), metric, cfg.keepLast());
                plot(history, evals, runDir.resolve("grpo.png"));
            }
        }
        if (!history.isEmpty()) runLog.breakLine();
        return new Result(step, skipped, history, lastEval, lastCheckpoint, stopped, completions);
    }

    /** One GRPO step at 0-based index {@code step}: rollouts, hints or refills, advantages, update. */
    StepMetrics step(int step, Model policy, AdamW opt, Model reference, Rollouts rollouts, PromptSource order, long completionsBefore) {
        long t0 = System.nanoTime();
        int g = cfg.groupSize(), round = 0;
        List<Rollouts.Group> groups = new ArrayList<>();
        for (int p = 0; p < cfg.promptsPerStep(); p++) groups.add(rollouts.group(order.next()));
        int generated = fill(rollouts, groups, step, round++);

        // before hints: the free rollouts
        List<Rollouts.Rollout> free = new ArrayList<>();
        for (Rollouts.Group gr : groups) free.addAll(gr.rollouts);
        double rewardBefore = free.stream().mapToDouble(r -> r.reward().total()).average().orElse(0);
        double zeroBefore = groups.stream().filter(Rollouts.Group::allEqual).count() / (double) groups.size();
        boolean[] hard = new boolean[groups.size()];
        int hardCount = 0;
        for (int i = 0; i < hard.length; i++) if (hard[i] = isHard(groups.get(i))) hardCount++;
        double formatValid = free.stream().filter(r -> r.parsed().formatValid()).count() / (double) free.size();
        double polarityAcc = 0;
        for (Rollouts.Group gr : groups)
            for (Rollouts.Rollout r : gr.rollouts) if (r.parsed().polarity() == Polarity.of(gr.utterance.label())) polarityAcc++;
        polarityAcc /= free.size();

        int hinted = 0;
        if (cfg.hinting()) {
            Rng rng = Rng.of(cfg.seed(), HINT_KEY, step);
            List<Rollouts.Request> requests = new ArrayList<>();
            for (int i = 0; i < hard.length; i++)
                if (hard[i] && rng.chance(cfg.hintRate(step)))
                    requests.add(new Rollouts.Request(groups.get(i), rollouts.hintIds(groups.get(i).utterance), cfg.hintedPerGroup()));
            if (!requests.isEmpty()) {
                List<Rollouts.Rollout> again = rollouts.sample(requests, seed(step, round++));
                int k = 0;
                for (Rollouts.Request q : requests) {
                    List<Rollouts.Rollout> rs = q.group().rollouts;
                    // rollouts are exchangeable: the re-rolls take the last places
                    for (int j = 0; j < q.n(); j++) rs.set(g - q.n() + j, again.get(k++));
                }
                generated += again.size();
                hinted = requests.size();
            }
        }
        if (cfg.dynamicSampling()) {
            for (int refill = 0; refill < cfg.maxRefillRounds(); refill++) {
                groups.removeIf(Rollouts.Group::allEqual);
                int missing = cfg.promptsPerStep() - groups.size();
                if (missing == 0) break;
                List<Rollouts.Group> fresh = new ArrayList<>();
                for (int p = 0; p < missing; p++) fresh.add(rollouts.group(order.next()));
                generated += fill(rollouts, fresh, step, round++);
                groups.addAll(fresh);
            }
            groups.removeIf(Rollouts.Group::allEqual); // still flat after the last round: no signal to train on
        }
        double zeroAfter = groups.isEmpty() ? 1 : groups.stream().filter(Rollouts.Group::allEqual).count() / (double) groups.size();
        List<Rollouts.Rollout> batch = new ArrayList<>();
        for (Rollouts.Group gr : groups) batch.addAll(gr.rollouts);
        double rewardAfter = batch.stream().mapToDouble(r -> r.reward().total()).average().orElse(Double.NaN);
        Map<String, Double> components = new LinkedHashMap<>();
        List<String> names = rewards.names();
        for (int c = 0; c < names.size(); c++) {
            final int ci = c;
            components.put(names.get(c), batch.stream().mapToDouble(r -> r.reward().components()[ci]).average().orElse(Double.NaN));
        }
        double length = batch.stream().mapToInt(Rollouts.Rollout::length).average().orElse(0);
        double truncated = batch.stream().filter(Rollouts.Rollout::truncated).count() / (double) Math.max(1, batch.size());
        long tokens = 0; // generated this step, free and hinted (the hint prefix is forced, not generated)
        for (Rollouts.Group gr : groups) for (Rollouts.Rollout r : gr.rollouts) tokens += r.tokens().length;
        double genSecs = (System.nanoTime() - t0) / 1e9;

        long t1 = System.nanoTime();
        float lr = cfg.schedule().at(step);
        PolicyUpdate.Stats u = new PolicyUpdate.Stats(0, 0, 0, 0, 0, 0, 0, 0);
        if (!groups.isEmpty()) {
            float[] advantages = advantages(policy.kernels, groups);
            u = PolicyUpdate.apply(policy, reference, opt, PolicyUpdate.rows(groups, advantages, cfg.maskTruncated()), cfg, lr);
        }
        double updSecs = (System.nanoTime() - t1) / 1e9;
        return new StepMetrics(step + 1, u.loss(), u.gradNorm(), lr, rewardAfter, components, rewardBefore, rewardAfter,
                hardCount / (double) hard.length, hinted, zeroBefore, zeroAfter, length, truncated, formatValid, polarityAcc,
                u.kl(), u.clipFraction(), u.entropy(), groups.size(), generated, completionsBefore + generated, tokens,
                genSecs, updSecs, u.nonFiniteSteps() > 0 && u.optimizerSteps() == 0);
    }

    private int fill(Rollouts rollouts, List<Rollouts.Group> groups, int step, int round) {
        List<Rollouts.Request> requests = new ArrayList<>();
        for (Rollouts.Group gr : groups) requests.add(new Rollouts.Request(gr, new int[0], cfg.groupSize()));
        List<Rollouts.Rollout> drawn = rollouts.sample(requests, seed(step, round));
        for (int i = 0; i < groups.size(); i++)
            groups.get(i).rollouts.addAll(drawn.subList(i * cfg.groupSize(), (i + 1) * cfg.groupSize()));
        return drawn.size();
    }

    private long seed(int step, int round) {
        return Rng.of(cfg.seed(), ROLLOUT_KEY, step, round).nextLong();
    }

    boolean isHard(Rollouts.Group g) {
        return switch (cfg.hardRule()) {
            case "max-reward-below" -> g.rollouts.stream().mapToDouble(r -> r.reward().total()).max().orElse(0) < cfg.hardTau();
            case "all-equal" -> g.allEqual();
            default -> g.rollouts.stream().noneMatch(r -> r.parsed().polarity() == Polarity.of(g.utterance.label()));
        };
    }

    /** Group advantages on the backend (the grpo_advantages kernel). */
    float[] advantages(Kernels k, List<Rollouts.Group> groups) {
        int n = groups.size() * cfg.groupSize();
        float[] r = new float[n];
        int i = 0;
        for (Rollouts.Group gr : groups) for (double x : gr.rewards()) r[i++] = (float) x;
        Buf rewardsBuf = k.allocF32(n), adv = k.allocF32(n), stats = k.allocF32(2L * groups.size());
        try {
            k.upload(rewardsBuf, r);
            k.grpoAdvantages(adv, stats, rewardsBuf, groups.size(), cfg.groupSize(), cfg.advantage().equals("mean"), 1e-4f);
            float[] a = new float[n];
            k.download(adv, a);
            return a;
        } finally {
            k.free(rewardsBuf);
            k.free(adv);
            k.free(stats);
        }
    }

    static StepMetrics fromJson(JsonNode n) {
        try {
            return JSON.treeToValue(n, StepMetrics.class);
        } catch (IOException e) {
            throw new UncheckedIOException("metrics.jsonl: unreadable step line " + n + ": " + e.getMessage(), e);
        }
    }

    private static String format(Map<String, Double> values) {
        StringBuilder sb = new StringBuilder();
        values.forEach((k, v) -> sb.append(sb.isEmpty() ? "" : ", ").append(k).append(' ').append(String.format(Locale.ROOT, "%.4f", v)));
        return sb.toString();
    }

    /** grpo.png: reward before/after hints, hard-group rate, zero-advantage share and validation MAE over steps. */
    static void plot(List<StepMetrics> history, List<double[]> evals, Path file) {
        int n = history.size();
        double[] x = new double[n], before = new double[n], after = new double[n], hard = new double[n], zero = new double[n];
        for (int i = 0; i < n; i++) {
            StepMetrics m = history.get(i);
            x[i] = m.step();
            before[i] = m.rewardBeforeHint();
            after[i] = m.rewardAfterHint();
            hard[i] = m.hardGroupRate();
            zero[i] = m.zeroAdvantageShareAfter();
        }
        LinePlot plot = new LinePlot("GRPO", "step", "value")
                .add("reward (free rollouts)", x, before).add("reward (trained batch)", x, after)
                .add("hard-group rate", x, hard).add("zero-advantage share", x, zero);
        double[] ex = evals.stream().mapToDouble(e -> e[0]).toArray(), ey = evals.stream().mapToDouble(e -> e[1]).toArray();
        if (ex.length > 0) plot.add("valid MAE", ex, ey);
        try {
            plot.write(file, 820, 460);
        } catch (IOException e) {
            throw new UncheckedIOException("writing " + file + ": " + e.getMessage(), e);
        }
    }
}
