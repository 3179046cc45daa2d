package io.hintgrpo.trainer.bench;

import io.hintgrpo.trainer.cli.CliRun;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.trainer.bench.BenchCompare.Verdict;
import io.hintgrpo.trainer.cli.Main;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.*;

class BenchCompareTest {
    private static final String MATMUL = "io.hintgrpo.benchmarks.MatmulBench.";
    private static final String STEP = "io.hintgrpo.benchmarks.TrainStepBench.trainStep";

    @TempDir
    Path dir;
    String out, err;

    /** One JMH result object as -rf json writes it (rawData included, as the real files have it). */
    private static String entry(String benchmark, String mode, String params, double score, double error, String unit) {
        return String.format(Locale.ROOT, """
                {"jmhVersion": "1.37", "benchmark": "%s", "mode": "%s", "threads": 1, "forks": 1,
                 "params": {%s},
                 "primaryMetric": {"score": %s, "scoreError": %s, "scoreConfidence": [0, 0],
                                   "scoreUnit": "%s", "rawData": [[%s, %s]]},
                 "secondaryMetrics": {}}""", benchmark, mode, params, score, error, unit, score, score);
    }

    private static String shape(String s) { return "\"shape\": \"" + s + "\""; }

    /**
     * A MatmulBench run (avgt, us/op): ours and ort on two shapes, every time multiplied by
     * {@code machine}, ours on the second shape also by {@code oursB}; plus TrainStepBench
     * (thrpt, no reference) at {@code stepScore} tokens/s.
     */
    private Path run(String name, double machine, double oursB, double stepScore, double relError) throws IOException {
        List<String> e = new ArrayList<>();
        double[] ours = {1000, 4000}, ort = {900, 3000};
        String[] shapes = {"NN:512:512:512", "NT:1024:704:256"};
        for (int i = 0; i < 2; i++) {
            double o = ours[i] * machine * (i == 1 ? oursB : 1), r = ort[i] * machine;
            e.add(entry(MATMUL + "ours", "avgt", shape(shapes[i]), o, o * relError, "us/op"));
            e.add(entry(MATMUL + "ort", "avgt", shape(shapes[i]), r, r * relError, "us/op"));
        }
        e.add(entry(STEP, "thrpt", "\"config\": \"embedded\"", stepScore, stepScore * relError, "ops/s"));
        return write(name, "[" + String.join(",\n", e) + "]");
    }

    private Path write(String name, String text) throws IOException {
        Path p = dir.resolve(name);
        Files.createDirectories(p.getParent());
        Files.writeString(p, text);
        return p;
    }

    private int cli(String... args) {
        CliRun r = CliRun.of(args);
        out = r.out();
        err = r.err();
        return r.code();
    }

    private static BenchCompare.Row row(BenchCompare.Report r, String benchmark, String params) {
        return r.rows().stream().filter(x -> x.benchmark().equals(benchmark) && x.params().equals(params)).findFirst().orElseThrow();
    }

    @Test
    void plantedRegressionIsFlaggedAndExitsOne() throws IOException {
        Path base = run("base.json", 1, 1, 3700, 0.01);
        Path cur = run("cur.json", 1, 1.3, 3700, 0.01);                    // ours 30% slower on NT, ORT unchanged
        BenchCompare.Report r = BenchCompare.compare(base, cur, 0.10);
        BenchCompare.Row nt = row(r, MATMUL + "ours", "shape=NT:1024:704:256");
        assertEquals(Verdict.REGRESSION, nt.verdict());
        assertTrue(nt.ratio());
        assertEquals(0.75, nt.baseline(), 1e-9);                             // ORT 3000 us / ours 4000 us
        assertEquals(1 / 1.3 - 1, nt.change(), 1e-9);
        assertEquals(Verdict.SAME, row(r, MATMUL + "ours", "shape=NN:512:512:512").verdict());
        assertEquals(Verdict.REFERENCE, row(r, MATMUL + "ort", "shape=NN:512:512:512").verdict());
        assertEquals(Verdict.SAME, row(r, STEP, "config=embedded").verdict());

        assertEquals(1, cli("bench", "compare", base.toString(), cur.toString()));
        assertTrue(out.contains("regression"), out);
        assertTrue(out.contains("MatmulBench.ours") && out.contains("shape=NT:1024:704:256") && out.contains("-23.1%"), out);
        assertTrue(out.contains("1 regression(s)"), out);
    }

