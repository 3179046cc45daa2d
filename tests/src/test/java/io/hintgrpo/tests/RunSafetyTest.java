package io.hintgrpo.tests;

import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.trainer.checkpoint.Checkpoints;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Run safety with real processes: {@code hintgrpo sft} runs in a child JVM (same java, same
 * classpath) on a tiny model and corpus made in a temp folder; the test signals or kills it and
 * checks what is left on disk, then resumes with another child.
 */
class RunSafetyTest {
    private static final long TIMEOUT_MS = Children.TIMEOUT_MS;

    @TempDir
    Path dir;

    /** SIGTERM mid-run: exit code 0, a verified checkpoint at the stop step, and --resume finishes the run. */
    @Test
    void sigtermWritesACheckpointExitsCleanlyAndResumes() throws Exception {
        Children.corpusAndModel(dir, 32, 2);
        Path run = dir.resolve("run");
        Process p = sft(run, 100_000, false, "term-1.log");
        poll(() -> stepsDone(run) >= 2, p, "two steps in metrics.jsonl");
        p.destroy(); // SIGTERM on Linux
        assertTrue(p.waitFor(TIMEOUT_MS, TimeUnit.MILLISECONDS), "the run did not exit within 60 s of SIGTERM");
        String log = Files.readString(dir.resolve("term-1.log"));
        assertEquals(0, p.exitValue(), log);
        assertTrue(log.contains("SIGTERM received"), log);
        Matcher m = Pattern.compile("stopped at step (\\d+)").matcher(log);
        assertTrue(m.find(), log);
        int stop = Integer.parseInt(m.group(1));
        assertTrue(stop >= 2, "stopped at step " + stop);
        assertEquals(stop, stepsDone(run), "metrics.jsonl ends at the stop step");
        assertTrue(Files.readString(run.resolve("sft_config.json")).contains("\"steps\""),
                "the effective command settings are written beside the run");
        Path ck = new Checkpoints(run).root().resolve(String.format("step-%07d", stop));
        assertEquals(ck, new Checkpoints(run).latest());
        assertEquals(stop, verifyAndLoad(ck));

        Process r = sft(run, stop + 2, true, "term-2.log");
        assertTrue(r.waitFor(TIMEOUT_MS, TimeUnit.MILLISECONDS), "the resumed run did not finish");
        String log2 = Files.readString(dir.resolve("term-2.log"));
        assertEquals(0, r.exitValue(), log2);
        assertTrue(log2.contains("at step " + stop), log2);
        assertEquals(stop + 2, stepsDone(run));
        assertEquals(stop + 2, verifyAndLoad(new Checkpoints(run).latest()));
        assertEquals(stop + 2, stepLines(run).size(), "one metrics line per step, no duplicates: " + stepLines(run));
    }

