package io.hintgrpo.trainer.cli;

import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.io.Safetensors;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.Presets;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class ExportCommandTest {
    @TempDir
    Path dir;
    Path modelDir;

    @BeforeEach
    void writeModel() {
        modelDir = dir.resolve("model");
        try (Model m = new Model(new CpuKernels(), Presets.embeddedDefault())) {
            m.initialize(4);
            ModelDir.save(m, modelDir, Safetensors.Dtype.BF16);
        }
    }

    @Test
    void exportsACheckedGraph() {
        Path out = dir.resolve("out/model.onnx");
        CliRun r = CliRun.of("export", "onnx", "--model", modelDir.toString(), "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(Files.isRegularFile(out));
        assertTrue(r.out().contains("ONNX Runtime agrees with the model"), r.out());
        assertTrue(r.err().contains("checking ONNX Runtime's logits"), r.err());
    }

    @Test
    void aMissingModelIsOneLineAndWritesNothing() {
        Path out = dir.resolve("model.onnx");
        CliRun r = CliRun.of("export", "onnx", "--model", dir.resolve("nope").toString(), "--out", out.toString());
        assertEquals(Main.EXIT_BAD_INPUT, r.code());
        assertTrue(r.err().startsWith("hintgrpo: error: "), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertFalse(Files.exists(out));
    }

    @Test
    void theOutputMayNotBeAFolder() throws Exception {
        Path out = Files.createDirectories(dir.resolve("taken.onnx"));
        CliRun r = CliRun.of("export", "onnx", "--model", modelDir.toString(), "--out", out.toString());
        assertEquals(Main.EXIT_BAD_INPUT, r.code(), r.err());
        assertTrue(r.err().contains("taken.onnx"), r.err());
        assertTrue(Files.isDirectory(out));
    }
}