    @Test
    void plantedImprovementIsReportedAndExitsZero() throws IOException {
        Path base = run("base.json", 1, 1, 3700, 0.01);
        Path cur = run("cur.json", 1, 0.7, 5000, 0.01);                     // ours faster on NT, training step +35%
        BenchCompare.Report r = BenchCompare.compare(base, cur, 0.10);
        assertEquals(Verdict.IMPROVEMENT, row(r, MATMUL + "ours", "shape=NT:1024:704:256").verdict());
        assertEquals(Verdict.IMPROVEMENT, row(r, STEP, "config=embedded").verdict());
        assertFalse(r.hasRegression());
        assertEquals(0, cli("bench", "compare", base.toString(), cur.toString()));
        assertTrue(out.contains("improvement"), out);
    }

    @Test
    void uniformlySlowerMachineIsNotARegression() throws IOException {
        // every time 1/0.7 longer (scores 30% lower in throughput terms), references included
        Path base = run("base.json", 1, 1, 3700, 0.01);
        Path cur = run("cur.json", 1 / 0.7, 1, 3700, 0.01);
        BenchCompare.Report r = BenchCompare.compare(base, cur, 0.10);
        for (BenchCompare.Row x : r.rows())
            if (x.benchmark().startsWith(MATMUL)) {
                assertNotEquals(Verdict.REGRESSION, x.verdict(), x.toString());
                if (x.benchmark().endsWith(".ours")) assertTrue(x.ratio());
            }
        assertEquals(0, cli("bench", "compare", base.toString(), cur.toString()));
        // the same slow run without its references would be flagged: the ratio is what saves it
        Path curNoRef = write("noref.json", Files.readString(cur).replace(MATMUL + "ort", MATMUL + "other"));
        assertEquals(1, cli("bench", "compare", base.toString(), curNoRef.toString()));
    }

    @Test
    void noisyButEqualResultsAreNotFlagged() throws IOException {
        // 15-20% apart, beyond the 10% threshold but within JMH's ±25% error bars
        Path base = run("base.json", 1, 1, 3700, 0.25);
        Path cur = run("cur.json", 1, 1.2, 3100, 0.25);
        BenchCompare.Report r = BenchCompare.compare(base, cur, 0.10);
        assertEquals(Verdict.SAME, row(r, MATMUL + "ours", "shape=NT:1024:704:256").verdict());
        assertEquals(Verdict.SAME, row(r, STEP, "config=embedded").verdict());
        assertEquals(0, cli("bench", "compare", base.toString(), cur.toString()));
        // the same differences with tight errors are regressions
        assertEquals(1, cli("bench", "compare", run("b2.json", 1, 1, 3700, 0.01).toString(), run("c2.json", 1, 1.2, 3100, 0.01).toString()));
    }

