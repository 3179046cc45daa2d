package io.hintgrpo.trainer.bench;

import io.hintgrpo.trainer.cli.CliRun;

import io.hintgrpo.engine.BadInputException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.jar.Attributes;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;

import static org.junit.jupiter.api.Assertions.*;

class BenchRunTest {
    @TempDir
    Path dir;
    Path fakeJar;
    String out, err;

    /**
     * A runnable jar whose main is {@link FakeJmh}, with a stand-in TorchReference, so the whole run
     * path is exercised without JMH; the torch reference is off unless a test points it at a fake.
     */
    @BeforeEach
    void packFakeJmh() throws IOException {
        fakeJar = dir.resolve("fake-benchmarks.jar");
        Manifest mf = new Manifest();
        mf.getMainAttributes().put(Attributes.Name.MANIFEST_VERSION, "1.0");
        mf.getMainAttributes().put(Attributes.Name.MAIN_CLASS, FakeJmh.class.getName());
        try (OutputStream f = Files.newOutputStream(fakeJar); JarOutputStream jar = new JarOutputStream(f, mf)) {
            for (Class<?> c : List.of(FakeJmh.class, io.hintgrpo.benchmarks.TorchReference.class)) {
                String entry = c.getName().replace('.', '/') + ".class";
                try (InputStream cls = c.getClassLoader().getResourceAsStream(entry)) {
                    jar.putNextEntry(new JarEntry(entry));
                    cls.transferTo(jar);
                    jar.closeEntry();
                }
            }
        }
    }

    @AfterEach
    void clearTorchProperties() {
        System.clearProperty(TorchRun.PYTHON_PROPERTY);
        System.clearProperty(TorchRun.SCRIPT_PROPERTY);
    }

    /**
     * A stand-in for scripts/torch_cpu_bench.py, run by /bin/sh: a twin of FwdBench.ours, a logits
     * check, round 1 scoring 500 ops/s, then after a line on stdin round 2 scoring 1,000, after
     * another round 3 scoring 1,500.
     */
    private void fakeTorch() throws IOException {
        Path script = Files.writeString(dir.resolve("fake_torch.sh"), """
                case "$1" in
                  --list) echo FwdBench.ours; exit 0 ;;
                  --probe) echo '{"torch": "fake", "threads": 2, "blas": "none", "env": {"OMP_WAIT_POLICY": "PASSIVE"}}'; exit 0 ;;
                esac
                echo "fake torch: $*"
                echo '{"check": {"rel_l2": 1.5e-06}}'
                echo '{"round": 1, "results": [{"benchmark": "FwdBench.ours", "mode": "thrpt", "unit": "ops/s", "scores": [400, 600], "score": 500}]}'
                read line || exit 0
                echo '{"round": 2, "results": [{"benchmark": "FwdBench.ours", "mode": "thrpt", "unit": "ops/s", "scores": [1000], "score": 1000}]}'
                read line || exit 0
                echo '{"round": 3, "results": [{"benchmark": "FwdBench.ours", "mode": "thrpt", "unit": "ops/s", "scores": [1500], "score": 1500}]}'
                """);
        System.setProperty(TorchRun.PYTHON_PROPERTY, "/bin/sh");
        System.setProperty(TorchRun.SCRIPT_PROPERTY, script.toString());
    }

    private int cli(String... args) {
        CliRun r = CliRun.of(args);
        out = r.out();
        err = r.err();
        return r.code();
    }

    @Test
    void smokeArgumentsRunEveryBenchmarkOnceBrieflyAndFailOnError() {
        Path json = dir.resolve("r.json");
        List<String> a = BenchRun.jmhArgs(BenchRun.Mode.SMOKE, "Fwd", List.of("config=25m"), json);
        assertEquals("Fwd", a.get(0));
        String s = String.join(" ", a);
        assertTrue(s.contains("-f 1 -wi 0 -i 1 -r 100ms"), s);
        assertTrue(s.contains("-p config=embedded") && s.endsWith("-p config=25m -foe true -rf json -rff " + json.toAbsolutePath()), s);
        String q = String.join(" ", BenchRun.jmhArgs(BenchRun.Mode.QUICK, "x", List.of(), json));
        assertTrue(q.startsWith("x -f 1 -i 6 -r 500ms -foe true"), q);      // each class's own warm-up
        assertEquals(List.of("x", "-foe", "true", "-rf", "json", "-rff", json.toAbsolutePath().toString()),
                BenchRun.jmhArgs(BenchRun.Mode.FULL, "x", List.of(), json));
    }

