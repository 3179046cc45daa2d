package io.hintgrpo.engine.io;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ParamLayout;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * What we write, Hugging Face reads: scripts/check_hf_load.py parses our files with a strict
 * reader and torch (Debian's /usr/bin/python3 with python3-torch) and compares every value.
 * Skipped where torch is missing, except under CI=true, where that is a failure.
 */
class HfLoadCheckTest {
    static final Path PYTHON = Path.of("/usr/bin/python3");

    @TempDir
    Path tmp;

    @Test
    void huggingFaceReadsWhatWeWrite() throws Exception {
        String torchMissing = torchMissing();
        if (torchMissing != null) {
            if ("true".equals(System.getenv("CI"))) fail("CI=true but " + torchMissing + " (apt-get install python3-torch)");
            Assumptions.abort(torchMissing);
        }
        ObjectMapper json = new ObjectMapper();
        ObjectNode expected = json.createObjectNode();
        ArrayNode files = expected.putArray("files");

        // edge values of the fp32 -> bf16 rounding, checked against torch's own rounding
        float[] special = new float[SafetensorsTest.BF16_CASES.length];
        for (int i = 0; i < special.length; i++) special[i] = Float.intBitsToFloat(SafetensorsTest.BF16_CASES[i][0]);
        for (Safetensors.Dtype dtype : new Safetensors.Dtype[]{Safetensors.Dtype.F32, Safetensors.Dtype.BF16}) {
            Path f = tmp.resolve("special-" + dtype + ".safetensors");
            Map<String, int[]> shapes = new LinkedHashMap<>();
            shapes.put("special", new int[]{special.length});
            shapes.put("scalar", new int[]{});
            Map<String, float[]> values = Map.of("special", special, "scalar", new float[]{-1.75f});
            Safetensors.write(f, dtype, shapes, values::get);
            ObjectNode tensors = addFile(files, f, dtype);
            shapes.forEach((name, shape) -> addTensor(tensors, name, shape, values.get(name)));
        }

        // a small tied multimodal model saved both ways
        try (Model m = new Model(new CpuKernels(), ModelDirTest.config(true, true))) {
            m.initialize(12);
            for (Safetensors.Dtype dtype : new Safetensors.Dtype[]{Safetensors.Dtype.F32, Safetensors.Dtype.BF16}) {
                Path dir = tmp.resolve("model-" + dtype);
                ModelDir.save(m, dir, dtype);
                ObjectNode tensors = addFile(files, dir.resolve(ModelDir.WEIGHTS), dtype);
                for (ParamLayout.Entry e : m.layout.entries()) addTensor(tensors, e.name(), e.shape(), m.download(e.name()));
            }
        }
        Path expectedFile = tmp.resolve("expected.json");
        json.writeValue(expectedFile.toFile(), expected);

        Process p = new ProcessBuilder(PYTHON.toString(), script().toString(), expectedFile.toString())
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), "check_hf_load.py timed out");
        System.out.println("check_hf_load.py: " + out.strip());
        assertEquals(0, p.exitValue(), out);
    }

    static ObjectNode addFile(ArrayNode files, Path path, Safetensors.Dtype dtype) {
        ObjectNode f = files.addObject();
        f.put("path", path.toString());
        f.put("dtype", dtype.name());
        return f.putObject("tensors");
    }

    static void addTensor(ObjectNode tensors, String name, int[] shape, float[] values) {
        ObjectNode t = tensors.putObject(name);
        ArrayNode s = t.putArray("shape");
        for (int d : shape) s.add(d);
        ArrayNode bits = t.putArray("bits");
        for (float v : values) bits.add(Float.floatToRawIntBits(v));
    }

    /** Why the check cannot run here, or null when /usr/bin/python3 imports torch. */
    static String torchMissing() throws IOException, InterruptedException {
        if (!Files.isExecutable(PYTHON)) return PYTHON + " not found";
        Process p = new ProcessBuilder(PYTHON.toString(), "-c", "import torch").redirectErrorStream(true).start();
        p.getInputStream().readAllBytes();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            return PYTHON + " -c 'import torch' timed out";
        }
        return p.exitValue() == 0 ? null : PYTHON + " cannot import torch";
    }

    /** scripts/check_hf_load.py at the repository root, found from the module directory Maven runs tests in. */
    static Path script() {
        for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
            Path s = d.resolve("scripts/check_hf_load.py");
            if (Files.isRegularFile(s)) return s;
        }
        throw new AssertionError("scripts/check_hf_load.py not found above " + Path.of("").toAbsolutePath());
    }
}
