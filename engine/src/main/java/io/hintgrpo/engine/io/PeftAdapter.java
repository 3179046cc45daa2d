package io.hintgrpo.engine.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.model.Lora;
import io.hintgrpo.engine.model.LoraConfig;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ParamLayout;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * A LoRA adapter directory as Hugging Face PEFT writes it: {@code adapter_config.json} and
 * {@code adapter_model.safetensors}. Tensor keys are PEFT's saved names (the adapter name
 * "default" stripped): {@code base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight}
 * [r, in] and {@code …lora_B.weight} [out, r] (mlp.* for gate/up/down), and the trained
 * projectors, a module PEFT saves whole (modules_to_save), as
 * {@code base_model.model.multi_modal_projector.audio.linear_1.weight} and the like.
 *
 * <p>Only what the engine computes is accepted: plain LoRA (y = W·x + (alpha/r)·B·A·x) on the
 * q/k/v/o/gate/up/down Linears of every layer. Anything else in the config (rsLoRA, DoRA, another
 * PEFT type or task, LoRA biases, per-layer ranks or layers, a regex target) is refused with the
 * key that says so, never loaded into a model that would then compute something else.
 */
public final class PeftAdapter {
    public static final String CONFIG = "adapter_config.json", WEIGHTS = "adapter_model.safetensors";
    /** The module PEFT saves whole beside the adapters when the model has modality projectors. */
    public static final String PROJECTOR_MODULE = "multi_modal_projector";
    private static final String PEFT_PREFIX = "base_model.model.";
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Keys that must be false or absent: each switches on a LoRA variant the engine does not compute. */
    private static final List<String> MUST_BE_FALSE = List.of("use_rslora", "use_dora", "fan_in_fan_out", "lora_bias");
    /** Keys that must be absent, null or empty: per-layer choices and patterns the engine does not apply. */
    private static final List<String> MUST_BE_EMPTY = List.of("layers_to_transform", "layers_pattern", "rank_pattern", "alpha_pattern",
            "exclude_modules", "target_parameters", "layer_replication");

    private PeftAdapter() {}

    /** Whether dir holds an adapter (its adapter_config.json), rather than a model. */
    public static boolean isAdapter(Path dir) {
        return Files.isRegularFile(dir.resolve(CONFIG));
    }

    /** PEFT's saved key of a tensor of the adapter's layout (the projectors are under their base names there). */
    static String peftKey(String layoutName) {
        return layoutName.startsWith(PEFT_PREFIX) ? layoutName : PEFT_PREFIX + layoutName;
    }

    // ---- writing ----

