package io.hintgrpo.trainer.demo;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.trainer.data.AtomicFiles;
import io.hintgrpo.trainer.data.Jsonl;
import io.hintgrpo.trainer.data.SynthCorpus;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.eval.EvalReport;
import io.hintgrpo.trainer.eval.Evaluation;
import io.hintgrpo.trainer.eval.Metrics;
import io.hintgrpo.trainer.eval.Prediction;
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
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * The main job on the embedded default: make the synthetic corpus, train the embedded default
 * model by cold-start SFT on one domain, then Hint-GRPO from it, evaluate both on the test split of every domain (in-domain
 * and cross-domain) with both modalities and with both dropped, beside the training-mean
 * predictor, and write report.json + report.md.
 */
public final class Demo {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Everything the demo does is decided here; the defaults fit the 10-minute CPU budget on 2 cores. */
    public record Settings(long seed, int corpusSize, String trainDomain, SftConfig sft, GrpoConfig grpo, int testLimit) {
        public static Settings defaults() {
            return new Settings(1234, 2000, "reviews", SftConfig.defaults(), demoGrpo(), 100);
        }
    }

    /** Hint-GRPO as the demo runs it: 15 steps of 8 prompts × 8 rollouts (about 2 minutes on 2 cores), evaluated and saved at the end. */
    public static GrpoConfig demoGrpo() {
        return GrpoConfig.defaults().with(Map.of("steps", 15, "eval_every", 15, "checkpoint_every", 15));
    }

    public record Result(Path outDir, EvalReport inDomain, Map<String, EvalReport> byCondition, Path reportMarkdown) {}

    private Demo() {}

    /** The corpus folder and the SFT run of a demo or experiment folder. */
    public record Prepared(Path corpus, Path tokenizerJson, ModelConfig config, List<Utterance> train, List<Utterance> valid,
                           SftRun.Outcome sft) {}

    /**
     * Makes (or reuses) the embedded corpus in out/corpus and runs (or resumes) the cold-start SFT
     * of the embedded default model on the training domain in out/sft.
     */
    public static Prepared prepare(Kernels kernels, Path out, long seed, int corpusSize, String trainDomain, SftConfig sftConfig,
                                   Consumer<String> log, BooleanSupplier stop) throws IOException {
        Files.createDirectories(out);
        Path corpus = out.resolve("corpus");
        if (!Files.exists(corpus.resolve(SynthCorpus.MANIFEST_FILE))) {
            log.accept("making the embedded corpus in " + corpus);
            SynthCorpus.write(corpus, SynthCorpus.Options.defaults(seed, corpusSize));
        } else {
            log.accept("reusing the corpus in " + corpus);
        }
        Path tokenizerJson = corpus.resolve(SynthCorpus.TOKENIZER_FILE);
        ModelConfig cfg;
        try (Tokenizer tok = Tokenizer.load(tokenizerJson)) {
            cfg = SynthCorpus.modelConfig(tok);
        }
        Jsonl.Expect expect = Jsonl.Expect.of(cfg);
        List<Utterance> train = Jsonl.read(SynthCorpus.splitFile(corpus, trainDomain, "train"), expect);
        List<Utterance> valid = Jsonl.read(SynthCorpus.splitFile(corpus, trainDomain, "valid"), expect);
        Model init = new Model(kernels, cfg);
        init.initialize(seed);
        log.accept(String.format(Locale.ROOT, "SFT of the embedded default model (%,d parameters) on %s: %d steps",
                init.layout.count(), trainDomain, sftConfig.loop().steps()));
        Run run = Run.in(out.resolve("sft")).resuming(true).log(log).stopWhen(stop)
                .fingerprint(Map.of("corpus_seed", Long.toString(seed), "train_domain", trainDomain));
        SftRun.Outcome sft = SftRun.run(kernels, init, tokenizerJson, train, valid, sftConfig, run);
        return new Prepared(corpus, tokenizerJson, cfg, train, valid, sft);
    }

    /** The demo in out, which one process at a time may use ({@link RunLock}). */
    public static Result run(Kernels kernels, Path out, Settings s, Consumer<String> log, BooleanSupplier stop) throws IOException {
        try (RunLock lock = RunLock.acquire(out)) {
            return runLocked(kernels, out, s, log, stop);
        }
    }

    private static Result runLocked(Kernels kernels, Path out, Settings s, Consumer<String> log, BooleanSupplier stop) throws IOException {
        Prepared p = prepare(kernels, out, s.seed(), s.corpusSize(), s.trainDomain(), s.sft(), log, stop);
        SftRun.Outcome sft = p.sft();
        if (sft.training().stoppedBySignal()) return new Result(out, null, Map.of(), null);
        Path corpus = p.corpus(), tokenizerJson = p.tokenizerJson();
        List<Utterance> train = p.train();
        Jsonl.Expect expect = Jsonl.Expect.of(p.config());

        Map<String, EvalReport> reports = new LinkedHashMap<>();
        List<Utterance> test = new ArrayList<>();
        for (String domain : SynthCorpus.domains()) {
            List<Utterance> d = Jsonl.read(SynthCorpus.splitFile(corpus, domain, "test"), expect);
            test.addAll(d.subList(0, Math.min(d.size(), s.testLimit())));
        }
        float trainMean = 0;
        for (Utterance u : train) trainMean += u.label() / train.size();
        List<Prediction> baseline = new ArrayList<>();
        for (Utterance u : test) baseline.add(Prediction.ofScore(u.domain(), u.label(), trainMean, u.subset()));
        reports.put("training-mean predictor", Metrics.evaluate(baseline));
        evaluate(kernels, sft.modelDir(), tokenizerJson, test, "SFT", s, reports, log);

        // Hint-GRPO from the SFT model, prompts from the same training domain
        GrpoRun.Outcome grpo = null;
        if (s.grpo() != null) {
            grpo = GrpoRun.run(kernels, GrpoRun.Job.of(sft.modelDir(), train, p.valid(), s.grpo()),
                    Run.in(out.resolve("grpo")).resuming(true).log(log).stopWhen(stop).fingerprint(Map.of("corpus_seed", Long.toString(s.seed()))));
            if (grpo.training().stoppedBySignal()) return new Result(out, null, Map.of(), null);
            evaluate(kernels, grpo.modelDir(), tokenizerJson, test, "SFT + " + s.grpo().methodName(), s, reports, log);
        }
        EvalReport main = reports.get((grpo == null ? "SFT" : "SFT + " + s.grpo().methodName()) + ", text + audio + vision");
        Path md = writeReport(out, s, sft, grpo, reports);
        return new Result(out, main, reports, md);
    }

