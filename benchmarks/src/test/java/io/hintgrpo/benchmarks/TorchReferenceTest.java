package io.hintgrpo.benchmarks;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The model of the in-run PyTorch reference (scripts/torch_cpu_bench.py) computes ours: for both
 * benchmark configs (embedded: tied head, GQA 4/2, modality projectors; 25m: untied head, GQA 8/4)
 * TorchReference writes our model, the benchmark batch and our logits, and the script's check must
 * pass (‖torch − ours‖/‖ours‖ ≤ 1e-4); logits 0.1 % off must fail it. Skipped where /usr/bin/python3
 * cannot import torch, a failure then under CI=true (the CI image must have python3-torch).
 */
class TorchReferenceTest {
    static final String PYTHON = "/usr/bin/python3";

    @TempDir
    Path tmp;

    @Test
    void theTorchModelComputesOurLogits() throws Exception {
        requireTorch();
        Path script = script();
        for (String config : List.of("embedded", "25m")) {
            Path dir = tmp.resolve(config);
            TorchReference.write(dir, config);
            Result r = run(List.of(PYTHON, script.toString(), dir.toString(), "--check"));
            assertEquals(0, r.code, r.out);
            assertTrue(r.out.contains("logits check ok"), r.out);
        }

        // the check has teeth: every logit 0.1 % larger is a relative error of 1e-3
        Path logits = tmp.resolve("embedded").resolve("logits.f32");
        ByteBuffer bytes = ByteBuffer.wrap(Files.readAllBytes(logits)).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < bytes.limit(); i += 4) bytes.putFloat(i, bytes.getFloat(i) * 1.001f);
        Files.write(logits, bytes.array());
        Result r = run(List.of(PYTHON, script.toString(), tmp.resolve("embedded").toString(), "--check"));
        assertEquals(1, r.code, r.out);
        assertTrue(r.out.contains("torch and our logits disagree"), r.out);
    }

    record Result(int code, String out) {}

    static Result run(List<String> cmd) throws IOException, InterruptedException {
        Path log = Files.createTempFile("torch-ref", ".log");
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            if (!p.waitFor(300, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                fail(String.join(" ", cmd) + " did not finish within 300 s");
            }
            return new Result(p.exitValue(), Files.readString(log));
        } finally {
            Files.deleteIfExists(log);
        }
    }

    /** Skips where torch is missing, fails under CI=true. */
    static void requireTorch() throws Exception {
        String problem = !Files.isExecutable(Path.of(PYTHON)) ? PYTHON + " not found" : null;
        if (problem == null) {
            Result r = run(List.of(PYTHON, "-c", "import torch, numpy"));
            if (r.code != 0) problem = r.out.strip();
        }
        if (problem == null) return;
        String why = "the torch reference needs Debian's " + PYTHON + " with torch: apt-get install -y python3-torch ("
                + problem.substring(problem.lastIndexOf('\n') + 1) + ")";
        if ("true".equalsIgnoreCase(System.getenv("CI"))) fail(why);
        Assumptions.assumeTrue(false, why);
    }

    /** scripts/torch_cpu_bench.py above the working directory (surefire runs in benchmarks/). */
    static Path script() {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path s = dir.resolve("scripts").resolve("torch_cpu_bench.py");
            if (Files.isRegularFile(s)) return s;
        }
        return fail("scripts/torch_cpu_bench.py not found above " + Path.of("").toAbsolutePath());
    }
}