    @Test
    void rawScoresComparedWhenThereIsNoReference() throws IOException {
        Path base = run("base.json", 1, 1, 3700, 0.01);
        Path cur = run("cur.json", 1, 1, 3700 * 0.7, 0.01);                 // training step 30% fewer tokens/s
        BenchCompare.Report r = BenchCompare.compare(base, cur, 0.10);
        BenchCompare.Row step = row(r, STEP, "config=embedded");
        assertFalse(step.ratio());
        assertEquals(Verdict.REGRESSION, step.verdict());
        assertEquals(-0.3, step.change(), 1e-9);
        assertEquals(1, cli("bench", "compare", base.toString(), cur.toString()));
        assertTrue(out.contains("raw"), out);
        // time mode, no reference: 30% longer is a regression, 30% shorter an improvement
        Path tb = write("tb.json", "[" + entry("x.Y.f", "avgt", "", 100, 1, "ms/op") + "]");
        Path tc = write("tc.json", "[" + entry("x.Y.f", "avgt", "", 130, 1, "ms/op") + "]");
        assertEquals(Verdict.REGRESSION, BenchCompare.compare(tb, tc, 0.1).rows().get(0).verdict());
        assertEquals(Verdict.IMPROVEMENT, BenchCompare.compare(tc, tb, 0.1).rows().get(0).verdict());
    }

    /** torch-result.json as hintgrpo bench writes it: the training step's torch twin with two rounds of iteration scores. */
    private void torch(String folder, double round1, double round2) throws IOException {
        write(folder + "/" + BenchCompare.TORCH_FILE, """
                {"torch": {"torch": "1.13.1"}, "pairing": "rounds", "checks": {},
                 "results": [{"benchmark": "%s", "params": "config=embedded", "mode": "thrpt", "unit": "ops/s",
                              "score": %s, "rounds": [[%s, %s], [%s, %s]], "ours": 1, "oursPerTorch": 1}]}
                """.formatted(STEP, (round1 + round2) / 2, round1, round1, round2, round2));
    }

    @Test
    void theTorchTwinIsTheReferenceWhereNoInRunOneExists() throws IOException {
        // the machine is 30% slower in the second run for both sides: not a regression
        Path base = run("a/jmh-result.json", 1, 1, 3700, 0.01);
        Path cur = run("b/jmh-result.json", 1, 1, 3700 * 0.7, 0.01);
        torch("a", 3000, 3000);
        torch("b", 2100, 2100);
        BenchCompare.Report r = BenchCompare.compare(base, cur, 0.10);
        BenchCompare.Row step = row(r, STEP, "config=embedded");
        assertEquals(BenchCompare.TORCH, step.basis());
        assertEquals(Verdict.SAME, step.verdict());
        assertEquals(3700 / 3000.0, step.baseline(), 1e-9);
        assertEquals(0, cli("bench", "compare", base.toString(), cur.toString()));
        assertTrue(out.contains("x torch"), out);
        // ours 30% slower while torch kept its speed: a regression against torch
        torch("b", 3000, 3000);
        assertEquals(Verdict.REGRESSION, row(BenchCompare.compare(base, cur, 0.10), STEP, "config=embedded").verdict());
        // rounds that moved a lot make a wide error: the same 30% is then within it
        torch("b", 1500, 4500);
        assertEquals(Verdict.SAME, row(BenchCompare.compare(base, cur, 0.10), STEP, "config=embedded").verdict());
        // an in-run reference still wins where it exists
        assertEquals("ratio", row(r, MATMUL + "ours", "shape=NT:1024:704:256").basis());
    }

    @Test
    void aMalformedTorchFileIsOneClearError() throws IOException {
        Path base = run("a/jmh-result.json", 1, 1, 3700, 0.01);
        Path cur = run("b/jmh-result.json", 1, 1, 3700, 0.01);
        write("b/" + BenchCompare.TORCH_FILE, "{\"results\": [{\"benchmark\": 3}]}");
        assertEquals(2, cli("bench", "compare", base.toString(), cur.toString()));
        assertTrue(err.contains(BenchCompare.TORCH_FILE) && err.contains("results[0]"), err);
    }

