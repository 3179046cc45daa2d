package io.hintgrpo.tests;

import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.io.Safetensors;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.trainer.checkpoint.Checkpoints;
import io.hintgrpo.trainer.data.SynthCorpus;
import io.hintgrpo.trainer.tokenizer.Tokenizer;
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
    private static final long TIMEOUT_MS = 60_000;

    @TempDir
    Path dir;

    /** SIGTERM mid-run: exit code 0, a verified checkpoint at the stop step, and --resume finishes the run. */
    @Test
    void sigtermWritesACheckpointExitsCleanlyAndResumes() throws Exception {
        Path model = modelDir(32, 2), run = dir.resolve("run");
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
     * while to hash and fsync): three kills at random moments inside or just after a write; after
     * each, every listed checkpoint verifies and loads, hidden temp folders are not listed, and
     * --resume from the latest runs two more steps.
     */
    @Test
    void killDuringCheckpointWritesLeavesOnlyCompleteCheckpoints() throws Exception {
        Path model = modelDir(192, 4), run = dir.resolve("run");
        long seed = System.nanoTime();
        SplittableRandom rng = new SplittableRandom(seed);
        Checkpoints checkpoints = new Checkpoints(run);
        int hitWrites = 0;
        for (int attempt = 0; attempt < 3; attempt++) {
            String log = "kill-" + attempt + ".log";
            int before = stepsDone(run);
            Process p = sft(run, 100_000, attempt > 0, log);
            // wait for a fresh step with a complete checkpoint, then for the next checkpoint's temp folder; kill after 0–40 ms
            poll(() -> stepsDone(run) > before && !listed(checkpoints).isEmpty(), p, "a new step and a checkpoint (" + log + ")");
            poll(() -> hidden(checkpoints).stream().anyMatch(n -> n.contains(".tmp-")), p, "a checkpoint write (" + log + ")");
            Thread.sleep(rng.nextInt(40)); // where in the write the kill lands; the asserts below poll nothing
            p.destroyForcibly();
            assertTrue(p.waitFor(TIMEOUT_MS, TimeUnit.MILLISECONDS));
            assertEquals(137, p.exitValue(), "SIGKILL (seed " + seed + ")");
            if (hidden(checkpoints).stream().anyMatch(n -> n.contains(".tmp-"))) hitWrites++;

            List<String> listed = checkpoints.list();
            assertFalse(listed.isEmpty(), "seed " + seed);
            for (String name : listed) {
                assertTrue(name.matches("step-\\d+"), name);
                assertEquals(Integer.parseInt(name.substring(5)), verifyAndLoad(checkpoints.root().resolve(name)), name);
            }
            Path latest = checkpoints.latest();
            assertTrue(listed.contains(latest.getFileName().toString()), latest + " not in " + listed);
            int from = verifyAndLoad(latest);

            String rlog = "resume-" + attempt + ".log";
            Process r = sft(run, from + 2, true, rlog);
            assertTrue(r.waitFor(TIMEOUT_MS, TimeUnit.MILLISECONDS), "resume did not finish");
            String text = Files.readString(dir.resolve(rlog));
            assertEquals(0, r.exitValue(), "seed " + seed + ": " + text);
            assertTrue(text.contains("resuming from " + latest + " at step " + from), text);
            assertEquals(from + 2, verifyAndLoad(checkpoints.latest()));
            assertEquals(from + 2, stepsDone(run));
            assertTrue(hidden(checkpoints).stream().noneMatch(n -> n.matches("\\.step-.*")),
                    "leftover temp folders are swept by the next write: " + hidden(checkpoints));
        }
        System.out.printf("RunSafetyTest: %d of 3 kills landed inside a checkpoint write (seed %d)%n", hitWrites, seed);
        assertTrue(hitWrites >= 1, "no kill landed inside a checkpoint write (seed " + seed + ")");
    }

    // ---- helpers

    /** A model directory (a small shape of the embedded default for the synthetic corpus) and the corpus's training file. */
    private Path modelDir(int hidden, int layers) throws IOException {
        Path corpus = dir.resolve("corpus");
        SynthCorpus.write(corpus, SynthCorpus.Options.defaults(11, 120));
        Path tokenizerJson = corpus.resolve(SynthCorpus.TOKENIZER_FILE);
        ModelConfig base;
        try (Tokenizer tok = Tokenizer.load(tokenizerJson)) {
            base = SynthCorpus.modelConfig(tok);
        }
        ModelConfig cfg = new ModelConfig(hidden, hidden * 2, 4, 2, layers, base.vocabSize(), base.rmsNormEps(), base.ropeTheta(),
                true, base.maxPositionEmbeddings(), base.audioFeatureSize(), base.visionFeatureSize(), base.audioTokenId(),
                base.visionTokenId(), base.projectorType());
        Path out = dir.resolve("model");
        try (Model m = new Model(new CpuKernels(), cfg)) {
            m.initialize(5);
            ModelDir.save(m, out, Safetensors.Dtype.F32);
        }
        Files.copy(tokenizerJson, out.resolve("tokenizer.json"));
        return out;
    }

    /** Starts {@code hintgrpo sft} in a child JVM; stdout and stderr go to dir/logName. */
    private Process sft(Path run, int steps, boolean resume, String logName) throws IOException {
        String java = ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        List<String> cmd = new ArrayList<>(List.of(java, "--add-modules", "jdk.incubator.vector", "-Xmx1g",
                "-cp", System.getProperty("java.class.path"), "io.hintgrpo.trainer.cli.Main", "sft",
                "--model", dir.resolve("model").toString(), "--train", SynthCorpus.splitFile(dir.resolve("corpus"), "reviews", "train").toString(),
                "--out", run.toString(), "--backend", "cpu", "--steps", Integer.toString(steps), "--batch-size", "4",
                "--warmup-steps", "1", "--checkpoint-every", "1", "--keep-last", "2", "--seed", "3"));
        if (resume) cmd.add("--resume");
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(dir.resolve(logName).toFile()).start();
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
    private static int verifyAndLoad(Path ck) {
        Checkpoints.verify(ck);
        Checkpoints.Loaded l = Checkpoints.load(ck, new CpuKernels(), Map.of(), io.hintgrpo.trainer.sft.SftConfig.defaults().optimizer(), msg -> {});
        try (Model m = l.model()) {
            assertTrue(m.layout.count() > 0);
        }
        return l.state().step();
    }
}
