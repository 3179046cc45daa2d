package io.hintgrpo.tests;

// BEGIN docs/java-api.md
import io.hintgrpo.engine.Backends;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.trainer.data.Jsonl;
import io.hintgrpo.trainer.data.SynthCorpus;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.eval.EvalReport;
import io.hintgrpo.trainer.eval.Evaluation;
import io.hintgrpo.trainer.eval.Metrics;
import io.hintgrpo.trainer.loop.Run;
import io.hintgrpo.trainer.rl.GrpoConfig;
import io.hintgrpo.trainer.rl.GrpoRun;
import io.hintgrpo.trainer.rl.Reward;
import io.hintgrpo.trainer.rl.Rewards;
import io.hintgrpo.trainer.sft.SftConfig;
import io.hintgrpo.trainer.sft.SftRun;
import io.hintgrpo.trainer.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** Synthetic corpus → model → cold-start SFT → Hint-GRPO → generation and MMSA metrics, all through the Java API. */
public final class JavaApiExample {
    public static EvalReport run(Path workDir) throws IOException {
        // 1. The corpus: two domains of multimodal utterances with teacher DC chains, and its tokenizer.
        Path corpus = workDir.resolve("corpus");
        SynthCorpus.write(corpus, SynthCorpus.Options.defaults(7, 200));
        Path tokenizerJson = corpus.resolve(SynthCorpus.TOKENIZER_FILE);

        // 2. A backend ("auto" picks CUDA where it works) and the embedded default model shape for this tokenizer.
        try (Kernels kernels = Backends.open("cpu")) {
            ModelConfig config;
            try (Tokenizer tok = Tokenizer.load(tokenizerJson)) {
                config = SynthCorpus.modelConfig(tok);
            }
            Model model = new Model(kernels, config);
            model.initialize(1);

            // 3. Train on one domain; feature widths are checked against the model's projectors.
            Jsonl.Expect expect = Jsonl.Expect.of(config);
            String domain = SynthCorpus.domains().get(0);
            List<Utterance> train = Jsonl.read(SynthCorpus.splitFile(corpus, domain, "train"), expect);
            List<Utterance> valid = Jsonl.read(SynthCorpus.splitFile(corpus, domain, "valid"), expect);
            List<Utterance> test = Jsonl.read(SynthCorpus.splitFile(corpus, domain, "test"), expect);

            // 4. Cold-start SFT on the teacher chains. Settings are named as in config files (docs/config.md);
            //    the rest keep their defaults. Run says where the run lives and where its messages go.
            SftConfig sft = SftConfig.defaults().with(Map.of("steps", 45, "lr", 4e-3, "warmup_steps", 4, "eval_every", 45,
                    "checkpoint_every", 45, "keep_last", 1, "eval_samples", 0));
            SftRun.Outcome trained = SftRun.run(kernels, model, tokenizerJson, train, valid, sft,
                    Run.in(workDir.resolve("sft")).log(System.out::println));
            System.out.printf("SFT: %d steps on %d chains, final loss %.3f%n", trained.training().steps(),
                    trained.examples(), trained.training().history().get(trained.training().steps() - 1).loss());

            // 5. Hint-GRPO from the SFT model (also the KL reference). Rewards are pluggable: the built-ins plus
            //    our own term that prefers short calibrations.
            GrpoConfig grpo = GrpoConfig.defaults().with(Map.of("steps", 3, "prompts_per_step", 4, "group_size", 4,
                    "hint", "replace", "eval_every", 3, "eval_samples", 8));
            Reward brief = new Reward() {
                public String name() { return "brief"; }
                public double score(Utterance u, String response, io.hintgrpo.trainer.format.ParsedResponse parsed) {
                    return parsed.calib() == null ? 0 : Math.max(0, 1 - parsed.calib().length() / 200.0);
                }
            };
            Rewards rewards = new Rewards(List.of(new Rewards.Term(Rewards.format(), 0.2), new Rewards.Term(Rewards.polarity(), 0.4),
                    new Rewards.Term(Rewards.score(2.0), 1.0), new Rewards.Term(brief, 0.1)));
            GrpoRun.Job job = GrpoRun.Job.of(trained.modelDir(), train, valid, grpo).rewards(rewards)
                    .onStep(step -> System.out.printf("step %d: reward %.3f %s, hard groups %.2f, hinted %d, KL %.4f%n", step.step(),
                            step.reward(), step.rewardComponents(), step.hardGroupRate(), step.hintedGroups(), step.kl()));
            GrpoRun.Outcome rl = GrpoRun.run(kernels, job, Run.in(workDir.resolve("grpo")).log(System.out::println));

            // 6. Load the trained policy (a plain model directory), generate greedily and score.
            try (Model best = ModelDir.load(kernels, rl.modelDir(), 0, msg -> { });
                 Tokenizer tok = Tokenizer.load(rl.modelDir())) {
                Evaluation.Outcome outcome = Evaluation.run(best, tok, test, Evaluation.Options.greedy(), null);
                Evaluation.Row first = outcome.rows().get(0);
                System.out.println(first.utterance().text() + "\n  → " + first.response());

                // 7. Metrics are objects: overall and per domain.
                EvalReport report = outcome.report();
                Metrics.Scores s = report.overall();
                System.out.printf("MAE %.3f  Corr %.3f  Acc-7 %.3f  format valid %.2f  DC consistency %.2f%n",
                        s.mae(), s.corr(), s.acc7(), s.formatValidRate(), s.dcConsistency());
                System.out.println(report.toMarkdown());
                return report;
            }
        }
    }

    public static void main(String[] args) throws IOException {
        run(Path.of(args.length > 0 ? args[0] : "java-api-example"));
    }
}
// END docs/java-api.md
