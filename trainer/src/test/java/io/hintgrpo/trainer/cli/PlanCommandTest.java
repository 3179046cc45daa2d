package io.hintgrpo.trainer.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.hintgrpo.engine.cuda.CudaKernels;
import io.hintgrpo.engine.model.MemoryPlan;
import io.hintgrpo.engine.model.Precision;
import io.hintgrpo.engine.model.Presets;
import io.hintgrpo.trainer.TinyModels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** hintgrpo plan: the three phases with their components, fits or not, the JSON beside the table, and bad flags refused. */
class PlanCommandTest {
    @TempDir
    Path dir;

    @Test
    void printsThePhasesAndWritesTheSameNumbersAsJson() throws Exception {
        Path json = dir.resolve("plan.json");
        CliRun r = CliRun.of("plan", "--preset", "qwen2.5-7b", "--lora-rank", "16", "--precision", "bf16", "--recompute", "--json", json.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("SFT training step, 8 × 512: 19.69 GiB, fits"), r.out());
        assertTrue(r.out().contains("GRPO generation, 64 rollouts × (256 + 112)"), r.out());
        assertTrue(r.out().contains("| weights (frozen base: matrices bf16, vectors fp32) |"), r.out());
        JsonNode plan = new ObjectMapper().readTree(json.toFile());
        assertEquals(3, plan.get("phases").size());
        // the JSON holds what the engine's plan computes
        MemoryPlan.Setup s = new MemoryPlan.Setup(Presets.named("qwen2.5-7b").shape(),
                io.hintgrpo.engine.model.LoraConfig.of(16, 16, java.util.List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")),
                Precision.BF16, true, true, CudaKernels.LOGIT_CHUNK_FLOATS);
        assertEquals(MemoryPlan.trainingStep(s, 8, 512, MemoryPlan.Features.NONE).total(), plan.get("phases").get(0).get("total_bytes").asLong());
        assertTrue(plan.get("phases").get(2).get("fits").asBoolean());

        CliRun full = CliRun.of("plan", "--preset", "qwen2.5-7b");
        assertEquals(0, full.code(), full.err());
        assertTrue(full.out().contains("does NOT fit"), "full fp32 training of 7B on 80 GiB: " + full.out());
    }

    @Test
    void readsAModelDirectoryAndRefusesBadFlags() throws Exception {
        Path model = dir.resolve("model");
        TinyModels.write(model, 3);
        CliRun r = CliRun.of("plan", "--model", model.toString(), "--gpu-mem", "1G", "--feature-rows", "4");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("modality projectors"), r.out());
        for (String[] bad : new String[][]{{"--gpu-mem", "lots"}, {"--batch-size", "0"}, {"--lora-rank", "-1"}, {"--precision", "fp8"}}) {
            CliRun b = CliRun.of("plan", "--model", model.toString(), bad[0], bad[1]);
            assertEquals(Main.EXIT_BAD_INPUT, b.code(), String.join(" ", bad) + ": " + b.err());
            assertEquals(1, b.err().strip().lines().count(), b.err());
            assertTrue(b.err().contains(bad[0].equals("--lora-rank") ? "lora_rank" : bad[0]), b.err());
        }
        assertEquals(Main.EXIT_BAD_INPUT, CliRun.of("plan", "--preset", "nope").code());
        assertNotEquals(0, CliRun.of("plan").code(), "--model or --preset is required");
    }
}
