package io.hintgrpo.engine.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Lora;
import io.hintgrpo.engine.model.LoraConfig;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.ParamLayout;
import io.hintgrpo.engine.model.TestModels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * PEFT adapter directories: what save writes is PEFT's layout (config keys, tensor names, the
 * projectors as modules_to_save), load brings back the same adapter bit for bit, and every
 * variant or damage the engine cannot compute is refused naming the file and the reason, with
 * the model left without an adapter.
 */
class PeftAdapterTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final LoraConfig QVD = LoraConfig.of(3, 6, List.of("q_proj", "v_proj", "down_proj"));

    @TempDir
    Path dir;

    /** A multimodal model with an adapter whose A, B and projectors all differ from their starting values. */
    private static Model adapted(long seed) {
        Model m = TestModels.perturbed(TestModels.multimodalConfig("mlp"), seed);
        Lora lora = m.attachLora(QVD, seed);
        TestModels.randomizeLoraB(lora, seed, 0.3);
        SplittableRandom rng = new SplittableRandom(seed);
        for (ParamLayout.Entry e : lora.layout.entries()) {
            if (!e.name().startsWith("multi_modal_projector.")) continue;
            float[] v = lora.download(e.name());
            for (int i = 0; i < v.length; i++) v[i] += (float) (0.1 * rng.nextGaussian());
            lora.upload(e.name(), v);
        }
        return m;
    }

    @Test
    void savedAdapterHasPeftsNamesAndLoadsBackBitForBit() throws Exception {
        Path out = dir.resolve("adapter");
        try (Model m = adapted(3); Model base = TestModels.perturbed(TestModels.multimodalConfig("mlp"), 3)) {
            PeftAdapter.save(m.lora(), out, "/models/base");
            JsonNode c = JSON.readTree(out.resolve(PeftAdapter.CONFIG).toFile());
            assertEquals("LORA", c.get("peft_type").asText());
            assertEquals("CAUSAL_LM", c.get("task_type").asText());
            assertEquals(3, c.get("r").asInt());
            assertEquals(6, c.get("lora_alpha").asInt());
            assertEquals("[\"q_proj\",\"v_proj\",\"down_proj\"]", c.get("target_modules").toString());
            assertEquals("[\"multi_modal_projector\"]", c.get("modules_to_save").toString());
            assertEquals("none", c.get("bias").asText());
            assertEquals(0.0, c.get("lora_dropout").asDouble());
            assertFalse(c.get("use_rslora").asBoolean() || c.get("use_dora").asBoolean() || c.get("fan_in_fan_out").asBoolean());
            assertEquals("/models/base", c.get("base_model_name_or_path").asText());
            try (Safetensors st = Safetensors.open(out.resolve(PeftAdapter.WEIGHTS))) {
                assertEquals("pt", st.metadata().get("format"));
                assertArrayEquals(new int[]{3, 24}, st.info("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight").shape());
                assertArrayEquals(new int[]{24, 3}, st.info("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight").shape());
                assertArrayEquals(new int[]{24, 5}, st.info("base_model.model.multi_modal_projector.audio.linear_1.weight").shape());
                assertTrue(st.has("base_model.model.multi_modal_projector.vision.linear_2.bias"));
                assertEquals(m.lora().layout.entries().size(), st.tensors().size(), "every adapter and projector tensor, nothing else");
            }

            Lora back = PeftAdapter.load(base, out);
            assertEquals(QVD, back.config);
            for (ParamLayout.Entry e : m.lora().layout.entries())
                assertArrayEquals(m.lora().download(e.name()), back.download(e.name()), 0f, e.name());
            Batch b = Batch.pack(m.config, TestModels.randomSequences(m.config, new SplittableRandom(5), 9, 6));
            assertArrayEquals(m.logits(b), base.logits(b), 0f, "the loaded adapter computes what the saved one did");
        }
    }

    @Test
    void anAdapterWithoutModulesToSaveKeepsTheBasesProjectors() throws Exception {
        Path out = dir.resolve("adapter");
        try (Model m = adapted(4); Model base = TestModels.perturbed(TestModels.multimodalConfig("mlp"), 4)) {
            PeftAdapter.save(m.lora(), out, null);
            rewrite(out, cfg -> cfg.putNull("modules_to_save"), names -> names.keySet().removeIf(n -> n.contains("multi_modal_projector")));
            Lora lora = PeftAdapter.load(base, out);
            String w = "multi_modal_projector.audio.linear_1.weight";
            assertArrayEquals(base.download(w), lora.download(w), 0f);
        }
    }

    @Test
    void everyUnsupportedVariantOrDamageIsRefusedNamingIt() throws Exception {
        Path good = dir.resolve("good");
        try (Model m = adapted(5)) {
            PeftAdapter.save(m.lora(), good, null);
        }
        record Case(String what, java.util.function.Consumer<ObjectNode> config, java.util.function.Consumer<Map<String, String>> tensors,
                    String file, String expected) {}
        java.util.function.Consumer<ObjectNode> sameConfig = c -> {};
        java.util.function.Consumer<Map<String, String>> sameTensors = t -> {};
        String qA = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
        List<Case> cases = List.of(
                new Case("rsLoRA", c -> c.put("use_rslora", true), sameTensors, PeftAdapter.CONFIG, "use_rslora is true"),
                new Case("DoRA", c -> c.put("use_dora", true), sameTensors, PeftAdapter.CONFIG, "use_dora is true"),
                new Case("LoRA biases", c -> c.put("lora_bias", true), sameTensors, PeftAdapter.CONFIG, "lora_bias is true"),
                new Case("fan in fan out", c -> c.put("fan_in_fan_out", true), sameTensors, PeftAdapter.CONFIG, "fan_in_fan_out is true"),
                new Case("IA3", c -> c.put("peft_type", "IA3"), sameTensors, PeftAdapter.CONFIG, "peft_type is \"IA3\""),
                new Case("no peft type", c -> c.remove("peft_type"), sameTensors, PeftAdapter.CONFIG, "peft_type is missing"),
                new Case("a classifier", c -> c.put("task_type", "SEQ_CLS"), sameTensors, PeftAdapter.CONFIG, "task_type is \"SEQ_CLS\""),
                new Case("trained biases", c -> c.put("bias", "lora_only"), sameTensors, PeftAdapter.CONFIG, "bias is \"lora_only\""),
                new Case("some layers", c -> c.putArray("layers_to_transform").add(0), sameTensors, PeftAdapter.CONFIG, "layers_to_transform is [0]"),
                new Case("ranks per module", c -> c.putObject("rank_pattern").put("q_proj", 8), sameTensors, PeftAdapter.CONFIG, "rank_pattern is"),
                new Case("alphas per module", c -> c.putObject("alpha_pattern").put("q_proj", 8), sameTensors, PeftAdapter.CONFIG, "alpha_pattern is"),
                new Case("a regex", c -> c.put("target_modules", ".*proj"), sameTensors, PeftAdapter.CONFIG, "target_modules is the string \".*proj\""),
                new Case("all-linear", c -> c.put("target_modules", "all-linear"), sameTensors, PeftAdapter.CONFIG, "target_modules is the string"),
                new Case("an unknown target", c -> c.putArray("target_modules").add("q_proj").add("qkv"), sameTensors, PeftAdapter.CONFIG,
                        "unknown LoRA target module 'qkv'"),
                new Case("another saved module", c -> c.putArray("modules_to_save").add("lm_head"), sameTensors, PeftAdapter.CONFIG,
                        "modules_to_save holds \"lm_head\""),
                new Case("rank 0", c -> c.put("r", 0), sameTensors, PeftAdapter.CONFIG, "r must be a whole number ≥ 1"),
                new Case("a missing tensor", sameConfig, t -> t.remove(qA), PeftAdapter.WEIGHTS, "tensor " + qA + " is missing"),
                new Case("a foreign tensor", sameConfig, t -> t.put("base_model.model.lm_head.lora_A.weight", qA), PeftAdapter.WEIGHTS,
                        "tensor base_model.model.lm_head.lora_A.weight is not part of this adapter"),
                new Case("another rank in the file", c -> c.put("r", 4), sameTensors, PeftAdapter.WEIGHTS,
                        "tensor " + qA + " has shape [3, 24], this model and adapter_config.json expect [4, 24]"));
        for (Case c : cases) {
            Path bad = dir.resolve("bad-" + c.what().replace(' ', '-'));
            copy(good, bad);
            rewrite(bad, c.config(), c.tensors());
            try (Model m = TestModels.perturbed(TestModels.multimodalConfig("mlp"), 5)) {
                BadInputException e = assertThrows(BadInputException.class, () -> PeftAdapter.load(m, bad), c.what());
                assertTrue(e.getMessage().startsWith(bad.resolve(c.file()) + ": ") && e.getMessage().contains(c.expected()),
                        c.what() + ": " + e.getMessage());
                assertNull(m.lora(), c.what() + ": a refused adapter leaves no adapter attached");
            }
        }
        try (Model text = TestModels.perturbed(TestModels.textConfig(), 5)) {
            BadInputException e = assertThrows(BadInputException.class, () -> PeftAdapter.load(text, good));
            assertTrue(e.getMessage().contains("modules_to_save names multi_modal_projector, but the model has no modality projectors"), e.getMessage());
        }
        BadInputException e = assertThrows(BadInputException.class, () -> PeftAdapter.readConfig(dir));
        assertEquals(dir + ": no adapter_config.json (not a PEFT adapter directory)", e.getMessage());
    }

    private static void copy(Path from, Path to) throws Exception {
        Files.createDirectories(to);
        for (String f : new String[]{PeftAdapter.CONFIG, PeftAdapter.WEIGHTS}) Files.copy(from.resolve(f), to.resolve(f));
    }

    /**
     * Edits an adapter directory: its config, and its tensors as a map key → the key whose values
     * it takes (removing an entry drops the tensor, adding one copies another's values).
     */
    private static void rewrite(Path adapter, java.util.function.Consumer<ObjectNode> config,
                                java.util.function.Consumer<Map<String, String>> tensors) throws Exception {
        ObjectNode c = (ObjectNode) JSON.readTree(adapter.resolve(PeftAdapter.CONFIG).toFile());
        config.accept(c);
        Files.writeString(adapter.resolve(PeftAdapter.CONFIG), c.toString());
        Map<String, int[]> shapes = new LinkedHashMap<>();
        Map<String, float[]> values = new LinkedHashMap<>();
        try (Safetensors st = Safetensors.open(adapter.resolve(PeftAdapter.WEIGHTS))) {
            Map<String, String> source = new LinkedHashMap<>();
            for (String n : st.tensors().keySet()) source.put(n, n);
            tensors.accept(source);
            for (Map.Entry<String, String> s : source.entrySet()) {
                shapes.put(s.getKey(), st.info(s.getValue()).shape());
                values.put(s.getKey(), st.read(s.getValue()));
            }
        }
        Safetensors.write(adapter.resolve(PeftAdapter.WEIGHTS), Safetensors.Dtype.F32, shapes, values::get);
    }
}
