package io.hintgrpo.engine.io;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.Bf16;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.ParamLayout;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.BiConsumer;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

class ModelDirTest {
    @TempDir
    Path tmp;

    final Kernels cpu = new CpuKernels();

    static ModelConfig config(boolean tied, boolean projectors) {
        ModelConfig c = new ModelConfig(16, 32, 4, 2, 2, 50, 1e-6f, 10000f, tied, 128, 0, 0, -1, -1, "linear");
        return projectors ? c.withModalities(6, 5, 48, 49, "mlp") : c;
    }

    /** Every parameter random (biases and norms too), so a tensor landing in the wrong place shows. */
    Model randomModel(Kernels kernels, ModelConfig cfg, long seed) {
        Model m = new Model(kernels, cfg);
        SplittableRandom rng = new SplittableRandom(seed);
        for (ParamLayout.Entry e : m.layout.entries()) {
            float[] v = new float[(int) e.size()];
            for (int i = 0; i < v.length; i++) v[i] = (float) (rng.nextDouble() * 2 - 1);
            m.upload(e.name(), v);
        }
        return m;
    }

    static void assertSameParams(Model want, Model got) {
        assertEquals(want.config, got.config);
        for (ParamLayout.Entry e : want.layout.entries())
            assertArrayEquals(SafetensorsTest.bits(want.download(e.name())), SafetensorsTest.bits(got.download(e.name())), e.name());
    }

    static BadInputException assertBad(Runnable r, Path file, String... phrases) {
        BadInputException e = assertThrows(BadInputException.class, r::run);
        assertTrue(e.getMessage().contains(file.toString()), () -> "message does not name " + file + ": " + e.getMessage());
        for (String p : phrases)
            assertTrue(e.getMessage().contains(p), () -> "message lacks \"" + p + "\": " + e.getMessage());
        return e;
    }

    /** Reads model.safetensors back as floats, lets the test edit names/shapes/values, writes it as F32. */
    static void rewrite(Path dir, BiConsumer<Map<String, int[]>, Map<String, float[]>> edit) throws IOException {
        Map<String, int[]> shapes = new LinkedHashMap<>();
        Map<String, float[]> values = new LinkedHashMap<>();
        Path f = dir.resolve(ModelDir.WEIGHTS);
        try (Safetensors st = Safetensors.open(f)) {
            for (Safetensors.Info t : st.tensors().values()) {
                shapes.put(t.name(), t.shape());
                values.put(t.name(), st.read(t.name()));
            }
        }
        edit.accept(shapes, values);
        Safetensors.write(f, Safetensors.Dtype.F32, shapes, values::get);
    }

    List<String> load(Path dir, Model want) {
        List<String> reports = new ArrayList<>();
        try (Model got = ModelDir.load(cpu, dir, 7, reports::add)) {
            if (want != null) assertSameParams(want, got);
        }
        return reports;
    }

    // ---- round trips ----

    @Test
    void savedAndLoadedF32IsIdenticalTiedUntiedWithAndWithoutProjectors() throws IOException {
        for (boolean tied : new boolean[]{true, false}) {
            for (boolean projectors : new boolean[]{true, false}) {
                Path dir = tmp.resolve("m-" + tied + "-" + projectors);
                try (Model m = randomModel(cpu, config(tied, projectors), 1)) {
                    ModelDir.save(m, dir, Safetensors.Dtype.F32);
                    List<String> reports = load(dir, m);
                    assertEquals(1, reports.size(), reports.toString()); // only the "loaded" summary
                    try (Safetensors st = Safetensors.open(dir.resolve(ModelDir.WEIGHTS))) {
                        assertEquals(!tied, st.has("lm_head.weight"));
                        assertEquals(projectors, st.has("multi_modal_projector.vision.linear_2.weight"));
                        assertEquals(m.layout.entries().size(), st.tensors().size());
                        for (ParamLayout.Entry e : m.layout.entries())
                            assertArrayEquals(e.shape(), st.info(e.name()).shape(), e.name());
                    }
                }
                try (Stream<Path> files = Files.list(dir)) {
                    assertEquals(List.of("config.json", "model.safetensors"),
                            files.map(p -> p.getFileName().toString()).sorted().toList());
                }
            }
        }
    }

