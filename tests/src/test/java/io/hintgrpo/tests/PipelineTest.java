package io.hintgrpo.tests;

import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.trainer.data.Jsonl;
import io.hintgrpo.trainer.data.SynthCorpus;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.eval.Evaluation;
import io.hintgrpo.trainer.eval.Metrics;
import io.hintgrpo.trainer.eval.Prediction;
import io.hintgrpo.trainer.loop.Run;
import io.hintgrpo.trainer.sft.SftConfig;
import io.hintgrpo.trainer.sft.SftRun;
import io.hintgrpo.trainer.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** End to end on a tiny config: synth → SFT → eval beats the training-mean predictor on MAE. */
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
        }
    }
}