    @Test
    void aRunWritesJsonAndAMarkdownTableWithTheRatioToTheReference() throws IOException {
        Path o = dir.resolve("results");
        assertEquals(0, cli("bench", "--quick", "--jar", fakeJar.toString(), "--filter", "ok", "--out", o.toString()), err);
        assertTrue(out.contains("# fake JMH: ok -f 1 -i 6"), out);                      // JMH's output is passed through
        String md = Files.readString(o.resolve(BenchRun.MARKDOWN));
        assertTrue(md.contains("| FwdBench.ours | config=embedded | 250.0 ± 5.000 | ops/s | 0.25× ort |"), md);
        assertTrue(md.contains("| FwdBench.ort | config=embedded | 1,000 ± 20.00 | ops/s | (reference) |"), md);
        assertTrue(md.contains("JMH quick run"), md);
        assertEquals(2, BenchCompare.read(o.resolve(BenchRun.JSON)).size());
        assertTrue(Files.readString(o.resolve(BenchRun.LOG)).contains("# fake JMH"));
        assertTrue(out.contains("# jmh.ignoreLock=null"), "a measuring run respects JMH's lock: " + out);
        Path s = dir.resolve("smoke");
        cli("bench", "--smoke", "--jar", fakeJar.toString(), "--filter", "ok", "--out", s.toString(), "--no-torch");
        assertTrue(out.contains("# jmh.ignoreLock=true"), "the smoke runs beside another JMH: " + out + err);
    }

    @Test
    void twinsRunInPairedBlocksWithTheTorchReferenceAndGetAnOursPerTorchColumn() throws IOException {
        fakeTorch();
        Path o = dir.resolve("paired");
        assertEquals(0, cli("bench", "--quick", "--jar", fakeJar.toString(), "--filter", "torch", "--out", o.toString()), err + out);
        // per config a torch round, ours with the in-run reference, a torch round; nothing left for a run without a twin
        assertFalse(out.contains(" -e "), out);
        assertTrue(out.contains("# fake JMH: ^(\\Qio.hintgrpo.benchmarks.FwdBench.ours\\E|\\Qio.hintgrpo.benchmarks.FwdBench.ort\\E)$"), out);
        int embedded = out.indexOf("# paired with the torch reference, config embedded: FwdBench.ours");
        int twentyFive = out.indexOf("# paired with the torch reference, config 25m: FwdBench.ours");
        assertTrue(embedded >= 0 && twentyFive > embedded, out);
        assertTrue(out.indexOf("fake torch: ") > embedded && out.indexOf("fake torch: ") < twentyFive, out);
        assertTrue(out.contains("--warmup 1.0 --iterations 6 --time 0.5 --rounds 2 --paired"), out);
        assertTrue(out.substring(embedded).contains("-p config=embedded -foe true"), out);

        assertEquals(4, BenchCompare.read(o.resolve(BenchRun.JSON)).size());     // the parts merged
        String md = Files.readString(o.resolve(BenchRun.MARKDOWN));
        // torch: the mean of round 1 (mean 500) and round 2 (1,000) = 750; ours 250 → 0.33×
        assertTrue(md.contains("| FwdBench.ours | config=embedded | 250.0 ± 5.000 | ops/s | 0.25× ort | 0.33× torch |"), md);
        assertTrue(md.contains("| FwdBench.ours | config=25m | 25.00 ± 5.000 | ops/s | 0.25× ort | 0.03× torch |"), md);
        assertTrue(md.contains("| FwdBench.ort | config=embedded | 1,000 ± 20.00 | ops/s | (reference) |  |"), md);
        assertTrue(md.contains("| FwdBench.ours | config=embedded | 750.0 | 500.0 | 1,000 | ops/s | 0.33 |"), md);
        assertTrue(md.contains("Torch reference: torch fake (/bin/sh), 2 threads, BLAS none, OMP_WAIT_POLICY=PASSIVE; "
                + "logits check ‖torch − ours‖/‖ours‖ ≤ 1e-4: 25m 1.5e-06 embedded 1.5e-06."), md);
        JsonNode torch = new ObjectMapper().readTree(o.resolve(BenchRun.TORCH_JSON).toFile());
        assertEquals(2, torch.get("results").size());
        JsonNode first = torch.get("results").get(0);
        assertEquals("config=embedded", first.get("params").asText());
        assertEquals(750, first.get("score").asDouble(), 1e-9);
        assertEquals(1 / 3.0, first.get("oursPerTorch").asDouble(), 1e-9);
        assertEquals("[[400.0,600.0],[1000.0]]", first.get("rounds").toString());
        assertEquals("fake", torch.get("torch").get("torch").asText());
        try (var files = Files.list(o)) {
            assertTrue(files.noneMatch(f -> f.getFileName().toString().startsWith(".jmh-part")), "part files removed");
        }
    }

