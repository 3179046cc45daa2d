package io.hintgrpo.engine.model;

import io.hintgrpo.engine.BadInputException;
import org.junit.jupiter.api.Test;

import java.util.Comparator;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class ParamLayoutTest {

    @Test
    void qwen25HalfBillionHasItsPublishedParameterCount() {
        ParamLayout layout = new ParamLayout(Presets.qwen25_05b());
        assertEquals(494_032_768L, layout.count());
        assertFalse(layout.has("lm_head.weight"), "tied: no separate head");
        assertArrayEquals(new int[]{128, 896}, layout.get("model.layers.23.self_attn.k_proj.weight").shape());
    }

    @Test
    void tensorsDoNotOverlapMatricesComeFirstAndPackedGroupsAreAdjacent() {
        for (ModelConfig cfg : List.of(TestModels.textConfig(), TestModels.multimodalConfig("mlp"), Presets.embeddedDefault())) {
            ParamLayout layout = new ParamLayout(cfg);
            List<ParamLayout.Entry> sorted = layout.entries().stream().sorted(Comparator.comparingLong(ParamLayout.Entry::offset)).toList();
            for (int i = 1; i < sorted.size(); i++)
                assertTrue(sorted.get(i - 1).offset() + sorted.get(i - 1).size() <= sorted.get(i).offset(), "overlap at " + sorted.get(i).name());
            for (ParamLayout.Entry e : layout.entries()) {
                assertEquals(e.shape().length == 2, e.decay(), e.name());
                assertEquals(e.decay(), e.offset() < layout.decayEnd(), e.name() + " on the wrong side of decayEnd");
            }
            for (int l = 0; l < cfg.numLayers(); l++) {
                String p = "model.layers." + l + ".";
                adjacent(layout, p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight");
                adjacent(layout, p + "self_attn.k_proj.weight", p + "self_attn.v_proj.weight");
                adjacent(layout, p + "self_attn.q_proj.bias", p + "self_attn.k_proj.bias");
                adjacent(layout, p + "self_attn.k_proj.bias", p + "self_attn.v_proj.bias");
                adjacent(layout, p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight");
            }
            assertEquals(cfg.hasAudio(), layout.has("multi_modal_projector.audio.linear_1.weight"));
            assertEquals(cfg.hasAudio() && cfg.mlpProjector(), layout.has("multi_modal_projector.audio.linear_2.bias"));
        }
    }

    private static void adjacent(ParamLayout layout, String first, String second) {
        ParamLayout.Entry a = layout.get(first);
        assertEquals(a.offset() + a.size(), layout.offset(second), first + " | " + second);
    }

    @Test
    void inconsistentConfigsAreRefusedWithTheField() {
        String base = """
                {"hidden_size": %d, "intermediate_size": 8, "num_attention_heads": %d, "num_key_value_heads": %d,
                 "num_hidden_layers": 1, "vocab_size": 10}""";
        assertMessage(base.formatted(30, 4, 4), "hidden_size 30 is not divisible by num_attention_heads 4");
        assertMessage(base.formatted(32, 4, 3), "num_key_value_heads 3 does not divide num_attention_heads 4");
        assertMessage(base.formatted(12, 4, 4), "head dimension 3 is odd");
        assertMessage("{\"hidden_size\": 8, \"num_attention_heads\": 2}", "missing required field \"intermediate_size\"");
        assertMessage("{\"hidden_size\": \"eight\"}", "field \"hidden_size\" must be an integer");
        assertMessage("[1]", "expected a JSON object");
        assertMessage(base.formatted(32, 4, 2).replace("}", ", \"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4.0}}"),
                "rope_scaling {\"type\":\"yarn\",\"factor\":4.0} is not supported");
        assertMessage(base.formatted(32, 4, 2).replace("}", ", \"use_sliding_window\": true}"), "use_sliding_window true is not supported");
        assertMessage(base.formatted(32, 4, 2).replace("}", ", \"hidden_act\": \"gelu\"}"), "hidden_act \"gelu\" is not supported");
        assertMessage("{", "not valid JSON");
        assertMessage(base.formatted(32, 4, 2).replace("}", ", \"audio_feature_size\": 4, \"audio_token_id\": 10}"),
                "audio_token_id 10 is outside the vocabulary [0, 10)");
    }

    private static void assertMessage(String json, String expected) {
        BadInputException e = assertThrows(BadInputException.class, () -> ModelConfig.parse(json, "cfg.json"));
        assertTrue(e.getMessage().startsWith("cfg.json: "), e.getMessage());
        assertTrue(e.getMessage().contains(expected), e.getMessage());
    }

    @Test
    void ropeThetaIsReadFromRopeParametersToo() {
        ModelConfig cfg = ModelConfig.parse("""
                {"hidden_size": 32, "intermediate_size": 8, "num_attention_heads": 4, "num_key_value_heads": 2,
                 "num_hidden_layers": 1, "vocab_size": 10, "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}}""", "cfg.json");
        assertEquals(1e6f, cfg.ropeTheta());
        assertMessage("""
                {"hidden_size": 32, "intermediate_size": 8, "num_attention_heads": 4, "num_key_value_heads": 2,
                 "num_hidden_layers": 1, "vocab_size": 10, "rope_parameters": {"rope_type": "yarn", "rope_theta": 10000.0}}""",
                "rope_parameters.rope_type \"yarn\" is not supported");
    }

    @Test
    void configRoundTripsThroughJson() {
        ModelConfig cfg = TestModels.multimodalConfig("mlp");
        assertEquals(cfg, ModelConfig.parse(cfg.toJson(), "round trip"));
        String bf16 = cfg.toJson("bfloat16");
        assertTrue(bf16.contains("\"torch_dtype\" : \"bfloat16\""), bf16);
        assertEquals(cfg, ModelConfig.parse(bf16, "round trip"));
    }
}
