package io.hintgrpo.trainer.report;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A training run's metrics.jsonl (one JSON object per line, each with a "step") and its progress
 * line: on a terminal one line redrawn every step; into a log (CI, a file) a full line every 10 s
 * and at the end.
 */
public final class RunLog {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final boolean TERMINAL = System.console() != null;

    private final Path file;
    private final int totalSteps;
    private long lastLine = System.nanoTime() - 20_000_000_000L;

    public RunLog(Path file, int totalSteps) {
        this.file = file;
        this.totalSteps = totalSteps;
    }

    /**
     * The lines up to the resume point; later lines (from an interrupted run) are dropped from
     * the file, atomically, so it reads as if the run had stopped at upToStep.
     */
    public List<JsonNode> restore(int upToStep) {
        List<JsonNode> kept = new ArrayList<>();
        if (!Files.exists(file)) return kept;
        try {
            List<String> lines = new ArrayList<>();
            for (String line : Files.readAllLines(file)) {
                if (line.isBlank()) continue;
                JsonNode n = JSON.readTree(line);
                if (n.path("step").asInt() > upToStep) continue;
                lines.add(line);
                kept.add(n);
            }
            Path tmp = Files.createTempFile(file.toAbsolutePath().getParent(), ".metrics-", ".jsonl");
            io.hintgrpo.trainer.data.AtomicFiles.readableByAll(tmp);
            Files.write(tmp, lines);
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw io.hintgrpo.engine.BadInputException.io(file, "cannot read or rewrite the metrics", e);
        }
        return kept;
    }

    public void append(JsonNode node) {
        try {
            Files.writeString(file, JSON.writeValueAsString(node) + "\n", StandardCharsets.UTF_8,
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw io.hintgrpo.engine.BadInputException.io(file, "cannot append to the metrics", e);
        }
    }

    /** "step s/N  BODY  ETA": done = steps finished by this process, elapsed its seconds so far. */
    public void progress(int step, int done, double elapsed, String body) {
        int remaining = totalSteps - step;
        double eta = done > 0 ? elapsed / done * remaining : 0;
        String line = String.format(Locale.ROOT, "step %d/%d  %s  ETA %dm%02ds", step, totalSteps, body, (int) eta / 60, (int) eta % 60);
        if (TERMINAL) {
            System.err.print("\r" + line + "   ");
        } else if (System.nanoTime() - lastLine > 10_000_000_000L || remaining == 0) {
            lastLine = System.nanoTime();
            System.err.println(line);
        }
    }

    /** Ends a redrawn progress line before other output. */
    public void breakLine() {
        if (TERMINAL) System.err.println();
    }
}
