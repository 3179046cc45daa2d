package io.hintgrpo.trainer.export;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.Presets;
import io.hintgrpo.engine.model.Sequence;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** The exported graph computes, in ONNX Runtime, what our model computes; export writes whole files or none. */
class OnnxExportTest {
    private static final OrtEnvironment ENV = OrtEnvironment.getEnvironment();

    @TempDir
    Path dir;

    @AfterEach
    void restore() {
        OnnxExport.inlineLimit = 1L << 30;
        OnnxExport.tolerance = OnnxExport.TOLERANCE;
    }

    private static OrtSession session(byte[] graph) throws OrtException {
        try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions()) {
            opts.setIntraOpNumThreads(1);
            return ENV.createSession(graph, opts);
        }
    }

    private static Model model(ModelConfig cfg, long seed) {
        Model model = new Model(new CpuKernels(), cfg);
        model.initialize(seed);
        // non-trivial biases and norm weights, so a swapped or dropped one shows
        SplittableRandom rng = new SplittableRandom(seed);
        for (ParamName p : ParamName.values()) {
            if (!model.layout.has(p.name)) continue;
            float[] v = model.download(p.name);
            for (int i = 0; i < v.length; i++) v[i] += (float) (p.offset + 0.3 * (rng.nextDouble() - 0.5));
            model.upload(p.name, v);
        }
        return model;
    }

    private enum ParamName {
        K_BIAS("model.layers.1.self_attn.k_proj.bias", 0), Q_BIAS("model.layers.0.self_attn.q_proj.bias", 0),
        NORM0("model.layers.0.input_layernorm.weight", 1), FINAL_NORM("model.norm.weight", 1),
        AUDIO_BIAS("multi_modal_projector.audio.linear_1.bias", 0), VISION_BIAS2("multi_modal_projector.vision.linear_2.bias", 0);
        final String name;
        final double offset;

        ParamName(String name, double offset) {
            this.name = name;
            this.offset = offset;
        }
    }

    /** Random text sequences of the given lengths (placeholder ids avoided). */
    private static Batch textBatch(ModelConfig cfg, long seed, int... lengths) {
        SplittableRandom rng = new SplittableRandom(seed);
        List<Sequence> seqs = new ArrayList<>();
        for (int len : lengths) {
            int[] ids = new int[len];
            for (int i = 0; i < len; i++) {
                do ids[i] = rng.nextInt(cfg.vocabSize());
                while (ids[i] == cfg.audioTokenId() || ids[i] == cfg.visionTokenId());
            }
            seqs.add(Sequence.text(ids));
        }
        return Batch.pack(cfg, seqs);
    }

    @Test
    void theEmbeddedDefaultAgreesOnTextAndOnModalityFrames() throws OrtException {
        Model model = model(Presets.embeddedDefault(), 3); // tied head, GQA 4/2, mlp projectors
        try (OrtSession s = session(OnnxExport.graph(model))) {
            double probe = OnnxExport.relativeError(ENV, s, model, OnnxExport.probeBatch(model.config, 7));
            double text = OnnxExport.relativeError(ENV, s, model, textBatch(model.config, 5, 16, 16));
            assertTrue(probe < 1e-5, "probe batch (frames, padding): relative error " + probe);
            assertTrue(text < 1e-5, "text batch: relative error " + text);
        }
    }

    @Test
    void anUntiedHeadFourQueryHeadsPerKvHeadAndLinearProjectorsAgree() throws OrtException {
        ModelConfig cfg = new ModelConfig(64, 96, 8, 2, 2, 300, 1e-6f, 10000f, false, 64, 5, 3, 298, 299, "linear");
        Model model = model(cfg, 5);
        try (OrtSession s = session(OnnxExport.graph(model))) {
            double err = OnnxExport.relativeError(ENV, s, model, OnnxExport.probeBatch(cfg, 11));
            assertTrue(err < 1e-5, "relative error " + err);
        }
    }

    @Test
    void aTextOnlyModelHasOnlyTokenIdsAsInput() throws OrtException {
        ModelConfig cfg = new ModelConfig(32, 48, 4, 4, 1, 50, 1e-6f, 10000f, true, 32, 0, 0, -1, -1, "linear");
        Model model = model(cfg, 2);
        try (OrtSession s = session(OnnxExport.graph(model))) {
            assertEquals(java.util.Set.of("input_ids"), s.getInputNames());
            assertTrue(OnnxExport.relativeError(ENV, s, model, textBatch(cfg, 1, 7, 3, 5)) < 1e-5);
        }
    }

    @Test
    void oneGraphRunsAnyBatchSizeAndLength() throws OrtException {
        Model model = model(Presets.embeddedDefault(), 4);
        try (OrtSession s = session(OnnxExport.graph(model))) {
            for (int[] lengths : new int[][]{{1}, {5, 2, 9}, {40, 40}}) {
                double err = OnnxExport.relativeError(ENV, s, model, textBatch(model.config, lengths.length, lengths));
                assertTrue(err < 1e-5, java.util.Arrays.toString(lengths) + ": relative error " + err);
            }
        }
    }

    @Test
    void framesGoToTheirOwnSequenceInOrder() throws OrtException {
        // the same frames swapped between placeholders must change the logits: the graph uses the order
        Model model = model(Presets.embeddedDefault(), 6);
        Batch probe = OnnxExport.probeBatch(model.config, 9);
        try (OrtSession s = session(OnnxExport.graph(model))) {
            Map<String, OnnxTensor> in = OnnxExport.inputs(ENV, model.config, probe);
            float[] audio = floats(in.get("audio_features").getFloatBuffer());
            long[] shape = in.get("audio_features").getInfo().getShape();
            int dim = (int) shape[2];
            float[] swapped = audio.clone(); // sequence 0: frames 0 and 1 trade places
            System.arraycopy(audio, 0, swapped, dim, dim);
            System.arraycopy(audio, dim, swapped, 0, dim);
            float[] base, other;
            try (OrtSession.Result r = s.run(in)) {
                base = floats(((OnnxTensor) r.get(0)).getFloatBuffer());
            }
            try (OnnxTensor t = OnnxTensor.createTensor(ENV, java.nio.FloatBuffer.wrap(swapped), shape)) {
                Map<String, OnnxTensor> in2 = new java.util.HashMap<>(in);
                in2.put("audio_features", t);
                try (OrtSession.Result r = s.run(in2)) {
                    other = floats(((OnnxTensor) r.get(0)).getFloatBuffer());
                }
            }
            for (OnnxTensor t : in.values()) t.close();
            int v = model.config.vocabSize();
            double seq0 = 0, seq1 = 0;
            for (int j = 0; j < probe.t * v; j++) seq0 = Math.max(seq0, Math.abs(base[j] - other[j]));
            for (int j = probe.t * v; j < 2 * probe.t * v; j++) seq1 = Math.max(seq1, Math.abs(base[j] - other[j]));
            assertTrue(seq0 > 1e-4, "swapping sequence 0's frames changed nothing: " + seq0);
            assertEquals(0.0, seq1, "sequence 1 must not see sequence 0's frames");
        }
    }

    @Test
    void aChangedWeightShowsAsADisagreement() throws OrtException {
        Model model = model(Presets.embeddedDefault(), 3);
        try (OrtSession s = session(OnnxExport.graph(model))) {
            float[] w = model.download("model.layers.2.mlp.down_proj.weight");
            for (int i = 0; i < w.length; i++) w[i] *= 3;
            model.upload("model.layers.2.mlp.down_proj.weight", w);
            double err = OnnxExport.relativeError(ENV, s, model, OnnxExport.probeBatch(model.config, 7));
            assertTrue(err > 1e-3, "relative error " + err + " after changing a weight the graph holds");
        }
    }

    @Test
    void exportWritesInlineOrExternalWeightsAndEachLoadsByPath() throws Exception {
        Model model = model(Presets.embeddedDefault(), 8);
        Path out = dir.resolve("m.onnx");
        OnnxExport.Result inline = OnnxExport.export(model, out, msg -> {});
        assertNull(inline.data());
        assertTrue(inline.relativeError() < 1e-5);
        long inlineSize = Files.size(out);
        assertTrue(inlineSize > inline.weightBytes(), "weights inline");

        OnnxExport.inlineLimit = 0;
        OnnxExport.Result external = OnnxExport.export(model, out, msg -> {});
        Path data = dir.resolve("m.onnx.data");
        assertEquals(data, external.data());
        assertTrue(Files.size(out) < inlineSize / 10, "graph without its weights: " + Files.size(out));
        assertTrue(Files.size(data) >= external.weightBytes());
        try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions();
             OrtSession s = ENV.createSession(out.toString(), opts)) {
            assertTrue(OnnxExport.relativeError(ENV, s, model, textBatch(model.config, 3, 6, 11)) < 1e-5);
        }

        OnnxExport.inlineLimit = 1L << 30; // back to inline: the stale data file goes
        OnnxExport.export(model, out, msg -> {});
        assertFalse(Files.exists(data));
        assertEquals(List.of("m.onnx"), names(dir), "no temporary files are left");
    }

    @Test
    void aFailedCheckWritesNothingAndKeepsTheEarlierFile() throws IOException {
        Model model = model(Presets.embeddedDefault(), 8);
        Path out = dir.resolve("m.onnx");
        Files.writeString(out, "earlier export");
        OnnxExport.tolerance = -1; // no error is small enough
        OnnxExport.CheckFailed e = assertThrows(OnnxExport.CheckFailed.class, () -> OnnxExport.export(model, out, msg -> {}));
        assertTrue(e.getMessage().contains("relative error"), e.getMessage());
        assertEquals("earlier export", Files.readString(out));
        assertEquals(List.of("m.onnx"), names(dir));
    }

    private static float[] floats(java.nio.FloatBuffer b) {
        float[] f = new float[b.remaining()];
        b.get(f);
        return f;
    }

    private static List<String> names(Path dir) throws IOException {
        try (var s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }
}
