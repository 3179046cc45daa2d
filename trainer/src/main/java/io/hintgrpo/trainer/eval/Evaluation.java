package io.hintgrpo.trainer.eval;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.model.Generator;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.trainer.data.Jsonl;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.format.DcParser;
import io.hintgrpo.trainer.format.Examples;
import io.hintgrpo.trainer.format.ParsedResponse;
import io.hintgrpo.trainer.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Generate a Discrimination-Calibration response for each utterance, parse it, and score the
 * predictions with the MMSA metrics. Generation stops at {@code </answer>} or end of turn.
 */
public final class Evaluation {
    private Evaluation() {}

    /** Which modalities to zero: the ablation researchers report. */
    public enum Drop {
        NONE, AUDIO, VISION, BOTH;

        public static Drop parse(String s) {
            return switch (s.toLowerCase(Locale.ROOT)) {
                case "none" -> NONE;
                case "audio" -> AUDIO;
                case "vision" -> VISION;
                case "both" -> BOTH;
                default -> throw new BadInputException("--drop-modality", "expected none, audio, vision or both, got \"" + s + "\"");
            };
        }

        /**
         * The utterance as the model sees it: a dropped modality becomes zero frames (as many) of the
         * model's width, so data of another dataset's widths evaluates text-only (docs/data.md).
         */
        public Utterance apply(Utterance u, ModelConfig cfg) {
            if (this == NONE) return u;
            return u.withZeroed(dropsAudio(), dropsVision(), cfg.hasAudio() ? cfg.audioFeatureSize() : -1,
                    cfg.hasVision() ? cfg.visionFeatureSize() : -1);
        }

        /** The feature widths records must have: the model's, any for a dropped modality. */
        public Jsonl.Expect expect(ModelConfig cfg) {
            Jsonl.Expect e = Jsonl.Expect.of(cfg);
            return new Jsonl.Expect(dropsAudio() ? Jsonl.ANY : e.audioDim(), dropsVision() ? Jsonl.ANY : e.visionDim());
        }

        private boolean dropsAudio() {
            return this == AUDIO || this == BOTH;
        }

        private boolean dropsVision() {
            return this == VISION || this == BOTH;
        }
    }

    /** temperature 0 = greedy. */
    public record Options(int maxNewTokens, float temperature, int topK, float topP, int batchSize, long seed, Drop drop) {
        public static Options greedy() {
            return new Options(128, 0f, 0, 1f, 32, 0, Drop.NONE);
        }

        public Options withDrop(Drop d) {
            return new Options(maxNewTokens, temperature, topK, topP, batchSize, seed, d);
        }
    }

    /** One generated response: the utterance, the text up to and including the stop tag, and what the parser found. */
    public record Row(Utterance utterance, String response, ParsedResponse parsed, int tokens) {}

    public record Outcome(EvalReport report, List<Row> rows) {}

    public static Outcome run(Model model, Tokenizer tok, List<Utterance> data, Options opt, Consumer<String> progress) {
        List<Row> rows = generate(model, tok, data, opt, progress);
        List<Prediction> predictions = new ArrayList<>();
        for (Row r : rows) predictions.add(Prediction.of(r.utterance().domain(), r.utterance().label(), r.parsed(), r.utterance().subset()));
        return new Outcome(Metrics.evaluate(predictions), rows);
    }

    /** Greedy-generation metrics on a validation set, as the trainers log them (valid_mae ranks checkpoints). */
    public static Map<String, Double> validationMetrics(Model model, Tokenizer tok, List<Utterance> data) {
        Metrics.Scores s = run(model, tok, data, Options.greedy(), null).report().overall();
        Map<String, Double> out = new LinkedHashMap<>();
        out.put("valid_mae", s.mae());
        out.put("valid_acc7", s.acc7());
        out.put("valid_format_valid", s.formatValidRate());
        out.put("valid_disc_acc", s.discAccuracy());
        return out;
    }

    public static List<Row> generate(Model model, Tokenizer tok, List<Utterance> data, Options opt, Consumer<String> progress) {
        Tokenizer.Specials sp = tok.specials();
        Generator gen = new Generator(model);
        Generator.Options g = new Generator.Options(opt.maxNewTokens(), opt.temperature(), opt.topK(), opt.topP(), opt.seed(),
                sp.responseStops());
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < data.size(); i += opt.batchSize()) {
            List<Utterance> chunk = data.subList(i, Math.min(data.size(), i + opt.batchSize()));
            List<io.hintgrpo.engine.model.Sequence> prompts = new ArrayList<>();
            for (Utterance u : chunk) prompts.add(Examples.prompt(opt.drop().apply(u, model.config), tok, model.config).sequence());
            // utterance i draws from stream (seed, i): its response does not depend on --batch-size or its batch
            long[] keys = new long[chunk.size()];
            for (int s = 0; s < keys.length; s++) keys[s] = io.hintgrpo.engine.Kernels.streamKey(opt.seed(), i + s);
            List<Generator.Completion> out = gen.generate(prompts, g, keys);
            for (int s = 0; s < chunk.size(); s++) {
                int[] ids = out.get(s).tokens();
                String text = tok.responseText(ids, ids.length);
                rows.add(new Row(chunk.get(s), text, DcParser.parse(text), out.get(s).tokens().length));
            }
            if (progress != null) progress.accept("generated " + Math.min(data.size(), i + opt.batchSize()) + "/" + data.size());
        }
        return rows;
    }
}
