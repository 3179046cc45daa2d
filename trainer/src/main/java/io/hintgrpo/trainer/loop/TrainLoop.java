package io.hintgrpo.trainer.loop;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.model.AdamW;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.trainer.checkpoint.Checkpoints;
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
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * The loop every trainer runs, SFT and GRPO alike. A trainer supplies its steps ({@link Steps});
 * the loop does the rest, in this order around each step: a stop request (SIGINT / SIGTERM)
 * writes a checkpoint at the step boundary and returns; after the step, a non-finite one is
 * counted as skipped and too many in a row abort the run ({@link DivergedException}); one line of
 * metrics.jsonl (the metrics record in snake_case, the one serialisation); the progress line;
 * evaluation on its cadence ({"step": n, "eval": {...}} lines); a checkpoint and the plot on
 * theirs. On resume, metrics.jsonl is cut back to the checkpoint's step and read back as history.
 */
public final class TrainLoop<M extends TrainLoop.StepRecord> {
    public static final String METRICS_FILE = "metrics.jsonl";
    static final ObjectMapper JSON = new ObjectMapper().setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    /** What the loop reads of a step's metrics (step is 1-based: the steps done after it). */
    public interface StepRecord {
        int step();

        double loss();

        double gradNorm();

        /** The loss or gradient was not finite: no update was applied. */
        boolean skipped();
    }

    /** A trainer's side of the loop. */
    public interface Steps<M> {
        /** Runs 0-based step {@code step}; history holds the metrics of every earlier step of the run. */
        M run(int step, List<M> history);

        /** An end besides the step count (GRPO's generation budget). */
        default boolean budgetSpent(List<M> history) {
            return false;
        }

        /** Where the data order stands, for the checkpoint. */
        int epoch();

        int position();

        /** The middle of the progress line for a step. */
        String progress(M metrics);

        /** The run's curves into file (a PNG), after every checkpoint. */
        void plot(List<M> history, List<Eval> evals, Path file) throws IOException;
    }

    /** One evaluation: the step after which it ran and its values. */
    public record Eval(int step, Map<String, Double> values) {}

    public record Result<M>(int steps, int skippedSteps, List<M> history, Map<String, Double> lastEval, Path lastCheckpoint,
                            boolean stoppedBySignal) {}

    /** The model, optimizer and state a run starts from. */
    public record Start(Model model, AdamW optimizer, Checkpoints.State state) {}

    /**
     * The run's start: the latest checkpoint of its folder when resuming (its weights, optimizer
     * moments and data position; the fingerprint must agree), else a fresh start from the model
     * {@code base} supplies with a new optimizer. With LoRA (settings.lora()) the base is frozen
     * and trains through an adapter: a fresh one (A from the run's seed, B = 0), or the
     * checkpoint's attached to the base again. AdamW trains {@link Model#trainable()}. A fresh run
     * in a folder with checkpoints is refused.
     */
    public static <S extends Record & TrainingSettings> Start start(Kernels kernels, Run run, String command, S settings,
                                                                    Supplier<Model> base) {
        Path from = run.resumePoint();
        LoraSettings lora = settings.lora();
        Start start;
        if (from == null) {
            Model m = base.get();
            if (lora.enabled()) m.attachLora(lora.config(), settings.loop().seed());
            start = new Start(m, settings.optimizer().adamw(m), new Checkpoints.State(0, 0, 0, 0, run.fingerprint()));
        } else {
            Checkpoints.Loaded ck = Checkpoints.load(from, kernels, run.fingerprint(), settings.optimizer(), lora.enabled() ? base : null,
                    run.log());
            run.log().accept("resuming from " + from + " at step " + ck.state().step());
            start = new Start(ck.model(), ck.optimizer(), ck.state());
        }
        if (lora.enabled()) {
            Model m = start.model();
            run.log().accept(String.format(Locale.ROOT, "LoRA rank %d, alpha %s on %s: %,d trainable parameters (adapters and projectors), "
                    + "%,d frozen%s", lora.loraRank(), lora.loraAlpha(), lora.loraTargets(), m.lora().layout.count(), m.layout.count(),
                    m.isFrozenBf16() ? " (stored in bf16)" : ""));
        }
        writeEffective(run, command, settings);
        return start;
    }

