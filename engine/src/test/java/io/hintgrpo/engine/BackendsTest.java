package io.hintgrpo.engine;

import io.hintgrpo.engine.cuda.JCudaDriver;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.*;

class BackendsTest {

    @Test
    void namesAreWhatOpenAccepts() {
        assertEquals(java.util.List.of("auto", "cpu", "cuda", "cuda-emu"), Backends.names());
        BadInputException e = assertThrows(BadInputException.class, () -> Backends.open("tpu"));
        assertTrue(e.getMessage().contains("unknown backend \"tpu\"") && e.getMessage().contains("cuda-emu"), e.getMessage());
    }

    @Test
    void cpuAndCudaEmuOpen() {
        try (Kernels k = Backends.open("cpu")) {
            assertEquals("cpu", k.name());
        }
        try (Kernels k = Backends.open("cuda-emu")) {
            assertEquals("cuda-emu", k.name());
            Buf b = k.allocF32(3);
            k.upload(b, new float[]{1, 2, 3});
            float[] back = new float[3];
            k.download(b, back);
            assertArrayEquals(new float[]{1, 2, 3}, back);
            k.free(b);
        }
    }

    @Test
    void cudaWithoutAGpuSaysWhyAndAutoFallsBackOnce() {
        JCudaDriver.Probe probe = JCudaDriver.probe();
        if (probe.usable()) {
            probe.driver().close();
            try (Kernels k = Backends.open("auto")) {
                assertEquals("cuda", k.name());
            }
            return;
        }
        BadInputException e = assertThrows(BadInputException.class, () -> Backends.open("cuda"));
        assertTrue(e.getMessage().startsWith("--backend: cuda: no usable GPU: "), e.getMessage());

        PrintStream err = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            for (int i = 0; i < 3; i++) {
                try (Kernels k = Backends.open("auto")) {
                    assertEquals("cpu", k.name());
                }
            }
        } finally {
            System.setErr(err);
        }
        // at most once per JVM (another test may have triggered it first)
        String out = captured.toString(StandardCharsets.UTF_8);
        assertTrue(out.isEmpty() || out.equals("hintgrpo: backend auto: " + probe.reason() + "; using cpu" + System.lineSeparator()), out);
    }
}