    @Test
    void entriesInOneFileOnlyAreListedNotFatal() throws IOException {
        Path base = run("base.json", 1, 1, 3700, 0.01);
        Path cur = write("cur.json", "[" + entry(STEP, "thrpt", "\"config\": \"embedded\"", 3700, 10, "ops/s") + ","
                + entry(STEP, "thrpt", "\"config\": \"25m\"", 800, 10, "ops/s") + "]");
        assertEquals(0, cli("bench", "compare", base.toString(), cur.toString()));
        assertTrue(out.contains("only in baseline: " + MATMUL + "ours shape=NN:512:512:512"), out);
        assertTrue(out.contains("only in current:  " + STEP + " config=25m"), out);
    }

    @Test
    void malformedOrMismatchedFilesAreRefusedWithOneLine() throws IOException {
        Path good = run("good.json", 1, 1, 3700, 0.01);
        String[][] bad = {
                {"trunc.json", "[{\"benchmark\": \"a.B.c\", "},
                {"object.json", "{\"benchmark\": \"a.B.c\"}"},
                {"strings.json", "[\"a\", \"b\"]"},
                {"noscore.json", "[{\"benchmark\": \"a.B.c\", \"mode\": \"avgt\", \"primaryMetric\": {\"scoreUnit\": \"us/op\"}}]"},
                {"empty.json", "[]"},
                {"other.json", "[" + entry("a.B.c", "thrpt", "", 10, 1, "ops/s") + "]"},
                {"unit.json", "[" + entry(STEP, "avgt", "\"config\": \"embedded\"", 3700, 10, "s/op") + "]"},
        };
        String[] reason = {"malformed JSON", "not a JMH result array", "not a JMH result", "score must be a positive number",
                "no benchmark in common", "no benchmark in common", "but thrpt in ops/s"};
        for (int i = 0; i < bad.length; i++) {
            Path p = write(bad[i][0], bad[i][1]);
            assertEquals(Main.EXIT_BAD_INPUT, cli("bench", "compare", good.toString(), p.toString()), bad[i][0]);
            assertTrue(err.startsWith("hintgrpo: error: " + p) && err.contains(reason[i]), bad[i][0] + ": " + err);
            assertEquals(1, err.strip().lines().count(), err);
        }
        assertEquals(Main.EXIT_BAD_INPUT, cli("bench", "compare", dir.resolve("missing.json").toString(), good.toString()));
        assertTrue(err.contains("missing.json: cannot read"), err);
        assertThrows(BadInputException.class, () -> BenchCompare.read(write("dup.json",
                "[" + entry("a.B.c", "thrpt", "", 1, 0, "ops/s") + "," + entry("a.B.c", "thrpt", "", 2, 0, "ops/s") + "]")));
    }

    @Test
    void thresholdFlagParsed() throws IOException {
        assertEquals(0.10, BenchCompare.parseThreshold("10%"), 1e-12);
        assertEquals(0.10, BenchCompare.parseThreshold("0.1"), 1e-12);
        assertEquals(0.025, BenchCompare.parseThreshold("2.5%"), 1e-12);
        assertEquals(0.0, BenchCompare.parseThreshold("0"), 1e-12);
        for (String bad : new String[]{"ten", "-5%", "10", "%"})
            assertThrows(BadInputException.class, () -> BenchCompare.parseThreshold(bad), bad);

        Path base = run("base.json", 1, 1, 3700, 0.01);
        Path cur = run("cur.json", 1, 1, 3700 * 0.8, 0.01);                 // 20% slower training step
        assertEquals(1, cli("bench", "compare", base.toString(), cur.toString()));                       // default 10%
        assertEquals(0, cli("bench", "compare", base.toString(), cur.toString(), "--threshold", "25%"));
        assertEquals(0, cli("bench", "compare", base.toString(), cur.toString(), "--threshold", "0.25"));
        assertEquals(1, cli("bench", "compare", base.toString(), cur.toString(), "--threshold", "0.15"));
        assertEquals(Main.EXIT_BAD_INPUT, cli("bench", "compare", base.toString(), cur.toString(), "--threshold", "10"));
        assertTrue(err.contains("--threshold"), err);
    }
}
