package io.hintgrpo.benchmarks;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;

import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.Map;

/**
 * Our model's text-only forward as an ONNX graph of standard operators (opset 17) with the
 * model's weights as initializers, for ONNX Runtime as the in-run reference of {@link ForwardBench}.
 * Input {@code input_ids} int64 [b, t] (every sequence t tokens long, no padding); output
 * {@code logits} float [b·t, vocab], the rows of {@link Model#logits}.
 *
 * <p>Per layer, as Hugging Face's Qwen2 computes it: RMSNorm as Pow/ReduceMean/Add/Sqrt/Div/Mul
 * (ORT may fuse it); q, k, v as MatMul + Add bias; RoPE as x·cos + rotate_half(x)·sin with cos/sin
 * tables [t, headDim] as initializers (angles computed as our rope kernel does, in fp32) and
 * rotate_half as Slice/Neg/Concat; GQA without copying K/V: q is viewed as [b, kvHeads, rep, t, d]
 * and k, v as [b, kvHeads, 1, t, d], so MatMul broadcasts each KV head over its rep query heads
 * (query head h = kv·rep + r reads KV head h / rep); scores scaled, a causal mask added, Softmax;
 * O projection and residual; SwiGLU as g·Sigmoid(g)·u; then the final norm and the LM head.
 * Weights are stored transposed ([in, out]) so every projection is a plain MatMul.
 */
final class OnnxForwardModel {
    private OnnxForwardModel() {}

    static byte[] build(Model model, int b, int t) {
        ModelConfig cfg = model.config;
        int c = cfg.hiddenSize(), heads = cfg.numHeads(), kv = cfg.numKvHeads(), d = cfg.headDim();
        int rep = heads / kv, half = d / 2, vocab = cfg.vocabSize();
        Graph g = new Graph(model, cfg.rmsNormEps());

        // rope tables, [t, d]: element i and i + d/2 share the angle pos · invFreq[i]
        float[] cos = new float[t * d], sin = new float[t * d];
        for (int p = 0; p < t; p++)
            for (int i = 0; i < half; i++) {
                float invFreq = (float) (1.0 / Math.pow(cfg.ropeTheta(), (float) (2 * i) / d));
                float angle = (float) p * invFreq;
                cos[p * d + i] = cos[p * d + i + half] = (float) Math.cos(angle);
                sin[p * d + i] = sin[p * d + i + half] = (float) Math.sin(angle);
            }
        String cosT = g.init("rope_cos", cos, t, d), sinT = g.init("rope_sin", sin, t, d);
        float[] mask = new float[t * t];
        for (int i = 0; i < t; i++) for (int j = i + 1; j < t; j++) mask[i * t + j] = Float.NEGATIVE_INFINITY;
        String maskT = g.init("causal_mask", mask, t, t);
        String scale = g.init("attn_scale", new float[]{(float) (1.0 / Math.sqrt(d))});

        String x = g.op("Reshape", g.op("Gather", g.init("model.embed_tokens.weight", model.download("model.embed_tokens.weight"), vocab, c),
                "input_ids"), g.ints((long) b * t, c));
        for (int l = 0; l < cfg.numLayers(); l++) {
            String p = "model.layers." + l + ".";
            String h = g.rmsnorm(x, p + "input_layernorm.weight", c);
            String q = g.linear(h, p + "self_attn.q_proj", c, heads * d, true);
            String k = g.linear(h, p + "self_attn.k_proj", c, kv * d, true);
            String v = g.linear(h, p + "self_attn.v_proj", c, kv * d, true);
            // [b·t, n·d] → [b, n, t, d], rope, then the GQA view [b, kv, rep or 1, t, d]
            q = g.op("Reshape", g.rope(g.heads(q, b, t, heads, d), cosT, sinT, half, d), g.ints(b, kv, rep, t, d));
            k = g.op("Reshape", g.rope(g.heads(k, b, t, kv, d), cosT, sinT, half, d), g.ints(b, kv, 1, t, d));
            v = g.op("Reshape", g.heads(v, b, t, kv, d), g.ints(b, kv, 1, t, d));
            String scores = g.op("Add", g.op("Mul", g.op("MatMul", q, g.op("Transpose", new Onnx.Pb[]{Onnx.intsAttribute("perm", 0, 1, 2, 4, 3)}, k)), scale), maskT);
            String att = g.op("MatMul", g.op("Softmax", new Onnx.Pb[]{Onnx.intAttribute("axis", -1)}, scores), v);
            att = g.op("Reshape", g.op("Transpose", new Onnx.Pb[]{Onnx.intsAttribute("perm", 0, 2, 1, 3)},
                    g.op("Reshape", att, g.ints(b, heads, t, d))), g.ints((long) b * t, (long) heads * d));
            x = g.op("Add", x, g.linear(att, p + "self_attn.o_proj", heads * d, c, false));
            h = g.rmsnorm(x, p + "post_attention_layernorm.weight", c);
            String gate = g.linear(h, p + "mlp.gate_proj", c, cfg.intermediateSize(), false);
            String up = g.linear(h, p + "mlp.up_proj", c, cfg.intermediateSize(), false);
            String act = g.op("Mul", g.op("Mul", gate, g.op("Sigmoid", gate)), up);
            x = g.op("Add", x, g.linear(act, p + "mlp.down_proj", cfg.intermediateSize(), c, false));
        }
        String head = g.init("lm_head.T", transpose(model.download(model.lmHeadName()), vocab, c), c, vocab);
        g.pb.message(1, Onnx.node("MatMul", "lm_head", new String[]{g.rmsnorm(x, "model.norm.weight", c), head}, "logits"));
        g.pb.string(2, "hintgrpo_forward")
                .message(11, Onnx.valueInfo("input_ids", Onnx.INT64, b, t))
                .message(12, Onnx.valueInfo("logits", Onnx.FLOAT, (long) b * t, vocab));
        return Onnx.model(g.pb);
    }

