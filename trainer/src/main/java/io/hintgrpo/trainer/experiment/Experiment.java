package io.hintgrpo.trainer.experiment;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.io.PeftAdapter;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.trainer.checkpoint.Checkpoints;
import io.hintgrpo.trainer.data.AtomicFiles;
import io.hintgrpo.trainer.data.Jsonl;
import io.hintgrpo.trainer.data.SynthCorpus;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.eval.Evaluation;
import io.hintgrpo.trainer.eval.Metrics;
import io.hintgrpo.trainer.eval.Prediction;
import io.hintgrpo.trainer.format.Polarity;
import io.hintgrpo.trainer.loop.Run;
import io.hintgrpo.trainer.loop.RunLock;
import io.hintgrpo.trainer.rl.GrpoConfig;
import io.hintgrpo.trainer.rl.GrpoRun;
import io.hintgrpo.trainer.rl.GrpoTrainer;
import io.hintgrpo.trainer.sft.SftConfig;
import io.hintgrpo.trainer.sft.SftRun;
import io.hintgrpo.trainer.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.function.Predicate;

/**
 * The comparison the project exists for, in the regime Hint-GRPO is meant for. Per corpus (the
 * default synthetic corpus, and the same corpus with a teacher blind spot on its hard utterances)
 * and per seed: a cold-start SFT of the embedded default model from that seed (SFT variance is part
 * of the result), then from it, for each reward (continuous, or the sparse banded score), plain
 * GRPO, GRPO with DAPO's dynamic sampling, Hint-GRPO replacing hard groups, and Hint-GRPO mixing
 * hinted rollouts into them, all at the same generation budget (hint re-rolls and refills count).
 * Every policy (the SFT one as "SFT only") is evaluated greedily at the end of its budget on the
 * whole test split of every domain; results come per condition (in-domain, cross-domain, and the
 * hard subset of each) as mean ± std over seeds and as paired differences to plain GRPO with 95 %
 * bootstrap intervals over seeds and test items ({@link PairedBootstrap}).
 *
 * <p>Every finished run leaves {@code result.json} in its folder; running again with the same work
 * folder skips those and resumes an interrupted one from its checkpoint, so the whole experiment
 * may span several processes. The report is rewritten after every run from what is there.
 */
