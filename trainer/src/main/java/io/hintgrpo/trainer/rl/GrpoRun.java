package io.hintgrpo.trainer.rl;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.model.AdamW;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.Precision;
import io.hintgrpo.trainer.checkpoint.Checkpoints;
import io.hintgrpo.trainer.config.Configs;
import io.hintgrpo.trainer.data.AtomicFiles;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.eval.Evaluation;
import io.hintgrpo.trainer.sft.SftTrainer;
import io.hintgrpo.trainer.tokenizer.Tokenizer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * GRPO / Hint-GRPO from a model directory (typically SFT's {@code model/}), the Java API behind
 * {@code hintgrpo grpo}. The same directory is the frozen reference of the KL term (not loaded at
 * all when beta = 0). Validation: greedy generation on the first evalSamples valid utterances
 * (valid_mae ranks checkpoints). The run folder ends with {@code model/}, the best checkpoint as a
 * plain model directory, next to metrics.jsonl, grpo.png and grpo_config.json.
 */
public final class GrpoRun {
    private GrpoRun() {}

    public record Outcome(GrpoTrainer.Result training, Path modelDir) {}

    /**
     * @param rewards  the reward terms (null: the built-ins weighted by cfg)
     * @param resume   continue from runDir's latest checkpoint when there is one
     * @param onStep   called with each step's metrics (may be null)
     */
    public static Outcome run(Kernels kernels, Path modelDir, List<Utterance> train, List<Utterance> valid, GrpoConfig cfg,
                              Rewards rewards, Path runDir, boolean resume, Map<String, String> fingerprint, Consumer<String> log,
                              BooleanSupplier stopRequested, Consumer<GrpoTrainer.StepMetrics> onStep) {
        return run(kernels, modelDir, train, valid, cfg, rewards, runDir, resume, fingerprint, log, stopRequested, onStep,
                Precision.FP32);
    }

    /**
     * As above, with the GEMM precision of the policy and of the reference (the same for both, so
     * the KL term is exactly 0 while the weights are equal); checkpoints hold fp32 master weights.
     */
    public static Outcome run(Kernels kernels, Path modelDir, List<Utterance> train, List<Utterance> valid, GrpoConfig cfg,
                              Rewards rewards, Path runDir, boolean resume, Map<String, String> fingerprint, Consumer<String> log,
                              BooleanSupplier stopRequested, Consumer<GrpoTrainer.StepMetrics> onStep, Precision precision) {
        Path tokenizerJson = modelDir.resolve(Checkpoints.TOKENIZER);
        if (!Files.isRegularFile(tokenizerJson)) throw new BadInputException(modelDir.toString(), "no tokenizer.json in the model directory");
        if (train.isEmpty()) throw new BadInputException("training data", "no utterances to draw prompts from");
        Rewards r = rewards == null ? Rewards.of(cfg) : rewards;
        Map<String, String> fp = new LinkedHashMap<>(fingerprint);
        fp.put("model", modelDir.toAbsolutePath().normalize().toString());
        GrpoTrainer trainer = new GrpoTrainer(cfg, r, runDir, tokenizerJson, fp, log, stopRequested);
        if (onStep != null) trainer.onStep(onStep);
        Checkpoints checkpoints = new Checkpoints(runDir);
        Path latest = latest(checkpoints);
        if (!resume && latest != null)
            throw new BadInputException(runDir.toString(), "already holds checkpoints; pass --resume to continue it or choose a new --out");
        Model policy = null, reference = null;
        AdamW opt = null;
        try (Tokenizer tok = Tokenizer.load(tokenizerJson)) {
            Checkpoints.State start;
            if (resume && latest != null) {
                Checkpoints.Loaded ck = Checkpoints.load(latest, kernels, trainer.fingerprint(), cfg.lr(), cfg.beta1(), cfg.beta2(),
                        cfg.eps(), cfg.weightDecay(), log);
                log.accept("resuming from " + latest + " at step " + ck.state().step());
                policy = ck.model();
                opt = ck.optimizer();
                start = ck.state();
            } else {
                policy = ModelDir.load(kernels, modelDir, cfg.seed(), log);
                opt = GrpoTrainer.optimizer(policy, cfg);
                start = new Checkpoints.State(0, 0, 0, 0, trainer.fingerprint());
            }
            // β = 0 has no KL term: the reference is never loaded or run
            if (cfg.beta() > 0) reference = ModelDir.load(kernels, modelDir, cfg.seed(), msg -> {});
            policy.setPrecision(precision);
            if (reference != null) reference.setPrecision(precision);
            Files.createDirectories(runDir);
            AtomicFiles.writeString(runDir.resolve("grpo_config.json"), Configs.toJson(cfg));
            List<Utterance> evalSet = valid.subList(0, Math.min(valid.size(), cfg.evalSamples()));
            SftTrainer.Evaluator evaluator = evalSet.isEmpty() ? null : m -> Evaluation.validationMetrics(m, tok, evalSet);
            log.accept(String.format("%s from %s: %d prompts, reward terms %s", cfg, modelDir, train.size(), r.names()));
            GrpoTrainer.Result result = trainer.train(policy, opt, reference, tok, start, train, evaluator);
            return new Outcome(result, checkpoints.exportBest(runDir.resolve("model")));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            if (opt != null) opt.close();
            if (policy != null) policy.close();
            if (reference != null) reference.close();
        }
    }

    private static Path latest(Checkpoints checkpoints) {
        try {
            return checkpoints.latest();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
