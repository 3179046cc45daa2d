package io.hintgrpo.engine;

import io.hintgrpo.engine.cpu.CpuKernels;

import java.util.List;

/** Backend choice by name: {@code auto} takes the best usable one; a named one is that or an error. */
public final class Backends {
    private Backends() {}

    /** Names a user may pass today; CUDA backends join this list when they land. */
    public static List<String> names() {
        return List.of("auto", "cpu");
    }

    public static Kernels open(String name) {
        return switch (name) {
            case "auto", "cpu" -> new CpuKernels();
            default -> throw new BadInputException("--backend", "unknown backend \"" + name + "\"; available: " + String.join(", ", names()));
        };
    }
}
