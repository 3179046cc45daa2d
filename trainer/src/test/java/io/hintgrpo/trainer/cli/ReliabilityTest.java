package io.hintgrpo.trainer.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.io.Safetensors;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.trainer.checkpoint.Checkpoints;
import io.hintgrpo.trainer.data.SynthCorpus;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The adversarial pass in this JVM: every case is a command line a careless or hostile user might
 * give, and each must end with exit 2 (3 for a diverged run) and exactly one line
 * {@code hintgrpo: error: <place>: <reason>} containing the expected words, no stack trace, and
 * nothing changed in the case's folder (inputs, earlier runs and their checkpoints; the lock file
 * aside). The list renders the case table of docs/reliability.md (checked like docs/config.md).
 * Faults that need the OS (read-only mounts, a full disk, a second process, kill -9) are in the
 * tests module: FaultInjectionTest, RunLockTest, RunSafetyTest.
 */
class ReliabilityTest extends TrainingCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path DOC = Path.of("..", "docs", "reliability.md");

    /** A case's files: made by its setup in its own folder, which must not change when the command is refused. */
    interface Setup {
        String[] args(Case.Env env) throws Exception;
    }

    record Case(String area, String what, int exit, String expect, Setup setup) {
        /** What a case's setup can use: its folder, the shared corpus and model, and helpers to make files and runs. */
        record Env(Path dir, Path model, Path corpus, ReliabilityTest t) {
            String train() {
                return SynthCorpus.splitFile(corpus, "reviews", "train").toString();
            }

            String test() {
                return SynthCorpus.splitFile(corpus, "reviews", "test").toString();
            }

            Path file(String name, String text) throws IOException {
                Path f = dir.resolve(name);
                Files.createDirectories(f.getParent());
                Files.writeString(f, text);
                return f;
            }

            Path file(String name, byte[] bytes) throws IOException {
                Path f = dir.resolve(name);
                Files.write(f, bytes);
                return f;
            }

            /** A copy of the shared model in this case's folder (to poison it or change its weights). */
            Path modelCopy(String name) throws IOException {
                Path m = dir.resolve(name);
                Files.createDirectories(m);
                try (Stream<Path> s = Files.list(model)) {
                    for (Path f : s.toList()) Files.copy(f, m.resolve(f.getFileName()));
                }
                return m;
            }

            /** A finished 2-step sft run in folder name (checkpoints every step). */
            Path sftRun(String name, String... extra) {
                Path run = dir.resolve(name);
                List<String> a = new ArrayList<>(List.of("sft", "--model", model.toString(), "--train", train(), "--out", run.toString(),
                        "--backend", "cpu", "--steps", "2", "--batch-size", "4", "--checkpoint-every", "1"));
                a.addAll(List.of(extra));
                assertEquals(0, t.run(a.toArray(String[]::new)), t.err);
                return run;
            }

            String[] sft(Path run, String... extra) {
                return with(new String[]{"sft", "--model", model.toString(), "--train", train(), "--out", run.toString(),
                        "--backend", "cpu", "--steps", "3", "--batch-size", "4", "--checkpoint-every", "1"}, extra);
            }
        }
    }

    static final int BAD = Main.EXIT_BAD_INPUT;

    static List<Case> cases() {
        List<Case> c = new ArrayList<>();
        // ---- flags
        c.add(new Case("flags", "a setting flag that is not a number", BAD, "--steps: setting \"steps\" must be a whole number, got \"abc\"",
                e -> e.sft(e.dir().resolve("r"), "--steps", "abc")));
        c.add(new Case("flags", "a plain option that is not a number", BAD, "--batch-size: \"abc\" is not a whole number (see 'hintgrpo score --help')",
                e -> new String[]{"score", "--model", e.model().toString(), "--input", "x", "--output", "y", "--batch-size", "abc"}));
        c.add(new Case("flags", "an unknown top-level option", BAD, "Unknown option: '--no-such-flag' (see 'hintgrpo --help')",
                e -> new String[]{"--no-such-flag"}));
        c.add(new Case("flags", "an unknown option", BAD, "Unknown option: '--no-such-flag'",
                e -> new String[]{"grpo", "--model", e.model().toString(), "--train", e.train(), "--out", e.dir().resolve("r").toString(),
                        "--no-such-flag"}));
        c.add(new Case("flags", "a required option missing", BAD, "Missing required option",
                e -> new String[]{"sft", "--model", e.model().toString()}));
        c.add(new Case("flags", "an unknown command", BAD, "Unmatched argument at index 0: 'trian'",
                e -> new String[]{"trian"}));
        c.add(new Case("flags", "generate --top-k below 0", BAD, "--top-k: must be ≥ 0",
                e -> generate(e, "--top-k", "-1")));
        c.add(new Case("flags", "generate --max-new-tokens 0", BAD, "--max-new-tokens: must be ≥ 1",
                e -> generate(e, "--max-new-tokens", "0")));
        c.add(new Case("flags", "generate --max-new-tokens beyond the context", BAD, "is beyond the model's context",
                e -> generate(e, "--max-new-tokens", "1000000")));
        c.add(new Case("flags", "generate --temperature below 0", BAD, "--temperature: must be a number ≥ 0",
                e -> generate(e, "--temperature", "-1")));
        c.add(new Case("flags", "generate --top-p 0", BAD, "--top-p: must be in (0, 1]",
                e -> generate(e, "--top-p", "0")));
        c.add(new Case("flags", "eval --batch-size 0", BAD, "--batch-size: must be ≥ 1",
                e -> new String[]{"eval", "--model", e.model().toString(), "--data", e.test(), "--batch-size", "0", "--backend", "cpu"}));
        c.add(new Case("flags", "score --temperature 0", BAD, "--temperature: must be a positive number",
                e -> new String[]{"score", "--model", e.model().toString(), "--input", e.test(), "--output", e.dir().resolve("o").toString(),
                        "--temperature", "0"}));
        c.add(new Case("flags", "demo --grpo-steps below 0", BAD, "--grpo-steps: must be ≥ 0",
                e -> new String[]{"demo", "--out", e.dir().resolve("d").toString(), "--grpo-steps", "-1"}));
        c.add(new Case("flags", "demo --steps 0", BAD, "--steps: must be ≥ 1",
                e -> new String[]{"demo", "--out", e.dir().resolve("d").toString(), "--steps", "0"}));
        c.add(new Case("flags", "experiment --budget 0", BAD, "--budget: must be ≥ 1",
                e -> new String[]{"experiment", "--budget", "0", "--work", e.dir().resolve("w").toString()}));
        c.add(new Case("flags", "experiment --regimes with an unknown corpus", BAD, "--regimes: expected CORPUS/REWARD",
                e -> new String[]{"experiment", "--regimes", "blind/banded", "--work", e.dir().resolve("w").toString()}));
        c.add(new Case("flags", "experiment --seeds with a word", BAD, "--seeds: \"one\" is not a whole number",
                e -> new String[]{"experiment", "--seeds", "1,one"}));
        c.add(new Case("flags", "data synth --size too small", BAD, "--size: must be at least",
                e -> new String[]{"data", "synth", "--out", e.dir().resolve("c").toString(), "--size", "5"}));
        c.add(new Case("flags", "data synth --teacher-error-rate above 1", BAD, "--teacher-error-rate",
                e -> new String[]{"data", "synth", "--out", e.dir().resolve("c").toString(), "--teacher-error-rate", "2"}));
        c.add(new Case("flags", "data check --audio-dim below -1", BAD, "--audio-dim: must be ≥ 0, or -1 for any",
                e -> new String[]{"data", "check", e.train(), "--audio-dim", "-2"}));
        c.add(new Case("flags", "data import-mmsa --pool-frames below 0", BAD, "--pool-frames: must be ≥ 1, or 0 to keep every frame",
                e -> new String[]{"data", "import-mmsa", "--pkl", "x.pkl", "--out", e.dir().resolve("c").toString(), "--name", "mosi",
                        "--pool-frames", "-1"}));
        c.add(new Case("flags", "init --audio-dim below 0", BAD, "--audio-dim: must be ≥ 0",
                e -> new String[]{"init", "--from", e.model().toString(), "--out", e.dir().resolve("m").toString(), "--audio-dim", "-1"}));
        c.add(new Case("flags", "init --preset with an unknown name", BAD, "--preset: unknown preset \"nope\"; known: embedded, 25m",
                e -> new String[]{"init", "--preset", "nope", "--tokenizer", e.model().toString(), "--out", e.dir().resolve("m").toString()}));
        c.add(new Case("flags", "init --preset without --tokenizer", BAD, "--tokenizer: required with --preset",
                e -> new String[]{"init", "--preset", "embedded", "--out", e.dir().resolve("m").toString()}));
        c.add(new Case("flags", "init --preset and --from together", BAD, "--preset",
                e -> new String[]{"init", "--preset", "embedded", "--from", e.model().toString(), "--tokenizer", e.model().toString(),
                        "--out", e.dir().resolve("m").toString()}));
        c.add(new Case("flags", "data teacher --endpoint that is not http", BAD, "--endpoint: not an http(s) URL",
                e -> new String[]{"data", "teacher", "--endpoint", "ftp://x", "--in", e.train(), "--out", e.dir().resolve("t.jsonl").toString()}));
        c.add(new Case("flags", "bench compare --threshold not a number", BAD, "--threshold: not a number or percentage",
                e -> new String[]{"bench", "compare", e.file("a.json", "{}").toString(), e.file("b.json", "{}").toString(), "--threshold", "lots"}));
        c.add(new Case("flags", "an unknown backend", BAD, "unknown backend \"tpu\"",
                e -> new String[]{"grpo", "--model", e.model().toString(), "--train", e.train(), "--out", e.dir().resolve("r").toString(),
                        "--backend", "tpu"}));
        c.add(new Case("flags", "grpo --group-size 1", BAD, "group_size must be ≥ 2",
                e -> new String[]{"grpo", "--model", e.model().toString(), "--train", e.train(), "--out", e.dir().resolve("r").toString(),
                        "--group-size", "1"}));
        c.add(new Case("flags", "grpo --hint with an unknown mode", BAD, "setting \"hint\" must be one of none, replace, mix",
                e -> new String[]{"grpo", "--model", e.model().toString(), "--train", e.train(), "--out", e.dir().resolve("r").toString(),
                        "--hint", "sometimes"}));
        c.add(new Case("flags", "grpo --minibatches more than rollouts", BAD, "minibatches 1000 > rollouts per step",
                e -> new String[]{"grpo", "--model", e.model().toString(), "--train", e.train(), "--out", e.dir().resolve("r").toString(),
                        "--minibatches", "1000"}));
        c.add(new Case("flags", "grpo --eval-samples below 0", BAD, "eval_samples must be ≥ 0",
                e -> new String[]{"grpo", "--model", e.model().toString(), "--train", e.train(), "--out", e.dir().resolve("r").toString(),
                        "--eval-samples", "-1"}));
        c.add(new Case("flags", "sft --batch-size 0", BAD, "batch_size must be ≥ 1",
                e -> e.sft(e.dir().resolve("r"), "--batch-size", "0")));
        c.add(new Case("flags", "sft --lr not finite", BAD, "lr must be a positive number",
                e -> e.sft(e.dir().resolve("r"), "--lr", "Infinity")));
        // ---- config files
        c.add(new Case("config", "a key twice in a JSON file", BAD, "the key \"steps\" is set twice",
                e -> e.sft(e.dir().resolve("r"), "--config", e.file("c.json", "{\"steps\": 1, \"steps\": 2}").toString())));
        c.add(new Case("config", "a key twice in a YAML section", BAD, "the key \"lr\" is set twice",
                e -> e.sft(e.dir().resolve("r"), "--config", e.file("c.yaml", "sft:\n  lr: 1e-3\n  lr: 2e-3\n").toString())));
        c.add(new Case("config", "an unknown top-level key", BAD, "unknown setting \"stpes\"",
                e -> e.sft(e.dir().resolve("r"), "--config", e.file("c.yaml", "stpes: 3\n").toString())));
        c.add(new Case("config", "a key its command lacks, in its section", BAD, "unknown setting \"group_size\" for command sft",
                e -> e.sft(e.dir().resolve("r"), "--config", e.file("c.yaml", "sft:\n  group_size: 4\n").toString())));
        c.add(new Case("config", "a setting of the wrong kind, named with the file", BAD, "c.yaml: setting \"warmup_steps\" must be a whole number",
                e -> e.sft(e.dir().resolve("r"), "--config", e.file("c.yaml", "warmup_steps: soon\n").toString())));
        c.add(new Case("config", "a plain option of the wrong kind, named with the file", BAD, "c.yaml: setting \"batch_size\" must be a whole number",
                e -> new String[]{"score", "--model", e.model().toString(), "--input", "x", "--output", "y",
                        "--config", e.file("c.yaml", "batch_size: many\n").toString()}));
        c.add(new Case("config", "a file that is neither JSON nor YAML", BAD, "not valid JSON or YAML",
                e -> e.sft(e.dir().resolve("r"), "--config", e.file("c.json", "{steps: ").toString())));
        c.add(new Case("config", "a config file that does not exist", BAD, "config file not found",
                e -> e.sft(e.dir().resolve("r"), "--config", e.dir().resolve("none.yaml").toString())));
        c.add(new Case("config", "a section that is not an object", BAD, "section \"grpo\" must be an object",
                e -> new String[]{"grpo", "--model", e.model().toString(), "--train", e.train(), "--out", e.dir().resolve("r").toString(),
                        "--config", e.file("c.yaml", "grpo: 3\n").toString()}));
        c.add(new Case("config", "a config file that is a list", BAD, "expected an object of settings",
                e -> e.sft(e.dir().resolve("r"), "--config", e.file("c.json", "[1, 2]").toString())));
        c.add(new Case("config", "a TRL key with no equivalent", BAD, "\"use_vllm\" is a TRL GRPOConfig setting with no equivalent",
                e -> new String[]{"grpo", "--model", e.model().toString(), "--train", e.train(), "--out", e.dir().resolve("r").toString(),
                        "--config", e.file("c.yaml", "use_vllm: true\n").toString()}));
        c.add(new Case("config", "a TRL value we do not implement", BAD, "scale_rewards \"batch\" (TRL) has no equivalent",
                e -> new String[]{"grpo", "--model", e.model().toString(), "--train", e.train(), "--out", e.dir().resolve("r").toString(),
                        "--config", e.file("c.yaml", "scale_rewards: batch\n").toString()}));
        // ---- inputs
        c.add(new Case("inputs", "generate from a missing input file", BAD, "file not found",
                e -> generate(e, "--input", e.dir().resolve("none.jsonl").toString())));
        c.add(new Case("inputs", "a line that is not UTF-8, named by its number", BAD, "in.jsonl:3: not UTF-8 text (byte 0xff",
                e -> generate(e, "--input", e.file("in.jsonl", withBadLine3(e)).toString())));
        c.add(new Case("inputs", "a line that is not JSON", BAD, "in.jsonl:2: ",
                e -> generate(e, "--input", e.file("in.jsonl", firstLine(e) + "\n{\"id\": \n").toString())));
        c.add(new Case("inputs", "a model with NaN in a weight", BAD, "tensor model.layers.1.mlp.down_proj.weight holds NaN at flat index 7",
                e -> new String[]{"score", "--model", poisoned(e).toString(), "--input", e.file("ids.jsonl", "{\"ids\": [1, 2, 3]}\n").toString(),
                        "--output", e.dir().resolve("o.jsonl").toString(), "--backend", "cpu"}));
        c.add(new Case("inputs", "a model directory without config.json", BAD, "no config.json in the model directory",
                e -> new String[]{"grpo", "--model", e.dir().toString(), "--train", e.train(), "--out", e.dir().resolve("r").toString()}));
        c.add(new Case("inputs", "a shard that links outside the model directory", BAD, "links to",
                e -> new String[]{"score", "--model", shardLinkedOutside(e).toString(), "--input", e.file("ids.jsonl", "{\"ids\": [1, 2]}\n").toString(),
                        "--output", e.dir().resolve("o.jsonl").toString(), "--backend", "cpu"}));
        c.add(new Case("inputs", "a weights file whose header lies", BAD, "model.safetensors",
                e -> new String[]{"score", "--model", truncatedWeights(e).toString(), "--input", e.file("ids.jsonl", "{\"ids\": [1, 2]}\n").toString(),
                        "--output", e.dir().resolve("o.jsonl").toString(), "--backend", "cpu"}));
        c.add(new Case("inputs", "a pickle that would call os.system", BAD, "global os.system is not allowed",
                e -> { Path pkl = e.dir().resolve("evil.pkl"); // protocol 2: os.system('echo'), refused at the global
                    Files.write(pkl, new byte[]{(byte) 0x80, 2, 'c', 'o', 's', '\n', 's', 'y', 's', 't', 'e', 'm', '\n', 'X', 4, 0, 0, 0,
                            'e', 'c', 'h', 'o', (byte) 0x85, 'R', '.'});
                    return new String[]{"data", "import-mmsa", "--pkl", pkl.toString(), "--out", e.dir().resolve("c").toString(), "--name", "mosi"}; }));
        // ---- outputs
        c.add(new Case("outputs", "generate --output is the input", BAD, "is the input",
                e -> { Path in = e.file("in.jsonl", firstLine(e) + "\n"); return generate(e, "--input", in.toString(), "--output", in.toString()); }));
        c.add(new Case("outputs", "generate --output is the input, written ./F", BAD, "is the input",
                e -> { Path in = e.file("in.jsonl", firstLine(e) + "\n");
                    return generate(e, "--input", in.toString(), "--output", in.getParent().resolve(".").resolve("in.jsonl").toString()); }));
        c.add(new Case("outputs", "generate --output is a link to the input", BAD, "is the input",
                e -> { Path in = e.file("in.jsonl", firstLine(e) + "\n"); Path link = Files.createSymbolicLink(e.dir().resolve("link.jsonl"), in);
                    return generate(e, "--input", in.toString(), "--output", link.toString()); }));
        c.add(new Case("outputs", "score --output is the input", BAD, "is the input",
                e -> { Path in = e.file("ids.jsonl", "{\"ids\": [1, 2]}\n");
                    return new String[]{"score", "--model", e.model().toString(), "--input", in.toString(), "--output", in.toString()}; }));
        c.add(new Case("outputs", "eval --out is a data file", BAD, "is the input",
                e -> { Path d = e.dir().resolve("data.jsonl"); Files.copy(Path.of(e.test()), d);
                    return new String[]{"eval", "--model", e.model().toString(), "--data", d.toString(), "--out", d.toString()}; }));
        c.add(new Case("outputs", "generate --output is a folder", BAD, "cannot write: it is a folder",
                e -> { Files.createDirectories(e.dir().resolve("out")); return generate(e, "--output", e.dir().resolve("out").toString()); }));
        c.add(new Case("outputs", "generate --output under a file", BAD, "is a file, not a folder",
                e -> generate(e, "--output", e.file("plain", "x").resolve("out.jsonl").toString())));
        c.add(new Case("outputs", "data synth --out a folder that is not empty", BAD, "folder exists and is not empty",
                e -> { e.file("c/keep.txt", "mine"); return new String[]{"data", "synth", "--out", e.dir().resolve("c").toString(), "--size", "40"}; }));
        c.add(new Case("outputs", "export onnx --out is a folder", BAD, "cannot write: it is a folder",
                e -> { Files.createDirectories(e.dir().resolve("m.onnx"));
                    return new String[]{"export", "onnx", "--model", e.model().toString(), "--out", e.dir().resolve("m.onnx").toString()}; }));
        c.add(new Case("outputs", "data import-mmsa --out a folder that is not empty", BAD, "folder exists and is not empty",
                e -> { e.file("c/keep.txt", "mine"); return new String[]{"data", "import-mmsa", "--pkl", "x.pkl", "--out",
                        e.dir().resolve("c").toString(), "--name", "mosi"}; }));
        c.add(new Case("outputs", "sft --out is a file", BAD, "is a file, not a folder",
                e -> e.sft(e.file("run", "not a folder"))));
        c.add(new Case("outputs", "init --out a folder that is not empty", BAD, "already exists and is not an empty directory",
                e -> { e.file("m/keep.txt", "mine"); return new String[]{"init", "--from", e.model().toString(), "--out", e.dir().resolve("m").toString()}; }));
        // ---- run folders
        c.add(new Case("runs", "sft again on a used run folder without --resume", BAD, "already holds checkpoints; pass --resume",
                e -> e.sft(e.sftRun("r"))));
        c.add(new Case("runs", "grpo --resume on an sft run", BAD, "checkpoint was written with command = sft, this run has grpo",
                e -> { Path r = e.sftRun("r"); return new String[]{"grpo", "--model", e.model().toString(), "--train", e.train(),
                        "--out", r.toString(), "--resume", "--backend", "cpu"}; }));
        c.add(new Case("runs", "--resume with another corpus at the same path", BAD, "checkpoint was written with train = ",
                e -> { Path copy = e.dir().resolve("corpus");
                    try (Stream<Path> s = Files.walk(e.corpus())) {
                        for (Path p : s.toList()) Files.copy(p, copy.resolve(e.corpus().relativize(p).toString()));
                    }
                    Path train = SynthCorpus.splitFile(copy, "reviews", "train"), r = e.dir().resolve("r");
                    List<String> a = new ArrayList<>(List.of(e.sft(r)));
                    a.set(a.indexOf("--train") + 1, train.toString());
                    a.set(a.indexOf("--steps") + 1, "2");
                    assertEquals(0, e.t().run(a.toArray(String[]::new)), e.t().err);
                    List<String> lines = new ArrayList<>(Files.readAllLines(train));
                    java.util.Collections.swap(lines, 0, 1); // the same utterances in another order: another run
                    Files.write(train, lines);
                    a.set(a.indexOf("--steps") + 1, "3");
                    a.add("--resume");
                    return a.toArray(String[]::new); }));
        c.add(new Case("runs", "--resume with another learning rate", BAD, "checkpoint was written with lr = 0.002, this run has 0.001",
                e -> e.sft(e.sftRun("r"), "--resume", "--lr", "1e-3")));
        c.add(new Case("runs", "--resume from other starting weights at the same path", BAD, "checkpoint was written with model = ",
                e -> { Path m = e.modelCopy("m"); Path r = e.dir().resolve("r");
                    assertEquals(0, e.t().run("sft", "--model", m.toString(), "--train", e.train(), "--out", r.toString(), "--backend", "cpu",
                            "--steps", "1", "--batch-size", "4"), e.t().err);
                    io.hintgrpo.trainer.TinyModels.write(m, 99);
                    return new String[]{"sft", "--model", m.toString(), "--train", e.train(), "--out", r.toString(), "--backend", "cpu",
                            "--steps", "2", "--batch-size", "4", "--resume"}; }));
        c.add(new Case("runs", "a checkpoint index that points into another run", BAD, "which is not a checkpoint folder of this run",
                e -> { Path other = e.sftRun("run1"); Path r = e.sftRun("run2");
                    e.file("run2/checkpoints/index.json", "{\"latest\": \"../../run1/checkpoints/step-0000002\"}");
                    return e.sft(r, "--resume"); }));
        c.add(new Case("runs", "a checkpoint folder that links into another run", BAD, "outside",
                e -> { Path other = e.sftRun("run1"); Path r = e.dir().resolve("run2"); Files.createDirectories(r.resolve("checkpoints"));
                    Files.createSymbolicLink(r.resolve("checkpoints/step-0000002"), other.resolve("checkpoints/step-0000002"));
                    return e.sft(r, "--resume"); }));
        c.add(new Case("runs", "checksums.json that names a file outside its checkpoint", BAD, "which is not a file of the checkpoint folder",
                e -> { Path r = e.sftRun("r"); Path sums = r.resolve("checkpoints/step-0000002/checksums.json");
                    ObjectNode o = (ObjectNode) JSON.readTree(sums.toFile()); o.put("../../../corpus/corpus.json", "00");
                    Files.writeString(sums, o.toString()); return e.sft(r, "--resume"); }));
        c.add(new Case("runs", "a checkpoint with NaN in its optimizer moments", BAD, "holds NaN",
                e -> { Path r = e.sftRun("r"); poisonMoments(r.resolve("checkpoints/step-0000002")); return e.sft(r, "--resume"); }));
        c.add(new Case("runs", "a run that diverges (lr 1e30)", Main.EXIT_DIVERGED, "training diverged: 2 steps in a row had a non-finite loss",
                e -> e.sft(e.dir().resolve("r"), "--lr", "1e30", "--warmup-steps", "0", "--max-bad-steps-in-a-row", "2", "--steps", "6")));
        return c;
    }

    int run(String... args) {
        return super.run(args);
    }

    @TestFactory
    Stream<DynamicTest> everyCaseIsOneLineAndChangesNothing() {
        List<Case> all = cases();
        List<DynamicTest> tests = new ArrayList<>();
        for (int i = 0; i < all.size(); i++) {
            Case k = all.get(i);
            Path caseDir = dir.resolve("case" + i);
            tests.add(DynamicTest.dynamicTest(k.area() + ": " + k.what(), () -> {
                Files.createDirectories(caseDir);
                Case.Env env = new Case.Env(caseDir, modelDir, corpus, this);
                String[] args = k.setup().args(env);
                Map<String, String> before = snapshot(caseDir), corpusBefore = snapshot(corpus);
                int code = run(args);
                String e = err.strip();
                assertEquals(k.exit(), code, String.join(" ", args) + " → " + err);
                assertTrue(e.startsWith("hintgrpo: error: ") && e.lines().count() == 1, "one line: " + err);
                assertTrue(e.contains(k.expect()), "«" + k.expect() + "» in " + e);
                assertFalse(err.contains("\tat "), "no stack trace: " + err);
                if (k.exit() == BAD) {
                    assertEquals(before, snapshot(caseDir), "nothing changed in the case folder");
                    assertEquals(corpusBefore, snapshot(corpus), "nothing changed in the corpus");
                }
            }));
        }
        return tests.stream();
    }

    /** The divergence abort keeps the last good checkpoint: it verifies and loads. */
    @Test
    void aDivergedRunKeepsItsLastGoodCheckpoint() throws Exception {
        Case.Env env = new Case.Env(dir, modelDir, corpus, this);
        Path r = dir.resolve("r");
        assertEquals(Main.EXIT_DIVERGED, run(env.sft(r, "--lr", "1e30", "--warmup-steps", "0", "--max-bad-steps-in-a-row", "2", "--steps", "6")));
        Path latest = new Checkpoints(r).latest();
        assertNotNull(latest, "the checkpoints before the abort");
        Checkpoints.verify(latest);
        assertTrue(JSON.readTree(latest.resolve(Checkpoints.STATE).toFile()).get("step").asInt() >= 1);
    }

    /** Every option of every command says what it does in --help. */
    @Test
    void everyOptionHasADescription() {
        List<String> bare = new ArrayList<>();
        collect(Main.allCommands().getCommandSpec(), bare);
        assertEquals(List.of(), bare, "options without a description");
    }

    /** Every command's --help renders without picocli's format warning (a bare "%" in a description). */
    @Test
    void everyHelpRendersWithoutAFormatWarning() {
        java.io.ByteArrayOutputStream said = new java.io.ByteArrayOutputStream();
        java.io.PrintStream stderr = System.err;
        System.setErr(new java.io.PrintStream(said, true, java.nio.charset.StandardCharsets.UTF_8));
        List<String> helps = new ArrayList<>();
        try {
            usages(Main.allCommands(), helps);
        } finally {
            System.setErr(stderr);
        }
        assertTrue(helps.size() > 10, "commands rendered: " + helps.size());
        String warnings = said.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertFalse(warnings.contains("WARN"), warnings);
    }

    private static void usages(picocli.CommandLine cmd, List<String> out) {
        out.add(cmd.getUsageMessage());
        for (picocli.CommandLine sub : cmd.getSubcommands().values()) usages(sub, out);
    }

    private static void collect(picocli.CommandLine.Model.CommandSpec spec, List<String> bare) {
        for (picocli.CommandLine.Model.OptionSpec o : spec.options())
            if (String.join("", o.description()).isBlank()) bare.add(spec.qualifiedName() + " " + o.longestName());
        for (picocli.CommandLine sub : spec.subcommands().values()) collect(sub.getCommandSpec(), bare);
    }

    /** docs/reliability.md lists exactly these cases (regenerate as ConfigDocsTest's javadoc says, with -Dtest=ReliabilityTest). */
    @Test
    void theDocsListTheseCases() throws Exception {
        String doc = Files.readString(DOC);
        String begin = "<!-- BEGIN cases (generated by ReliabilityTest) -->\n", end = "<!-- END cases -->";
        int a = doc.indexOf(begin), b = doc.indexOf(end);
        assertTrue(a >= 0 && b > a, "markers in " + DOC);
        StringBuilder t = new StringBuilder("| # | area | case | exit | the one line contains |\n|---|---|---|---|---|\n");
        List<Case> all = cases();
        for (int i = 0; i < all.size(); i++) {
            Case k = all.get(i);
            t.append("| ").append(i + 1).append(" | ").append(k.area()).append(" | ").append(k.what()).append(" | ").append(k.exit())
                    .append(" | `").append(k.expect().replace("|", "\\|")).append("` |\n");
        }
        String expected = doc.substring(0, a + begin.length()) + t + doc.substring(b);
        if (Boolean.getBoolean("hintgrpo.writeDocs")) Files.writeString(DOC, expected);
        assertEquals(expected, Files.readString(DOC), "docs/reliability.md's case table is stale");
    }

    // ---- fixtures

    private static String[] generate(Case.Env e, String... extra) {
        return with(new String[]{"generate", "--model", e.model().toString(), "--input", e.test(),
                "--output", e.dir().resolve("out.jsonl").toString(), "--backend", "cpu"}, extra);
    }

    /** A command line with options replaced or added: {@code --flag value} pairs, or a lone flag. */
    static String[] with(String[] base, String... extra) {
        List<String> a = new ArrayList<>(List.of(base));
        for (int i = 0; i < extra.length; i++) {
            boolean pair = i + 1 < extra.length && !extra[i + 1].startsWith("--");
            int at = a.indexOf(extra[i]);
            if (at >= 0 && pair) a.set(at + 1, extra[i + 1]);
            else if (at < 0) {
                a.add(extra[i]);
                if (pair) a.add(extra[i + 1]);
            }
            if (pair) i++;
        }
        return a.toArray(String[]::new);
    }

    private static String firstLine(Case.Env e) throws IOException {
        // the corpus line with its .npy paths made absolute, so it reads from any folder
        ObjectNode o = (ObjectNode) JSON.readTree(Files.readAllLines(Path.of(e.test())).get(0));
        Path folder = Path.of(e.test()).toAbsolutePath().getParent();
        for (String m : new String[]{"audio", "vision"})
            if (o.path(m).isTextual()) o.put(m, folder.resolve(o.get(m).asText()).toString());
        return o.toString();
    }

    private static byte[] withBadLine3(Case.Env e) throws IOException {
        String good = firstLine(e);
        byte[] g = (good + "\n" + good.replace("\"id\":\"", "\"id\":\"2") + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8);
        byte[] bad = {'{', '"', 'i', 'd', '"', ':', (byte) 0xff, '}', '\n'};
        byte[] all = new byte[g.length + bad.length];
        System.arraycopy(g, 0, all, 0, g.length);
        System.arraycopy(bad, 0, all, g.length, bad.length);
        return all;
    }

    private static Path poisoned(Case.Env e) throws IOException {
        Path m = e.modelCopy("poisoned");
        try (Model model = ModelDir.load(new CpuKernels(), m, 0, x -> {})) {
            float[] w = model.download("model.layers.1.mlp.down_proj.weight");
            w[7] = Float.NaN;
            model.upload("model.layers.1.mlp.down_proj.weight", w);
            ModelDir.save(model, m, Safetensors.Dtype.F32);
        }
        return m;
    }

    /** A sharded model directory whose shard is a link to a file in the folder above it. */
    private static Path shardLinkedOutside(Case.Env e) throws IOException {
        Path m = e.modelCopy("sharded");
        Path outside = e.dir().resolve("weights.safetensors");
        Files.move(m.resolve(ModelDir.WEIGHTS), outside);
        Files.createSymbolicLink(m.resolve("model-00001-of-00001.safetensors"), outside);
        ObjectNode index = JSON.createObjectNode();
        ObjectNode map = index.putObject("weight_map");
        try (Safetensors st = Safetensors.open(outside)) {
            for (String t : st.tensors().keySet()) map.put(t, "model-00001-of-00001.safetensors");
        }
        Files.writeString(m.resolve(ModelDir.INDEX), index.toString());
        return m;
    }

    private static Path truncatedWeights(Case.Env e) throws IOException {
        Path m = e.modelCopy("truncated");
        Path w = m.resolve(ModelDir.WEIGHTS);
        byte[] b = Files.readAllBytes(w);
        Files.write(w, java.util.Arrays.copyOf(b, b.length / 2));
        return m;
    }

    /** NaN into one optimizer moment, with the checksums recomputed so only the values are wrong. */
    private static void poisonMoments(Path ck) throws Exception {
        Path opt = ck.resolve(Checkpoints.OPTIMIZER);
        Map<String, float[]> tensors = new java.util.LinkedHashMap<>();
        Map<String, int[]> shapes = new java.util.LinkedHashMap<>();
        try (Safetensors st = Safetensors.open(opt)) {
            for (String t : st.tensors().keySet()) {
                tensors.put(t, st.read(t));
                shapes.put(t, st.info(t).shape());
            }
        }
        tensors.values().iterator().next()[0] = Float.NaN;
        Safetensors.write(opt, Safetensors.Dtype.F32, shapes, tensors::get);
        Path sums = ck.resolve(Checkpoints.CHECKSUMS);
        ObjectNode o = (ObjectNode) JSON.readTree(sums.toFile());
        o.put(Checkpoints.OPTIMIZER, sha256(opt));
        Files.writeString(sums, o.toString());
    }

    private static String sha256(Path f) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(f)));
    }

    /** Every file under dir (links not followed) by relative path → SHA-256 of its bytes; the lock file aside. */
    private static Map<String, String> snapshot(Path dir) throws IOException {
        Map<String, String> out = new TreeMap<>();
        if (!Files.exists(dir)) return out;
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.toList()) {
                String rel = dir.relativize(p).toString();
                if (p.getFileName().toString().equals(io.hintgrpo.trainer.loop.RunLock.FILE)) continue;
                if (Files.isSymbolicLink(p)) out.put(rel, "-> " + Files.readSymbolicLink(p));
                else if (Files.isDirectory(p)) out.put(rel + "/", "");
                else {
                    try {
                        out.put(rel, sha256(p));
                    } catch (Exception x) {
                        throw new IOException(x);
                    }
                }
            }
        }
        return out;
    }
}
