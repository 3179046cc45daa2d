package io.hintgrpo.trainer.sft;

import com.fasterxml.jackson.annotation.JsonProperty;
import io.hintgrpo.engine.model.AdamW;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.Sequence;
import io.hintgrpo.trainer.checkpoint.Checkpoints;
import io.hintgrpo.trainer.loop.Evaluator;
import io.hintgrpo.trainer.loop.LrSchedule;
import io.hintgrpo.trainer.loop.Run;
import io.hintgrpo.trainer.loop.TrainLoop;
import io.hintgrpo.trainer.report.Chart;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The steps of supervised fine-tuning: response tokens weigh 1/(response tokens of the step),
 * everything else 0; length-bucketed micro-batches ({@link BatchPlan}), gradient accumulation,
 * the optimizer's schedule and clipping. The loop around them is {@link TrainLoop}'s. Everything
 * that decides the loss sequence is a function of (config, data, checkpoint), so a resumed run
 * repeats an uninterrupted one bit for bit on cpu.
 */
public final class SftTrainer implements TrainLoop.Steps<SftTrainer.StepMetrics> {
    public static final String PLOT_FILE = "loss.png";

    public record StepMetrics(int step, double loss, double gradNorm, float lr, int responseTokens,
                              @JsonProperty("tokens_per_s") double tokensPerSecond, boolean skipped) implements TrainLoop.StepRecord {}

    private final SftConfig cfg;
    private final Model model;
    private final AdamW opt;
    private final List<Sequence> train;
    private final BatchPlan plan;
    private final LrSchedule schedule;
    private int epoch, position;
    private List<int[]> batches;

    /** train holds sequences whose weights are 1 on response predictions, 0 elsewhere; (epoch, position) where the data order stands. */
    public SftTrainer(SftConfig cfg, Model model, AdamW opt, List<Sequence> train, int epoch, int position) {
        this.cfg = cfg;
        this.model = model;
        this.opt = opt;
        this.train = train;
        this.plan = new BatchPlan(train.stream().mapToInt(Sequence::length).toArray(), cfg.batchSize(), cfg.loop().seed());
        this.schedule = cfg.optimizer().schedule(cfg.loop().steps());
        this.epoch = epoch;
        this.position = position;
        this.batches = plan.epoch(epoch);
    }

    /** What a checkpoint of an SFT run must agree with to be resumed, besides the caller's entries. */
    public static Map<String, String> fingerprint(SftConfig cfg) {
        return TrainLoop.fingerprint("sft", cfg, io.hintgrpo.trainer.loop.LoopSettings.MAY_CHANGE_ON_RESUME);
    }

    /** Trains from {@code start} (a fresh State(0, 0, 0, 0, …) or a loaded checkpoint's) to cfg's steps. */
    public static TrainLoop.Result<StepMetrics> train(SftConfig cfg, Run run, Path tokenizerJson, Model model, AdamW opt,
                                                      Checkpoints.State start, List<Sequence> train, Evaluator evaluator) {
        SftTrainer steps = new SftTrainer(cfg, model, opt, train, start.epoch(), start.position());
        return new TrainLoop<>(StepMetrics.class, cfg.loop(), run.fingerprint(fingerprint(cfg)), tokenizerJson, PLOT_FILE)
                .run(model, opt, start, steps, evaluator);
    }

    @Override
    public StepMetrics run(int step, List<StepMetrics> history) {
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
        int tokens = 0, realTokens = 0;
        for (int[] mb : micro)
            for (int i : mb) {
                tokens += responseTokens(train.get(i));
                realTokens += train.get(i).length();
            }
        model.zeroGrad();
        double loss = 0;
        for (int[] mb : micro) {
            List<Sequence> seqs = new ArrayList<>();
            for (int i : mb) seqs.add(scaled(train.get(i), tokens == 0 ? 0f : 1f / tokens));
            loss += model.forwardBackward(Batch.pack(model.config, seqs), 1f).loss();
        }
        float lr = schedule.at(step);
        opt.setLearningRate(lr);
        double norm = Double.isFinite(loss) ? opt.step(cfg.optimizer().maxGradNorm()) : Double.NaN;
        boolean skip = !Double.isFinite(loss) || !Double.isFinite(norm);
        double secs = (System.nanoTime() - t0) / 1e9;
        return new StepMetrics(step + 1, loss, norm, lr, tokens, realTokens / secs, skip);
    }

    @Override
    public int epoch() {
        return epoch;
    }

    @Override
    public int position() {
        return position;
    }

    @Override
    public String progress(StepMetrics m) {
        return String.format(Locale.ROOT, "loss %.4f  lr %.2e  %,.0f tok/s", m.loss(), m.lr(), m.tokensPerSecond());
    }

    @Override
    public void plot(List<StepMetrics> history, List<TrainLoop.Eval> evals, Path file) throws IOException {
        double[] x = new double[history.size()], y = new double[history.size()];
        for (int i = 0; i < x.length; i++) {
            x[i] = history.get(i).step();
            y[i] = history.get(i).loss();
        }
        new Chart("SFT loss", "step", "loss").add("train loss", x, y).write(file, 720, 420);
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
}
