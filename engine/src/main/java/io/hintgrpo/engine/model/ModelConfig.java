package io.hintgrpo.engine.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.BadInputException;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The model's shape: a Hugging Face Qwen2 {@code config.json} plus our modality fields
 * ({@code audio_feature_size}, {@code vision_feature_size}: 0 = modality absent;
 * {@code audio_token_id}, {@code vision_token_id}: placeholder tokens; {@code projector_type}:
 * "linear" or "mlp" = Linear-GELU(tanh)-Linear). A real Qwen2/Qwen2.5 config loads as is.
 */
public record ModelConfig(
        int hiddenSize, int intermediateSize, int numHeads, int numKvHeads, int numLayers,
        int vocabSize, float rmsNormEps, float ropeTheta, boolean tieWordEmbeddings,
        int maxPositionEmbeddings,
        int audioFeatureSize, int visionFeatureSize, int audioTokenId, int visionTokenId,
        String projectorType) {

    private static final ObjectMapper JSON = new ObjectMapper();

    public ModelConfig {
        validate("config", hiddenSize, intermediateSize, numHeads, numKvHeads, numLayers, vocabSize,
                rmsNormEps, ropeTheta, maxPositionEmbeddings, audioFeatureSize, visionFeatureSize,
                audioTokenId, visionTokenId, projectorType);
    }

    public int headDim() { return hiddenSize / numHeads; }
    public int qDim() { return numHeads * headDim(); }
    public int kvDim() { return numKvHeads * headDim(); }
    /** Width of the packed q|k|v projection output. */
    public int qkvDim() { return qDim() + 2 * kvDim(); }
    public boolean hasAudio() { return audioFeatureSize > 0; }
    public boolean hasVision() { return visionFeatureSize > 0; }
    public boolean mlpProjector() { return projectorType.equals("mlp"); }

    public ModelConfig withModalities(int audioDim, int visionDim, int audioToken, int visionToken, String projector) {
        return new ModelConfig(hiddenSize, intermediateSize, numHeads, numKvHeads, numLayers, vocabSize,
                rmsNormEps, ropeTheta, tieWordEmbeddings, maxPositionEmbeddings,
                audioDim, visionDim, audioToken, visionToken, projector);
    }

    public static ModelConfig load(Path file) {
        return fromJson(io.hintgrpo.engine.io.JsonFiles.read(file), file.toString());
    }

    public static ModelConfig parse(String json, String where) {
        try {
            return fromJson(JSON.readTree(json), where);
        } catch (IOException e) {
            throw new BadInputException(where, "not valid JSON: " + e.getMessage());
        }
    }

    static ModelConfig fromJson(JsonNode root, String where) {
        if (root == null || !root.isObject()) throw new BadInputException(where, "expected a JSON object");
        int hidden = intField(root, "hidden_size", where, null);
        int heads = intField(root, "num_attention_heads", where, null);
        if (root.has("head_dim") && heads > 0 && hidden % heads == 0
                && intField(root, "head_dim", where, null) != hidden / heads)
            throw new BadInputException(where, "head_dim " + root.get("head_dim") + " differs from hidden_size / num_attention_heads = "
                    + hidden / heads + " (only the Qwen2 convention head_dim = hidden_size / heads is supported)");
        // features of other Qwen2 variants this engine does not implement: refuse rather than run a different model
        // transformers 5 writes rope_theta (and the rope type) inside rope_parameters
        JsonNode ropeParams = root.get("rope_parameters");
        if (ropeParams != null && ropeParams.isObject()) {
            String type = ropeParams.path("rope_type").asText("default");
            if (!type.equals("default"))
                throw new BadInputException(where, "rope_parameters.rope_type \"" + type + "\" is not supported (plain RoPE only)");
            if (!root.has("rope_theta") && ropeParams.has("rope_theta"))
                ((com.fasterxml.jackson.databind.node.ObjectNode) root).set("rope_theta", ropeParams.get("rope_theta"));
        }
        if (root.has("rope_scaling") && !root.get("rope_scaling").isNull())
            throw new BadInputException(where, "rope_scaling " + root.get("rope_scaling") + " is not supported (plain RoPE only)");
        if (root.has("use_sliding_window") && root.get("use_sliding_window").asBoolean(false))
            throw new BadInputException(where, "use_sliding_window true is not supported (full causal attention only)");
        if (root.has("hidden_act") && !root.get("hidden_act").asText().equals("silu"))
            throw new BadInputException(where, "hidden_act \"" + root.get("hidden_act").asText() + "\" is not supported (SwiGLU with silu only)");
        int audioDim = intField(root, "audio_feature_size", where, 0);
        int visionDim = intField(root, "vision_feature_size", where, 0);
        String projector = root.has("projector_type") ? root.get("projector_type").asText() : "linear";
        try {
            return new ModelConfig(
                    hidden,
                    intField(root, "intermediate_size", where, null),
                    heads,
                    intField(root, "num_key_value_heads", where, heads),
                    intField(root, "num_hidden_layers", where, null),
                    intField(root, "vocab_size", where, null),
                    (float) numberField(root, "rms_norm_eps", where, 1e-6),
                    (float) numberField(root, "rope_theta", where, 10000.0),
                    boolField(root, "tie_word_embeddings", where, false),
                    intField(root, "max_position_embeddings", where, 32768),
                    audioDim, visionDim,
                    intField(root, "audio_token_id", where, -1),
                    intField(root, "vision_token_id", where, -1),
                    projector);
        } catch (BadInputException e) {
            // re-thrown with the file as the place instead of the generic "config"
            throw new BadInputException(where, e.getMessage().substring("config: ".length()));
        }
    }

    /** The config as Hugging Face writes it for Qwen2, plus our modality fields. */
    public String toJson() {
        return toJson("float32");
    }

    /** As {@link #toJson()}, with the torch_dtype of the weights written beside it ("float32", "bfloat16"). */
    public String toJson(String torchDtype) {
        ObjectNode o = JSON.createObjectNode();
        o.putArray("architectures").add("Qwen2ForCausalLM");
        o.put("model_type", "qwen2");
        o.put("hidden_act", "silu");
        o.put("hidden_size", hiddenSize);
        o.put("intermediate_size", intermediateSize);
        o.put("num_attention_heads", numHeads);
        o.put("num_key_value_heads", numKvHeads);
        o.put("num_hidden_layers", numLayers);
        o.put("vocab_size", vocabSize);
        o.put("rms_norm_eps", (double) rmsNormEps);
        o.put("rope_theta", (double) ropeTheta);
        o.put("tie_word_embeddings", tieWordEmbeddings);
        o.put("max_position_embeddings", maxPositionEmbeddings);
        o.put("attention_dropout", 0.0);
        o.put("use_sliding_window", false);
        o.put("torch_dtype", torchDtype);
        o.put("audio_feature_size", audioFeatureSize);
        o.put("vision_feature_size", visionFeatureSize);
        o.put("audio_token_id", audioTokenId);
        o.put("vision_token_id", visionTokenId);
        o.put("projector_type", projectorType);
        try {
            return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(o);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void validate(String where, int hidden, int inter, int heads, int kvHeads, int layers, int vocab,
                                 float eps, float theta, int maxPos, int audioDim, int visionDim,
                                 int audioToken, int visionToken, String projector) {
        positive(where, "hidden_size", hidden);
        positive(where, "intermediate_size", inter);
        positive(where, "num_attention_heads", heads);
        positive(where, "num_key_value_heads", kvHeads);
        positive(where, "num_hidden_layers", layers);
        positive(where, "vocab_size", vocab);
        positive(where, "max_position_embeddings", maxPos);
        if (hidden % heads != 0)
            throw new BadInputException(where, "hidden_size " + hidden + " is not divisible by num_attention_heads " + heads);
        if (heads % kvHeads != 0)
            throw new BadInputException(where, "num_key_value_heads " + kvHeads + " does not divide num_attention_heads " + heads);
        if ((hidden / heads) % 2 != 0)
            throw new BadInputException(where, "head dimension " + hidden / heads + " is odd; rotary embedding needs it even");
        if (!(eps > 0) || !Float.isFinite(eps)) throw new BadInputException(where, "rms_norm_eps must be a positive number, got " + eps);
        if (!(theta > 0) || !Float.isFinite(theta)) throw new BadInputException(where, "rope_theta must be a positive number, got " + theta);
        if (audioDim < 0) throw new BadInputException(where, "audio_feature_size must be ≥ 0, got " + audioDim);
        if (visionDim < 0) throw new BadInputException(where, "vision_feature_size must be ≥ 0, got " + visionDim);
        if (audioDim > 0) tokenInVocab(where, "audio_token_id", audioToken, vocab);
        if (visionDim > 0) tokenInVocab(where, "vision_token_id", visionToken, vocab);
        if (audioDim > 0 && visionDim > 0 && audioToken == visionToken)
            throw new BadInputException(where, "audio_token_id and vision_token_id are both " + audioToken);
        if (!projector.equals("linear") && !projector.equals("mlp"))
            throw new BadInputException(where, "projector_type must be \"linear\" or \"mlp\", got \"" + projector + "\"");
    }

    private static void positive(String where, String field, int value) {
        if (value <= 0) throw new BadInputException(where, field + " must be positive, got " + value);
    }

    private static void tokenInVocab(String where, String field, int id, int vocab) {
        if (id < 0 || id >= vocab)
            throw new BadInputException(where, field + " " + id + " is outside the vocabulary [0, " + vocab + ")");
    }

    private static int intField(JsonNode root, String field, String where, Integer fallback) {
        JsonNode n = root.get(field);
        if (n == null || n.isNull()) {
            if (fallback == null) throw new BadInputException(where, "missing required field \"" + field + "\"");
            return fallback;
        }
        if (!n.isIntegralNumber() || !n.canConvertToInt())
            throw new BadInputException(where, "field \"" + field + "\" must be an integer, got " + n);
        return n.intValue();
    }

    private static double numberField(JsonNode root, String field, String where, double fallback) {
        JsonNode n = root.get(field);
        if (n == null || n.isNull()) return fallback;
        if (!n.isNumber()) throw new BadInputException(where, "field \"" + field + "\" must be a number, got " + n);
        return n.doubleValue();
    }

    private static boolean boolField(JsonNode root, String field, String where, boolean fallback) {
        JsonNode n = root.get(field);
        if (n == null || n.isNull()) return fallback;
        if (!n.isBoolean()) throw new BadInputException(where, "field \"" + field + "\" must be true or false, got " + n);
        return n.booleanValue();
    }
}