    /**
     * kill -9 while checkpoints are being written (every step, a model whose checkpoint takes a
     * while to hash and fsync), until 20 kills have landed between the creation of a checkpoint's
     * temporary folder and the rename of the index (told by the files present at the kill: a
     * {@code .step-N.tmp-} folder, an {@code .index-} temp file, or a step folder the index does not
     * name yet). After every kill each listed checkpoint verifies and loads; the next child resumes
     * from the latest. The run's weights at the end are byte for byte those of an uninterrupted
     * run to the same step, and its metrics repeat the uninterrupted run's losses.
     */
    @Test
    void killsDuringCheckpointWritesNeverLoseAResumableCheckpoint() throws Exception {
        Children.corpusAndModel(dir, 192, 4);
        Path run = dir.resolve("run");
        long seed = System.nanoTime();
        SplittableRandom rng = new SplittableRandom(seed);
        Checkpoints checkpoints = new Checkpoints(run);
        int inWindow = 0, attempts = 0;
        while (inWindow < 20) {
            assertTrue(attempts < 60, "only " + inWindow + " of " + attempts + " kills landed in a checkpoint write (seed " + seed + ")");
            String log = "kill-" + attempts + ".log";
            int before = stepsDone(run);
            Process p = sft(run, 100_000, attempts++ > 0, log);
            // a fresh step with a complete checkpoint, then the next checkpoint's temp folder; kill 0–40 ms later
            poll(() -> stepsDone(run) > before && !listed(checkpoints).isEmpty(), p, "a new step and a checkpoint (" + log + ")");
            poll(() -> hidden(checkpoints).stream().anyMatch(n -> n.contains(".tmp-")), p, "a checkpoint write (" + log + ")");
            Thread.sleep(rng.nextInt(40));
            p.destroyForcibly();
            assertTrue(p.waitFor(TIMEOUT_MS, TimeUnit.MILLISECONDS));
            assertEquals(137, p.exitValue(), "SIGKILL (seed " + seed + ")");
            if (killedInsideAWrite(checkpoints)) inWindow++;

            List<String> listed = checkpoints.list();
            assertFalse(listed.isEmpty(), "seed " + seed);
            for (String name : listed) {
                assertTrue(name.matches("step-\\d+"), name);
                assertEquals(Integer.parseInt(name.substring(5)), verifyAndLoad(checkpoints.root().resolve(name)), name);
            }
            Path latest = checkpoints.latest();
            assertTrue(listed.contains(latest.getFileName().toString()), latest + " not in " + listed);
        }
        int from = verifyAndLoad(checkpoints.latest()), end = from + 2;
        Process r = sft(run, end, true, "resume-last.log");
        assertTrue(r.waitFor(TIMEOUT_MS, TimeUnit.MILLISECONDS), "the last resume did not finish");
        assertEquals(0, r.exitValue(), Files.readString(dir.resolve("resume-last.log")));
        assertTrue(hidden(checkpoints).stream().noneMatch(n -> n.matches("\\.step-.*")), "leftovers are swept: " + hidden(checkpoints));
        assertEquals(end, stepLines(run).size(), "one metrics line per step, no duplicates: " + stepLines(run));

        Path straight = dir.resolve("straight");
        Process s = sft(straight, end, false, "straight.log");
        assertTrue(s.waitFor(TIMEOUT_MS, TimeUnit.MILLISECONDS));
        assertEquals(0, s.exitValue(), Files.readString(dir.resolve("straight.log")));
        Path last = checkpoints.root().resolve(String.format("step-%07d", end));
        assertArrayEquals(Files.readAllBytes(new Checkpoints(straight).latest().resolve("model.safetensors")),
                Files.readAllBytes(last.resolve("model.safetensors")), "weights after " + attempts + " kills and resumes (seed " + seed + ")");
        assertEquals(losses(straight), losses(run), "every step's loss");
        System.out.printf("RunSafetyTest: %d of %d kills landed inside a checkpoint write; resumed to step %d bit-identical (seed %d)%n",
                inWindow, attempts, end, seed);
    }

    /**
     * One process per run folder: a second sft on a folder another process is training in ends at
     * once with exit 2 naming the holder's pid and changes nothing there; once the holder is killed
     * (kill -9 leaves no lock behind) a third process resumes the folder.
     */
    @Test
    void aSecondProcessIsRefusedAndAKilledHolderDoesNotBlock() throws Exception {
        Children.corpusAndModel(dir, 32, 2);
        Path run = dir.resolve("run");
        Process holder = sft(run, 100_000, false, "holder.log");
        poll(() -> stepsDone(run) >= 1, holder, "the holder's first step");
        byte[] config = Files.readAllBytes(run.resolve("sft_config.json"));
        Children.Done second = Children.run(sftCommand(run, 5, false), dir.resolve("second.log"));
        assertEquals(2, second.exit(), second.output());
        assertEquals(List.of("hintgrpo: error: " + run + ": run folder in use by another process (pid " + holder.pid()
                + "); wait for it or stop it (a killed process leaves no lock)"), second.errors());
        assertArrayEquals(config, Files.readAllBytes(run.resolve("sft_config.json")), "the second process wrote nothing");
        Children.Done resumeWhileHeld = Children.run(sftCommand(run, 5, true), dir.resolve("resume-held.log"));
        assertEquals(2, resumeWhileHeld.exit(), "--resume does not take a held folder either: " + resumeWhileHeld.output());
        holder.destroyForcibly();
        assertTrue(holder.waitFor(TIMEOUT_MS, TimeUnit.MILLISECONDS));
        int done = verifyAndLoad(new Checkpoints(run).latest());
        Children.Done third = Children.run(sftCommand(run, done + 1, true), dir.resolve("third.log"));
        assertEquals(0, third.exit(), third.output());
        assertEquals(done + 1, stepsDone(run));
    }

    // ---- helpers

