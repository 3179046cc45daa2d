package io.hintgrpo.trainer.loop;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.trainer.checkpoint.Checkpoints;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * Where a training run lives and how it talks: its folder, whether it continues the folder's
 * latest checkpoint, what a checkpoint must agree with to be continued (the fingerprint), where
 * messages go and when to stop (checked between steps), and the caller's own options to record
 * in the effective config beside the run (the command line's --model, --train, --backend, …).
 */
public record Run(Path dir, boolean resume, Map<String, String> fingerprint, Consumer<String> log, BooleanSupplier stopRequested,
                  Map<String, Object> options) {
    public Run {
        fingerprint = Map.copyOf(fingerprint);
        options = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(options));
    }

    /** A fresh run in dir: messages to stderr, stopped by SIGINT / SIGTERM once {@link StopSignal#install()} ran. */
    public static Run in(Path dir) {
        return new Run(dir, false, Map.of(), msg -> System.err.println("hintgrpo: " + msg), StopSignal::requested, Map.of());
    }

    public Run resuming(boolean resume) {
        return new Run(dir, resume, fingerprint, log, stopRequested, options);
    }

    /** This run with more fingerprint entries (later ones win). */
    public Run fingerprint(Map<String, String> more) {
        Map<String, String> fp = new LinkedHashMap<>(fingerprint);
        fp.putAll(more);
        return new Run(dir, resume, fp, log, stopRequested, options);
    }

    /** This run recording the caller's options (name → value, snake_case) in its effective config. */
    public Run options(Map<String, Object> options) {
        return new Run(dir, resume, fingerprint, log, stopRequested, options);
    }

    public Run log(Consumer<String> log) {
        return new Run(dir, resume, fingerprint, log, stopRequested, options);
    }

    public Run stopWhen(BooleanSupplier stopRequested) {
        return new Run(dir, resume, fingerprint, log, stopRequested, options);
    }

    /**
     * The checkpoint to continue from: the latest when resuming (null when there is none yet),
     * null for a fresh run; a fresh run in a folder that holds checkpoints is refused.
     */
    public Path resumePoint() {
        try {
            Path latest = new Checkpoints(dir).latest();
            if (!resume && latest != null)
                throw new BadInputException(dir.toString(), "already holds checkpoints; pass --resume to continue it or choose a new --out");
            return resume ? latest : null;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
