package io.hintgrpo.trainer.rl;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.Precision;
import io.hintgrpo.trainer.checkpoint.Checkpoints;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.eval.Evaluation;
import io.hintgrpo.trainer.loop.Evaluator;
import io.hintgrpo.trainer.loop.Run;
import io.hintgrpo.trainer.loop.RunLock;
import io.hintgrpo.trainer.loop.TrainLoop;
import io.hintgrpo.trainer.tokenizer.Tokenizer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * GRPO / Hint-GRPO from a model directory (typically SFT's {@code model/}), the Java API behind
 * {@code hintgrpo grpo}. The same directory is the frozen reference of the KL term (not loaded at
 * all when beta = 0). With LoRA (lora_rank ≥ 1) the policy is that model with fresh adapters, and
 * the reference is the same model with its adapters off: no second model. Validation: greedy
 * generation on the first eval_samples valid utterances (valid_mae ranks checkpoints). The run
 * folder ends with {@code model/}, the best checkpoint as a plain model directory (with LoRA,
 * base + adapter merged), with LoRA {@code adapter/} (the adapter alone, PEFT's format), next to
 * metrics.jsonl and grpo.png.
 */
public final class GrpoRun {
    private GrpoRun() {}

    /**
     * What a GRPO run trains: the starting model directory (also the KL reference), the prompts and
     * validation utterances, the settings, the reward terms, the GEMM precision of the policy and
     * of the reference (the same for both, so the KL term is exactly 0 while the weights are equal;
     * checkpoints hold fp32 master weights), whether the policy's update recomputes activations
     * ({@link io.hintgrpo.engine.model.Model#setRecompute}: less memory, the same numbers), and who
     * hears each step's metrics (may be null).
     */
    public record Job(Path model, List<Utterance> train, List<Utterance> valid, GrpoConfig config, Rewards rewards,
                      Precision precision, boolean recompute, Consumer<GrpoTrainer.StepMetrics> onStep) {
        /** The built-in rewards weighted by the config, fp32, nobody listening. */
        public static Job of(Path model, List<Utterance> train, List<Utterance> valid, GrpoConfig config) {
            return new Job(model, train, valid, config, Rewards.of(config.rewards()), Precision.FP32, false, null);
        }

        public Job rewards(Rewards rewards) {
            return new Job(model, train, valid, config, rewards, precision, recompute, onStep);
        }

        public Job precision(Precision precision) {
            return new Job(model, train, valid, config, rewards, precision, recompute, onStep);
        }

        public Job recompute(boolean recompute) {
            return new Job(model, train, valid, config, rewards, precision, recompute, onStep);
        }

        public Job onStep(Consumer<GrpoTrainer.StepMetrics> onStep) {
            return new Job(model, train, valid, config, rewards, precision, recompute, onStep);
        }
    }

    /** adapterDir: the best adapter in PEFT's format, null without LoRA. */
    public record Outcome(TrainLoop.Result<GrpoTrainer.StepMetrics> training, Path modelDir, Path adapterDir) {
        /** Completions generated over the whole run (hint re-rolls and refills included). */
        public long completionsTotal() {
            List<GrpoTrainer.StepMetrics> h = training.history();
            return h.isEmpty() ? 0 : h.get(h.size() - 1).completionsTotal();
        }
    }

    public static Outcome run(Kernels kernels, Job job, Run run) {
        GrpoConfig cfg = job.config();
        Path tokenizerJson = job.model().resolve(Checkpoints.TOKENIZER);
        if (!Files.isRegularFile(tokenizerJson)) throw new BadInputException(job.model().toString(), "no tokenizer.json in the model directory");
        if (job.train().isEmpty()) throw new BadInputException("training data", "no utterances to draw prompts from");
        Run full = run.fingerprint(GrpoTrainer.fingerprint(cfg))
                .fingerprint(Map.of("model", Checkpoints.contentHash(ModelDir.files(job.model()))));
        Model policy = null, reference = null;
        TrainLoop.Start start = null;
        try (RunLock lock = RunLock.acquire(run.dir()); Tokenizer tok = Tokenizer.load(tokenizerJson)) {
            start = TrainLoop.start(kernels, full, "grpo", cfg,
                    () -> ModelDir.load(kernels, job.model(), cfg.loop().seed(), run.log(), cfg.lora().frozenBf16Base(job.precision())));
            policy = start.model();
            // β = 0 has no KL term: the reference is never loaded or run; with LoRA it is the policy's own frozen base
            if (cfg.update().beta() > 0)
                reference = policy.lora() != null ? policy : ModelDir.load(kernels, job.model(), cfg.loop().seed(), msg -> {});
            policy.setPrecision(job.precision());
            policy.setRecompute(job.recompute());
            if (reference != null) reference.setPrecision(job.precision());
            List<Utterance> evalSet = job.valid().subList(0, Math.min(job.valid().size(), cfg.loop().evalSamples()));
            Evaluator evaluator = evalSet.isEmpty() ? null : m -> Evaluation.validationMetrics(m, tok, evalSet);
            run.log().accept(String.format("%s from %s: %d prompts, reward terms %s", cfg, job.model(), job.train().size(),
                    job.rewards().names()));
            GrpoTrainer steps = new GrpoTrainer(cfg, job.rewards(), policy, start.optimizer(), reference, tok, job.train(),
                    start.state().epoch(), start.state().position());
            TrainLoop.Result<GrpoTrainer.StepMetrics> result = new TrainLoop<>(GrpoTrainer.StepMetrics.class, cfg.loop(), full,
                    tokenizerJson, GrpoTrainer.PLOT_FILE).onStep(job.onStep()).run(policy, start.optimizer(), start.state(), steps, evaluator);
            Checkpoints.Exported out = new Checkpoints(run.dir()).exportBest(run.dir().resolve("model"), run.dir().resolve("adapter"),
                    policy, job.model().toAbsolutePath().normalize().toString());
            return new Outcome(result, out == null ? null : out.model(), out == null ? null : out.adapter());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            if (start != null) start.optimizer().close();
            if (policy != null) policy.close();
            if (reference != null && reference != policy) reference.close();
        }
    }
}
