package io.hintgrpo.benchmarks;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Stands in for the benchmarks jar's TorchReference in the trainer's BenchRunTest (packed into its
 * fake benchmarks jar): makes OUT/CONFIG for each config, where the real one writes our model,
 * batch and logits; exits 1 for a config named "broken".
 */
public final class TorchReference {
    public static void main(String[] args) throws Exception {
        for (int i = 1; i < args.length; i++) {
            if (args[i].equals("broken")) {
                System.out.println("cannot write " + args[i]);
                System.exit(1);
            }
            Files.createDirectories(Path.of(args[0], args[i]));
        }
    }
}
