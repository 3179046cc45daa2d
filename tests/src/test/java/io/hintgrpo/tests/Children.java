package io.hintgrpo.tests;

import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.io.Safetensors;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.trainer.data.SynthCorpus;
import io.hintgrpo.trainer.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * hintgrpo in child JVMs (the same java and classpath as the tests) for faults only a real process
 * shows: signals, kill -9, a second process on a run folder, and file systems mounted read-only or
 * full inside a private mount namespace ({@code unshare --mount}) that vanishes with the child.
 */
final class Children {
    static final long TIMEOUT_MS = 120_000;

    private Children() {}

    /** The command line of {@code hintgrpo args} in a child JVM. */
    static List<String> hintgrpo(String... args) {
        String java = ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        List<String> cmd = new ArrayList<>(List.of(java, "--add-modules", "jdk.incubator.vector", "-Xmx1g",
                "-cp", System.getProperty("java.class.path"), "io.hintgrpo.trainer.cli.Main"));
        cmd.addAll(List.of(args));
        return cmd;
    }

    /** Starts cmd with stdout and stderr into log. */
    static Process start(List<String> cmd, Path log) throws IOException {
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    }

    /** What a finished child left: its exit code and everything it printed. */
    record Done(int exit, String output) {
        /** The lines hintgrpo printed as errors. */
        List<String> errors() {
            return output.lines().filter(l -> l.startsWith("hintgrpo: error: ")).toList();
        }
    }

    static Done run(List<String> cmd, Path log) throws Exception {
        Process p = start(cmd, log);
        if (!p.waitFor(TIMEOUT_MS, TimeUnit.MILLISECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("timed out: " + String.join(" ", cmd));
        }
        return new Done(p.exitValue(), Files.readString(log));
    }

    /**
     * cmd inside a private mount namespace: the shell runs setup (mounts), then cmd, then after
     * (which may record what the mounts hold into files outside them), and exits with cmd's code.
     */
    static List<String> inMountNamespace(String setup, String after, List<String> cmd) {
        List<String> out = new ArrayList<>(List.of("unshare", "--mount", "--propagation", "private", "sh", "-c",
                "set -e; " + setup + "; set +e; \"$@\"; code=$?; " + after + "; exit $code", "sh"));
        out.addAll(cmd);
        return out;
    }

    /** Whether this machine lets the tests mount in a private namespace (root and unshare); the reason when not. */
    static String cannotMount(Path dir) {
        try {
            Path m = Files.createDirectories(dir.resolve("mount-check"));
            Process p = new ProcessBuilder("unshare", "--mount", "--propagation", "private", "sh", "-c",
                    "mount -t tmpfs -o size=64k tmpfs " + m + " && touch " + m + "/x").redirectErrorStream(true).start();
            if (!p.waitFor(30, TimeUnit.SECONDS)) return "unshare did not finish";
            String out = new String(p.getInputStream().readAllBytes());
            return p.exitValue() == 0 ? null : "cannot mount in a private namespace (needs root and util-linux unshare): " + out.strip();
        } catch (Exception e) {
            return "cannot run unshare: " + e.getMessage();
        }
    }

    /**
     * The corpus (seed 11, 120 utterances) in dir/corpus and a model of the embedded default's
     * vocabulary and modalities with the given width and depth in dir/model; returns the model folder.
     */
    static Path corpusAndModel(Path dir, int hidden, int layers) throws IOException {
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

    static String train(Path dir) {
        return SynthCorpus.splitFile(dir.resolve("corpus"), "reviews", "train").toString();
    }

    static String test(Path dir) {
        return SynthCorpus.splitFile(dir.resolve("corpus"), "reviews", "test").toString();
    }
}
