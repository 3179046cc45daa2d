package io.hintgrpo.trainer.cli;

import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.io.Safetensors;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.ParamLayout;
import io.hintgrpo.trainer.data.Jsonl;
import io.hintgrpo.trainer.data.SynthCorpus;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** {@code --precision} of sft and grpo: bad values fail with one line naming the flag; bf16 trains and saves fp32. */
class PrecisionOptionTest {
    @TempDir
    Path dir;
    String err;

    private int run(String... args) {
        CliRun r = CliRun.of(args);
        err = r.err();
        return r.code();
    }

    @Test
    void badPrecisionIsOneErrorNamingTheFlag() {
        for (String cmd : List.of("sft", "grpo")) {
            int code = run(cmd, "--model", dir.resolve("none").toString(), "--train", dir.resolve("none.jsonl").toString(),
                    "--out", dir.resolve("out-" + cmd).toString(), "--backend", "cpu", "--precision", "fp16");
            assertNotEquals(0, code, cmd);
            assertEquals(1, err.strip().lines().count(), cmd + ": " + err);
            assertTrue(err.contains("--precision") && err.contains("fp16") && err.contains("fp32, bf16"), cmd + ": " + err);
            assertFalse(Files.exists(dir.resolve("out-" + cmd)), cmd + ": nothing is written before the flag is checked");
        }
    }

    /** The same 3 SFT steps in fp32 and bf16: both save fp32 weights, close to each other but not equal. */
    @Test
    void sftInBf16TrainsAndSavesFp32MasterWeights() throws Exception {
        Path modelDir = dir.resolve("model");
        Files.createDirectories(modelDir);
        Files.writeString(modelDir.resolve("tokenizer.json"), SynthCorpus.tokenizerJson());
        ModelConfig base;
        try (Tokenizer tok = Tokenizer.load(modelDir)) {
            base = SynthCorpus.modelConfig(tok);
        }
        ModelConfig cfg = new ModelConfig(32, 48, 4, 2, 1, base.vocabSize(), base.rmsNormEps(), base.ropeTheta(), true,
                base.maxPositionEmbeddings(), base.audioFeatureSize(), base.visionFeatureSize(), base.audioTokenId(),
                base.visionTokenId(), "mlp");
        try (Model m = new Model(new CpuKernels(), cfg)) {
            m.initialize(4);
            ModelDir.save(m, modelDir, Safetensors.Dtype.F32);
        }
        List<Utterance> utterances = new ArrayList<>();
        for (SynthCorpus.Sample s : SynthCorpus.generate(SynthCorpus.Options.defaults(2, 20)).subList(0, 4)) utterances.add(s.utterance());
        Path train = dir.resolve("train.jsonl");
        Jsonl.write(train, utterances, Jsonl.Features.INLINE);

        float[][] trained = new float[2][];
        String[] precisions = {"fp32", "bf16"};
        try (Model start = ModelDir.load(new CpuKernels(), modelDir, 0, msg -> {})) {
            for (int i = 0; i < 2; i++) {
                Path out = dir.resolve("run-" + precisions[i]);
                assertEquals(0, run("sft", "--model", modelDir.toString(), "--train", train.toString(), "--out", out.toString(),
                        "--backend", "cpu", "--precision", precisions[i], "--steps", "3", "--batch-size", "2",
                        "--warmup-steps", "0", "--lr", "1e-2"), err);
                Path saved = out.resolve("model").resolve("model.safetensors");
                try (Safetensors st = Safetensors.open(saved)) {
                    for (Safetensors.Info info : st.tensors().values()) assertEquals("F32", info.dtype(), info.name());
                }
                try (Model m = ModelDir.load(new CpuKernels(), out.resolve("model"), 0, msg -> {})) {
                    trained[i] = all(m);
                }
            }
            float[] initial = all(start);
            double moved = distance(trained[0], initial), apart = distance(trained[1], trained[0]);
            assertTrue(moved > 0, "fp32 training changed nothing");
            assertTrue(apart > 0, "bf16 and fp32 runs ended bit-identical: --precision had no effect");
            assertTrue(apart < 0.05 * moved, "bf16 ended " + apart + " from fp32, which moved " + moved);
        }
    }

    private static float[] all(Model m) {
        List<Float> v = new ArrayList<>();
        for (ParamLayout.Entry e : m.layout.entries()) for (float x : m.download(e.name())) v.add(x);
        float[] r = new float[v.size()];
        for (int i = 0; i < r.length; i++) r[i] = v.get(i);
        return r;
    }

    private static double distance(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += Math.pow((double) a[i] - b[i], 2);
        return Math.sqrt(s);
    }
}