    @Test
    void savedAndLoadedBf16IsTheRoundedParameters() {
        Path dir = tmp.resolve("bf16");
        try (Model m = randomModel(cpu, config(false, true), 2)) {
            ModelDir.save(m, dir, Safetensors.Dtype.BF16);
            try (Model got = ModelDir.load(cpu, dir, 0, null)) {
                for (ParamLayout.Entry e : m.layout.entries()) {
                    float[] want = m.download(e.name());
                    for (int i = 0; i < want.length; i++)
                        want[i] = Bf16.toFloat(Bf16.fromFloat(want[i]));
                    assertArrayEquals(want, got.download(e.name()), e.name());
                }
            }
        }
    }

    @Test
    void textOnlyCheckpointInitialisesProjectorsFromTheSeedAndSaysSo() throws IOException {
        Path dir = tmp.resolve("text");
        ModelConfig multimodal = config(true, true);
        try (Model text = randomModel(cpu, config(true, false), 3)) {
            ModelDir.save(text, dir, Safetensors.Dtype.F32);
            Files.writeString(dir.resolve(ModelDir.CONFIG), multimodal.toJson());
            List<String> reports = new ArrayList<>();
            try (Model got = ModelDir.load(cpu, dir, 7, reports::add);
                 Model fresh = new Model(cpu, multimodal)) {
                assertTrue(reports.contains("text-only checkpoint: initialised 8 projector tensors from seed 7"), reports.toString());
                for (ParamLayout.Entry e : got.layout.entries()) {
                    if (e.name().startsWith("multi_modal_projector.")) {
                        fresh.initialize(e.name(), 7);
                        assertArrayEquals(fresh.download(e.name()), got.download(e.name()), e.name());
                    } else {
                        assertArrayEquals(text.download(e.name()), got.download(e.name()), e.name());
                    }
                }
            }
        }
    }

    @Test
    void tiedConfigIgnoresACheckpointLmHeadAndReportsIt() throws IOException {
        Path dir = tmp.resolve("tied");
        try (Model untied = randomModel(cpu, config(false, false), 4)) {
            ModelDir.save(untied, dir, Safetensors.Dtype.F32);
        }
        Files.writeString(dir.resolve(ModelDir.CONFIG), config(true, false).toJson());
        List<String> reports = load(dir, null);
        assertTrue(reports.stream().anyMatch(r -> r.contains("ignoring lm_head.weight")), reports.toString());
        assertTrue(reports.stream().noneMatch(r -> r.contains("not used")), reports.toString());
    }

    @Test
    void extraTensorsAreReportedButRotaryBuffersAreNot() throws IOException {
        Path dir = tmp.resolve("extra");
        try (Model m = randomModel(cpu, config(false, false), 5)) {
            ModelDir.save(m, dir, Safetensors.Dtype.F32);
            rewrite(dir, (shapes, values) -> {
                shapes.put("model.layers.0.self_attn.rotary_emb.inv_freq", new int[]{2});
                values.put("model.layers.0.self_attn.rotary_emb.inv_freq", new float[]{1, 0.01f});
                shapes.put("vision_tower.patch.weight", new int[]{3});
                values.put("vision_tower.patch.weight", new float[]{1, 2, 3});
            });
            List<String> reports = load(dir, m);
            assertTrue(reports.contains(dir.resolve(ModelDir.WEIGHTS) + ": 1 tensor(s) not used by this config: vision_tower.patch.weight"),
                    reports.toString());
            assertTrue(reports.stream().noneMatch(r -> r.contains("inv_freq")), reports.toString());
        }
    }

    // ---- sharded checkpoints ----

