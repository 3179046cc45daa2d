package io.hintgrpo.trainer.export;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.Sequence;
import io.hintgrpo.trainer.data.AtomicFiles;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * The model's forward as an ONNX graph of standard operators (opset 17) that ONNX Runtime, or any
 * ONNX runtime, runs without us: token ids plus audio and vision feature frames in, logits out.
 * The same graph is the benchmarks' ONNX Runtime reference for our forward ({@code ForwardBench}).
 *
 * <p>Inputs: {@code input_ids} int64 [batch, sequence] (modality frames appear as their placeholder
 * token ids, as in the prompts {@code DcFormat} makes); where the model reads audio,
 * {@code audio_features} float [batch, audio_frames, audio_feature_size], and likewise
 * {@code vision_features}. The k-th audio placeholder of a sequence takes frame k of its row; a
 * sequence may use fewer frames than the row holds (the rest are ignored), never more; a batch
 * without frames passes one frame of zeros. Output: {@code logits} float [batch, sequence, vocab].
 * Shorter sequences are right-padded with any id: attention is causal, so padding changes no logit
 * of a real position.
 *
 * <p>Per layer, as Hugging Face's Qwen2 computes it: RMSNorm as Pow/ReduceMean/Add/Sqrt/Div/Mul
 * (ORT fuses it); q, k, v as MatMul + Add bias; RoPE as x·cos + rotate_half(x)·sin with cos/sin
 * tables [max_position_embeddings, head_dim] computed as our rope kernel computes them (fp32 angle,
 * cos/sin in double, rounded) and sliced to the sequence; GQA without copying K/V: q viewed as
 * [b, kv, rep, t, d] and k, v as [b, kv, 1, t, d], so MatMul broadcasts each KV head over its rep
 * query heads; the causal mask from Trilu; SwiGLU as g·Sigmoid(g)·u; the final norm and the LM
 * head. Modality frames go through their projector (linear, or linear–GELU(tanh)–linear) and
 * replace the placeholder rows: a running count of placeholders (CumSum) picks each row's frame
 * (GatherElements), Where keeps text rows. Weights are stored transposed ([in, out]) so every
 * projection is a plain MatMul; a tied head reads the embedding through a Transpose.
 */
public final class OnnxExport {
    private OnnxExport() {}

    /** Above this many weight bytes the weights go to FILE.data: one protobuf message may not exceed 2 GiB. */
    static long inlineLimit = 1L << 30;
    /** The check's bound; tests lower it to force a failed check. */
    static double tolerance = 1e-4;
    /** Largest relative L2 distance between ONNX Runtime's logits and ours that counts as agreement. */
    public static final double TOLERANCE = 1e-4;
    /** External tensors start on page boundaries, so a runtime can map them instead of copying. */
    private static final int ALIGN = 4096;

    /** What an export wrote and measured. */
    public record Result(Path model, Path data, long weightBytes, double relativeError, int probeSequences, int probeTokens) {}

    /** Thrown when ONNX Runtime's logits differ from ours: nothing is written. */
    public static final class CheckFailed extends RuntimeException {
        CheckFailed(String message) {
            super(message);
        }
    }

    /** The graph with its weights inline (for in-memory sessions: benchmarks and tests). */
    public static byte[] graph(Model model) {
        try {
            return new Builder(model, null, null).build();
        } catch (IOException e) {
            throw new UncheckedIOException(e); // no file is involved
        }
    }