    @Test
    void pairsAlternateOurForksWithTorchRoundsAndReportTheMedianRatio() throws IOException {
        fakeTorch();
        Path o = dir.resolve("pairs");
        assertEquals(0, cli("bench", "--quick", "--pairs", "2", "--jar", fakeJar.toString(), "--filter", "torch", "--out", o.toString()), err + out);
        assertTrue(out.contains("--rounds 3 --paired"), out);                     // a torch round before, between and after
        int embedded = out.indexOf("# paired with the torch reference, config embedded"), second = out.indexOf("# pair 2 of 2, config embedded");
        assertTrue(embedded >= 0 && out.indexOf("# pair 1 of 2, config embedded") > embedded && second > embedded, out);
        assertEquals(2, out.substring(embedded, out.indexOf("# paired with the torch reference, config 25m")).split("# fake JMH: \\^\\(", -1).length - 1, out);

        // the two forks of an entry are one JMH entry: iterations 200, 300 (fork 1) and 400, 600 (fork 2)
        JsonNode jmh = new ObjectMapper().readTree(o.resolve(BenchRun.JSON).toFile());
        assertEquals(4, BenchCompare.read(o.resolve(BenchRun.JSON)).size());
        JsonNode ours = null;
        for (JsonNode e : jmh) if (e.get("benchmark").asText().endsWith(".ours") && e.get("params").get("config").asText().equals("embedded")) ours = e;
        assertNotNull(ours, jmh.toString());
        assertEquals("[[200.0,300.0],[400.0,600.0]]", ours.get("primaryMetric").get("rawData").toString());
        assertEquals(375, ours.get("primaryMetric").get("score").asDouble(), 1e-9);
        double sd = Math.sqrt((175 * 175 + 75 * 75 + 25 * 25 + 225 * 225) / 3.0);
        assertEquals(12.924 * sd / 2, ours.get("primaryMetric").get("scoreError").asDouble(), 0.01);  // t(0.9995, 3) = 12.924
        assertEquals(2, ours.get("forks").asInt());

        // pair 1: 250 against (500 + 1,000) / 2; pair 2: 500 against (1,000 + 1,500) / 2; the median of 0.333 and 0.4
        String md = Files.readString(o.resolve(BenchRun.MARKDOWN));
        assertTrue(md.contains("| FwdBench.ours | config=embedded | 375.0 ± 1,104 | ops/s | 0.38× ort | 0.37× torch |"), md);
        assertTrue(md.contains("| FwdBench.ours | config=embedded | 1,000 | ops/s | 0.37 | 0.33–0.40 | 0.33, 0.40 |"), md);
        assertTrue(md.contains("2 pairs: torch rounds and our JMH forks"), md);
        assertTrue(md.contains("| FwdBench.ort | config=embedded | 1,000 ± 1,492 | ops/s | (reference) |  |"), md);  // its forks merged too
        JsonNode first = new ObjectMapper().readTree(o.resolve(BenchRun.TORCH_JSON).toFile()).get("results").get(0);
        assertEquals("[[400.0,600.0],[1000.0],[1500.0]]", first.get("rounds").toString());
        assertEquals((1 / 3.0 + 0.4) / 2, first.get("oursPerTorch").asDouble(), 1e-9);
        assertEquals(2, first.get("pairs").size());
        assertEquals(500, first.get("pairs").get(1).get("ours").asDouble(), 1e-9);
        assertEquals(1250, first.get("pairs").get(1).get("torch").asDouble(), 1e-9);
    }

    @Test
    void studentTQuantileMatchesTheTable() {
        // t(0.9995, df): the two-sided 99.9 % JMH uses for its error
        double[][] table = {{1, 636.62}, {2, 31.599}, {3, 12.924}, {5, 6.869}, {10, 4.587}, {11, 4.437}, {17, 3.965}, {30, 3.646}, {120, 3.373}};
        for (double[] row : table) assertEquals(row[1], BenchRun.studentT999((int) row[0]), row[1] * 5e-4, "df " + (int) row[0]);
    }

    @Test
    void withoutTorchOneLineSaysWhyAndTheRunGoesOnJmhOnly() throws IOException {
        fakeTorch();
        System.setProperty(TorchRun.PYTHON_PROPERTY, dir.resolve("no-python").toString());
        Path o = dir.resolve("skipped");
        assertEquals(0, cli("bench", "--quick", "--jar", fakeJar.toString(), "--filter", "torch", "--out", o.toString()), err);
        assertTrue(out.contains("torch reference skipped: " + dir.resolve("no-python") + " not found"), out);
        assertEquals(1, out.lines().filter(l -> l.contains("torch reference skipped")).count(), out);
        assertFalse(out.contains("-e ^("), out);                                // one JMH run, as without torch
        assertTrue(Files.readString(o.resolve(BenchRun.MARKDOWN)).contains("torch reference skipped"));
        assertFalse(Files.exists(o.resolve(BenchRun.TORCH_JSON)));

        assertEquals(0, cli("bench", "--quick", "--no-torch", "--jar", fakeJar.toString(), "--filter", "torch", "--out", o.toString()), err);
        assertFalse(out.contains("torch reference skipped"), out);
        assertTrue(Files.readString(o.resolve(BenchRun.MARKDOWN)).contains("Torch reference: off (--no-torch)."));
    }

