package io.hintgrpo.engine.cuda;

import io.hintgrpo.engine.Backends;
import io.hintgrpo.engine.model.AdamW;
import io.hintgrpo.engine.model.Batch;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.TestModels;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Training steps on the CUDA backend (cuda-emu, or cuda under -Dhintgrpo.test.driver=cuda as in
 * the GPU check) leave no allocation behind: every step ends holding the same bytes
 * (parameters, gradients, activation arena, AdamW moments, the backend's scratch); after two
 * warm-up steps the cache serves every allocation (the first step's optimizer scratch takes a block
 * its temporaries freed, so the second step still mallocs one); closing the optimizer and the
 * model returns every byte.
 */
class TrainingStepMemoryTest {

    @Test
    void stepsReuseMemoryAndClosingReturnsIt() {
        ModelConfig cfg = TestModels.multimodalConfig("mlp");
        CudaKernels k = CudaParityTest.driverKind().equals("cuda")
                ? new CudaKernels(CudaParityTest.openDriver("device"), "cuda")
                : (CudaKernels) Backends.open("cuda-emu");
        DeviceMemory mem = k.memory();
        try {
            long before = mem.bytesInUse();
            Batch batch = Batch.pack(cfg, TestModels.randomSequences(cfg, new SplittableRandom(3), 9, 5, 7));
            try (Model model = new Model(k, cfg)) {
                model.initialize(1);
                assertEquals(before + 4L * model.layout.size(), mem.bytesInUse(), "parameters only, before any step");
                try (AdamW opt = new AdamW(model, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f)) {
                    step(model, opt, batch);
                    long inUse = mem.bytesInUse();
                    int blocks = mem.liveBlocks();
                    step(model, opt, batch);
                    long mallocs = mem.driverMallocs();
                    for (int s = 2; s <= 5; s++) {
                        assertEquals(inUse, mem.bytesInUse(), "bytes in use after step " + s + ": " + mem);
                        assertEquals(blocks, mem.liveBlocks(), "live blocks after step " + s);
                        step(model, opt, batch);
                    }
                    assertEquals(mallocs, mem.driverMallocs(), "driver mallocs after step 2: " + mem);
                    assertTrue(mem.reuses() > 0);
                }
            }
            // what is left is the backend's own scratch (sumSquares partials), a few bytes
            assertTrue(mem.bytesInUse() - before <= 4096 && mem.liveBlocks() <= 1,
                    "after closing the optimizer and the model: " + mem);
            assertTrue(mem.peakBytes() > 4L * cfg.vocabSize() * cfg.hiddenSize());
        } finally {
            k.close();
        }
        assertEquals(0, mem.bytesInUse(), "after closing the backend: " + mem);
        assertEquals(0, mem.liveBlocks());
    }

    private static void step(Model model, AdamW opt, Batch batch) {
        model.zeroGrad();
        double loss = model.forwardBackward(batch, 1f).loss();
        assertTrue(Double.isFinite(loss));
        opt.step(1f);
        model.kernels.synchronize();
    }
}
