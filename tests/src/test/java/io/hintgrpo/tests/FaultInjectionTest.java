package io.hintgrpo.tests;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Writes that fail for real, not through mocks: every command that writes is run in a child JVM
 * whose output folder is a read-only bind mount, or a small tmpfs filled to the brim, made inside
 * a private mount namespace ({@code unshare --mount}) so nothing stays mounted. Root ignores file
 * permissions, so permissions alone would prove nothing; these tests need root (CI runs as root)
 * and say so when skipped. Each command must end with exit 2 and one line naming the path and the
 * OS's reason, before its long work, leaving no temporary file and the folder's earlier file intact.
 * A disk that fills mid-run (at the first checkpoint) ends the same way with the run's files intact.
 */
class FaultInjectionTest {
    @TempDir
    Path dir;
    Path d; // the output folder the faults are put on

    @BeforeEach
    void setUp() throws Exception {
        String why = Children.cannotMount(dir);
        Assumptions.assumeTrue(why == null, why);
        Children.corpusAndModel(dir, 32, 2);
        Files.writeString(dir.resolve("ids.jsonl"), "{\"ids\": [1, 2, 3]}\n");
        d = Files.createDirectories(dir.resolve("d"));
        // a PEFT adapter of the model, for merge
        try (io.hintgrpo.engine.cpu.CpuKernels k = new io.hintgrpo.engine.cpu.CpuKernels();
             io.hintgrpo.engine.model.Model m = io.hintgrpo.engine.io.ModelDir.load(k, dir.resolve("model"), 0, msg -> {})) {
            io.hintgrpo.engine.io.PeftAdapter.save(m.attachLora(io.hintgrpo.engine.model.LoraConfig.of(2, 4, List.of("q_proj")), 1),
                    dir.resolve("adapter"), null);
        }
    }

    /** Every command that writes, with its outputs in d. */
    private Map<String, List<String>> commands() {
        String m = dir.resolve("model").toString(), train = Children.train(dir), test = Children.test(dir);
        Map<String, List<String>> c = new java.util.LinkedHashMap<>();
        c.put("data synth", List.of("data", "synth", "--out", d.resolve("corpus").toString(), "--size", "40"));
        c.put("sft", List.of("sft", "--model", m, "--train", train, "--out", d.resolve("run").toString(), "--backend", "cpu",
                "--steps", "2", "--batch-size", "4"));
        c.put("grpo", List.of("grpo", "--model", m, "--train", train, "--out", d.resolve("run").toString(), "--backend", "cpu",
                "--steps", "1", "--prompts-per-step", "2", "--group-size", "2", "--max-completion-tokens", "4"));
        c.put("generate", List.of("generate", "--model", m, "--input", test, "--output", d.resolve("out.jsonl").toString(),
                "--backend", "cpu", "--max-new-tokens", "4"));
        c.put("score", List.of("score", "--model", m, "--input", dir.resolve("ids.jsonl").toString(), "--output",
                d.resolve("scores.jsonl").toString(), "--backend", "cpu"));
        c.put("eval", List.of("eval", "--model", m, "--data", test, "--out", d.resolve("report.json").toString(), "--backend", "cpu",
                "--max-new-tokens", "4"));
        c.put("init", List.of("init", "--from", m, "--out", d.resolve("m").toString()));
        c.put("merge", List.of("merge", "--model", m, "--adapter", dir.resolve("adapter").toString(), "--out", d.resolve("merged").toString()));
        c.put("demo", List.of("demo", "--out", d.resolve("demo").toString(), "--steps", "1", "--grpo-steps", "0", "--test-limit", "2",
                "--backend", "cpu"));
        c.put("experiment", List.of("experiment", "--work", d.resolve("work").toString(), "--out", d.resolve("results").toString(),
                "--budget", "4", "--corpus-size", "40", "--eval-size", "2", "--sft-steps", "1", "--seeds", "1", "--backend", "cpu"));
        return c;
    }

    @Test
    void aReadOnlyFolderIsOneLineBeforeAnyWork() throws Exception {
        faultEveryCommand("read-only", "mount --bind " + d + " " + d + " && mount -o remount,bind,ro " + d, "Read-only file system",
                List.of("keep.txt"));
    }

