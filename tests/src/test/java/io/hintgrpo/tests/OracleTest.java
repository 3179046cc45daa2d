package io.hintgrpo.tests;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.io.PeftAdapter;
import io.hintgrpo.engine.io.Safetensors;
import io.hintgrpo.engine.model.AdamW;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Lora;
import io.hintgrpo.engine.model.LoraConfig;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.ParamLayout;
import io.hintgrpo.engine.model.Sequence;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Tier 2 of the test plan: the PyTorch oracle (scripts/oracle.py, run by Debian's
 * /usr/bin/python3 with python3-torch) computes logits, log-probs, the weighted loss, every
 * parameter gradient and a few AdamW steps in float64 from the same config, safetensors and
 * inputs; the Java model on the cpu backend must agree within
 * ‖java − oracle‖ / ‖oracle‖ ≤ 1e-4 (logits, log-probs, loss, AdamW losses) and ≤ 1e-3 (each gradient).
 * Case (d) does the same for a LoRA adapter in PEFT's files: the base frozen, the adapter's and
 * projectors' gradients and AdamW over them.
 *
 * <p>Where /usr/bin/python3 cannot import torch the tests are skipped, except under CI=true,
 * where that is a failure (the CI image must have python3-torch).
 */
class OracleTest {
    /** Debian's system python (python3-torch); the property exists to exercise the skip/fail path. */
    static final String PYTHON = System.getProperty("hintgrpo.oracle.python", "/usr/bin/python3");
    static final String INSTALL_HINT = "the PyTorch oracle needs Debian's " + PYTHON
            + " with torch: apt-get install -y python3-torch";

    static final double LOGITS_TOL = 1e-4, LOSS_TOL = 1e-4, GRAD_TOL = 1e-3, ADAM_TOL = 1e-4;

    static final ObjectMapper JSON = new ObjectMapper();

    static Path script;

    @TempDir
    Path tmp;

    /** Why the oracle cannot run here (null: it can), found once for the class. */
    static String unavailable;

    @BeforeAll
    static void findOracle() {
        script = findScript();
        String problem = torchProblem();
        if (problem != null) unavailable = INSTALL_HINT + " (" + problem + ")";
    }

    /** Skips each test where torch is missing (so each one reports why), fails under CI=true. */
    @BeforeEach
    void requireTorch() {
        if (unavailable == null) return;
        if ("true".equalsIgnoreCase(System.getenv("CI"))) fail(unavailable);
        Assumptions.assumeTrue(false, unavailable);
    }

    // ---------------------------------------------------------------------------------------
    // the cases
    // ---------------------------------------------------------------------------------------

    /** (a) untied head, 4 query heads on 2 KV heads, text only, rope_theta 1e4. */
    @Test
    void untiedGqaTextOnly() throws Exception {
        String cfg = """
                {"hidden_size": 32, "intermediate_size": 48, "num_attention_heads": 4,
                 "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 61,
                 "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": false,
                 "max_position_embeddings": 64}""";
        check("a", ModelConfig.parse(cfg, "case a"), new int[][]{{11, 0, 0, 0, 0}, {6, 0, 0, 0, 0}, {9, 0, 0, 0, 0}},
                0.8f, 101);
    }

    /**
     * (b) tied head, GQA 6 heads / 2 KV (3 per group), audio and vision through MLP projectors,
     * rope_theta 1e6. projector_type is one field for both modalities, so the linear projector is
     * case (c).
     */
    @Test
    void tiedGqaAudioVisionMlpProjector() throws Exception {
        String cfg = """
                {"hidden_size": 48, "intermediate_size": 72, "num_attention_heads": 6,
                 "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 67,
                 "rms_norm_eps": 1e-5, "rope_theta": 1000000.0, "tie_word_embeddings": true,
                 "max_position_embeddings": 64,
                 "audio_feature_size": 5, "vision_feature_size": 7, "audio_token_id": 65, "vision_token_id": 66,
                 "projector_type": "mlp"}""";
        // per sequence: length, audio start, audio count, vision start, vision count
        check("b", ModelConfig.parse(cfg, "case b"),
                new int[][]{{14, 2, 3, 7, 4}, {7, 0, 0, 1, 2}, {10, 4, 2, 0, 0}, {5, 0, 0, 0, 0}}, 1.0f, 202);
    }