    /** The batch's token ids as the graph's input; every sequence must fill the t positions (the graph has no padding mask). */
    static OnnxTensor inputIds(OrtEnvironment env, Batch batch) throws OrtException {
        long[] ids = new long[batch.rows()];
        for (int s = 0; s < batch.b; s++)
            if (batch.lengths[s] != batch.t) throw new IllegalArgumentException("sequence " + s + " is shorter than the batch (padding is not modelled)");
        for (int i = 0; i < ids.length; i++) {
            if (batch.embedIds[i] < 0) throw new IllegalArgumentException("row " + i + " is a modality placeholder (text-only graph)");
            ids[i] = batch.embedIds[i];
        }
        return OnnxTensor.createTensor(env, LongBuffer.wrap(ids), new long[]{batch.b, batch.t});
    }

    /** ‖ORT logits − Model.logits‖ / ‖Model.logits‖ on the batch: the session computes what our model does. */
    static double relativeError(OrtEnvironment env, OrtSession session, Model model, Batch batch) throws OrtException {
        float[] ours = model.logits(batch);
        try (OnnxTensor ids = inputIds(env, batch); OrtSession.Result r = session.run(Map.of("input_ids", ids))) {
            FloatBuffer theirs = ((OnnxTensor) r.get(0)).getFloatBuffer();
            if (theirs.remaining() != ours.length)
                throw new IllegalStateException("ORT gave " + theirs.remaining() + " logits, the model " + ours.length);
            double num = 0, den = 0;
            for (int i = 0; i < ours.length; i++) {
                double diff = theirs.get(i) - ours[i];
                num += diff * diff;
                den += (double) ours[i] * ours[i];
            }
            return Math.sqrt(num / den);
        }
    }

    /** w [rows, cols] → [cols, rows]. */
    private static float[] transpose(float[] w, int rows, int cols) {
        float[] out = new float[w.length];
        for (int r = 0; r < rows; r++) for (int j = 0; j < cols; j++) out[j * rows + r] = w[r * cols + j];
        return out;
    }

    /** Nodes and initializers appended to one GraphProto (node = 1, initializer = 5), with generated value names. */
    private static final class Graph {
        final Onnx.Pb pb = new Onnx.Pb();
        final Model model;
        final String eps, two;
        int next;

        Graph(Model model, float eps) {
            this.model = model;
            this.eps = init("rms_eps", new float[]{eps});
            this.two = init("two", new float[]{2f});
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

        String init(String name, float[] values, long... dims) {
            pb.message(5, Onnx.floatTensor(name, values, dims));
            return name;
        }

        /** A 1-D int64 constant (shapes, slice bounds). */
        String ints(long... values) {
            String name = "ints_" + next++;
            pb.message(5, Onnx.int64Tensor(name, values, values.length));
            return name;
        }

        /** w · x / sqrt(mean(x²) + eps) over the last axis. */
        String rmsnorm(String x, String weight, int c) {
            String ms = op("ReduceMean", new Onnx.Pb[]{Onnx.intsAttribute("axes", -1), Onnx.intAttribute("keepdims", 1)}, op("Pow", x, two));
            String w = init(weight, model.download(weight), c);
            return op("Mul", op("Div", x, op("Sqrt", op("Add", ms, eps))), w);
        }

        /** x · Wᵀ (+ bias) with W [out, in] from the model, stored transposed. */
        String linear(String x, String prefix, int in, int out, boolean bias) {
            String y = op("MatMul", x, init(prefix + ".weight.T", transpose(model.download(prefix + ".weight"), out, in), in, out));
            return bias ? op("Add", y, init(prefix + ".bias", model.download(prefix + ".bias"), out)) : y;
        }

        /** [b·t, n·d] → [b, n, t, d]. */
        String heads(String x, int b, int t, int n, int d) {
            return op("Transpose", new Onnx.Pb[]{Onnx.intsAttribute("perm", 0, 2, 1, 3)}, op("Reshape", x, ints(b, t, n, d)));
        }

        /** x·cos + rotate_half(x)·sin on [b, n, t, d]; rotate_half(x) = concat(−x[…, d/2:], x[…, :d/2]). */
        String rope(String x, String cos, String sin, int half, int d) {
            String axis = ints(3);
            String lo = op("Slice", x, ints(0), ints(half), axis), hi = op("Slice", x, ints(half), ints(d), axis);
            String rotated = op("Concat", new Onnx.Pb[]{Onnx.intAttribute("axis", -1)}, op("Neg", hi), lo);
            return op("Add", op("Mul", x, cos), op("Mul", rotated, sin));
        }
    }
}