    @Test
    void aFullDiskIsOneLineBeforeAnyWork() throws Exception {
        faultEveryCommand("full", "mount -t tmpfs -o size=256k tmpfs " + d + " && echo mine > " + d + "/keep.txt && "
                + "(dd if=/dev/zero of=" + d + "/fill bs=1k 2>/dev/null || true)", "No space left on device", List.of("fill", "keep.txt"));
    }

    /**
     * The disk fills at the first checkpoint (room for the probe, the settings and the metrics,
     * not for a checkpoint): one line naming the checkpoints folder, no temporary checkpoint left,
     * the settings and the first step's metrics intact.
     */
    @Test
    void aDiskThatFillsMidRunEndsOnOneLineWithTheRunIntact() throws Exception {
        Path run = d.resolve("run");
        List<String> sft = Children.hintgrpo("sft", "--model", dir.resolve("model").toString(), "--train", Children.train(dir), "--out",
                run.toString(), "--backend", "cpu", "--steps", "3", "--batch-size", "4", "--checkpoint-every", "1");
        Path listing = dir.resolve("listing.txt"), metrics = dir.resolve("metrics.txt");
        Children.Done done = Children.run(Children.inMountNamespace("mount -t tmpfs -o size=96k tmpfs " + d,
                "ls -A " + run + " " + run + "/checkpoints > " + listing + " 2>&1; cat " + run + "/metrics.jsonl > " + metrics + " 2>&1",
                sft), dir.resolve("mid-run.log"));
        assertEquals(2, done.exit(), done.output());
        assertEquals(1, done.errors().size(), done.output());
        String error = done.errors().get(0);
        assertTrue(error.startsWith("hintgrpo: error: " + run.resolve("checkpoints")) && error.endsWith("No space left on device"), error);
        assertFalse(done.output().contains("\tat "), done.output());
        String ls = Files.readString(listing);
        assertFalse(ls.contains(".tmp-"), "no temporary checkpoint left: " + ls);
        assertTrue(ls.contains("sft_config.json") && ls.contains("metrics.jsonl"), ls);
        List<String> lines = Files.readAllLines(metrics);
        assertEquals(1, lines.size(), "the first step's line, whole: " + lines);
        assertTrue(lines.get(0).startsWith("{\"step\":1,\"loss\":") && lines.get(0).endsWith("}"), lines.get(0));
    }

    /** Runs every command with the fault mounted on d; checks the one line, the exit code and what d holds afterwards. */
    private void faultEveryCommand(String fault, String mount, String reason, List<String> leftInD) throws Exception {
        if (fault.equals("read-only")) Files.writeString(d.resolve("keep.txt"), "mine\n");
        List<String> problems = new ArrayList<>();
        for (Map.Entry<String, List<String>> c : commands().entrySet()) {
            Path listing = dir.resolve(fault + "-" + c.getKey().replace(' ', '-') + ".ls"), keep = dir.resolve(listing + ".keep");
            Children.Done done = Children.run(Children.inMountNamespace(mount, "ls -A " + d + " > " + listing + "; cat " + d
                    + "/keep.txt > " + keep, Children.hintgrpo(c.getValue().toArray(String[]::new))), dir.resolve(listing + ".log"));
            List<String> errors = done.errors();
            String what = fault + " " + c.getKey() + ": ";
            if (done.exit() != 2) problems.add(what + "exit " + done.exit() + "\n" + done.output());
            else if (errors.size() != 1 || !errors.get(0).contains(d.toString()) || !errors.get(0).endsWith(reason))
                problems.add(what + "not one line naming " + d + " and \"" + reason + "\": " + errors);
            if (done.output().contains("\tat ")) problems.add(what + "a stack trace\n" + done.output());
            List<String> left = Files.readAllLines(listing);
            if (!left.equals(leftInD)) problems.add(what + d + " holds " + left + ", expected " + leftInD);
            if (!Files.readString(keep).equals("mine\n")) problems.add(what + "the earlier file changed");
            if (done.output().contains("loaded") && c.getKey().equals("generate")) problems.add(what + "the model was loaded before the check");
        }
        assertEquals(List.of(), problems);
    }
}