public final class Experiment {
    static final ObjectMapper JSON = new ObjectMapper().setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE);
    static final String RESULT_FILE = "result.json", SFT_ONLY = "SFT only", GRPO = "GRPO";

    /** Which corpus and which reward: the unit the report is organised by. */
    public record Regime(boolean blindSpot, boolean banded) {
        /** "blind-spot/banded", "default/continuous", … as the command line writes it. */
        public static Regime parse(String s) {
            String[] p = s.split("/", -1);
            if (p.length != 2 || !(p[0].equals("blind-spot") || p[0].equals("default")) || !(p[1].equals("banded") || p[1].equals("continuous")))
                throw new BadInputException("--regimes", "expected CORPUS/REWARD with CORPUS blind-spot or default and REWARD continuous or banded, got \"" + s + "\"");
            return new Regime(p[0].equals("blind-spot"), p[1].equals("banded"));
        }

        public String corpus() {
            return blindSpot ? "blind-spot" : "default";
        }

        public String key() {
            return corpus() + "/" + (banded ? "banded" : "continuous");
        }

        String slug() {
            return key().replace('/', '-');
        }
    }

    /** One arm: a name and its GRPO settings (null = the SFT policy as it is). */
    public record Arm(String name, GrpoConfig config) {}

    /**
     * @param corpusSize  utterances per corpus before the evaluation splits (80 % of it trains)
     * @param evalSize    valid and test utterances per domain
     * @param blindSpot   the blind-spot corpus's share of hard training chains the teacher gets wrong
     * @param scoreBand   the banded reward's band (score term 1 when |ŷ − y| ≤ band)
     * @param evalTokens  longest greedy response at evaluation
     * @param resamples   bootstrap resamples
     */
    public record Settings(long corpusSeed, int corpusSize, int evalSize, double blindSpot, String trainDomain, SftConfig sft,
                           GrpoConfig base, long budget, List<Long> seeds, List<Regime> regimes, double scoreBand, int evalTokens,
                           int resamples) {
        public Settings {
            if (seeds.isEmpty()) throw new BadInputException("--seeds", "at least one seed");
            if (new LinkedHashSet<>(seeds).size() != seeds.size()) throw new BadInputException("--seeds", "a seed is listed twice: " + seeds);
            if (regimes.isEmpty()) throw new BadInputException("--regimes", "at least one regime");
            if (budget < 1) throw new BadInputException("--budget", "must be ≥ 1, got " + budget);
            if (!(scoreBand > 0) || !Double.isFinite(scoreBand)) throw new BadInputException("--score-band", "must be > 0, got " + scoreBand);
            if (evalTokens < 1) throw new BadInputException("--max-new-tokens", "must be ≥ 1, got " + evalTokens);
            if (resamples < 100) throw new BadInputException("--bootstrap", "must be ≥ 100, got " + resamples);
            seeds = List.copyOf(seeds);
            regimes = List.copyOf(new LinkedHashSet<>(regimes));
        }

        /** The corpus of the blind-spot regimes (true) or of the default ones. */
        public SynthCorpus.Options corpusOptions(boolean withBlindSpot) {
            SynthCorpus.Options d = SynthCorpus.Options.defaults(corpusSeed, corpusSize);
            return new SynthCorpus.Options(d.seed(), d.size(), d.teacherErrorRate(), d.framesAudio(), d.framesVision(), d.conflictRate(),
                    d.filterTolerance(), withBlindSpot ? blindSpot : 0, evalSize);
        }
    }

    /** What one evaluated test utterance came to (the predictions the bootstrap resamples). */
    public record Item(String id, String domain, String subset, float label, Float score, String disc, boolean valid) {
        static Item of(Evaluation.Row r) {
            Utterance u = r.utterance();
            float s = r.parsed().score();
            Polarity p = r.parsed().polarity();
            return new Item(u.id(), u.domain(), u.subset(), u.label(), Float.isNaN(s) ? null : s, p == null ? null : p.word(), r.parsed().formatValid());
        }

        Prediction prediction() {
            return new Prediction(domain, label, score == null ? Float.NaN : score, disc == null ? null : Polarity.fromWord(disc), valid, subset);
        }
    }

    /** One RL step as the report reads it (free rollouts, before hints). */
    public record StepPoint(int step, long completions, double reward, double hardGroupRate, double flatShare, boolean underFilled,
                            int hintedGroups, double formatValid, long tokens) {
        static StepPoint of(GrpoTrainer.StepMetrics m) {
            return new StepPoint(m.step(), m.completionsTotal(), m.rewardBeforeHint(), m.hardGroupRate(), m.zeroAdvantageShareBefore(),
                    m.underFilled(), m.hintedGroups(), m.formatValidRate(), m.tokensGenerated());
        }
    }

    /** Greedy disc accuracy and MAE on the training domain's hard validation utterances after this many completions. */
    public record CurvePoint(long completions, double hardDiscAccuracy, double hardMae) {}

    /**
     * One evaluated policy. trainSeconds: the RL run's wall clock (SFT's for "SFT only"), in the
     * process that finished it; evalSeconds: the greedy test evaluation's.
     */
    public record RunResult(String regime, String arm, long seed, int steps, long completions, double trainSeconds, double evalSeconds,
                            List<Item> items, List<StepPoint> history, List<CurvePoint> curve) {
        List<Prediction> predictions(Predicate<Item> where) {
            return items.stream().filter(where).map(Item::prediction).toList();
        }
    }

    private Experiment() {}

    public static List<Arm> arms(GrpoConfig base, long budget) {
        int perStep = base.rollout().promptsPerStep() * base.rollout().groupSize();
        int steps = (int) Math.max(1, (budget + perStep - 1) / perStep);
        return List.of(new Arm(SFT_ONLY, null),
                new Arm(GRPO, with(base, steps, budget, "none", false)),
                new Arm("GRPO + dynamic sampling", with(base, steps, budget, "none", true)),
                new Arm("Hint-GRPO (replace)", with(base, steps, budget, "replace", false)),
                new Arm("Hint-GRPO (mix)", with(base, steps, budget, "mix", false)));
    }

    private static GrpoConfig with(GrpoConfig b, int steps, long budget, String hint, boolean dynamic) {
        return b.with(Map.of("steps", steps, "max_completions", budget, "hint", hint, "dynamic_sampling", dynamic));
    }

    /** The experiment with its runs in workDir (one process at a time, {@link RunLock}) and its report in outDir. */
    public static Map<Regime, List<RunResult>> run(Kernels kernels, Settings s, Path workDir, Path outDir, String command,
                                                   Consumer<String> log, BooleanSupplier stop) throws IOException {
        AtomicFiles.probeFolder(outDir);
        try (RunLock lock = RunLock.acquire(workDir)) {
            Map<Regime, List<RunResult>> results = new LinkedHashMap<>();
            for (Regime r : s.regimes()) results.put(r, new ArrayList<>());
            Corpus last = null;
            boolean upToDate = false;
            for (boolean blind : new boolean[]{true, false}) {
                List<Regime> regimes = s.regimes().stream().filter(r -> r.blindSpot() == blind).toList();
                if (regimes.isEmpty()) continue;
                Corpus corpus = Corpus.prepare(workDir.resolve("corpus-" + regimes.get(0).corpus()), s.corpusOptions(blind), s.trainDomain(), log);
                for (long seed : s.seeds()) {
                    if (stop.getAsBoolean()) return results;
                    Path seedDir = workDir.resolve(regimes.get(0).corpus()).resolve("seed" + seed);
                    boolean fresh = !Files.exists(seedDir.resolve("sft-" + RESULT_FILE));
                    RunResult sftOnly = sftOnly(kernels, s, corpus, seed, seedDir, log, stop);
                    if (sftOnly == null) return results;
                    for (Regime regime : regimes) {
                        results.get(regime).add(new RunResult(regime.key(), SFT_ONLY, seed, 0, 0, sftOnly.trainSeconds(), sftOnly.evalSeconds(),
                                sftOnly.items(), List.of(), sftOnly.curve()));
                        for (Arm arm : arms(s.base(), s.budget())) {
                            if (arm.config() == null) continue;
                            Path runDir = workDir.resolve(regime.slug()).resolve("seed" + seed).resolve(slug(arm.name()));
                            fresh |= !Files.exists(runDir.resolve(RESULT_FILE));
                            RunResult r = rl(kernels, s, corpus, regime, arm, seed, seedDir.resolve("sft/model"), sftOnly.curve(), runDir, log, stop);
                            if (r == null) return results;
                            results.get(regime).add(r);
                        }
                    }
                    // once per seed that ran something (the bootstrap over every finished run takes tens of seconds), and at the end
                    if (fresh) Report.write(outDir, s, results, command, corpus);
                    upToDate = fresh;
                    last = corpus;
                }
            }
            if (last != null && !upToDate) Report.write(outDir, s, results, command, last);
            return results;
        }
    }

    /** A corpus folder (made once), its splits read, and how many hard test items each domain has. */
    record Corpus(Path dir, Path tokenizerJson, ModelConfig config, List<Utterance> train, List<Utterance> valid,
                  List<Utterance> validHard, List<Utterance> test, Map<String, Long> hardTest) {
        static Corpus prepare(Path dir, SynthCorpus.Options o, String trainDomain, Consumer<String> log) throws IOException {
            if (!Files.exists(dir.resolve(SynthCorpus.MANIFEST_FILE))) {
                log.accept("making the corpus " + dir);
                SynthCorpus.write(dir, o);
            }
            JsonNode m = JSON.readTree(dir.resolve(SynthCorpus.MANIFEST_FILE).toFile());
            // a work folder reused with other corpus settings would mix two experiments
            if (m.path("seed").asLong() != o.seed() || m.path("size").asInt() != o.size() || m.path("eval_size").asInt() != o.evalSize()
                    || m.path("teacher_blind_spot").asDouble() != o.teacherBlindSpot())
                throw new BadInputException(dir.toString(), String.format(Locale.ROOT, "holds a corpus made with seed %d, size %d, eval size %d, "
                                + "blind spot %s; this experiment needs %d, %d, %d, %s (use another --work)", m.path("seed").asLong(),
                        m.path("size").asInt(), m.path("eval_size").asInt(), m.path("teacher_blind_spot").asText(), o.seed(), o.size(),
                        o.evalSize(), o.teacherBlindSpot()));
            Path tok = dir.resolve(SynthCorpus.TOKENIZER_FILE);
            ModelConfig cfg;
            try (Tokenizer t = Tokenizer.load(tok)) {
                cfg = SynthCorpus.modelConfig(t);
            }
            Jsonl.Expect expect = Jsonl.Expect.of(cfg);
            List<Utterance> train = Jsonl.read(SynthCorpus.splitFile(dir, trainDomain, "train"), expect);
            List<Utterance> valid = Jsonl.read(SynthCorpus.splitFile(dir, trainDomain, "valid"), expect);
            List<Utterance> test = new ArrayList<>();
            Map<String, Long> hard = new LinkedHashMap<>();
            for (String d : SynthCorpus.domains()) {
                List<Utterance> t = Jsonl.read(SynthCorpus.splitFile(dir, d, "test"), expect);
                test.addAll(t);
                hard.put(d, t.stream().filter(u -> Utterance.HARD.equals(u.subset())).count());
            }
            return new Corpus(dir, tok, cfg, train, valid, valid.stream().filter(u -> Utterance.HARD.equals(u.subset())).toList(), test, hard);
        }
    }

    /** The seed's SFT (trained or resumed in seedDir/sft) evaluated as it is; null when stopped. */
    private static RunResult sftOnly(Kernels kernels, Settings s, Corpus c, long seed, Path seedDir, Consumer<String> log,
                                     BooleanSupplier stop) throws IOException {
        Path resultFile = seedDir.resolve("sft-" + RESULT_FILE);
        if (Files.exists(resultFile)) return read(resultFile);
        Files.createDirectories(seedDir);
        SftConfig cfg = s.sft().with(Map.of("seed", seed));
        Model init = new Model(kernels, c.config());
        init.initialize(seed);
        log.accept(String.format(Locale.ROOT, "%s corpus, seed %d: SFT, %d steps", c.dir().getFileName(), seed, cfg.loop().steps()));
        long t0 = System.nanoTime();
        SftRun.Outcome o = SftRun.run(kernels, init, c.tokenizerJson(), c.train(), c.valid(), cfg,
                Run.in(seedDir.resolve("sft")).resuming(true).log(log).stopWhen(stop).fingerprint(Map.of("init_seed", Long.toString(seed))));
        if (o.training().stoppedBySignal() || stop.getAsBoolean()) return null;
        double trainSeconds = (System.nanoTime() - t0) / 1e9;
        CurvePoint start;
        try (Model m = ModelDir.load(kernels, o.modelDir(), 0, msg -> {}); Tokenizer tok = Tokenizer.load(c.tokenizerJson())) {
            Metrics.Scores h = Evaluation.run(m, tok, evalSlice(c, s), Evaluation.Options.greedy(), null).report().overall();
            start = new CurvePoint(0, h.discAccuracy(), h.mae());
        }
        return evaluated(kernels, s, c, new RunResult(null, SFT_ONLY, seed, 0, 0, trainSeconds, 0, List.of(), List.of(), List.of(start)),
                o.modelDir(), null, resultFile, log);
    }

    /** The hard validation utterances the curves are drawn on (as many as the GRPO runs evaluate). */
    private static List<Utterance> evalSlice(Corpus c, Settings s) {
        return c.validHard().subList(0, Math.min(c.validHard().size(), s.base().loop().evalSamples()));
    }

    /** One RL arm from the seed's SFT policy; null when stopped. */
    private static RunResult rl(Kernels kernels, Settings s, Corpus c, Regime regime, Arm arm, long seed, Path sftModel,
                                List<CurvePoint> sftPoint, Path runDir, Consumer<String> log, BooleanSupplier stop) throws IOException {
        Path resultFile = runDir.resolve(RESULT_FILE);
        if (Files.exists(resultFile)) return read(resultFile);
        Map<String, Object> changes = new LinkedHashMap<>();
        changes.put("seed", seed);
        changes.put("score_band", regime.banded() ? s.scoreBand() : 0.0);
        GrpoConfig cfg = arm.config().with(changes);
        log.accept(String.format(Locale.ROOT, "%s, seed %d, %s: up to %d steps, budget %d completions", regime.key(), seed, arm.name(),
                cfg.loop().steps(), cfg.rollout().maxCompletions()));
        long t0 = System.nanoTime();
        // validation = the hard validation utterances: each evaluation is a point of the hard-subset curve
        GrpoRun.Outcome o = GrpoRun.run(kernels, GrpoRun.Job.of(sftModel, c.train(), c.validHard(), cfg),
                Run.in(runDir).resuming(true).log(log).stopWhen(stop).fingerprint(Map.of("experiment_arm", arm.name())));
        if (o.training().stoppedBySignal() || stop.getAsBoolean()) return null;
        double trainSeconds = (System.nanoTime() - t0) / 1e9;
        List<StepPoint> history = o.training().history().stream().map(StepPoint::of).toList();
        List<CurvePoint> curve = new ArrayList<>(sftPoint);
        curve.addAll(curve(runDir, history));
        // the policy at the end of the budget, not the best checkpoint: the methods are compared as run
        // (with LoRA the checkpoint is an adapter on the SFT model)
        Path last = new Checkpoints(runDir).latest();
        boolean lora = PeftAdapter.isAdapter(last);
        return evaluated(kernels, s, c, new RunResult(regime.key(), arm.name(), seed, o.training().steps(), o.completionsTotal(),
                trainSeconds, 0, List.of(), history, curve), lora ? sftModel : last, lora ? last : null, resultFile, log);
    }

    /** The run with its greedy test evaluation (every domain's whole test split), saved to resultFile; adapter: a LoRA adapter on modelDir, or null. */
    private static RunResult evaluated(Kernels kernels, Settings s, Corpus c, RunResult r, Path modelDir, Path adapter, Path resultFile,
                                       Consumer<String> log) throws IOException {
        long t0 = System.nanoTime();
        List<Item> items = new ArrayList<>();
        try (Model m = ModelDir.load(kernels, modelDir, 0, msg -> {}); Tokenizer tok = Tokenizer.load(c.tokenizerJson())) {
            if (adapter != null) PeftAdapter.load(m, adapter);
            Evaluation.Options greedy = new Evaluation.Options(s.evalTokens(), 0f, 0, 1f, Evaluation.Options.greedy().batchSize(), 0,
                    Evaluation.Drop.NONE);
            for (Evaluation.Row row : Evaluation.generate(m, tok, c.test(), greedy, null)) items.add(Item.of(row));
        }
        RunResult done = new RunResult(r.regime(), r.arm(), r.seed(), r.steps(), r.completions(), r.trainSeconds(),
                (System.nanoTime() - t0) / 1e9, items, r.history(), r.curve());
        AtomicFiles.writeString(resultFile, JSON.writeValueAsString(done));
        Metrics.Scores in = Metrics.scores(done.predictions(i -> i.domain().equals(s.trainDomain())));
        log.accept(String.format(Locale.ROOT, "%s, seed %d: in-domain MAE %.3f, disc accuracy %.3f (%d test utterances, %.0f s)",
                r.arm(), r.seed(), in.mae(), in.discAccuracy(), items.size(), done.evalSeconds()));
        return done;
    }

    private static RunResult read(Path file) throws IOException {
        try {
            return JSON.readValue(file.toFile(), RunResult.class);
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            throw new BadInputException(file.toString(), "not a readable experiment result (" + e.getOriginalMessage()
                    + "); delete it to run that arm again");
        }
    }

    /** The hard-subset curve of an RL run: its evaluations (metrics.jsonl) placed at the completions generated by then. */
    private static List<CurvePoint> curve(Path runDir, List<StepPoint> history) throws IOException {
        Map<Integer, Long> completionsAt = new LinkedHashMap<>();
        for (StepPoint p : history) completionsAt.put(p.step(), p.completions());
        List<CurvePoint> out = new ArrayList<>();
        for (String line : Files.readAllLines(runDir.resolve("metrics.jsonl"))) {
            JsonNode n = JSON.readTree(line);
            if (!n.has("eval")) continue;
            Long at = completionsAt.get(n.get("step").asInt());
            if (at != null) out.add(new CurvePoint(at, n.get("eval").path("valid_disc_acc").asDouble(Double.NaN),
                    n.get("eval").path("valid_mae").asDouble(Double.NaN)));
        }
        return out;
    }

    static String slug(String name) {
        return name.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9]+", "-").replaceAll("(^-|-$)", "");
    }
}