    @Test
    void aTorchReferenceThatFailsFailsTheRun() throws IOException {
        fakeTorch();
        Files.writeString(Path.of(System.getProperty(TorchRun.SCRIPT_PROPERTY)), """
                case "$1" in
                  --list) echo FwdBench.ours; exit 0 ;;
                  --probe) echo '{"torch": "fake"}'; exit 0 ;;
                esac
                echo "torch_cpu_bench.py: error: torch and our logits disagree"
                exit 1
                """);
        assertEquals(1, cli("bench", "--quick", "--jar", fakeJar.toString(), "--filter", "torch", "--out", dir.resolve("f").toString()));
        assertTrue(err.contains("torch reference (config embedded) exited with code 1 before its round 1: "
                + "torch_cpu_bench.py: error: torch and our logits disagree"), err);
    }

    @Test
    void aFailedRunOrAMissingResultExitsOne() {
        assertEquals(1, cli("bench", "--jar", fakeJar.toString(), "--filter", "fail", "--out", dir.resolve("a").toString()));
        assertTrue(err.contains("JMH exited with code 3") && err.contains(BenchRun.LOG), err);
        assertEquals(1, cli("bench", "--jar", fakeJar.toString(), "--filter", "missing", "--out", dir.resolve("b").toString()));
        assertTrue(err.contains("no result for x.FwdBench.ours"), err);
    }

    @Test
    void badInputIsOneLineNamingThePlaceAndExitTwo() throws IOException {
        assertEquals(2, cli("bench", "--jar", fakeJar.toString(), "--filter", "garbage", "--out", dir.resolve("c").toString()));
        assertTrue(err.startsWith("hintgrpo: error: " + dir.resolve("c").resolve(BenchRun.JSON) + ": malformed JSON"), err);

        assertEquals(2, cli("bench", "--filter", "(ab", "--jar", fakeJar.toString()));
        assertTrue(err.startsWith("hintgrpo: error: --filter: not a regular expression: Unclosed group"), err);
        assertEquals(2, cli("bench", "--filter", "none", "--jar", fakeJar.toString(), "--out", dir.resolve("d").toString()));
        assertTrue(err.contains("--filter: no benchmark in " + fakeJar + " matches 'none'"), err);

        assertEquals(2, cli("bench", "--jar", dir.resolve("absent.jar").toString()));
        assertEquals("hintgrpo: error: --jar: no such file: " + dir.resolve("absent.jar") + "\n", err);
        Path notAJar = Files.writeString(dir.resolve("notes.txt"), "hello");
        assertEquals(2, cli("bench", "--jar", notAJar.toString()));
        assertTrue(err.startsWith("hintgrpo: error: " + notAJar + ": not a runnable JMH benchmarks jar"), err);

        assertEquals(2, cli("bench", "--pairs", "0", "--jar", fakeJar.toString()));
        assertEquals("hintgrpo: error: --pairs: must be 1 to 20, got 0\n", err);
        assertEquals(2, cli("bench", "--pairs", "3", "--no-torch", "--jar", fakeJar.toString()));
        assertTrue(err.contains("--pairs: pairs alternate our forks with torch rounds; drop --no-torch"), err);
        assertEquals(2, cli("bench", "--pairs", "3", "--smoke", "--jar", fakeJar.toString()));
        assertTrue(err.startsWith("hintgrpo: error: --pairs: "), err);
        assertEquals(2, cli("bench", "--smoke", "--quick"));
        assertEquals(2, cli("bench", "--param", "config", "--jar", fakeJar.toString()));
        assertTrue(err.contains("--param: expected NAME=VALUE"), err);
        assertEquals(1, err.lines().count(), err);
    }

    @Test
    void numbersKeepFourSignificantDigitsWithoutExponent() {
        assertEquals("1,268,101", BenchRun.number(1268100.995));
        assertEquals("612.8", BenchRun.number(612.784));
        assertEquals("0.2217", BenchRun.number(0.22171));
        assertThrows(BadInputException.class, () -> BenchRun.checkFilter("*x"));
    }
}
