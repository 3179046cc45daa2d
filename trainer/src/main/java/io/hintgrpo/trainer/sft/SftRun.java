package io.hintgrpo.trainer.sft;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.Sequence;
import io.hintgrpo.trainer.checkpoint.Checkpoints;
import io.hintgrpo.trainer.data.AtomicFiles;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.eval.Evaluation;
import io.hintgrpo.trainer.format.Examples;
import io.hintgrpo.trainer.tokenizer.Tokenizer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * Cold-start SFT on teacher chains, the Java API behind {@code hintgrpo sft}: utterances with a
 * (filtered) teacher chain become training sequences; validation reports the token-mean loss on
 * the valid chains and, on the first evalSamples valid utterances, greedy-generation metrics
 * (valid_mae ranks checkpoints). The run folder ends with {@code model/}: the best checkpoint as
 * a plain model directory.
 */
public final class SftRun {
    private SftRun() {}

    public record Outcome(SftTrainer.Result training, Path modelDir, int examples, int withoutChain) {}

    /**
     * @param model      the starting model (ignored when resuming from a checkpoint in runDir, except for its
     *                   {@link Model#precision()}, which the resumed model takes too)
     * @param resume     continue from runDir's latest checkpoint when there is one
     */
    public static Outcome run(Kernels kernels, Model model, Path tokenizerJson, List<Utterance> train, List<Utterance> valid,
                              SftConfig cfg, int evalSamples, Path runDir, boolean resume, Map<String, String> fingerprint,
                              Consumer<String> log, BooleanSupplier stopRequested) {
        try (Tokenizer tok = Tokenizer.load(tokenizerJson)) {
            Checkpoints checkpoints = new Checkpoints(runDir);
            Path latest = resume ? latest(checkpoints) : null;
            if (!resume && latest(checkpoints) != null)
                throw new BadInputException(runDir.toString(), "already holds checkpoints; pass --resume to continue it or choose a new --out");
            SftTrainer trainer = new SftTrainer(cfg, runDir, tokenizerJson, fingerprint, log, stopRequested);
            Model m = model;
            io.hintgrpo.engine.model.AdamW opt;
            Checkpoints.State start;
            if (latest != null) {
                Checkpoints.Loaded ck = Checkpoints.load(latest, kernels, trainer.fingerprint(), cfg.lr(), cfg.beta1(), cfg.beta2(),
                        cfg.eps(), cfg.weightDecay(), log);
                log.accept("resuming from " + latest + " at step " + ck.state().step());
                m = ck.model();
                m.setPrecision(model.precision()); // checkpoints hold fp32 master weights only
                opt = ck.optimizer();
                start = ck.state();
            } else {
                opt = SftTrainer.optimizer(m, cfg);
                start = new Checkpoints.State(0, 0, 0, 0, trainer.fingerprint());
            }
            List<Sequence> trainSeqs = new ArrayList<>();
            int withoutChain = 0;
            for (Utterance u : train) {
                if (u.cot() == null) withoutChain++;
                else trainSeqs.add(Examples.sft(u, tok, m.config).sequence());
            }
            if (trainSeqs.isEmpty()) throw new BadInputException("training data", "no utterance has a teacher chain (cot) to train on");
            if (withoutChain > 0) log.accept(withoutChain + " training utterances have no teacher chain (filtered) and are not used");
            List<Sequence> validSeqs = new ArrayList<>();
            for (Utterance u : valid) if (u.cot() != null) validSeqs.add(Examples.sft(u, tok, m.config).sequence());
            List<Utterance> evalSet = valid.subList(0, Math.min(valid.size(), evalSamples));
            Files.createDirectories(runDir);
            AtomicFiles.writeString(runDir.resolve("sft_config.json"), io.hintgrpo.trainer.config.Configs.toJson(cfg));

            Model finalModel = m;
            SftTrainer.Evaluator evaluator = valid.isEmpty() ? null : current -> {
                Map<String, Double> out = new LinkedHashMap<>();
                if (!validSeqs.isEmpty()) out.put("valid_loss", tokenMeanLoss(current, validSeqs, cfg.batchSize()));
                if (!evalSet.isEmpty()) out.putAll(Evaluation.validationMetrics(current, tok, evalSet));
                return out;
            };
            SftTrainer.Result result = trainer.train(finalModel, opt, start, trainSeqs, evaluator);
            Path modelDir = checkpoints.exportBest(runDir.resolve("model"));
            return new Outcome(result, modelDir, trainSeqs.size(), withoutChain);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static Path latest(Checkpoints checkpoints) {
        try {
            return checkpoints.latest();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Token-mean negative log-likelihood of the response tokens. */
    public static double tokenMeanLoss(Model model, List<Sequence> seqs, int batchSize) {
        double loss = 0;
        long tokens = 0;
        for (int i = 0; i < seqs.size(); i += batchSize) {
            List<Sequence> chunk = seqs.subList(i, Math.min(seqs.size(), i + batchSize));
            loss += model.forward(Batch.pack(model.config, chunk), 1f).loss();
            for (Sequence s : chunk) tokens += SftTrainer.responseTokens(s);
        }
        return tokens == 0 ? Double.NaN : loss / tokens;
    }
}
