package io.hintgrpo.trainer.sft;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.Sequence;
import io.hintgrpo.trainer.checkpoint.Checkpoints;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.eval.Evaluation;
import io.hintgrpo.trainer.format.Examples;
import io.hintgrpo.trainer.loop.Evaluator;
import io.hintgrpo.trainer.loop.Run;
import io.hintgrpo.trainer.loop.RunLock;
import io.hintgrpo.trainer.loop.TrainLoop;
import io.hintgrpo.trainer.tokenizer.Tokenizer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Cold-start SFT on teacher chains, the Java API behind {@code hintgrpo sft}: utterances with a
 * (filtered) teacher chain become training sequences; validation reports the token-mean loss on
 * the valid chains and, on the first eval_samples valid utterances, greedy-generation metrics
 * (valid_mae ranks checkpoints). The run folder ends with {@code model/}: the best checkpoint as
 * a plain model directory; with LoRA (lora_rank ≥ 1) that is base + adapter merged, and
 * {@code adapter/} holds the adapter alone in PEFT's format.
 */
public final class SftRun {
    private SftRun() {}

    /** adapterDir: the best adapter in PEFT's format, null without LoRA. */
    public record Outcome(TrainLoop.Result<SftTrainer.StepMetrics> training, Path modelDir, int examples, int withoutChain,
                          Path adapterDir) {}

    /**
     * @param model the starting model. Without LoRA it trains in place, and when resuming only its
     *              {@link Model#precision()} and {@link Model#recompute()} count (the checkpoint's weights are loaded and take
     *              that precision). With LoRA it is the frozen base the adapter trains on (resumed
     *              or not), and it ends with the best adapter attached (model/ holds the two merged).
     */
    public static Outcome run(Kernels kernels, Model model, Path tokenizerJson, List<Utterance> train, List<Utterance> valid,
                              SftConfig cfg, Run run) {
        Run full = run.fingerprint(SftTrainer.fingerprint(cfg));
        try (RunLock lock = RunLock.acquire(run.dir()); Tokenizer tok = Tokenizer.load(tokenizerJson)) {
            TrainLoop.Start start = TrainLoop.start(kernels, full, "sft", cfg, () -> model);
            Model m = start.model();
            m.setPrecision(model.precision()); // checkpoints hold fp32 master weights only
            m.setRecompute(model.recompute());
            List<Sequence> trainSeqs = new ArrayList<>();
            int withoutChain = 0;
            for (Utterance u : train) {
                if (u.cot() == null) withoutChain++;
                else trainSeqs.add(Examples.sft(u, tok, m.config).sequence());
            }
            if (trainSeqs.isEmpty()) throw new BadInputException("training data", "no utterance has a teacher chain (cot) to train on");
            if (withoutChain > 0) run.log().accept(withoutChain + " training utterances have no teacher chain (filtered) and are not used");
            List<Sequence> validSeqs = new ArrayList<>();
            for (Utterance u : valid) if (u.cot() != null) validSeqs.add(Examples.sft(u, tok, m.config).sequence());
            List<Utterance> evalSet = valid.subList(0, Math.min(valid.size(), cfg.loop().evalSamples()));
            Evaluator evaluator = valid.isEmpty() ? null : current -> {
                Map<String, Double> out = new LinkedHashMap<>();
                if (!validSeqs.isEmpty()) out.put("valid_loss", tokenMeanLoss(current, validSeqs, cfg.batchSize()));
                if (!evalSet.isEmpty()) out.putAll(Evaluation.validationMetrics(current, tok, evalSet));
                return out;
            };
            TrainLoop.Result<SftTrainer.StepMetrics> result = SftTrainer.train(cfg, full, tokenizerJson, m, start.optimizer(),
                    start.state(), trainSeqs, evaluator);
            // the command line's --model, when the run came from one, is the base an adapter names
            Object given = run.options().get("model");
            String base = given == null ? null : Path.of(given.toString()).toAbsolutePath().normalize().toString();
            Checkpoints.Exported out = new Checkpoints(run.dir()).exportBest(run.dir().resolve("model"), run.dir().resolve("adapter"), m, base);
            return new Outcome(result, out == null ? null : out.model(), trainSeqs.size(), withoutChain, out == null ? null : out.adapter());
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