    /**
     * Writes the graph to out (weights inline, or in out + ".data" beside it when they exceed 1 GiB),
     * then runs it in ONNX Runtime on a probe batch and compares the logits with the model's. Files
     * appear only after the check passed; a failure leaves earlier files at those paths intact.
     */
    public static Result export(Model model, Path out, Consumer<String> progress) throws IOException {
        long weightBytes = 4 * model.layout.size();
        boolean external = weightBytes > inlineLimit;
        Path dir = out.toAbsolutePath().getParent();
        String name = out.getFileName().toString(), dataName = name + ".data";
        AtomicFiles.probeFile(out);
        Path tmp = Files.createTempDirectory(dir, "." + name + "-");
        try {
            Path tmpModel = tmp.resolve(name), tmpData = tmp.resolve(dataName);
            progress.accept(String.format("writing %s (%.1f MB of weights%s)", out, weightBytes / 1e6,
                    external ? ", in " + dataName : ""));
            byte[] graph;
            if (external) {
                try (OutputStream data = new BufferedOutputStream(Files.newOutputStream(tmpData), 1 << 20)) {
                    graph = new Builder(model, data, dataName).build();
                }
            } else {
                graph = new Builder(model, null, null).build();
            }
            Files.write(tmpModel, graph);

            progress.accept("checking ONNX Runtime's logits against ours");
            Batch probe = probeBatch(model.config, 7);
            double err;
            OrtEnvironment env = OrtEnvironment.getEnvironment();
            try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions()) {
                opts.setIntraOpNumThreads(Math.max(1, Runtime.getRuntime().availableProcessors()));
                try (OrtSession session = env.createSession(tmpModel.toString(), opts)) {
                    err = relativeError(env, session, model, probe);
                }
            } catch (OrtException e) {
                throw new CheckFailed("ONNX Runtime could not run the exported graph: " + e.getMessage());
            }
            if (!(err <= tolerance))
                throw new CheckFailed(String.format("ONNX Runtime's logits differ from the model's: relative error %.3g > %.0e",
                        err, tolerance));

            Path finalData = dir.resolve(dataName);
            if (external) {
                AtomicFiles.readableByAll(tmpData);
                AtomicFiles.moveIntoPlace(tmpData, finalData);
            }
            AtomicFiles.readableByAll(tmpModel);
            AtomicFiles.moveIntoPlace(tmpModel, out);
            if (!external) Files.deleteIfExists(finalData); // a stale data file of an earlier, larger export
            int tokens = 0;
            for (int len : probe.lengths) tokens += len;
            return new Result(out, external ? finalData : null, weightBytes, err, probe.b, tokens);
        } finally {
            AtomicFiles.deleteTree(tmp);
        }
    }

    /**
     * A batch that exercises everything the graph does: two sequences of different lengths (so one
     * is padded), random text ids, and where the model reads them audio and vision placeholders with
     * random frames, a different number per sequence.
     */
    static Batch probeBatch(ModelConfig cfg, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        int[][] frames = {{3, 2}, {1, 2}};
        int[] text = {9, 4};
        List<Sequence> seqs = new ArrayList<>();
        for (int s = 0; s < 2; s++) {
            int na = cfg.hasAudio() ? frames[s][0] : 0, nv = cfg.hasVision() ? frames[s][1] : 0;
            int len = Math.min(cfg.maxPositionEmbeddings(), text[s] + na + nv);
            int[] ids = new int[len];
            int a = 0, v = 0;
            for (int i = 0; i < len; i++) {
                // placeholders after the first text token, interleaved: audio, then vision
                if (i >= 1 && a < na) { ids[i] = cfg.audioTokenId(); a++; continue; }
                if (i >= 1 && v < nv) { ids[i] = cfg.visionTokenId(); v++; continue; }
                int id;
                do id = rng.nextInt(cfg.vocabSize());
                while (id == cfg.audioTokenId() || id == cfg.visionTokenId());
                ids[i] = id;
            }
            seqs.add(new Sequence(ids, null, randomRows(rng, a, cfg.audioFeatureSize()), randomRows(rng, v, cfg.visionFeatureSize())));
        }
        return Batch.pack(cfg, seqs);
    }

    private static float[][] randomRows(SplittableRandom rng, int n, int dim) {
        if (n == 0) return null;
        float[][] rows = new float[n][dim];
        for (float[] r : rows) for (int j = 0; j < dim; j++) r[j] = (float) (2 * rng.nextDouble() - 1);
        return rows;
    }

    /** The graph's inputs for a packed batch: ids with placeholders restored, frames per sequence in order (one zero frame where none). */
    public static Map<String, OnnxTensor> inputs(OrtEnvironment env, ModelConfig cfg, Batch batch) throws OrtException {
        long[] ids = new long[batch.rows()];
        for (int i = 0; i < ids.length; i++) ids[i] = Math.max(0, batch.embedIds[i]);
        Map<String, OnnxTensor> in = new HashMap<>();
        if (cfg.hasAudio()) in.put("audio_features", frames(env, batch, batch.audio, cfg.audioTokenId(), ids));
        if (cfg.hasVision()) in.put("vision_features", frames(env, batch, batch.vision, cfg.visionTokenId(), ids));
        in.put("input_ids", OnnxTensor.createTensor(env, LongBuffer.wrap(ids), new long[]{batch.b, batch.t})); // after frames marked the placeholders
        return in;
    }

    /** [b, max frames per sequence (≥ 1), dim]: sequence s's k-th frame at [s, k]; marks the placeholder rows in ids. */
    private static OnnxTensor frames(OrtEnvironment env, Batch batch, Batch.Modality m, int placeholder, long[] ids) throws OrtException {
        int[] count = new int[batch.b];
        for (int r : m.rows()) count[r / batch.t]++;
        int most = 1;
        for (int c : count) most = Math.max(most, c);
        float[] f = new float[batch.b * most * m.dim()];
        int[] next = new int[batch.b];
        for (int i = 0; i < m.n(); i++) { // rows are in batch order, so each sequence's frames keep their order
            int row = m.rows()[i], s = row / batch.t;
            ids[row] = placeholder;
            System.arraycopy(m.features(), i * m.dim(), f, (s * most + next[s]++) * m.dim(), m.dim());
        }
        return OnnxTensor.createTensor(env, FloatBuffer.wrap(f), new long[]{batch.b, most, m.dim()});
    }

    /** ‖ORT logits − Model.logits‖ / ‖Model.logits‖ over the batch's real (unpadded) positions. */
    public static double relativeError(OrtEnvironment env, OrtSession session, Model model, Batch batch) throws OrtException {
        float[] ours = model.logits(batch);
        int v = model.config.vocabSize();
        Map<String, OnnxTensor> in = inputs(env, model.config, batch);
        try (OrtSession.Result r = session.run(in)) {
            FloatBuffer theirs = ((OnnxTensor) r.get(0)).getFloatBuffer();
            if (theirs.remaining() != ours.length)
                throw new IllegalStateException("ONNX Runtime gave " + theirs.remaining() + " logits, the model " + ours.length);
            double num = 0, den = 0;
            for (int s = 0; s < batch.b; s++)
                for (int i = 0; i < batch.lengths[s]; i++)
                    for (int j = (s * batch.t + i) * v, e = j + v; j < e; j++) {
                        double diff = theirs.get(j) - ours[j];
                        num += diff * diff;
                        den += (double) ours[j] * ours[j];
                    }
            return Math.sqrt(num / den);
        } finally {
            for (OnnxTensor t : in.values()) t.close();
        }
    }

    /** Nodes and initializers appended to one GraphProto (node = 1, initializer = 5), with generated value names. */
    private static final class Builder {
        final Onnx.Pb pb = new Onnx.Pb();
        final Model model;
        final ModelConfig cfg;
        final OutputStream data; // external weights go here; null: inline
        final String dataName;
        long dataOffset;
        int next;

        Builder(Model model, OutputStream data, String dataName) {
            this.model = model;
            this.cfg = model.config;
            this.data = data;
            this.dataName = dataName;
        }

        byte[] build() throws IOException {
            int c = cfg.hiddenSize(), heads = cfg.numHeads(), kv = cfg.numKvHeads(), d = cfg.headDim();
            int rep = heads / kv, vocab = cfg.vocabSize(), maxPos = cfg.maxPositionEmbeddings();
            String eps = constant("rms_eps", cfg.rmsNormEps()), two = constant("two", 2f);

            // t, rope tables sliced to [t, d], the causal mask [t, t]
            String t = op("Gather", new Onnx.Pb[]{Onnx.intAttribute("axis", 0)}, op("Shape", "input_ids"), scalar(1));
            String t1 = op("Unsqueeze", t, ints(0));
            float[][] table = ropeTables(maxPos, d, cfg.ropeTheta());
            String cos = op("Slice", small("rope_cos", table[0], maxPos, d), ints(0), t1, ints(0));
            String sin = op("Slice", small("rope_sin", table[1], maxPos, d), ints(0), t1, ints(0));
            String tt = op("Concat", new Onnx.Pb[]{Onnx.intAttribute("axis", 0)}, t1, t1);
            String above = op("Trilu", new Onnx.Pb[]{Onnx.intAttribute("upper", 1)}, op("Expand", constant("one", 1f), tt), scalar(1));
            String mask = op("Where", op("Greater", above, constant("half", 0.5f)), constant("minus_inf", Float.NEGATIVE_INFINITY),
                    constant("zero", 0f));
            String scale = constant("attn_scale", (float) (1.0 / Math.sqrt(d)));

            String embed = weight("model.embed_tokens.weight", false);
            String x = op("Gather", embed, "input_ids"); // [b, t, c]
            if (cfg.hasAudio()) x = modality(x, "audio", cfg.audioTokenId(), c);
            if (cfg.hasVision()) x = modality(x, "vision", cfg.visionTokenId(), c);

            for (int l = 0; l < cfg.numLayers(); l++) {
                String p = "model.layers." + l + ".";
                String h = rmsnorm(x, p + "input_layernorm.weight", eps, two);
                String q = linear(h, p + "self_attn.q_proj", true);
                String k = linear(h, p + "self_attn.k_proj", true);
                String v = linear(h, p + "self_attn.v_proj", true);
                // [b, t, n·d] → [b, n, t, d], rope, then the GQA view [b, kv, rep or 1, t, d]
                q = op("Reshape", rope(heads(q, heads, d), cos, sin, d), ints(0, kv, rep, -1, d));
                k = op("Reshape", rope(heads(k, kv, d), cos, sin, d), ints(0, kv, 1, -1, d));
                v = op("Reshape", heads(v, kv, d), ints(0, kv, 1, -1, d));
                String scores = op("Add", op("Mul", op("MatMul", q, op("Transpose", perm(0, 1, 2, 4, 3), k)), scale), mask);
                String att = op("MatMul", op("Softmax", new Onnx.Pb[]{Onnx.intAttribute("axis", -1)}, scores), v);
                att = op("Reshape", op("Transpose", perm(0, 2, 1, 3), op("Reshape", att, ints(0, heads, -1, d))), ints(0, 0, heads * d));
                x = op("Add", x, linear(att, p + "self_attn.o_proj", false));
                h = rmsnorm(x, p + "post_attention_layernorm.weight", eps, two);
                String gate = linear(h, p + "mlp.gate_proj", false), up = linear(h, p + "mlp.up_proj", false);
                x = op("Add", x, linear(op("Mul", op("Mul", gate, op("Sigmoid", gate)), up), p + "mlp.down_proj", false));
            }
            String head = cfg.tieWordEmbeddings() ? op("Transpose", perm(1, 0), embed) : weight("lm_head.weight", true);
            pb.message(1, Onnx.node("MatMul", "lm_head", new String[]{rmsnorm(x, "model.norm.weight", eps, two), head}, "logits"));

            pb.string(2, "hintgrpo_forward");
            pb.message(11, Onnx.dynamicValueInfo("input_ids", Onnx.INT64, "batch", "sequence"));
            if (cfg.hasAudio()) pb.message(11, Onnx.dynamicValueInfo("audio_features", Onnx.FLOAT, "batch", "audio_frames", (long) cfg.audioFeatureSize()));
            if (cfg.hasVision()) pb.message(11, Onnx.dynamicValueInfo("vision_features", Onnx.FLOAT, "batch", "vision_frames", (long) cfg.visionFeatureSize()));
            pb.message(12, Onnx.dynamicValueInfo("logits", Onnx.FLOAT, "batch", "sequence", (long) vocab));
            return Onnx.model(pb);
        }

        /** x with the placeholder rows of one modality replaced by its projected frames. */
        String modality(String x, String name, int placeholder, int c) throws IOException {
            String prefix = "multi_modal_projector." + name + ".";
            String y = op("Add", op("MatMul", name + "_features", weight(prefix + "linear_1.weight", true)), weight(prefix + "linear_1.bias", false));
            if (cfg.mlpProjector()) {
                // GELU, tanh form as our kernel: 0.5·y·(1 + tanh(√(2/π)·(y + 0.044715·y³)))
                String inner = op("Mul", op("Add", y, op("Mul", op("Mul", op("Mul", y, y), y), constant(name + "_gelu_c", 0.044715f))),
                        constant(name + "_gelu_k", (float) Math.sqrt(2 / Math.PI)));
                y = op("Mul", op("Mul", y, constant(name + "_half", 0.5f)), op("Add", op("Tanh", inner), constant(name + "_one", 1f)));
                y = op("Add", op("MatMul", y, weight(prefix + "linear_2.weight", true)), weight(prefix + "linear_2.bias", false));
            }
            // frame index of each row = placeholders up to and including it − 1 (0 before the first)
            String isPlaceholder = op("Equal", "input_ids", int64Scalar(name + "_token", placeholder));
            String count = op("CumSum", op("Cast", new Onnx.Pb[]{Onnx.intAttribute("to", Onnx.INT64)}, isPlaceholder), scalar(1));
            String frame = op("Max", op("Sub", count, scalar(1)), scalar(0));
            String index = op("Expand", op("Unsqueeze", frame, ints(2)), op("Shape", x));
            String picked = op("GatherElements", new Onnx.Pb[]{Onnx.intAttribute("axis", 1)}, y, index);
            return op("Where", op("Unsqueeze", isPlaceholder, ints(2)), picked, x);
        }

        String op(String type, String... inputs) {
            return op(type, new Onnx.Pb[0], inputs);
        }

        String op(String type, Onnx.Pb[] attributes, String... inputs) {
            String out = type.toLowerCase() + "_" + next++;
            Onnx.Pb node = Onnx.node(type, out, inputs, out);
            for (Onnx.Pb a : attributes) node.message(5, a);
            pb.message(1, node);
            return out;
        }

        static Onnx.Pb[] perm(long... axes) {
            return new Onnx.Pb[]{Onnx.intsAttribute("perm", axes)};
        }

        /** A model weight ([out, in] stored as [in, out] when transposed), inline or in the data file. */
        String weight(String name, boolean transpose) throws IOException {
            int[] shape = model.layout.get(name).shape();
            float[] v = model.download(name);
            long[] dims = new long[shape.length];
            for (int i = 0; i < shape.length; i++) dims[i] = shape[i];
            String stored = name;
            if (transpose) {
                v = transpose(v, shape[0], shape[1]);
                dims = new long[]{shape[1], shape[0]};
                stored = name + ".T";
            }
            if (data == null) {
                pb.message(5, Onnx.floatTensor(stored, v, dims));
                return stored;
            }
            long pad = (ALIGN - dataOffset % ALIGN) % ALIGN;
            data.write(new byte[(int) pad]);
            dataOffset += pad;
            ByteBuffer chunk = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < v.length; ) {
                chunk.clear();
                int n = Math.min(v.length - i, chunk.capacity() / 4);
                chunk.asFloatBuffer().put(v, i, n);
                data.write(chunk.array(), 0, 4 * n);
                i += n;
            }
            pb.message(5, Onnx.externalFloatTensor(stored, dataName, dataOffset, 4L * v.length, dims));
            dataOffset += 4L * v.length;
            return stored;
        }

        /** A small float initializer (tables, constants): always inline. */
        String small(String name, float[] values, long... dims) {
            pb.message(5, Onnx.floatTensor(name, values, dims));
            return name;
        }

        /** A float scalar (0-d) initializer. */
        String constant(String name, float value) {
            return small(name, new float[]{value});
        }

        String int64Scalar(String name, long value) {
            pb.message(5, Onnx.int64Tensor(name, new long[]{value}));
            return name;
        }

        /** An int64 scalar constant. */
        String scalar(long value) {
            return int64Scalar("scalar_" + next++, value);
        }

        /** A 1-D int64 constant (shapes, axes, slice bounds). */
        String ints(long... values) {
            String name = "ints_" + next++;
            pb.message(5, Onnx.int64Tensor(name, values, values.length));
            return name;
        }

        /** w · x / sqrt(mean(x²) + eps) over the last axis. */
        String rmsnorm(String x, String weight, String eps, String two) throws IOException {
            String ms = op("ReduceMean", new Onnx.Pb[]{Onnx.intsAttribute("axes", -1), Onnx.intAttribute("keepdims", 1)}, op("Pow", x, two));
            return op("Mul", op("Div", x, op("Sqrt", op("Add", ms, eps))), weight(weight, false));
        }

        /** x · Wᵀ (+ bias) with W [out, in] from the model. */
        String linear(String x, String prefix, boolean bias) throws IOException {
            String y = op("MatMul", x, weight(prefix + ".weight", true));
            return bias ? op("Add", y, weight(prefix + ".bias", false)) : y;
        }

        /** [b, t, n·d] → [b, n, t, d]. */
        String heads(String x, int n, int d) {
            return op("Transpose", perm(0, 2, 1, 3), op("Reshape", x, ints(0, 0, n, d)));
        }

        /** x·cos + rotate_half(x)·sin on [b, n, t, d]; rotate_half(x) = concat(−x[…, d/2:], x[…, :d/2]). */
        String rope(String x, String cos, String sin, int d) {
            String axis = ints(3);
            String lo = op("Slice", x, ints(0), ints(d / 2), axis), hi = op("Slice", x, ints(d / 2), ints(d), axis);
            String rotated = op("Concat", new Onnx.Pb[]{Onnx.intAttribute("axis", -1)}, op("Neg", hi), lo);
            return op("Add", op("Mul", x, cos), op("Mul", rotated, sin));
        }
    }

    /**
     * cos and sin tables [positions, d]: element i and i + d/2 share the angle pos · invFreq[i], an
     * fp32 product with cos/sin taken in double and rounded, as the cpu rope kernel does.
     */
    static float[][] ropeTables(int positions, int d, float theta) {
        int half = d / 2;
        float[] cos = new float[positions * d], sin = new float[positions * d];
        float[] invFreq = CpuKernels.ropeInverseFrequencies(d, theta);
        for (int i = 0; i < half; i++) {
            for (int p = 0; p < positions; p++) {
                float angle = (float) p * invFreq[i];
                cos[p * d + i] = cos[p * d + i + half] = (float) Math.cos(angle);
                sin[p * d + i] = sin[p * d + i + half] = (float) Math.sin(angle);
            }
        }
        return new float[][]{cos, sin};
    }

    /** w [rows, cols] → [cols, rows]. */
    private static float[] transpose(float[] w, int rows, int cols) {
        float[] out = new float[w.length];
        for (int r = 0; r < rows; r++) for (int j = 0; j < cols; j++) out[j * rows + r] = w[r * cols + j];
        return out;
    }
}
