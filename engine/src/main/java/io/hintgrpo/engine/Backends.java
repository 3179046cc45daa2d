package io.hintgrpo.engine;

import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.cuda.CudaKernels;
import io.hintgrpo.engine.cuda.EmuDriver;
import io.hintgrpo.engine.cuda.JCudaDriver;

import java.util.List;

/**
 * Backend choice by name: {@code auto} takes the best usable one; a named one is that or an error.
 *
 * <ul>
 *   <li>{@code cpu}: pure Java, the reference.</li>
 *   <li>{@code cuda}: kernels/ on the GPU through JCuda; where no GPU is usable, an error that says why.</li>
 *   <li>{@code cuda-emu}: the same kernels on the CUDA emulator (tests on machines without a GPU).</li>
 *   <li>{@code auto}: {@code cuda} when the probe finds a usable GPU, else {@code cpu}, saying
 *       why once per JVM on standard error.</li>
 * </ul>
 */
public final class Backends {
    private Backends() {}

    private static boolean fallbackReported;

    public static List<String> names() {
        return List.of("auto", "cpu", "cuda", "cuda-emu");
    }

    public static Kernels open(String name) {
        switch (name) {
            case "cpu":
                return new CpuKernels();
            case "cuda": {
                JCudaDriver.Probe probe = JCudaDriver.probe();
                if (!probe.usable()) throw new BadInputException("--backend", "cuda: " + probe.reason());
                return new CudaKernels(probe.driver(), "cuda");
            }
            case "cuda-emu":
                try {
                    return new CudaKernels(new EmuDriver(), "cuda-emu");
                } catch (RuntimeException | LinkageError e) {
                    throw new BadInputException("--backend", "cuda-emu: " + e.getMessage());
                }
            case "auto": {
                JCudaDriver.Probe probe = JCudaDriver.probe();
                if (probe.usable()) return new CudaKernels(probe.driver(), "cuda");
                reportFallback(probe.reason());
                return new CpuKernels();
            }
            default:
                throw new BadInputException("--backend", "unknown backend \"" + name + "\"; available: " + String.join(", ", names()));
        }
    }

    private static synchronized void reportFallback(String reason) {
        if (fallbackReported) return;
        fallbackReported = true;
        System.err.println("hintgrpo: backend auto: " + reason + "; using cpu");
    }
}
