package io.hintgrpo.trainer.sft;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.model.AdamW;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.Sequence;
import io.hintgrpo.trainer.checkpoint.Checkpoints;
import io.hintgrpo.trainer.report.LinePlot;
import io.hintgrpo.trainer.report.RunLog;

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
 * Supervised fine-tuning: response tokens weigh 1/(response tokens of the step), everything else
 * 0; length-bucketed micro-batches, gradient accumulation, warmup + cosine, clipping, evaluation
 * and checkpoints every N steps, metrics.jsonl and loss.png in the run folder. Everything that
 * decides the loss sequence is a function of (config, data, checkpoint), so a resumed run repeats
 * an uninterrupted one bit for bit on cpu.
 */
public final class SftTrainer {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Validation metrics of the model now (e.g. "valid_loss", "valid_mae"); lower "valid_mae" is better. */
    public interface Evaluator {
        Map<String, Double> evaluate(Model model);
    }

    public record StepMetrics(int step, double loss, double gradNorm, float lr, int tokens, double tokensPerSecond, boolean skipped) {}

    public record Result(int steps, int skippedSteps, List<StepMetrics> history, Map<String, Double> lastEval,
                         Path lastCheckpoint, boolean stoppedBySignal) {}

    /** Raised when too many steps in a row had a non-finite loss or gradient. */
    public static final class DivergedException extends RuntimeException {
        public DivergedException(String message) {
            super(message);
        }
    }

    private final SftConfig cfg;
    private final Path runDir;
    private final Path tokenizerJson;
    private final Map<String, String> fingerprint;
    private final Consumer<String> log;
    private final BooleanSupplier stopRequested;

    public SftTrainer(SftConfig cfg, Path runDir, Path tokenizerJson, Map<String, String> fingerprint,
                      Consumer<String> log, BooleanSupplier stopRequested) {
        this.cfg = cfg;
        this.runDir = runDir;
        this.tokenizerJson = tokenizerJson;
        this.fingerprint = new LinkedHashMap<>(fingerprint);
        this.fingerprint.put("seed", Long.toString(cfg.seed()));
        this.fingerprint.put("batch_size", Integer.toString(cfg.batchSize()));
        this.fingerprint.put("grad_accum", Integer.toString(cfg.gradAccum()));
        this.log = log;
        this.stopRequested = stopRequested;
    }

    /** What a checkpoint of this run must agree with to be resumed. */
    public Map<String, String> fingerprint() {
        return fingerprint;
    }

    public static AdamW optimizer(Model model, SftConfig cfg) {
        return new AdamW(model, cfg.lr(), cfg.beta1(), cfg.beta2(), cfg.eps(), cfg.weightDecay());
    }