    /** (c) untied head, one KV head for 4 query heads (MQA), audio and vision through linear projectors. */
    @Test
    void untiedMqaAudioVisionLinearProjector() throws Exception {
        String cfg = """
                {"hidden_size": 32, "intermediate_size": 40, "num_attention_heads": 4,
                 "num_key_value_heads": 1, "num_hidden_layers": 3, "vocab_size": 53,
                 "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": false,
                 "max_position_embeddings": 64,
                 "audio_feature_size": 6, "vision_feature_size": 3, "audio_token_id": 3, "vision_token_id": 50,
                 "projector_type": "linear"}""";
        check("c", ModelConfig.parse(cfg, "case c"),
                new int[][]{{8, 1, 2, 5, 2}, {12, 6, 4, 1, 3}, {3, 0, 0, 0, 0}}, 1.3f, 303);
    }

    /**
     * (d) case (b)'s model with a LoRA adapter on every target (rank 3, alpha 6, B and the
     * projectors' trained copy moved away from their starting values), written by PeftAdapter.save:
     * the oracle reads it by PEFT's names and computes y = x·Wᵀ + (α/r)·(x·Aᵀ)·Bᵀ with the base
     * frozen; logits, loss, the adapter's and projectors' gradients and AdamW over them must agree.
     */
    @Test
    void loraAdapterOnEveryTargetWithMlpProjectors() throws Exception {
        String cfg = """
                {"hidden_size": 48, "intermediate_size": 72, "num_attention_heads": 6,
                 "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 67,
                 "rms_norm_eps": 1e-5, "rope_theta": 1000000.0, "tie_word_embeddings": true,
                 "max_position_embeddings": 64,
                 "audio_feature_size": 5, "vision_feature_size": 7, "audio_token_id": 65, "vision_token_id": 66,
                 "projector_type": "mlp"}""";
        check("d", ModelConfig.parse(cfg, "case d"), new int[][]{{14, 2, 3, 7, 4}, {7, 0, 0, 1, 2}, {10, 4, 2, 0, 0}}, 1.0f, 404,
                LoraConfig.of(3, 6, List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")));
    }

    /** The script refuses inconsistent inputs with a clear message and a non-zero exit. */
    @Test
    void oracleRejectsBadInput() throws Exception {
        String cfgJson = """
                {"hidden_size": 16, "intermediate_size": 24, "num_attention_heads": 2,
                 "num_key_value_heads": 1, "num_hidden_layers": 1, "vocab_size": 20,
                 "tie_word_embeddings": true, "audio_feature_size": 4, "audio_token_id": 19}""";
        ModelConfig cfg = ModelConfig.parse(cfgJson, "bad case");
        Path dir = Files.createDirectories(tmp.resolve("bad"));
        try (Model model = new Model(new CpuKernels(), cfg)) {
            randomize(model, 7);
            writeCase(dir, model, List.of(new Sequence(new int[]{1, 19, 19, 2}, new float[]{1, 1, 1, 0},
                    new float[][]{{1, 2, 3, 4}}, null)), 1f);
        }
        // Batch.pack refuses this on the Java side; the oracle must refuse it too
        ProcessResult r = runOracle(dir);
        assertEquals(2, r.exitCode, "oracle exit status on bad input; output:\n" + r.output);
        assertTrue(r.output.contains("2 audio placeholder tokens") && r.output.contains("1 audio feature rows"),
                "oracle message should name the mismatch; got:\n" + r.output);
    }

    // ---------------------------------------------------------------------------------------
    // one comparison
    // ---------------------------------------------------------------------------------------

    static final int ADAM_STEPS = 5;
    static final float LR = 1e-2f, BETA1 = 0.9f, BETA2 = 0.95f, EPS = 1e-8f, WEIGHT_DECAY = 0.1f, MAX_GRAD_NORM = 1f;

    /**
     * Builds the model with random parameters from the seed and a batch of sequences of unequal
     * lengths with signed weights, runs the oracle on the written case and compares everything.
     * layout: per sequence {length, audioStart, audioCount, visionStart, visionCount}.
     */
    void check(String name, ModelConfig cfg, int[][] layout, float temperature, long seed) throws Exception {
        check(name, cfg, layout, temperature, seed, null);
    }

    /**
     * As above; with lora (non-null) the model gets an adapter of that shape (B and the projectors'
     * copy random, so every part of it shows), saved beside the case as PEFT files, and what is
     * compared is the adapter's: its gradients (the base has none) and AdamW over it.
     */
    void check(String name, ModelConfig cfg, int[][] layout, float temperature, long seed, LoraConfig lora) throws Exception {
        Random rng = new Random(seed);
        List<Sequence> seqs = new ArrayList<>();
        for (int[] l : layout) seqs.add(randomSequence(cfg, rng, l[0], l[1], l[2], l[3], l[4]));

        Path dir = Files.createDirectories(tmp.resolve(name));
        Map<String, float[]> initial = new HashMap<>();
        try (Model model = new Model(new CpuKernels(), cfg)) {
            randomize(model, seed);
            writeCase(dir, model, seqs, temperature);
            if (lora != null) {
                randomizeAdapter(model.attachLora(lora, seed), seed);
                PeftAdapter.save(model.lora(), dir, null);
            }
            Trained trained = new Trained(model);
            for (ParamLayout.Entry e : trained.layout().entries()) initial.put(e.name(), trained.download(e.name()));

            ProcessResult r = runOracle(dir);
            if (r.exitCode != 0) fail("oracle.py failed (exit " + r.exitCode + "):\n" + r.output);
            Map<String, Tensor> ref = readSafetensors(dir.resolve("outputs.safetensors"));

            Batch batch = Batch.pack(cfg, seqs);
            int t = batch.t, v = cfg.vocabSize();
            StringBuilder report = new StringBuilder(String.format(Locale.ROOT,
                    "oracle case %s (B=%d, T=%d, heads %d/%d, %s head, modalities %s/%s %s):%n", name, batch.b, t,
                    cfg.numHeads(), cfg.numKvHeads(), cfg.tieWordEmbeddings() ? "tied" : "untied",
                    cfg.hasAudio() ? "audio" : "-", cfg.hasVision() ? "vision" : "-",
                    cfg.hasAudio() || cfg.hasVision() ? cfg.projectorType() : ""));
            List<String> failures = new ArrayList<>();

            // logits: the oracle writes zeros on padding rows; so do we
            float[] logits = model.logits(batch);
            for (int s = 0; s < batch.b; s++)
                for (int i = batch.lengths[s]; i < t; i++)
                    Arrays.fill(logits, (s * t + i) * v, (s * t + i + 1) * v, 0f);
            Tensor refLogits = ref.get("logits");
            assertEquals(List.of(batch.b, t, v), refLogits.shapeList(), "oracle logits shape");
            compare(report, failures, "logits", logits, refLogits.data, LOGITS_TOL);

            // forward: loss and per-row log-probs (0 where there is no target)
            model.zeroGrad();
            Model.ForwardResult fwd = model.forward(batch, temperature);
            compare(report, failures, "loss (forward)", new float[]{(float) fwd.loss()}, ref.get("loss").data, LOSS_TOL);
            float[] logprobs = fwd.logprobs().clone();
            for (int row = 0; row < logprobs.length; row++) if (batch.targets[row] < 0) logprobs[row] = 0f;
            compare(report, failures, "logprobs", logprobs, ref.get("logprobs").data, LOSS_TOL);

            // forward + backward: loss and every gradient
            model.zeroGrad();
            Model.ForwardResult fb = model.forwardBackward(batch, temperature);
            compare(report, failures, "loss (forwardBackward)", new float[]{(float) fb.loss()}, ref.get("loss").data, LOSS_TOL);
            double worstGrad = 0;
            String worstName = "";
            for (ParamLayout.Entry e : trained.layout().entries()) {
                Tensor g = ref.get("grad." + trained.oracleName(e.name()));
                if (g == null) {
                    failures.add("oracle wrote no gradient for " + trained.oracleName(e.name()));
                    continue;
                }
                double err = relErr(trained.downloadGrad(e.name()), g.data);
                if (err > GRAD_TOL || Double.isNaN(err))
                    failures.add(String.format(Locale.ROOT, "grad %s: rel err %.3e > %.0e", e.name(), err, GRAD_TOL));
                if (!(err <= worstGrad)) {
                    worstGrad = err;
                    worstName = e.name();
                }
                report.append(String.format(Locale.ROOT, "  grad %-52s %.3e%n", e.name(), err));
            }
            report.append(String.format(Locale.ROOT, "  max grad rel err %.3e (%s)%n", worstGrad, worstName));

            // AdamW: the loss before each step, from the same initial parameters
            for (Map.Entry<String, float[]> e : initial.entrySet()) trained.upload(e.getKey(), e.getValue());
            float[] adamLosses = new float[ADAM_STEPS], gradNorms = new float[ADAM_STEPS];
            try (AdamW opt = new AdamW(model, LR, BETA1, BETA2, EPS, WEIGHT_DECAY)) {
                for (int s = 0; s < ADAM_STEPS; s++) {
                    model.zeroGrad();
                    adamLosses[s] = (float) model.forwardBackward(batch, temperature).loss();
                    gradNorms[s] = (float) opt.step(MAX_GRAD_NORM);
                }
            }
            compare(report, failures, "adam grad norms", gradNorms, ref.get("adam_grad_norms").data, GRAD_TOL);
            compare(report, failures, "adam losses", adamLosses, ref.get("adam_losses").data, ADAM_TOL);
            report.append("  adam losses java   ").append(Arrays.toString(adamLosses)).append('\n');
            report.append("  adam losses oracle ").append(Arrays.toString(ref.get("adam_losses").data)).append('\n');

            System.out.print(report);
            if (!failures.isEmpty()) fail("Java model disagrees with the PyTorch oracle:\n  "
                    + String.join("\n  ", failures) + "\n" + report);
        }
    }

    /**
     * What a case trains, by name: every parameter of the model, or its LoRA adapter (adapters
     * and projectors), whose tensors the oracle names as adapter_model.safetensors does.
     */
    record Trained(Model model) {
        ParamLayout layout() {
            return model.trainable().layout();
        }

        String oracleName(String name) {
            return model.lora() == null || name.startsWith("base_model.model.") ? name : "base_model.model." + name;
        }

        float[] download(String name) {
            return model.lora() == null ? model.download(name) : model.lora().download(name);
        }

        float[] downloadGrad(String name) {
            return model.lora() == null ? model.downloadGrad(name) : model.lora().downloadGrad(name);
        }

        void upload(String name, float[] values) {
            if (model.lora() == null) model.upload(name, values);
            else model.lora().upload(name, values);
        }
    }

    /** Every B N(0, 0.2²) and the projectors' trained copy moved by N(0, 0.05²): the adapter and its projectors both change the output. */
    static void randomizeAdapter(Lora lora, long seed) {
        Random rng = new Random(seed ^ 0x2545F491L);
        for (ParamLayout.Entry e : lora.layout.entries()) {
            boolean b = e.name().endsWith("lora_B.weight"), projector = e.name().startsWith("multi_modal_projector.");
            if (!b && !projector) continue;
            float[] v = lora.download(e.name());
            for (int i = 0; i < v.length; i++) v[i] = (float) (b ? 0.2 * rng.nextGaussian() : v[i] + 0.05 * rng.nextGaussian());
            lora.upload(e.name(), v);
        }
    }

    static void compare(StringBuilder report, List<String> failures, String what, float[] java, float[] oracle, double tol) {
        if (java.length != oracle.length) {
            failures.add(what + ": java has " + java.length + " values, oracle " + oracle.length);
            return;
        }
        double err = relErr(java, oracle);
        report.append(String.format(Locale.ROOT, "  %-57s %.3e%n", what, err));
        if (err > tol || Double.isNaN(err))
            failures.add(String.format(Locale.ROOT, "%s: rel err %.3e > %.0e", what, err, tol));
    }

    /** ‖a − b‖ / ‖b‖ in double; where b is all zeros, ‖a‖ itself (must be zero too). */
    static double relErr(float[] a, float[] b) {
        double num = 0, den = 0;
        for (int i = 0; i < a.length; i++) {
            double d = (double) a[i] - b[i];
            num += d * d;
            den += (double) b[i] * b[i];
        }
        return den == 0 ? Math.sqrt(num) : Math.sqrt(num / den);
    }

    // ---------------------------------------------------------------------------------------
    // random model and inputs
    // ---------------------------------------------------------------------------------------

    /**
     * Every tensor random from the seed, far from the initialisation defaults so each op shows:
     * matrices N(0, 0.2²), biases N(0, 0.1²), norm weights 1 + N(0, 0.1²).
     */
    static void randomize(Model model, long seed) {
        Random rng = new Random(seed ^ 0x5DEECE66DL);
        for (ParamLayout.Entry e : model.layout.entries()) {
            float[] x = new float[Math.toIntExact(e.size())];
            boolean norm = e.name().endsWith("layernorm.weight") || e.name().equals("model.norm.weight");
            for (int i = 0; i < x.length; i++) {
                double g = rng.nextGaussian();
                x[i] = (float) (norm ? 1 + 0.1 * g : e.shape().length == 2 ? 0.2 * g : 0.1 * g);
            }
            model.upload(e.name(), x);
        }
    }

    /** Random text tokens (never a placeholder id), placeholder runs where asked, signed weights, N(0,1) features. */
    static Sequence randomSequence(ModelConfig cfg, Random rng, int len, int aStart, int aCount, int vStart, int vCount) {
        int[] ids = new int[len];
        for (int i = 0; i < len; i++) {
            int id;
            do id = rng.nextInt(cfg.vocabSize());
            while ((cfg.hasAudio() && id == cfg.audioTokenId()) || (cfg.hasVision() && id == cfg.visionTokenId()));
            ids[i] = id;
        }
        for (int i = 0; i < aCount; i++) ids[aStart + i] = cfg.audioTokenId();
        for (int i = 0; i < vCount; i++) ids[vStart + i] = cfg.visionTokenId();
        float[] w = new float[len];
        for (int i = 0; i < len; i++) {
            double u = rng.nextDouble();
            w[i] = u < 0.2 ? 0f : (float) (-1.0 + 3.0 * rng.nextDouble()); // zeros, negatives, positives
        }
        return new Sequence(ids, w, features(rng, aCount, cfg.audioFeatureSize()), features(rng, vCount, cfg.visionFeatureSize()));
    }

    static float[][] features(Random rng, int n, int dim) {
        if (n == 0) return null;
        float[][] f = new float[n][dim];
        for (float[] row : f) for (int j = 0; j < dim; j++) row[j] = (float) rng.nextGaussian();
        return f;
    }

    // ---------------------------------------------------------------------------------------
    // the case directory
    // ---------------------------------------------------------------------------------------

    /** config.json and model.safetensors (F32, HF names) through ModelDir.save, and inputs.json. */
    static void writeCase(Path dir, Model model, List<Sequence> seqs, float temperature) throws IOException {
        ModelDir.save(model, dir, Safetensors.Dtype.F32);

        // floats go out as the exact double they are, so Python sees the same values as Java
        ObjectNode in = JSON.createObjectNode();
        ArrayNode ids = in.putArray("ids"), weights = in.putArray("weights");
        ArrayNode audio = in.putArray("audio"), vision = in.putArray("vision");
        for (Sequence s : seqs) {
            ArrayNode i = ids.addArray();
            for (int id : s.ids()) i.add(id);
            ArrayNode w = weights.addArray();
            for (int t = 0; t < s.ids().length; t++) w.add(s.weights() == null ? 0.0 : (double) s.weights()[t]);
            rows(audio.addArray(), s.audio());
            rows(vision.addArray(), s.vision());
        }
        in.put("temperature", (double) temperature);
        ObjectNode adam = in.putObject("adam");
        adam.put("lr", (double) LR);
        adam.put("beta1", (double) BETA1);
        adam.put("beta2", (double) BETA2);
        adam.put("eps", (double) EPS);
        adam.put("weight_decay", (double) WEIGHT_DECAY);
        adam.put("steps", ADAM_STEPS);
        adam.put("max_grad_norm", (double) MAX_GRAD_NORM);
        Files.writeString(dir.resolve("inputs.json"), JSON.writeValueAsString(in));
    }

    static void rows(ArrayNode out, float[][] rows) {
        if (rows == null) return;
        for (float[] r : rows) {
            ArrayNode a = out.addArray();
            for (float x : r) a.add((double) x);
        }
    }

    record Tensor(int[] shape, float[] data) {
        List<Integer> shapeList() {
            return Arrays.stream(shape).boxed().toList();
        }
    }

    /** The oracle's outputs (it writes F32). */
    static Map<String, Tensor> readSafetensors(Path file) {
        Map<String, Tensor> out = new HashMap<>();
        try (Safetensors st = Safetensors.open(file)) {
            for (Safetensors.Info info : st.tensors().values()) {
                assertEquals("F32", info.dtype(), file + ": " + info.name() + " dtype");
                out.put(info.name(), new Tensor(info.shape(), st.read(info.name())));
            }
        }
        return out;
    }

    // ---------------------------------------------------------------------------------------
    // running the script
    // ---------------------------------------------------------------------------------------

    record ProcessResult(int exitCode, String output) {}

    static ProcessResult runOracle(Path caseDir) throws Exception {
        return exec(List.of(PYTHON, script.toString(), caseDir.toString()), 300);
    }

    static ProcessResult exec(List<String> cmd, int timeoutSeconds) throws Exception {
        Path log = Files.createTempFile("oracle", ".log");
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                fail(String.join(" ", cmd) + " did not finish within " + timeoutSeconds + " s");
            }
            return new ProcessResult(p.exitValue(), Files.readString(log));
        } finally {
            Files.deleteIfExists(log);
        }
    }

    /** Null when /usr/bin/python3 imports torch and numpy; otherwise what went wrong. */
    static String torchProblem() {
        if (!Files.isExecutable(Path.of(PYTHON))) return PYTHON + " not found";
        try {
            ProcessResult r = exec(List.of(PYTHON, "-c", "import torch, numpy"), 120);
            if (r.exitCode == 0) return null;
            String out = r.output.strip();
            return out.substring(out.lastIndexOf('\n') + 1);
        } catch (Exception e) {
            return "cannot run " + PYTHON + ": " + e.getMessage();
        }
    }

    /** scripts/oracle.py, found by walking up from the working directory (surefire runs in tests/). */
    static Path findScript() {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path s = dir.resolve("scripts").resolve("oracle.py");
            if (Files.isRegularFile(s)) return s;
        }
        fail("scripts/oracle.py not found above " + Path.of("").toAbsolutePath());
        return null;
    }
}
