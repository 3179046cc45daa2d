package io.hintgrpo.trainer.rl;

import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.model.AdamW;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.trainer.data.Rng;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.format.Polarity;
import io.hintgrpo.trainer.loop.LrSchedule;
import io.hintgrpo.trainer.loop.TrainLoop;
import io.hintgrpo.trainer.report.Chart;
import io.hintgrpo.trainer.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The steps of GRPO and Hint-GRPO (DESIGN.md): per step, groups of rollouts of fresh prompts,
 * rewards, hints for hard groups (or DAPO's dynamic sampling), group advantages on the backend,
 * then the policy update ({@link PolicyUpdate}). The loop around the steps is {@link TrainLoop}'s.
 * Everything random is a function of (seed, step), and the prompt order a function of (seed,
 * epoch), so a resumed run repeats an uninterrupted one on cpu. Every completion generated counts
 * against the budget (hint re-rolls and refills included).
 */
public final class GrpoTrainer implements TrainLoop.Steps<GrpoTrainer.StepMetrics> {
    public static final String PLOT_FILE = "grpo.png";
    private static final long ROLLOUT_KEY = 0x726f6c6cL, HINT_KEY = 0x68696e74L, ORDER_KEY = 0x6f726472L;
    private static final float ADVANTAGE_EPS = 1e-4f;

    /**
     * What one step did. Rewards are means over rollouts; "before hint" is the free rollouts of the
     * step's first groups, "after" the batch the update trained on. A group is hard by the config's
     * rule on its free rollouts; zero-advantage groups have all rewards equal. kl, clip fraction and
     * entropy are means over loss-bearing tokens; completion length counts response tokens (hint
     * included). underFilled: dynamic sampling ended the step with fewer groups than
     * prompts_per_step (still flat after the last refill round). tokensGenerated counts every token
     * sampled this step: free, hinted and refilled rollouts, dropped and replaced ones included (a
     * hint's forced prefix is not sampled).
     */
    public record StepMetrics(int step, double loss, double gradNorm, float lr, double reward, Map<String, Double> rewardComponents,
                              double rewardBeforeHint, double rewardAfterHint, double hardGroupRate, int hintedGroups,
                              double zeroAdvantageShareBefore, double zeroAdvantageShareAfter, double meanCompletionLength,
                              double truncatedRate, double formatValidRate, double polarityAccuracy, double kl,
                              double clipFraction, double entropy, int groups, boolean underFilled, int completionsGenerated,
                              long completionsTotal, long tokensGenerated, double generationSeconds, double updateSeconds, boolean skipped)
            implements TrainLoop.StepRecord {}

    /**
     * Group advantages from the grpo_advantages kernel, the one place they are computed: one per
     * rollout in group order, and per group whether it is flat (all rewards equal: the kernel's
     * std is exactly 0 and every advantage exactly 0, so the group carries no policy gradient).
     */
    record Advantages(float[] values, boolean[] flat) {
        double flatShare() {
            if (flat.length == 0) return 1;
            int n = 0;
            for (boolean f : flat) if (f) n++;
            return n / (double) flat.length;
        }
    }

    private final GrpoConfig cfg;
    private final Rewards rewards;
    private final Model policy, reference;
    private final AdamW opt;
    private final Rollouts rollouts;
    private final PromptSource order;
    private final LrSchedule schedule;

    /**
     * @param reference the frozen KL reference (null only when beta = 0)
     * @param epoch     where the prompt order stands: its epoch and position in it
     */
    public GrpoTrainer(GrpoConfig cfg, Rewards rewards, Model policy, AdamW opt, Model reference, Tokenizer tok, List<Utterance> prompts,
                       int epoch, int position) {
        if (prompts.isEmpty()) throw new io.hintgrpo.engine.BadInputException("grpo", "no training prompts");
        if (cfg.update().beta() > 0 && reference == null) throw new IllegalArgumentException("beta > 0 needs a reference model");
        this.cfg = cfg;
        this.rewards = rewards;
        this.policy = policy;
        this.opt = opt;
        this.reference = reference;
        this.rollouts = new Rollouts(policy, tok, rewards, cfg.rollout().maxCompletionTokens(), cfg.sampling());
        this.order = new PromptSource(prompts, cfg.loop().seed(), epoch, position);
        this.schedule = cfg.optimizer().schedule(cfg.loop().steps());
    }

    /** What a checkpoint of a GRPO run must agree with to be resumed, besides the caller's entries. */
    public static Map<String, String> fingerprint(GrpoConfig cfg) {
        java.util.Set<String> mayChange = new java.util.HashSet<>(io.hintgrpo.trainer.loop.LoopSettings.MAY_CHANGE_ON_RESUME);
        mayChange.add("max_completions"); // the budget, like steps, says how long the run goes
        return TrainLoop.fingerprint("grpo", cfg, mayChange);
    }

    Rollouts rollouts() {
        return rollouts;
    }

    /** Where the next prompt comes from: a seeded permutation per epoch. */
    static final class PromptSource {
        final List<Utterance> prompts;
        final long seed;
        int epoch, position;
        int[] order;

        PromptSource(List<Utterance> prompts, long seed, int epoch, int position) {
            this.prompts = prompts;
            this.seed = seed;
            this.epoch = epoch;
            this.position = position;
            this.order = permutation(epoch);
        }

        int[] permutation(int e) {
            int[] p = new int[prompts.size()];
            for (int i = 0; i < p.length; i++) p[i] = i;
            Rng rng = Rng.of(seed, ORDER_KEY, e);
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

    @Override
    public int epoch() {
        return order.epoch;
    }

    @Override
    public int position() {
        return order.position;
    }

    @Override
    public boolean budgetSpent(List<StepMetrics> history) {
        long budget = cfg.rollout().maxCompletions();
        return budget > 0 && !history.isEmpty() && history.get(history.size() - 1).completionsTotal() >= budget;
    }

    /** One GRPO step at 0-based index {@code step}: rollouts, hints or refills, advantages, update. */
    @Override
    public StepMetrics run(int step, List<StepMetrics> history) {
        long completionsBefore = history.isEmpty() ? 0 : history.get(history.size() - 1).completionsTotal();
        long t0 = System.nanoTime();
        GrpoConfig.Rollout ro = cfg.rollout();
        int g = ro.groupSize(), round = 0;
        List<Rollouts.Group> groups = new ArrayList<>();
        for (int p = 0; p < ro.promptsPerStep(); p++) groups.add(rollouts.group(order.next()));
        long[] tokens = {0};
        int generated = fill(groups, step, round++, tokens);

        // before hints: the free rollouts
        List<Rollouts.Rollout> free = new ArrayList<>();
        for (Rollouts.Group gr : groups) free.addAll(gr.rollouts);
        double rewardBefore = free.stream().mapToDouble(r -> r.reward().total()).average().orElse(0);
        Advantages freeAdvantages = advantages(groups);
        double zeroBefore = freeAdvantages.flatShare();
        boolean[] hard = new boolean[groups.size()];
        int hardCount = 0;
        for (int i = 0; i < hard.length; i++) if (hard[i] = isHard(groups.get(i), freeAdvantages.flat()[i])) hardCount++;
        double formatValid = free.stream().filter(r -> r.parsed().formatValid()).count() / (double) free.size();
        double polarityAcc = 0;
        for (Rollouts.Group gr : groups)
            for (Rollouts.Rollout r : gr.rollouts) if (r.parsed().polarity() == Polarity.of(gr.utterance.label())) polarityAcc++;
        polarityAcc /= free.size();

        int hinted = 0;
        if (cfg.hinting()) {
            Rng rng = Rng.of(cfg.loop().seed(), HINT_KEY, step);
            List<Rollouts.Request> requests = new ArrayList<>();
            for (int i = 0; i < hard.length; i++)
                if (hard[i] && rng.chance(cfg.hintRate(step)))
                    requests.add(new Rollouts.Request(groups.get(i), rollouts.hintIds(groups.get(i).utterance), cfg.hintedPerGroup()));
            if (!requests.isEmpty()) {
                List<Rollouts.Rollout> again = rollouts.sample(requests, seed(step, round++));
                tokens[0] += sampledTokens(again);
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
        if (ro.dynamicSampling()) {
            for (int refill = 0; ; refill++) {
                dropFlat(groups); // after the last round too: a group still flat has no signal to train on
                int missing = ro.promptsPerStep() - groups.size();
                if (missing == 0 || refill == ro.maxRefillRounds()) break;
                List<Rollouts.Group> fresh = new ArrayList<>();
                for (int p = 0; p < missing; p++) fresh.add(rollouts.group(order.next()));
                generated += fill(fresh, step, round++, tokens);
                groups.addAll(fresh);
            }
        }
        Advantages batchAdvantages = advantages(groups);
        double zeroAfter = batchAdvantages.flatShare();
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
        boolean underFilled = ro.dynamicSampling() && groups.size() < ro.promptsPerStep();
        double genSecs = (System.nanoTime() - t0) / 1e9;

        long t1 = System.nanoTime();
        float lr = schedule.at(step);
        PolicyUpdate.Stats u = new PolicyUpdate.Stats(0, 0, 0, 0, 0, 0, 0, 0);
        if (!groups.isEmpty())
            u = PolicyUpdate.apply(policy, reference, opt, PolicyUpdate.rows(groups, batchAdvantages.values(), cfg.update().maskTruncated()),
                    cfg, lr);
        double updSecs = (System.nanoTime() - t1) / 1e9;
        return new StepMetrics(step + 1, u.loss(), u.gradNorm(), lr, rewardAfter, components, rewardBefore, rewardAfter,
                hardCount / (double) hard.length, hinted, zeroBefore, zeroAfter, length, truncated, formatValid, polarityAcc,
                u.kl(), u.clipFraction(), u.entropy(), groups.size(), underFilled, generated, completionsBefore + generated, tokens[0],
                genSecs, updSecs, u.nonFiniteSteps() > 0 && u.optimizerSteps() == 0);
    }

    @Override
    public String progress(StepMetrics m) {
        return String.format(Locale.ROOT, "reward %.3f (before hints %.3f)  hard %.2f  zero-adv %.2f  kl %.4f  len %.0f  %d completions",
                m.reward(), m.rewardBeforeHint(), m.hardGroupRate(), m.zeroAdvantageShareAfter(), m.kl(),
                m.meanCompletionLength(), m.completionsTotal());
    }

    /** Draws G free rollouts for each group; returns how many, and adds their sampled tokens to tokens[0]. */
    private int fill(List<Rollouts.Group> groups, int step, int round, long[] tokens) {
        int g = cfg.rollout().groupSize();
        List<Rollouts.Request> requests = new ArrayList<>();
        for (Rollouts.Group gr : groups) requests.add(new Rollouts.Request(gr, new int[0], g));
        List<Rollouts.Rollout> drawn = rollouts.sample(requests, seed(step, round));
        tokens[0] += sampledTokens(drawn);
        for (int i = 0; i < groups.size(); i++) groups.get(i).rollouts.addAll(drawn.subList(i * g, (i + 1) * g));
        return drawn.size();
    }

    private static long sampledTokens(List<Rollouts.Rollout> rs) {
        long n = 0;
        for (Rollouts.Rollout r : rs) n += r.tokens().length;
        return n;
    }

    private void dropFlat(List<Rollouts.Group> groups) {
        boolean[] flat = advantages(groups).flat();
        List<Rollouts.Group> kept = new ArrayList<>();
        for (int i = 0; i < flat.length; i++) if (!flat[i]) kept.add(groups.get(i));
        groups.clear();
        groups.addAll(kept);
    }

    private long seed(int step, int round) {
        return Rng.of(cfg.loop().seed(), ROLLOUT_KEY, step, round).nextLong();
    }

    /** Whether a group is hard by the config's rule; flat: its rewards are all equal (from {@link #advantages}). */
    boolean isHard(Rollouts.Group g, boolean flat) {
        return switch (cfg.hints().hardRule()) {
            case MAX_REWARD_BELOW -> g.rollouts.stream().mapToDouble(r -> r.reward().total()).max().orElse(0) < cfg.hints().hardTau();
            case ALL_EQUAL -> flat;
            case NO_CORRECT_POLARITY -> g.rollouts.stream().noneMatch(r -> r.parsed().polarity() == Polarity.of(g.utterance.label()));
        };
    }

    /** The groups' advantages and flat groups, from the grpo_advantages kernel on the policy's backend. */
    Advantages advantages(List<Rollouts.Group> groups) {
        Kernels k = policy.kernels;
        int g = cfg.rollout().groupSize(), n = groups.size() * g;
        if (groups.isEmpty()) return new Advantages(new float[0], new boolean[0]);
        float[] r = new float[n];
        int i = 0;
        for (Rollouts.Group gr : groups) for (double x : gr.rewards()) r[i++] = (float) x;
        Buf rewardsBuf = k.allocF32(n), adv = k.allocF32(n), stats = k.allocF32(2L * groups.size());
        try {
            k.upload(rewardsBuf, r);
            k.grpoAdvantages(adv, stats, rewardsBuf, groups.size(), g, cfg.update().advantage() == GrpoConfig.Advantage.MEAN,
                    ADVANTAGE_EPS);
            float[] a = new float[n], st = new float[2 * groups.size()];
            k.download(adv, a);
            k.download(stats, st);
            boolean[] flat = new boolean[groups.size()];
            for (int j = 0; j < flat.length; j++) flat[j] = st[2 * j + 1] == 0f;
            return new Advantages(a, flat);
        } finally {
            k.free(rewardsBuf);
            k.free(adv);
            k.free(stats);
        }
    }

    /** grpo.png: reward before/after hints, hard-group rate, zero-advantage share and validation MAE over steps. */
    @Override
    public void plot(List<StepMetrics> history, List<TrainLoop.Eval> evals, Path file) throws IOException {
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
        Chart plot = new Chart("GRPO", "step", "value")
                .add("reward (free rollouts)", x, before).add("reward (trained batch)", x, after)
                .add("hard-group rate", x, hard).add("zero-advantage share", x, zero);
        double[] ex = evals.stream().mapToDouble(TrainLoop.Eval::step).toArray();
        double[] ey = evals.stream().mapToDouble(e -> e.values().getOrDefault("valid_mae", Double.NaN)).toArray();
        if (ex.length > 0) plot.add("valid MAE", ex, ey);
        plot.write(file, 820, 460);
    }
}