    /**
     * Trains from {@code start} (a fresh State(0, 0, 0, 0, …) or a loaded checkpoint's) to
     * cfg.steps. train holds sequences whose weights are 1 on response predictions, 0 elsewhere.
     */
    public Result train(Model model, AdamW opt, Checkpoints.State start, List<Sequence> train, Evaluator evaluator) {
        try {
            Files.createDirectories(runDir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Checkpoints checkpoints = new Checkpoints(runDir);
        RunLog runLog = new RunLog(runDir.resolve("metrics.jsonl"), cfg.steps());
        List<StepMetrics> history = new ArrayList<>();
        for (JsonNode n : runLog.restore(start.step()))
            if (n.has("loss"))
                history.add(new StepMetrics(n.get("step").asInt(), n.get("loss").asDouble(), n.path("grad_norm").asDouble(),
                        (float) n.path("lr").asDouble(), n.path("response_tokens").asInt(), n.path("tokens_per_s").asDouble(),
                        n.path("skipped").asBoolean()));
        int[] lengths = train.stream().mapToInt(Sequence::length).toArray();
        BatchPlan plan = new BatchPlan(lengths, cfg.batchSize(), cfg.seed());
        LrSchedule schedule = cfg.schedule();
        int epoch = start.epoch(), position = start.position(), skipped = start.skippedSteps(), badInARow = 0;
        List<int[]> batches = plan.epoch(epoch);
        Map<String, Double> lastEval = Map.of();
        Path lastCheckpoint = null;
        long runStart = System.nanoTime();
        int firstStep = start.step();
        boolean stopped = false;
        for (int step = start.step(); step < cfg.steps(); step++) {
            if (stopRequested.getAsBoolean()) {
                stopped = true;
                lastCheckpoint = checkpoints.write(model, opt, tokenizerJson,
                        new Checkpoints.State(step, epoch, position, skipped, fingerprint), Double.NaN, cfg.keepLast());
                log.accept("stopped at step " + step + "; checkpoint " + lastCheckpoint + " (resume with --resume)");
                break;
            }
            long t0 = System.nanoTime();
            List<int[]> micro = new ArrayList<>();
            for (int a = 0; a < cfg.gradAccum(); a++) {
                if (position == batches.size()) {
                    epoch++;
                    position = 0;
                    batches = plan.epoch(epoch);
                }
                micro.add(batches.get(position++));
            }
            int tokens = 0;
            for (int[] mb : micro) for (int i : mb) tokens += responseTokens(train.get(i));
            model.zeroGrad();
            double loss = 0;
            for (int[] mb : micro) {
                List<Sequence> seqs = new ArrayList<>();
                for (int i : mb) seqs.add(scaled(train.get(i), tokens == 0 ? 0f : 1f / tokens));
                loss += model.forwardBackward(Batch.pack(model.config, seqs), 1f).loss();
            }
            float lr = schedule.at(step);
            opt.setLearningRate(lr);
            double norm = Double.NaN;
            if (Double.isFinite(loss)) norm = opt.step(cfg.maxGradNorm());
            boolean skip = !Double.isFinite(loss) || !Double.isFinite(norm);
            if (skip) {
                skipped++;
                badInARow++;
                log.accept(String.format(Locale.ROOT, "step %d skipped: loss %s, gradient norm %s", step + 1, loss, norm));
                if (badInARow >= cfg.maxBadStepsInARow())
                    throw new DivergedException(badInARow + " steps in a row had a non-finite loss or gradient (last at step "
                            + (step + 1) + "); lower the learning rate or check the data");
            } else {
                badInARow = 0;
            }
            double secs = (System.nanoTime() - t0) / 1e9;
            int realTokens = 0;
            for (int[] mb : micro) for (int i : mb) realTokens += train.get(i).length();
            StepMetrics m = new StepMetrics(step + 1, loss, norm, lr, tokens, realTokens / secs, skip);
            history.add(m);
            runLog.append(stepJson(m));
            runLog.progress(m.step(), step + 1 - firstStep, (System.nanoTime() - runStart) / 1e9,
                    String.format(Locale.ROOT, "loss %.4f  lr %.2e  %,.0f tok/s", m.loss(), m.lr(), m.tokensPerSecond()));

            boolean last = step + 1 == cfg.steps();
            double metric = Double.NaN;
            if (evaluator != null && ((step + 1) % cfg.evalEvery() == 0 || last)) {
                lastEval = evaluator.evaluate(model);
                metric = lastEval.getOrDefault("valid_mae", Double.NaN);
                ObjectNode e = JSON.createObjectNode();
                e.put("step", step + 1);
                ObjectNode values = e.putObject("eval");
                lastEval.forEach((k, v) -> values.put(k, v));
                runLog.append(e);
                runLog.breakLine();
                log.accept("eval at step " + (step + 1) + ": " + format(lastEval));
            }
            if ((step + 1) % cfg.checkpointEvery() == 0 || last) {
                lastCheckpoint = checkpoints.write(model, opt, tokenizerJson,
                        new Checkpoints.State(step + 1, epoch, position, skipped, fingerprint), metric, cfg.keepLast());
                plot(history, runDir.resolve("loss.png"));
            }
        }
        if (!history.isEmpty()) runLog.breakLine();
        return new Result(history.isEmpty() ? 0 : history.get(history.size() - 1).step(), skipped, history, lastEval, lastCheckpoint, stopped);
    }

    static int responseTokens(Sequence s) {
        int n = 0;
        for (float w : s.weights()) if (w != 0f) n++;
        return n;
    }

    private static Sequence scaled(Sequence s, float scale) {
        float[] w = s.weights().clone();
        for (int i = 0; i < w.length; i++) w[i] *= scale;
        return new Sequence(s.ids(), w, s.audio(), s.vision());
    }

    private static String format(Map<String, Double> values) {
        StringBuilder sb = new StringBuilder();
        values.forEach((k, v) -> sb.append(sb.isEmpty() ? "" : ", ").append(k).append(' ').append(String.format(Locale.ROOT, "%.4f", v)));
        return sb.toString();
    }

    private static ObjectNode stepJson(StepMetrics m) {
        ObjectNode o = JSON.createObjectNode();
        o.put("step", m.step());
        o.put("loss", m.loss());
        o.put("grad_norm", m.gradNorm());
        o.put("lr", m.lr());
        o.put("response_tokens", m.tokens());
        o.put("tokens_per_s", m.tokensPerSecond());
        o.put("skipped", m.skipped());
        return o;
    }

    private static void plot(List<StepMetrics> history, Path file) {
        double[] x = new double[history.size()], y = new double[history.size()];
        for (int i = 0; i < x.length; i++) {
            x[i] = history.get(i).step();
            y[i] = history.get(i).loss();
        }
        try {
            new LinePlot("SFT loss", "step", "loss").add("train loss", x, y).write(file, 720, 420);
        } catch (IOException e) {
            throw new UncheckedIOException("writing " + file + ": " + e.getMessage(), e);
        }
    }
}
