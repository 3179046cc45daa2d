package io.hintgrpo.tests;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.io.Safetensors;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.ParamLayout;
import io.hintgrpo.engine.model.Sequence;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Our cpu model against Hugging Face transformers' own Qwen2ForCausalLM: the golden fixture that
 * scripts/hf_fixture.py writes on a machine with transformers (the GPU machine: scripts/gpu-check.sh
 * runs it there and this test right after it). The committed copy lives in
 * tests/fixtures/hf-qwen2-tiny/; -Dhintgrpo.hf.fixture=DIR points elsewhere. Without a fixture
 * the test is skipped and says so: a fixture is only ever what transformers wrote.
 *
 * <p>Loads the directory as a user would (ModelDir.load of what save_pretrained wrote), then
 * compares logits and loss (≤ 1e-4 relative) and every gradient (≤ 1e-3) with transformers'
 * float64 results.
 */
class HfFixtureTest {
    static final double LOGITS_TOL = 1e-4, LOSS_TOL = 1e-4, GRAD_TOL = 1e-3;

    @Test
    void cpuModelMatchesTransformersQwen2() throws Exception {
        Path dir = findFixture();
        Assumptions.assumeTrue(dir != null, "no Hugging Face fixture: run scripts/gpu-check.sh on a machine with "
                + "transformers (or python3 scripts/hf_fixture.py tests/fixtures/hf-qwen2-tiny) and commit what it writes");
        JsonNode inputs = new ObjectMapper().readTree(Files.readString(dir.resolve("inputs.json")));
        List<String> notes = new ArrayList<>();
        List<String> failures = new ArrayList<>();
        StringBuilder report = new StringBuilder("HF fixture " + dir + " (transformers " + inputs.path("transformers").asText("?")
                + ", torch " + inputs.path("torch").asText("?") + "):\n");

        try (Model model = ModelDir.load(new CpuKernels(), dir, 0, notes::add);
             Safetensors outputs = Safetensors.open(dir.resolve("outputs.safetensors"))) {
            notes.forEach(n -> report.append("  load: ").append(n).append('\n'));
            checkConfig(model.config, inputs.path("settings"), failures);

            List<Sequence> seqs = new ArrayList<>();
            for (JsonNode row : inputs.get("ids")) {
                int[] ids = new int[row.size()];
                for (int i = 0; i < ids.length; i++) ids[i] = row.get(i).asInt();
                float[] w = new float[ids.length];
                Arrays.fill(w, 0, ids.length - 1, 1f); // every row with a next token, as the fixture's loss
                seqs.add(new Sequence(ids, w, null, null));
            }
            Batch batch = Batch.pack(model.config, seqs);
            int t = batch.t, v = model.config.vocabSize();
            assertEquals(List.of(batch.b, t, v), Arrays.stream(outputs.info("logits").shape()).boxed().toList(), "fixture logits shape");

            float[] logits = model.logits(batch);
            for (int s = 0; s < batch.b; s++)
                for (int i = batch.lengths[s]; i < t; i++) Arrays.fill(logits, (s * t + i) * v, (s * t + i + 1) * v, 0f);
            compare(report, failures, "logits", logits, outputs.read("logits"), LOGITS_TOL);

            model.zeroGrad();
            Model.ForwardResult fb = model.forwardBackward(batch, 1f);
            compare(report, failures, "loss", new float[]{(float) fb.loss()}, outputs.read("loss"), LOSS_TOL);
            for (ParamLayout.Entry e : model.layout.entries()) {
                String name = "grad." + e.name();
                if (!outputs.has(name)) {
                    failures.add("the fixture has no " + name);
                    continue;
                }
                compare(report, failures, name, model.downloadGrad(e.name()), outputs.read(name), GRAD_TOL);
            }
        }
        System.out.print(report);
        if (!failures.isEmpty()) fail("cpu model disagrees with transformers' Qwen2:\n  " + String.join("\n  ", failures) + "\n" + report);
    }

    /** The settings the fixture was built with must be what we read back from its config.json. */
    static void checkConfig(ModelConfig c, JsonNode s, List<String> failures) {
        if (s.isMissingNode()) return;
        expect(failures, "rope_theta", c.ropeTheta(), s.path("rope_theta").asDouble());
        expect(failures, "rms_norm_eps", c.rmsNormEps(), s.path("rms_norm_eps").asDouble());
        expect(failures, "num_key_value_heads", c.numKvHeads(), s.path("num_key_value_heads").asDouble());
        expect(failures, "tie_word_embeddings", c.tieWordEmbeddings() ? 1 : 0, s.path("tie_word_embeddings").asBoolean() ? 1 : 0);
    }

    static void expect(List<String> failures, String field, double ours, double built) {
        if (Math.abs(ours - built) > 1e-6 * Math.abs(built))
            failures.add(String.format(Locale.ROOT, "config.json: we read %s = %s, the model was built with %s", field, ours, built));
    }

    static void compare(StringBuilder report, List<String> failures, String what, float[] ours, float[] ref, double tol) {
        if (ours.length != ref.length) {
            failures.add(what + ": " + ours.length + " values here, " + ref.length + " in the fixture");
            return;
        }
        double num = 0, den = 0;
        for (int i = 0; i < ours.length; i++) {
            double d = (double) ours[i] - ref[i];
            num += d * d;
            den += (double) ref[i] * ref[i];
        }
        double err = den == 0 ? Math.sqrt(num) : Math.sqrt(num / den);
        report.append(String.format(Locale.ROOT, "  %-60s %.3e%n", what, err));
        if (!(err <= tol)) failures.add(String.format(Locale.ROOT, "%s: rel err %.3e > %.0e", what, err, tol));
    }

    /** -Dhintgrpo.hf.fixture, else tests/fixtures/hf-qwen2-tiny found upwards from the working directory. */
    static Path findFixture() {
        String prop = System.getProperty("hintgrpo.hf.fixture");
        if (prop != null && !prop.isEmpty()) {
            Path p = Path.of(prop);
            if (!Files.isRegularFile(p.resolve("outputs.safetensors"))) fail("-Dhintgrpo.hf.fixture=" + prop + " holds no outputs.safetensors");
            return p;
        }
        for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
            for (Path p : List.of(d.resolve("fixtures/hf-qwen2-tiny"), d.resolve("tests/fixtures/hf-qwen2-tiny")))
                if (Files.isRegularFile(p.resolve("outputs.safetensors"))) return p;
        }
        return null;
    }
}