    /**
     * The effective settings beside the run, {@code <command>_config.json}: the caller's options
     * and every setting, itself a valid --config that repeats the run. Written once the run is
     * known to start (a refused resume leaves the earlier one in place).
     */
    static void writeEffective(Run run, String command, Record settings) {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode values = root.putObject(command);
        run.options().forEach((k, v) -> values.set(k, JSON.valueToTree(v)));
        values.setAll(io.hintgrpo.trainer.config.Settings.flatten(settings));
        try {
            io.hintgrpo.trainer.data.AtomicFiles.writeString(run.dir().resolve(command + "_config.json"),
                    JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root));
        } catch (IOException e) {
            throw io.hintgrpo.engine.BadInputException.io(run.dir(), "cannot write the effective config", e);
        }
    }

    /**
     * What a checkpoint of a run must agree with to be resumed: the command, and every setting but
     * those that may change on resume (how long the run goes, how it reports).
     */
    public static Map<String, String> fingerprint(String command, Record settings, java.util.Set<String> mayChange) {
        Map<String, String> fp = new LinkedHashMap<>();
        fp.put("command", command);
        io.hintgrpo.trainer.config.Settings.flatten(settings).fields().forEachRemaining(e -> {
            if (!mayChange.contains(e.getKey())) fp.put(e.getKey(), e.getValue().asText());
        });
        return fp;
    }

    private final Class<M> metricsType;
    private final LoopSettings settings;
    private final Run run;
    private final Path tokenizerJson;
    private final String plotFile;
    private final List<Consumer<M>> listeners = new ArrayList<>();

    /**
     * @param tokenizerJson copied into every checkpoint (null: none)
     * @param plotFile      the PNG in the run folder the trainer's curves go to
     */
    public TrainLoop(Class<M> metricsType, LoopSettings settings, Run run, Path tokenizerJson, String plotFile) {
        this.metricsType = metricsType;
        this.settings = settings;
        this.run = run;
        this.tokenizerJson = tokenizerJson;
        this.plotFile = plotFile;
    }

    /** Called after every step with its metrics (on the training thread). */
    public TrainLoop<M> onStep(Consumer<M> listener) {
        if (listener != null) listeners.add(listener);
        return this;
    }

    /** Trains from {@code start} to settings.steps, or until the trainer's budget is spent, or a stop request. */
    public Result<M> run(Model model, AdamW opt, Checkpoints.State start, Steps<M> steps, Evaluator evaluator) {
        try {
            Files.createDirectories(run.dir());
        } catch (IOException e) {
            throw io.hintgrpo.engine.BadInputException.io(run.dir(), "cannot create the run folder", e);
        }
        Checkpoints checkpoints = new Checkpoints(run.dir());
        RunLog runLog = new RunLog(run.dir().resolve(METRICS_FILE), settings.steps());
        List<M> history = new ArrayList<>();
        List<Eval> evals = new ArrayList<>();
        for (JsonNode n : runLog.restore(start.step())) {
            if (n.has("eval")) evals.add(new Eval(n.get("step").asInt(), values(n.get("eval"))));
            else history.add(fromJson(n));
        }
        int step = start.step(), skipped = start.skippedSteps(), badInARow = 0;
        Map<String, Double> lastEval = Map.of();
        Path lastCheckpoint = null;
        long runStart = System.nanoTime();
        boolean stopped = false;
        while (step < settings.steps() && !steps.budgetSpent(history)) {
            if (run.stopRequested().getAsBoolean()) {
                stopped = true;
                lastCheckpoint = checkpoint(checkpoints, model, opt, steps, step, skipped, Double.NaN);
                run.log().accept("stopped at step " + step + "; checkpoint " + lastCheckpoint + " (resume with --resume)");
                break;
            }
            M m = steps.run(step, history);
            step++;
            if (m.skipped()) {
                skipped++;
                badInARow++;
                run.log().accept(String.format(Locale.ROOT, "step %d skipped: loss %s, gradient norm %s", step, m.loss(), m.gradNorm()));
                if (badInARow >= settings.maxBadStepsInARow())
                    throw new DivergedException(badInARow + " steps in a row had a non-finite loss or gradient (last at step " + step
                            + "); lower the learning rate or check the data and rewards");
            } else {
                badInARow = 0;
            }
            history.add(m);
            runLog.append(JSON.valueToTree(m));
            for (Consumer<M> l : listeners) l.accept(m);
            runLog.progress(step, step - start.step(), (System.nanoTime() - runStart) / 1e9, steps.progress(m));

            boolean last = step == settings.steps() || steps.budgetSpent(history);
            double metric = Double.NaN;
            if (evaluator != null && (step % settings.evalEvery() == 0 || last)) {
                lastEval = evaluator.evaluate(model);
                metric = lastEval.getOrDefault("valid_mae", Double.NaN);
                evals.add(new Eval(step, lastEval));
                ObjectNode e = JSON.createObjectNode();
                e.put("step", step);
                ObjectNode v = e.putObject("eval");
                lastEval.forEach(v::put);
                runLog.append(e);
                runLog.breakLine();
                run.log().accept("eval at step " + step + ": " + format(lastEval));
            }
            if (step % settings.checkpointEvery() == 0 || last) {
                lastCheckpoint = checkpoint(checkpoints, model, opt, steps, step, skipped, metric);
                Path png = run.dir().resolve(plotFile);
                try {
                    steps.plot(history, evals, png);
                } catch (IOException e) {
                    throw io.hintgrpo.engine.BadInputException.io(png, "cannot write the plot", e);
                }
            }
        }
        if (!history.isEmpty()) runLog.breakLine();
        return new Result<>(step, skipped, history, lastEval, lastCheckpoint, stopped);
    }

    private Path checkpoint(Checkpoints checkpoints, Model model, AdamW opt, Steps<M> steps, int step, int skipped, double metric) {
        return checkpoints.write(model, opt, tokenizerJson,
                new Checkpoints.State(step, steps.epoch(), steps.position(), skipped, run.fingerprint()), metric, settings.keepLast());
    }

    private M fromJson(JsonNode n) {
        try {
            return JSON.treeToValue(n, metricsType);
        } catch (IOException e) {
            throw new UncheckedIOException(run.dir().resolve(METRICS_FILE) + ": unreadable step line " + n + ": " + e.getMessage(), e);
        }
    }

    private static Map<String, Double> values(JsonNode n) {
        Map<String, Double> m = new LinkedHashMap<>();
        n.fields().forEachRemaining(e -> m.put(e.getKey(), e.getValue().asDouble(Double.NaN)));
        return m;
    }

    private static String format(Map<String, Double> values) {
        StringBuilder sb = new StringBuilder();
        values.forEach((k, v) -> sb.append(sb.isEmpty() ? "" : ", ").append(k).append(' ').append(String.format(Locale.ROOT, "%.4f", v)));
        return sb.toString();
    }
}