    /** Splits model.safetensors into two shards plus an index, as Hugging Face does for big models. */
    static void shard(Path dir) throws IOException {
        Path single = dir.resolve(ModelDir.WEIGHTS);
        Map<String, int[]> a = new LinkedHashMap<>(), b = new LinkedHashMap<>();
        Map<String, float[]> values = new LinkedHashMap<>();
        StringBuilder index = new StringBuilder("{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
        try (Safetensors st = Safetensors.open(single)) {
            int i = 0;
            for (Safetensors.Info t : st.tensors().values()) {
                boolean first = i++ % 2 == 0;
                (first ? a : b).put(t.name(), t.shape());
                values.put(t.name(), st.read(t.name()));
                index.append(i > 1 ? ", " : "").append('"').append(t.name()).append("\": \"model-0000")
                        .append(first ? 1 : 2).append("-of-00002.safetensors\"");
            }
        }
        Safetensors.write(dir.resolve("model-00001-of-00002.safetensors"), Safetensors.Dtype.F32, a, values::get);
        Safetensors.write(dir.resolve("model-00002-of-00002.safetensors"), Safetensors.Dtype.BF16, b, values::get);
        Files.writeString(dir.resolve(ModelDir.INDEX), index.append("}}").toString());
        Files.delete(single);
    }

    @Test
    void shardedCheckpointLoads() throws IOException {
        Path dir = tmp.resolve("sharded");
        try (Model m = randomModel(cpu, config(false, true), 6)) {
            // values that bf16 holds exactly, so the BF16 shard loads back bit for bit
            for (ParamLayout.Entry e : m.layout.entries()) {
                float[] v = m.download(e.name());
                for (int i = 0; i < v.length; i++) v[i] = Bf16.toFloat(Bf16.fromFloat(v[i]));
                m.upload(e.name(), v);
            }
            ModelDir.save(m, dir, Safetensors.Dtype.F32);
            shard(dir);
            try (ModelDir.Tensors t = ModelDir.Tensors.open(dir)) {
                assertEquals(dir.resolve(ModelDir.INDEX), t.source());
                assertEquals(m.layout.entries().size(), t.names().size());
                assertEquals(dir.resolve("model-00002-of-00002.safetensors"), t.fileOf("model.layers.0.self_attn.q_proj.weight"));
                assertArrayEquals(m.download("model.norm.weight"), t.read("model.norm.weight"));
            }
            load(dir, m);
        }
    }

    @Test
    void shardedIndexNamingAMissingShardFails() throws IOException {
        Path dir = tmp.resolve("noshard");
        try (Model m = randomModel(cpu, config(true, false), 7)) {
            ModelDir.save(m, dir, Safetensors.Dtype.F32);
        }
        shard(dir);
        Files.delete(dir.resolve("model-00002-of-00002.safetensors"));
        assertBad(() -> load(dir, null), dir.resolve(ModelDir.INDEX),
                "shard file model-00002-of-00002.safetensors", "does not exist");
    }

    @Test
    void shardedIndexListingATensorItsShardLacksFails() throws IOException {
        Path dir = tmp.resolve("liar");
        try (Model m = randomModel(cpu, config(true, false), 8)) {
            ModelDir.save(m, dir, Safetensors.Dtype.F32);
        }
        shard(dir);
        Path index = dir.resolve(ModelDir.INDEX);
        // point one tensor's entry at the other shard
        String json = Files.readString(index), entry = "\"model.norm.weight\": \"model-0000";
        int at = json.indexOf(entry) + entry.length();
        char other = json.charAt(at) == '1' ? '2' : '1';
        Files.writeString(index, json.substring(0, at) + other + json.substring(at + 1));
        assertBad(() -> load(dir, null), index, "tensor model.norm.weight is listed in shard", "has no such tensor");
        Files.writeString(index, "{\"metadata\": {}}");
        assertBad(() -> load(dir, null), index, "no \"weight_map\"");
        Files.writeString(index, "{\"weight_map\": ");
        assertBad(() -> load(dir, null), index, "not valid JSON");
    }

    // ---- checkpoints that do not match their config ----

    Path savedDir(String name, ModelConfig cfg) {
        Path dir = tmp.resolve(name);
        try (Model m = randomModel(cpu, cfg, 9)) {
            ModelDir.save(m, dir, Safetensors.Dtype.F32);
        }
        return dir;
    }

    @Test
    void untiedConfigWithoutLmHeadFails() throws IOException {
        Path dir = savedDir("nolmhead", config(true, false));
        Files.writeString(dir.resolve(ModelDir.CONFIG), config(false, false).toJson());
        assertBad(() -> load(dir, null), dir.resolve(ModelDir.WEIGHTS), "lm_head.weight is missing", "tie_word_embeddings false");
    }

    @Test
    void missingRequiredTensorFails() throws IOException {
        Path dir = savedDir("missing", config(false, true));
        rewrite(dir, (shapes, values) -> shapes.remove("model.layers.1.mlp.down_proj.weight"));
        assertBad(() -> load(dir, null), dir.resolve(ModelDir.WEIGHTS),
                "tensor model.layers.1.mlp.down_proj.weight required by config.json is missing");
        // some projector tensors present: the rest are required, not silently initialised
        Path dir2 = savedDir("partial", config(false, true));
        rewrite(dir2, (shapes, values) -> shapes.remove("multi_modal_projector.audio.linear_2.bias"));
        assertBad(() -> load(dir2, null), dir2.resolve(ModelDir.WEIGHTS),
                "tensor multi_modal_projector.audio.linear_2.bias required by config.json is missing");
    }

    @Test
    void wrongShapeFails() throws IOException {
        Path dir = savedDir("shape", config(false, false));
        rewrite(dir, (shapes, values) -> shapes.put("model.layers.0.self_attn.k_proj.weight", new int[]{16, 8}));
        assertBad(() -> load(dir, null), dir.resolve(ModelDir.WEIGHTS),
                "tensor model.layers.0.self_attn.k_proj.weight has shape [16, 8], config.json expects [8, 16]");
    }

    @Test
    void requiredTensorOfUnsupportedDtypeFails() throws IOException {
        Path dir = savedDir("dtype", config(true, false));
        Path f = dir.resolve(ModelDir.WEIGHTS);
        // same byte length, so only the dtype changes
        byte[] all = Files.readAllBytes(f);
        String s = new String(all, StandardCharsets.ISO_8859_1);
        String from = "\"model.norm.weight\":{\"dtype\":\"F32\"", to = "\"model.norm.weight\":{\"dtype\":\"I32\"";
        assertTrue(s.contains(from));
        Files.write(f, s.replace(from, to).getBytes(StandardCharsets.ISO_8859_1));
        assertBad(() -> load(dir, null), f, "I32 tensor model.norm.weight is not a float type this loader reads");
    }

    @Test
    void corruptWeightsFileFailsNamingIt() throws IOException {
        Path dir = savedDir("corrupt", config(true, false));
        Path f = dir.resolve(ModelDir.WEIGHTS);
        byte[] all = Files.readAllBytes(f);
        Files.write(f, java.util.Arrays.copyOf(all, all.length / 2));
        assertBad(() -> load(dir, null), f, "truncated");
    }

    @Test
    void noWeightsFails() throws IOException {
        Path dir = savedDir("noweights", config(true, false));
        Files.delete(dir.resolve(ModelDir.WEIGHTS));
        assertBad(() -> load(dir, null), dir, "no model.safetensors or model.safetensors.index.json");
    }

    // ---- config.json problems ----

    static String configJson(int hidden, int heads, int kvHeads) {
        return "{\"hidden_size\": " + hidden + ", \"intermediate_size\": 32, \"num_attention_heads\": " + heads
                + ", \"num_key_value_heads\": " + kvHeads + ", \"num_hidden_layers\": 1, \"vocab_size\": 50}";
    }

    @Test
    void configProblemsFailNamingConfigJson() throws IOException {
        Path dir = savedDir("cfg", config(true, false));
        Path cfg = dir.resolve(ModelDir.CONFIG);
        Files.delete(cfg);
        assertBad(() -> load(dir, null), cfg, "file not found");
        Files.writeString(cfg, "{\"hidden_size\": 16,");
        assertBad(() -> load(dir, null), cfg, "not valid JSON");
        Files.writeString(cfg, configJson(30, 4, 2));
        assertBad(() -> load(dir, null), cfg, "hidden_size 30 is not divisible by num_attention_heads 4");
        Files.writeString(cfg, configJson(24, 4, 3));
        assertBad(() -> load(dir, null), cfg, "num_key_value_heads 3 does not divide num_attention_heads 4");
        Files.writeString(cfg, "{\"hidden_size\": 16}");
        assertBad(() -> load(dir, null), cfg, "missing required field \"num_attention_heads\"");
        // a valid config of another shape: the checkpoint's shapes no longer fit
        Files.writeString(cfg, configJson(32, 4, 2).replace("}", ", \"tie_word_embeddings\": true}"));
        assertBad(() -> load(dir, null), dir.resolve(ModelDir.WEIGHTS), "model.embed_tokens.weight has shape [50, 16], config.json expects [50, 32]");
    }

    // ---- saving ----

    @Test
    void failedSaveLeavesTheOldCheckpointAndTokenizerUntouched() throws IOException {
        Path dir = tmp.resolve("atomic");
        Path tokenizer = dir.resolve("tokenizer.json");
        try (Model old = randomModel(cpu, config(false, true), 10)) {
            ModelDir.save(old, dir, Safetensors.Dtype.F32);
        }
        Files.writeString(tokenizer, "{\"model\": {\"type\": \"BPE\"}}");
        byte[] oldWeights = Files.readAllBytes(dir.resolve(ModelDir.WEIGHTS));
        byte[] oldConfig = Files.readAllBytes(dir.resolve(ModelDir.CONFIG));

        // a backend that fails on the 5th download: the save dies mid-write of model.safetensors
        int[] downloads = {0};
        Kernels failing = (Kernels) Proxy.newProxyInstance(Kernels.class.getClassLoader(), new Class<?>[]{Kernels.class},
                (proxy, method, args) -> {
                    if (method.getName().equals("download") && ++downloads[0] == 5) throw new IllegalStateException("device lost");
                    try {
                        return method.invoke(cpu, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
        try (Model fresh = randomModel(failing, config(true, false), 11)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> ModelDir.save(fresh, dir, Safetensors.Dtype.BF16));
            assertEquals("device lost", e.getMessage());
            assertArrayEquals(oldWeights, Files.readAllBytes(dir.resolve(ModelDir.WEIGHTS)));
            assertArrayEquals(oldConfig, Files.readAllBytes(dir.resolve(ModelDir.CONFIG)));
            try (Stream<Path> files = Files.list(dir)) {
                assertEquals(List.of("config.json", "model.safetensors", "tokenizer.json"),
                        files.map(p -> p.getFileName().toString()).sorted().toList(), "no temporary files left");
            }
            // the same save succeeding replaces both files and keeps tokenizer.json
            ModelDir.save(fresh, dir, Safetensors.Dtype.F32);
            load(dir, fresh);
            assertEquals("{\"model\": {\"type\": \"BPE\"}}", Files.readString(tokenizer));
            try (Stream<Path> files = Files.list(dir)) {
                assertEquals(3, files.count());
            }
        }
    }

    @Test
    void saveRefusesF16() {
        try (Model m = new Model(cpu, config(true, false))) {
            assertThrows(IllegalArgumentException.class, () -> ModelDir.save(m, tmp.resolve("f16"), Safetensors.Dtype.F16));
        }
    }
}
