package io.hintgrpo.trainer.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.trainer.checkpoint.Checkpoints;
import io.hintgrpo.trainer.data.SynthCorpus;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * LoRA from the command line: the --lora-* flags and config keys of sft and grpo, the run's
 * adapter/ (PEFT files) and merged model/, --adapter on score / generate / eval / serve, merge,
 * and one clear error for every bad adapter or setting.
 */
class LoraCommandTest extends TrainingCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** An sft run with LoRA: 3 steps at a learning rate that moves the adapter visibly. */
    private Path loraSft(String name, String... more) {
        Path runDir = dir.resolve(name);
        List<String> args = new java.util.ArrayList<>(List.of("sft", "--backend", "cpu", "--model", modelDir.toString(), "--train", train(),
                "--out", runDir.toString(), "--steps", "3", "--batch-size", "4", "--lr", "2e-2", "--warmup-steps", "0", "--lora-rank", "4",
                "--lora-alpha", "8", "--lora-targets", "v_proj, q_proj,down_proj"));
        args.addAll(List.of(more));
        assertEquals(0, run(args.toArray(String[]::new)), err);
        return runDir;
    }

    /** Token ids with audio and vision placeholders and their feature rows, as score reads them. */
    private Path scoreInput() throws Exception {
        ModelConfig cfg = ModelConfig.load(modelDir.resolve("config.json"));
        Random rng = new Random(3);
        ObjectNode rec = JSON.createObjectNode();
        ArrayNode ids = rec.putArray("ids");
        int a = cfg.audioTokenId(), v = cfg.visionTokenId();
        int[] text = java.util.stream.IntStream.range(3, 40).filter(id -> id != a && id != v).limit(6).toArray();
        for (int id : new int[]{text[0], a, a, text[1], v, text[2], text[3], text[4], text[5]}) ids.add(id);
        ArrayNode audio = rec.putArray("audio"), vision = rec.putArray("vision");
        for (int r = 0; r < 2; r++) {
            ArrayNode row = audio.addArray();
            for (int j = 0; j < cfg.audioFeatureSize(); j++) row.add(rng.nextGaussian());
        }
        ArrayNode row = vision.addArray();
        for (int j = 0; j < cfg.visionFeatureSize(); j++) row.add(rng.nextGaussian());
        Path in = dir.resolve("ids.jsonl");
        String textOnly = "{\"ids\": [" + text[5] + ", " + text[2] + ", " + text[0] + ", " + text[3] + "]}";
        Files.writeString(in, JSON.writeValueAsString(rec) + "\n" + textOnly + "\n");
        return in;
    }

    private double[] score(Path input, String name, String... modelArgs) throws Exception {
        Path out = dir.resolve(name + ".jsonl");
        List<String> args = new java.util.ArrayList<>(List.of("score", "--backend", "cpu", "--input", input.toString(), "--output", out.toString()));
        args.addAll(List.of(modelArgs));
        assertEquals(0, run(args.toArray(String[]::new)), err);
        List<Double> all = new java.util.ArrayList<>();
        for (String line : Files.readAllLines(out)) for (JsonNode v : JSON.readTree(line).get("logprobs")) all.add(v.asDouble());
        return all.stream().mapToDouble(Double::doubleValue).toArray();
    }

    private static double maxAbsDiff(double[] a, double[] b) {
        assertEquals(a.length, b.length);
        double worst = 0;
        for (int i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
        return worst;
    }

    @Test
    void sftWithLoraEndsWithAnAdapterAndAMergedModelThatScoreAlike() throws Exception {
        Path runDir = loraSft("sft");
        JsonNode eff = JSON.readTree(runDir.resolve("sft_config.json").toFile()).get("sft");
        assertEquals(4, eff.get("lora_rank").asInt());
        assertEquals(8.0, eff.get("lora_alpha").asDouble());
        assertEquals("q_proj,v_proj,down_proj", eff.get("lora_targets").asText(), "layer order, spaces gone");

        Path adapter = runDir.resolve("adapter");
        JsonNode ac = JSON.readTree(adapter.resolve("adapter_config.json").toFile());
        assertEquals("LORA", ac.get("peft_type").asText());
        assertEquals("CAUSAL_LM", ac.get("task_type").asText());
        assertEquals(4, ac.get("r").asInt());
        assertEquals(8, ac.get("lora_alpha").asInt());
        assertEquals("[\"q_proj\",\"v_proj\",\"down_proj\"]", ac.get("target_modules").toString());
        assertEquals("[\"multi_modal_projector\"]", ac.get("modules_to_save").toString());
        assertEquals(modelDir.toAbsolutePath().normalize().toString(), ac.get("base_model_name_or_path").asText());
        assertFalse(Files.exists(new Checkpoints(runDir).latest().resolve("model.safetensors")), "checkpoints hold no copy of the base");

        // base + adapter (score --adapter), the run's merged model/, and merge's output score alike (≤ 1e-5)
        Path in = scoreInput();
        double[] base = score(in, "base", "--model", modelDir.toString());
        double[] withAdapter = score(in, "adapter", "--model", modelDir.toString(), "--adapter", adapter.toString());
        double[] runModel = score(in, "run-model", "--model", runDir.resolve("model").toString());
        Path merged = dir.resolve("merged");
        assertEquals(0, run("merge", "--model", modelDir.toString(), "--adapter", adapter.toString(), "--out", merged.toString()), err);
        for (String f : new String[]{"config.json", "model.safetensors", "tokenizer.json"}) assertTrue(Files.isRegularFile(merged.resolve(f)), f);
        double[] mergedScores = score(in, "merged", "--model", merged.toString());
        assertTrue(maxAbsDiff(base, withAdapter) > 1e-3, "the adapter changes the model: " + maxAbsDiff(base, withAdapter));
        assertTrue(maxAbsDiff(withAdapter, runModel) <= 1e-5, "run's model/ vs base + adapter: " + maxAbsDiff(withAdapter, runModel));
        assertTrue(maxAbsDiff(withAdapter, mergedScores) <= 1e-5, "merge vs base + adapter: " + maxAbsDiff(withAdapter, mergedScores));

        // generate and eval with --adapter answer as the merged model does (greedy)
        String valid = SynthCorpus.splitFile(corpus, "reviews", "valid").toString();
        Path g1 = dir.resolve("g-adapter.jsonl"), g2 = dir.resolve("g-merged.jsonl");
        assertEquals(0, run("generate", "--backend", "cpu", "--model", modelDir.toString(), "--adapter", adapter.toString(),
                "--input", valid, "--output", g1.toString(), "--max-new-tokens", "12"), err);
        assertEquals(0, run("generate", "--backend", "cpu", "--model", merged.toString(), "--input", valid, "--output", g2.toString(),
                "--max-new-tokens", "12"), err);
        List<String> a = Files.readAllLines(g1), b = Files.readAllLines(g2);
        assertEquals(b.size(), a.size());
        for (int i = 0; i < a.size(); i++)
            assertEquals(JSON.readTree(b.get(i)).get("response"), JSON.readTree(a.get(i)).get("response"), "line " + (i + 1));
        assertEquals(0, run("eval", "--backend", "cpu", "--model", modelDir.toString(), "--adapter", adapter.toString(), "--data", valid,
                "--max-new-tokens", "12"), err);
        String withAdapterReport = out;
        assertEquals(0, run("eval", "--backend", "cpu", "--model", merged.toString(), "--data", valid, "--max-new-tokens", "12"), err);
        assertEquals(out, withAdapterReport, "eval --adapter reports what the merged model's eval does");
    }

    /**
     * With --precision bf16 the frozen base is stored in bf16 only; the run exports as with fp32:
     * the adapter, and model/ = the (bf16-valued) base + adapter merged on the host, which scores
     * like the fp32 base + adapter to within the base's bf16 rounding.
     */
    @Test
    void sftWithLoraOnABf16BaseExportsAdapterAndMergedModel() throws Exception {
        java.io.ByteArrayOutputStream log = new java.io.ByteArrayOutputStream();
        java.io.PrintStream stderr = System.err;
        System.setErr(new java.io.PrintStream(log, true, java.nio.charset.StandardCharsets.UTF_8));
        Path runDir;
        try {
            runDir = loraSft("sft-bf16", "--precision", "bf16");
        } finally {
            System.setErr(stderr);
        }
        String said = log.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(said.contains("frozen (stored in bf16)"), said);
        assertTrue(Files.isRegularFile(runDir.resolve("adapter").resolve("adapter_model.safetensors")));
        Path in = scoreInput();
        double[] base = score(in, "base", "--model", modelDir.toString());
        double[] withAdapter = score(in, "adapter", "--model", modelDir.toString(), "--adapter", runDir.resolve("adapter").toString());
        double[] runModel = score(in, "run-model", "--model", runDir.resolve("model").toString());
        double diff = maxAbsDiff(withAdapter, runModel), moved = maxAbsDiff(base, withAdapter);
        System.out.printf("LoraCommandTest bf16 base: |run model - base + adapter| %.2e, |adapter effect| %.2e%n", diff, moved);
        assertTrue(moved > 1e-3, "the adapter changes the model: " + moved);
        assertTrue(diff > 0 && diff <= 1e-2, "run's model/ (bf16 base + adapter) vs fp32 base + adapter: " + diff);
    }

    /**
     * serve --adapter, a real process: a greedy chat answer and its log-probs equal those of an
     * in-process server on the run's merged model/ (≤ 1e-5), and differ from the bare base's.
     */
    @Test
    void serveWithAdapterAnswersAsTheMergedModel() throws Exception {
        Path runDir = loraSft("sft-serve");
        String body = "{\"messages\": [{\"role\": \"user\", \"content\": \"the film was fine\"}], \"max_tokens\": 24, \"temperature\": 0, \"logprobs\": true}";
        java.net.http.HttpClient http = java.net.http.HttpClient.newBuilder().version(java.net.http.HttpClient.Version.HTTP_1_1).build();
        java.util.function.Function<String, JsonNode> answer = url -> {
            try {
                java.net.http.HttpResponse<String> r = http.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(url + "/v1/chat/completions"))
                        .POST(java.net.http.HttpRequest.BodyPublishers.ofString(body)).build(), java.net.http.HttpResponse.BodyHandlers.ofString());
                assertEquals(200, r.statusCode(), r.body());
                return JSON.readTree(r.body()).get("choices").get(0);
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        };
        JsonNode merged = null, bare = null;
        io.hintgrpo.trainer.serve.Server.Settings settings = new io.hintgrpo.trainer.serve.Server.Settings("127.0.0.1", 0, "m", 2, 2, 256, 200,
                1 << 20, 8, false, 30);
        for (Path m : new Path[]{runDir.resolve("model"), modelDir}) {
            try (io.hintgrpo.engine.cpu.CpuKernels k = new io.hintgrpo.engine.cpu.CpuKernels();
                 io.hintgrpo.engine.model.Model model = io.hintgrpo.engine.io.ModelDir.load(k, m, 0, msg -> {});
                 io.hintgrpo.trainer.tokenizer.Tokenizer tok = io.hintgrpo.trainer.tokenizer.Tokenizer.load(m)) {
                io.hintgrpo.trainer.serve.Server server = io.hintgrpo.trainer.serve.Server.start(model, tok, settings, msg -> {});
                try {
                    if (m == modelDir) bare = answer.apply(server.url());
                    else merged = answer.apply(server.url());
                } finally {
                    server.stop();
                }
            }
        }
        String javaBin = ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        Path log = dir.resolve("serve.log");
        Process p = new ProcessBuilder(javaBin, "--add-modules", "jdk.incubator.vector", "-Xmx1g", "-cp", System.getProperty("java.class.path"),
                "io.hintgrpo.trainer.cli.Main", "serve", "--model", modelDir.toString(), "--adapter", runDir.resolve("adapter").toString(),
                "--port", "0", "--backend", "cpu", "--batch-size", "2", "--max-context", "256")
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            java.util.regex.Matcher url = null;
            long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(120);
            while (System.nanoTime() < deadline && p.isAlive()) {
                url = java.util.regex.Pattern.compile("serving \\S+ on (http://127\\.0\\.0\\.1:\\d+) ").matcher(Files.readString(log));
                if (url.find()) break;
                url = null;
                Thread.sleep(50);
            }
            assertNotNull(url, "no URL line: " + Files.readString(log));
            JsonNode served = answer.apply(url.group(1));
            assertEquals(merged.get("message").get("content").asText(), served.get("message").get("content").asText(), "serve --adapter vs merged");
            double[] s = tokenLogprobs(served), mg = tokenLogprobs(merged), b = tokenLogprobs(bare);
            assertTrue(maxAbsDiff(s, mg) <= 1e-5, "serve --adapter vs the merged model's log-probs: " + maxAbsDiff(s, mg));
            assertTrue(b.length != s.length || maxAbsDiff(s, b) > 1e-3, "the adapter changes the answer's log-probs");
        } finally {
            p.destroy();
            assertTrue(p.waitFor(60, java.util.concurrent.TimeUnit.SECONDS));
        }
    }

    private static double[] tokenLogprobs(JsonNode choice) {
        List<Double> v = new java.util.ArrayList<>();
        for (JsonNode t : choice.get("logprobs").get("content")) v.add(t.get("logprob").asDouble());
        return v.stream().mapToDouble(Double::doubleValue).toArray();
    }

    @Test
    void grpoTakesLoraFromAConfigFileWithTargetsAsAList() throws Exception {
        Path cfg = dir.resolve("grpo.yaml");
        Files.writeString(cfg, "backend: cpu\nsteps: 1\nprompts_per_step: 2\ngroup_size: 2\nmax_completion_tokens: 6\n"
                + "grpo:\n  lora_rank: 2\n  lora_targets: [o_proj, gate_proj]\n");
        Path runDir = dir.resolve("grpo");
        assertEquals(0, run("grpo", "--config", cfg.toString(), "--model", modelDir.toString(), "--train", train(), "--out", runDir.toString()), err);
        JsonNode eff = JSON.readTree(runDir.resolve("grpo_config.json").toFile()).get("grpo");
        assertEquals(2, eff.get("lora_rank").asInt());
        assertEquals("o_proj,gate_proj", eff.get("lora_targets").asText());
        assertEquals("[\"o_proj\",\"gate_proj\"]", JSON.readTree(runDir.resolve("adapter/adapter_config.json").toFile()).get("target_modules").toString());
        assertTrue(Files.isRegularFile(runDir.resolve("model/model.safetensors")));
    }

    @Test
    void badSettingsAndAdaptersAreOneClearErrorAndWriteNothing() throws Exception {
        assertEquals(Main.EXIT_BAD_INPUT, run("sft", "--backend", "cpu", "--model", modelDir.toString(), "--train", train(), "--out",
                dir.resolve("x").toString(), "--lora-rank", "4", "--lora-targets", "q_proj,qkv_proj"));
        assertTrue(err.contains("lora_targets") && err.contains("'qkv_proj'"), err);
        assertEquals(Main.EXIT_BAD_INPUT, run("grpo", "--backend", "cpu", "--model", modelDir.toString(), "--train", train(), "--out",
                dir.resolve("y").toString(), "--lora-rank", "-1"));
        assertTrue(err.contains("lora_rank must be ≥ 0"), err);

        Path good = loraSft("sft").resolve("adapter");
        Path in = scoreInput(), scored = dir.resolve("scored.jsonl");
        record Case(String what, String configEdit, String expected) {}
        for (Case c : List.of(
                new Case("DoRA", "\"use_dora\": true", "use_dora is true"),
                new Case("rsLoRA", "\"use_rslora\": true", "use_rslora is true"),
                new Case("a regex target", "\"target_modules\": \".*(q|v)_proj\"", "target_modules is the string"),
                new Case("a target we lack", "\"target_modules\": [\"q_proj\", \"v_proj\", \"down_proj\", \"lm_head\"]", "'lm_head'"),
                new Case("another PEFT type", "\"peft_type\": \"IA3\"", "peft_type is \"IA3\""),
                new Case("per-layer ranks", "\"rank_pattern\": {\"q_proj\": 8}", "rank_pattern is"))) {
            Path bad = dir.resolve("bad-" + c.what().replace(' ', '-'));
            Files.createDirectories(bad);
            Files.copy(good.resolve("adapter_model.safetensors"), bad.resolve("adapter_model.safetensors"));
            ObjectNode cfg = (ObjectNode) JSON.readTree(good.resolve("adapter_config.json").toFile());
            cfg.setAll((ObjectNode) JSON.readTree("{" + c.configEdit() + "}"));
            Files.writeString(bad.resolve("adapter_config.json"), cfg.toString());
            for (String command : new String[]{"score", "merge"}) {
                List<String> args = command.equals("score")
                        ? List.of("score", "--backend", "cpu", "--model", modelDir.toString(), "--adapter", bad.toString(), "--input", in.toString(), "--output", scored.toString())
                        : List.of("merge", "--model", modelDir.toString(), "--adapter", bad.toString(), "--out", dir.resolve("m").toString());
                assertEquals(Main.EXIT_BAD_INPUT, run(args.toArray(String[]::new)), c.what());
                assertTrue(err.startsWith("hintgrpo: error: " + bad.resolve("adapter_config.json")) && err.contains(c.expected()),
                        c.what() + ": " + err);
                assertEquals(1, err.lines().count(), err);
            }
        }
        assertFalse(Files.exists(scored), "a refused adapter writes no output");
        assertFalse(Files.exists(dir.resolve("m")), "a refused merge writes no model");

        // an adapter of another base: the shapes do not fit (both named), on every command that takes --adapter
        Path otherBase = dir.resolve("other-base");
        io.hintgrpo.trainer.TinyModels.write(otherBase, 5);
        ObjectNode wider = (ObjectNode) JSON.readTree(otherBase.resolve("config.json").toFile());
        try (var m = new io.hintgrpo.engine.model.Model(new io.hintgrpo.engine.cpu.CpuKernels(),
                ModelConfig.parse(wider.put("hidden_size", 64).put("intermediate_size", 40).toString(), "test"))) {
            m.initialize(1);
            io.hintgrpo.engine.io.ModelDir.save(m, otherBase, io.hintgrpo.engine.io.Safetensors.Dtype.F32);
        }
        String valid = SynthCorpus.splitFile(corpus, "reviews", "valid").toString();
        for (List<String> args : List.of(
                List.of("score", "--input", in.toString(), "--output", scored.toString()),
                List.of("generate", "--input", valid, "--output", dir.resolve("g.jsonl").toString()),
                List.of("eval", "--data", valid),
                List.of("serve", "--port", "0"))) {
            List<String> all = new java.util.ArrayList<>(args);
            all.addAll(List.of("--backend", "cpu", "--model", otherBase.toString(), "--adapter", good.toString()));
            assertEquals(Main.EXIT_BAD_INPUT, run(all.toArray(String[]::new)), args.get(0) + ": " + err);
            assertTrue(err.contains("adapter_model.safetensors: tensor base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight has shape [4, 32], "
                    + "this model and adapter_config.json expect [4, 64]"), args.get(0) + ": " + err);
        }

        Files.createDirectories(dir.resolve("taken"));
        Files.writeString(dir.resolve("taken/file"), "x");
        assertEquals(Main.EXIT_BAD_INPUT, run("merge", "--model", modelDir.toString(), "--adapter", good.toString(), "--out", dir.resolve("taken").toString()));
        assertTrue(err.contains("not empty"), err);
    }
}