    /** Greedy evaluation of a model with all modalities and with audio and vision dropped. */
    private static void evaluate(Kernels kernels, Path modelDir, Path tokenizerJson, List<Utterance> test, String stage, Settings s,
                                 Map<String, EvalReport> reports, Consumer<String> log) {
        try (Model model = ModelDir.load(kernels, modelDir, s.seed(), msg -> {});
             Tokenizer tok = Tokenizer.load(tokenizerJson)) {
            for (Evaluation.Drop drop : new Evaluation.Drop[]{Evaluation.Drop.NONE, Evaluation.Drop.BOTH}) {
                String name = stage + (drop == Evaluation.Drop.NONE ? ", text + audio + vision" : ", audio and vision dropped");
                log.accept("evaluating: " + name);
                Evaluation.Outcome o = Evaluation.run(model, tok, test, Evaluation.Options.greedy().withDrop(drop), log);
                reports.put(name, o.report());
            }
        }
    }

    private static Path writeReport(Path out, Settings s, SftRun.Outcome sft, GrpoRun.Outcome grpo, Map<String, EvalReport> reports)
            throws IOException {
        ObjectNode json = JSON.createObjectNode();
        json.put("train_domain", s.trainDomain());
        json.put("seed", s.seed());
        json.put("sft_steps", sft.training().steps());
        json.put("sft_examples", sft.examples());
        json.put("final_train_loss", sft.training().history().get(sft.training().history().size() - 1).loss());
        if (grpo != null) {
            json.put("grpo_method", s.grpo().methodName());
            json.put("grpo_steps", grpo.training().steps());
            json.put("grpo_completions", grpo.completionsTotal());
            List<GrpoTrainer.StepMetrics> h = grpo.training().history();
            if (!h.isEmpty()) {
                json.put("grpo_first_reward", h.get(0).rewardBeforeHint());
                json.put("grpo_last_reward", h.get(h.size() - 1).rewardBeforeHint());
                json.put("grpo_hinted_groups", h.stream().mapToInt(GrpoTrainer.StepMetrics::hintedGroups).sum());
            }
        }
        ObjectNode conditions = json.putObject("conditions");
        for (Map.Entry<String, EvalReport> e : reports.entrySet()) conditions.set(e.getKey(), JSON.readTree(e.getValue().toJson()));
        AtomicFiles.writeString(out.resolve("report.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(json));

        StringBuilder md = new StringBuilder();
        md.append("# hintgrpo demo\n\n");
        md.append(String.format(Locale.ROOT, "Cold-start SFT on the `%s` domain of the embedded corpus (seed %d), %d steps on %d teacher chains; "
                        + "evaluated on the test split of every domain (`%s` is in-domain, the rest cross-domain). Loss curve: `sft/loss.png`.%n%n",
                s.trainDomain(), s.seed(), sft.training().steps(), sft.examples(), s.trainDomain()));
        if (grpo != null && !grpo.training().history().isEmpty()) {
            List<GrpoTrainer.StepMetrics> h = grpo.training().history();
            md.append(String.format(Locale.ROOT, "Then %s from the SFT model: %d steps, %d completions generated, %d hard groups hinted; "
                            + "mean reward of the free rollouts %.3f at the first step, %.3f at the last. Curves: `grpo/grpo.png`.%n%n",
                    s.grpo().methodName(), grpo.training().steps(), grpo.completionsTotal(),
                    h.stream().mapToInt(GrpoTrainer.StepMetrics::hintedGroups).sum(), h.get(0).rewardBeforeHint(),
                    h.get(h.size() - 1).rewardBeforeHint()));
        }
        md.append("| condition | domain | n | MAE | Corr | Acc-2 (has-0) | F1 (has-0) | Acc-2 (non-0) | Acc-7 | format valid | disc acc | DC consistency |\n");
        md.append("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (Map.Entry<String, EvalReport> e : reports.entrySet()) {
            row(md, e.getKey(), "all", e.getValue().overall());
            for (Map.Entry<String, Metrics.Scores> d : e.getValue().byDomain().entrySet()) row(md, e.getKey(), d.getKey(), d.getValue());
        }
        Path file = out.resolve("report.md");
        AtomicFiles.writeString(file, md.toString());
        return file;
    }

    private static void row(StringBuilder md, String condition, String domain, Metrics.Scores sc) {
        md.append(String.format(Locale.ROOT, "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |%n", condition, domain, sc.n(),
                f(sc.mae()), f(sc.corr()), f(sc.acc2Has0()), f(sc.f1Has0()), f(sc.acc2Non0()), f(sc.acc7()),
                f(sc.formatValidRate()), f(sc.discAccuracy()), f(sc.dcConsistency())));
    }

    private static String f(double v) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, "%.3f", v) : "n/a";
    }
}