    /**
     * Writes the adapter into dir: the weights, then the config, each through a temporary file
     * moved into place. baseModel (null: unknown) becomes base_model_name_or_path.
     */
    public static void save(Lora lora, Path dir, String baseModel) {
        Path weightsTmp = null, configTmp = null;
        try {
            Files.createDirectories(dir);
            Map<String, int[]> shapes = new LinkedHashMap<>();
            Map<String, String> layoutName = new LinkedHashMap<>();
            for (ParamLayout.Entry e : lora.layout.entries()) {
                shapes.put(peftKey(e.name()), e.shape());
                layoutName.put(peftKey(e.name()), e.name());
            }
            weightsTmp = ModelDir.tempFile(dir, WEIGHTS);
            Safetensors.write(weightsTmp, Safetensors.Dtype.F32, shapes, key -> lora.download(layoutName.get(key)));
            configTmp = ModelDir.tempFile(dir, CONFIG);
            Files.writeString(configTmp, configJson(lora, baseModel), StandardCharsets.UTF_8);
            Files.move(weightsTmp, dir.resolve(WEIGHTS), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            weightsTmp = null;
            Files.move(configTmp, dir.resolve(CONFIG), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            configTmp = null;
        } catch (IOException e) {
            throw new UncheckedIOException("saving the LoRA adapter to " + dir + ": " + e.getMessage(), e);
        } finally {
            ModelDir.deleteQuietly(weightsTmp);
            ModelDir.deleteQuietly(configTmp);
        }
    }

    /** adapter_config.json as PEFT writes it (keys sorted, as PEFT sorts them). */
    private static String configJson(Lora lora, String baseModel) throws IOException {
        LoraConfig c = lora.config;
        boolean projectors = lora.layout.entries().stream().anyMatch(e -> e.name().startsWith(PROJECTOR_MODULE + "."));
        ObjectNode o = JSON.createObjectNode();
        o.putObject("alpha_pattern");
        if (baseModel == null) o.putNull("base_model_name_or_path");
        else o.put("base_model_name_or_path", baseModel);
        o.put("bias", "none");
        o.put("fan_in_fan_out", false);
        o.put("inference_mode", true);
        o.put("init_lora_weights", true);
        o.putNull("layers_pattern");
        o.putNull("layers_to_transform");
        if (c.alpha() == Math.rint(c.alpha()) && Math.abs(c.alpha()) < 1e15) o.put("lora_alpha", (long) c.alpha());
        else o.put("lora_alpha", c.alpha());
        o.put("lora_dropout", 0.0);
        if (projectors) o.putArray("modules_to_save").add(PROJECTOR_MODULE);
        else o.putNull("modules_to_save");
        o.put("peft_type", "LORA");
        o.put("r", c.rank());
        o.putObject("rank_pattern");
        o.putNull("revision");
        c.targetNames().forEach(o.putArray("target_modules")::add);
        o.put("task_type", "CAUSAL_LM");
        o.put("use_dora", false);
        o.put("use_rslora", false);
        return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(o) + "\n";
    }

    // ---- reading ----

    /** What adapter_config.json says, once checked: the adapter's shape and whether it carries the projectors. */
    public record Config(LoraConfig lora, boolean projectors) {}

    /**
     * Reads and checks adapter_config.json. Every refusal names the file, the key and why: this
     * engine computes plain LoRA on q/k/v/o/gate/up/down of every layer, nothing else.
     */
    public static Config readConfig(Path dir) {
        Path file = dir.resolve(CONFIG);
        String where = file.toString();
        if (!Files.isRegularFile(file))
            throw new BadInputException(dir.toString(), "no " + CONFIG + " (not a PEFT adapter directory)");
        if (!(JsonFiles.read(file) instanceof ObjectNode o)) throw new BadInputException(where, "expected a JSON object");
        requireText(o, "peft_type", "LORA", where, "only LoRA adapters are supported");
        requireText(o, "task_type", "CAUSAL_LM", where, "the adapter must be for a causal language model");
        JsonNode bias = o.get("bias");
        if (bias != null && !bias.isNull() && !"none".equals(bias.asText()))
            throw new BadInputException(where, "bias is " + bias + "; only \"none\" is supported (the base's biases stay frozen)");
        for (String key : MUST_BE_FALSE) {
            JsonNode v = o.get(key);
            if (v != null && !v.isNull() && !(v.isBoolean() && !v.booleanValue()))
                throw new BadInputException(where, key + " is " + v + "; only plain LoRA is supported (" + key + " false)");
        }
        for (String key : MUST_BE_EMPTY) {
            JsonNode v = o.get(key);
            if (v != null && !v.isNull() && !(v.isContainerNode() && v.isEmpty()) && !(v.isTextual() && v.asText().isEmpty()))
                throw new BadInputException(where, key + " is " + v + "; only the same rank and alpha on every layer are supported");
        }
        JsonNode r = o.get("r");
        if (r == null || !r.canConvertToInt() || !r.isIntegralNumber() || r.intValue() < 1)
            throw new BadInputException(where, "r must be a whole number ≥ 1, got " + r);
        JsonNode alpha = o.get("lora_alpha");
        if (alpha == null || !alpha.isNumber() || !(alpha.doubleValue() > 0) || !Double.isFinite(alpha.doubleValue()))
            throw new BadInputException(where, "lora_alpha must be a positive number, got " + alpha);
        JsonNode targets = o.get("target_modules");
        if (targets != null && targets.isTextual())
            throw new BadInputException(where, "target_modules is the string " + targets + " (a regular expression or \"all-linear\"); "
                    + "only a list of module names is supported, e.g. [\"q_proj\", \"v_proj\"]");
        if (targets == null || !targets.isArray() || targets.isEmpty())
            throw new BadInputException(where, "target_modules must be a non-empty list of module names, got " + targets);
        List<String> names = new ArrayList<>();
        for (JsonNode t : targets) {
            if (!t.isTextual()) throw new BadInputException(where, "target_modules holds " + t + ", not a module name");
            names.add(t.asText());
        }
        LoraConfig lora;
        try {
            lora = LoraConfig.of(r.intValue(), alpha.doubleValue(), names);
        } catch (IllegalArgumentException e) {
            throw new BadInputException(where, "target_modules: " + e.getMessage());
        }
        boolean projectors = false;
        JsonNode save = o.get("modules_to_save");
        if (save != null && !save.isNull()) {
            if (!save.isArray()) throw new BadInputException(where, "modules_to_save must be a list, got " + save);
            for (JsonNode m : save) {
                if (!PROJECTOR_MODULE.equals(m.asText()))
                    throw new BadInputException(where, "modules_to_save holds " + m + "; only \"" + PROJECTOR_MODULE
                            + "\" (the modality projectors) is supported");
                projectors = true;
            }
        }
        return new Config(lora, projectors);
    }

    private static void requireText(ObjectNode o, String key, String expected, String where, String why) {
        JsonNode v = o.get(key);
        if (v == null || !expected.equals(v.asText()))
            throw new BadInputException(where, key + " is " + (v == null ? "missing" : v.toString()) + "; " + why + " (" + key
                    + " \"" + expected + "\")");
    }

    /**
     * Attaches the adapter of dir to model (its base frozen from here, as {@link Model#attachLora})
     * and fills it from adapter_model.safetensors: every A and B, and the projectors when
     * modules_to_save names them (else the adapter keeps the base's). Each tensor must be there,
     * with the shape this model and the config give it, finite, and nothing else may be in the
     * file; on any refusal the model is left without an adapter.
     */
    public static Lora load(Model model, Path dir) {
        Config cfg = readConfig(dir);
        Path file = dir.resolve(WEIGHTS);
        String where = file.toString();
        boolean modelHasProjectors = model.config.hasAudio() || model.config.hasVision();
        if (cfg.projectors() && !modelHasProjectors)
            throw new BadInputException(dir.resolve(CONFIG).toString(), "modules_to_save names " + PROJECTOR_MODULE
                    + ", but the model has no modality projectors (a text-only config.json)");
        if (!Files.isRegularFile(file)) throw new BadInputException(dir.toString(), "no " + WEIGHTS + " beside " + CONFIG);
        try (Safetensors st = Safetensors.open(file)) {
            Lora lora = model.attachLora(cfg.lora(), 0);
            try {
                Set<String> expected = new TreeSet<>();
                for (ParamLayout.Entry e : lora.layout.entries()) {
                    boolean projector = e.name().startsWith(PROJECTOR_MODULE + ".");
                    if (projector && !cfg.projectors()) continue;
                    String key = peftKey(e.name());
                    expected.add(key);
                    if (!st.has(key))
                        throw new BadInputException(where, "tensor " + key + " is missing (adapter_config.json: r " + cfg.lora().rank()
                                + ", target_modules " + cfg.lora().targetNames() + (projector ? ", modules_to_save " + PROJECTOR_MODULE : "") + ")");
                    Safetensors.Info info = st.info(key);
                    if (!Arrays.equals(info.shape(), e.shape()))
                        throw new BadInputException(where, "tensor " + key + " has shape " + Arrays.toString(info.shape())
                                + ", this model and adapter_config.json expect " + Arrays.toString(e.shape()));
                    float[] v = st.read(key);
                    ModelDir.requireFinite(v, where, key);
                    lora.upload(e.name(), v);
                }
                for (String key : st.tensors().keySet())
                    if (!expected.contains(key))
                        throw new BadInputException(where, "tensor " + key + " is not part of this adapter (adapter_config.json: target_modules "
                                + cfg.lora().targetNames() + (cfg.projectors() ? ", modules_to_save " + PROJECTOR_MODULE : ", no modules_to_save")
                                + "; this engine puts adapters on q/k/v/o/gate/up/down_proj of every layer)");
                return lora;
            } catch (RuntimeException e) {
                model.detachLora();
                throw e;
            }
        }
    }
}