    /** Whether a kill landed between a checkpoint's temp folder and the index rename, by what it left. */
    private static boolean killedInsideAWrite(Checkpoints c) throws IOException {
        if (hidden(c).stream().anyMatch(n -> n.contains(".tmp-") || n.startsWith(".index-"))) return true;
        Path index = c.root().resolve(Checkpoints.INDEX);
        String latest = Files.exists(index) ? new com.fasterxml.jackson.databind.ObjectMapper().readTree(index.toFile()).path("latest").asText() : "";
        List<String> all = c.list();
        return !all.isEmpty() && !all.get(all.size() - 1).equals(latest); // renamed into place, index not yet updated
    }

    /** Every step's loss from metrics.jsonl, in order. */
    private static List<String> losses(Path run) throws IOException {
        List<String> out = new ArrayList<>();
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            Matcher m = Pattern.compile("^\\{\"step\":\\d+,\"loss\":([^,]+),").matcher(line);
            if (m.find()) out.add(m.group(1));
        }
        return out;
    }

    /** A constant learning rate, so a run's steps do not depend on its --steps and runs to different ends compare step by step. */
    private List<String> sftCommand(Path run, int steps, boolean resume) {
        List<String> cmd = Children.hintgrpo("sft", "--model", dir.resolve("model").toString(), "--train", Children.train(dir),
                "--out", run.toString(), "--backend", "cpu", "--steps", Integer.toString(steps), "--batch-size", "4",
                "--warmup-steps", "0", "--min-lr-ratio", "1", "--checkpoint-every", "1", "--keep-last", "2", "--seed", "3");
        if (resume) cmd.add("--resume");
        return cmd;
    }

    /** Starts {@code hintgrpo sft} in a child JVM; stdout and stderr go to dir/logName. */
    private Process sft(Path run, int steps, boolean resume, String logName) throws IOException {
        return Children.start(sftCommand(run, steps, resume), dir.resolve(logName));
    }

    /** Waits (polling every 5 ms) until cond holds; fails if the process exits first or after 60 s. */
    private static void poll(BooleanSupplier cond, Process p, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TIMEOUT_MS * 1_000_000;
        while (!cond.getAsBoolean()) {
            if (!p.isAlive()) fail("the run exited (code " + p.exitValue() + ") before " + what);
            if (System.nanoTime() > deadline) {
                p.destroyForcibly();
                fail("timed out waiting for " + what);
            }
            Thread.sleep(5);
        }
    }

    /** The "step" of each training line in metrics.jsonl (evaluation lines have no loss). */
    private static List<Integer> stepLines(Path run) {
        Path f = run.resolve("metrics.jsonl");
        List<Integer> steps = new ArrayList<>();
        try {
            if (!Files.exists(f)) return steps;
            for (String line : Files.readAllLines(f)) {
                Matcher m = Pattern.compile("^\\{\"step\":(\\d+),\"loss\"").matcher(line);
                if (m.find()) steps.add(Integer.parseInt(m.group(1)));
            }
        } catch (IOException e) {
            // being rewritten this instant; the next poll reads it
        }
        return steps;
    }

    private static int stepsDone(Path run) {
        List<Integer> s = stepLines(run);
        return s.isEmpty() ? 0 : s.get(s.size() - 1);
    }

    private static List<String> listed(Checkpoints c) {
        try {
            return c.list();
        } catch (IOException e) {
            return List.of();
        }
    }

    private static List<String> hidden(Checkpoints c) {
        if (!Files.isDirectory(c.root())) return List.of();
        try (Stream<Path> s = Files.list(c.root())) {
            return s.map(p -> p.getFileName().toString()).filter(n -> n.startsWith(".")).toList();
        } catch (IOException e) {
            return List.of();
        }
    }

    /** Checkpoints.verify and a full load (model, optimizer moments, state); returns the checkpoint's step. */
    private static int verifyAndLoad(Path ck) throws IOException {
        Checkpoints.verify(ck);
        Map<String, String> fingerprint = new java.util.LinkedHashMap<>(); // the checkpoint's own: this checks the files, not the settings
        new com.fasterxml.jackson.databind.ObjectMapper().readTree(ck.resolve(Checkpoints.STATE).toFile()).path("fingerprint").fields()
                .forEachRemaining(e -> fingerprint.put(e.getKey(), e.getValue().asText()));
        Checkpoints.Loaded l = Checkpoints.load(ck, new CpuKernels(), fingerprint, io.hintgrpo.trainer.sft.SftConfig.defaults().optimizer(), null, msg -> {});
        try (Model m = l.model()) {
            assertTrue(m.layout.count() > 0);
        }
        return l.state().step();
    }
}
