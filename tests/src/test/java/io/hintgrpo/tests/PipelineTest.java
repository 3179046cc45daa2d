package io.hintgrpo.tests;

import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.trainer.data.Jsonl;
import io.hintgrpo.trainer.data.RemoteTeacher;
import io.hintgrpo.trainer.data.SynthCorpus;
import io.hintgrpo.trainer.data.TeacherFilter;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.eval.Evaluation;
import io.hintgrpo.trainer.eval.Metrics;
import io.hintgrpo.trainer.eval.Prediction;
import io.hintgrpo.trainer.loop.Run;
import io.hintgrpo.trainer.serve.Server;
import io.hintgrpo.trainer.sft.SftConfig;
import io.hintgrpo.trainer.sft.SftRun;
import io.hintgrpo.trainer.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** End to end on a tiny config: synth → SFT → eval beats the training-mean predictor on MAE; the model then serves as data teacher's teacher. */
class PipelineTest {
    @TempDir
    Path dir;

    @Test
    void sftOnTheSyntheticCorpusBeatsTheTrainingMean() throws Exception {
        Path corpus = dir.resolve("corpus");
        SynthCorpus.write(corpus, SynthCorpus.Options.defaults(7, 400));
        Path tokenizerJson = corpus.resolve(SynthCorpus.TOKENIZER_FILE);
        ModelConfig base;
        try (Tokenizer tok = Tokenizer.load(tokenizerJson)) {
            base = SynthCorpus.modelConfig(tok);
        }
        // a smaller shape than the embedded default so the test stays quick
        ModelConfig cfg = new ModelConfig(64, 160, 4, 2, 2, base.vocabSize(), base.rmsNormEps(), base.ropeTheta(), true,
                base.maxPositionEmbeddings(), base.audioFeatureSize(), base.visionFeatureSize(), base.audioTokenId(),
                base.visionTokenId(), "mlp");
        Jsonl.Expect expect = Jsonl.Expect.of(cfg);
        List<Utterance> train = new ArrayList<>(), test = new ArrayList<>();
        for (String domain : SynthCorpus.domains()) {
            train.addAll(Jsonl.read(SynthCorpus.splitFile(corpus, domain, "train"), expect));
            test.addAll(Jsonl.read(SynthCorpus.splitFile(corpus, domain, "test"), expect));
        }
        SftConfig sft = SftConfig.defaults().with(Map.of("steps", 250, "lr", 4e-3f, "warmup_steps", 10, "eval_every", 1000,
                "checkpoint_every", 125, "keep_last", 1, "seed", 3, "max_bad_steps_in_a_row", 3, "eval_samples", 0));
        Model init = new Model(new CpuKernels(), cfg);
        init.initialize(3);
        Path run = dir.resolve("run");
        SftRun.Outcome o = SftRun.run(new CpuKernels(), init, tokenizerJson, train, List.of(), sft,
                Run.in(run).log(msg -> {}).stopWhen(() -> false));
        assertEquals(250, o.training().steps());
        assertTrue(Files.exists(run.resolve("loss.png")) && Files.exists(run.resolve("metrics.jsonl")));
        double first = o.training().history().get(0).loss(), last = o.training().history().get(249).loss();
        assertTrue(last < 0.3 * first, "SFT loss " + first + " → " + last);

        double mean = train.stream().mapToDouble(Utterance::label).average().orElseThrow();
        List<Prediction> baseline = new ArrayList<>();
        for (Utterance u : test) baseline.add(Prediction.ofScore(u.domain(), u.label(), (float) mean));
        double baselineMae = Metrics.evaluate(baseline).overall().mae();
        try (Model trained = ModelDir.load(new CpuKernels(), o.modelDir(), 0, msg -> {});
             Tokenizer tok = Tokenizer.load(o.modelDir())) {
            Metrics.Scores s = Evaluation.run(trained, tok, test, Evaluation.Options.greedy(), null).report().overall();
            assertTrue(s.formatValidRate() > 0.8, "format valid rate " + s.formatValidRate());
            assertTrue(s.mae() < baselineMae, "model MAE " + s.mae() + " vs training-mean MAE " + baselineMae);

            teacherChainsFromServingThisModel(trained, tok, test.subList(0, 24));
        }
    }

    /**
     * The serving loop closed: the trained model behind {@code hintgrpo serve} is the teacher of
     * {@code data teacher} over loopback. With the transcript alone as the user message and
     * temperature 0, each chain the server sends is the model's greedy response, so a record keeps
     * exactly the response Evaluation.generate gives for the text-only record, when the distillation
     * filter keeps that.
     */
    private void teacherChainsFromServingThisModel(Model trained, Tokenizer tok, List<Utterance> withFeatures) throws Exception {
        // data teacher sends the transcript only: the server answers text-only prompts
        List<Utterance> records = new ArrayList<>();
        for (Utterance u : withFeatures) records.add(new Utterance(u.id(), u.text(), u.label(), u.domain(), null, null, null, u.subset()));
        Path in = dir.resolve("teacher-in.jsonl"), out = dir.resolve("teacher-out.jsonl"), prompts = dir.resolve("prompts.json");
        Jsonl.write(in, records, Jsonl.Features.INLINE);
        Files.writeString(prompts, "{\"user\": \"{text}\"}");
        List<Evaluation.Row> greedy = Evaluation.generate(trained, tok, records, new Evaluation.Options(96, 0f, 0, 1f, 8, 0, Evaluation.Drop.NONE), null);
        Server server = Server.start(trained, tok, new Server.Settings("127.0.0.1", 0, "pipeline", 4, 2, 256, 96, 1 << 20, 64, false, 10),
                msg -> {});
        RemoteTeacher.Report report;
        try {
            report = RemoteTeacher.run(new RemoteTeacher.Settings(URI.create(server.url() + "/v1"), "pipeline", in, out, prompts, 3, 2,
                    Duration.ofSeconds(60), TeacherFilter.DEFAULT_TOLERANCE, 0, 96, "NO_KEY_HERE"), msg -> {});
        } finally {
            server.stop();
        }
        Map<String, String> cot = new java.util.HashMap<>();
        for (String line : Files.readAllLines(out)) {
            com.fasterxml.jackson.databind.JsonNode r = new com.fasterxml.jackson.databind.ObjectMapper().readTree(line);
            cot.put(r.get("id").asText(), r.has("cot") ? r.get("cot").asText() : null);
        }
        assertEquals(records.size(), cot.size(), "every record is in the output");
        int expectKept = 0;
        for (int i = 0; i < records.size(); i++) {
            Utterance u = records.get(i);
            boolean keep = TeacherFilter.judge(u.withCot(greedy.get(i).response()), TeacherFilter.DEFAULT_TOLERANCE) == TeacherFilter.Verdict.KEPT;
            if (keep) expectKept++;
            assertEquals(keep ? greedy.get(i).response() : null, cot.get(u.id()), "record " + u.id());
        }
        assertEquals(expectKept, report.kept());
        assertTrue(report.kept() > 0, "the trained model is a teacher for some records: " + report.outcomes());
        assertEquals(0, report.retries());
    }
}
