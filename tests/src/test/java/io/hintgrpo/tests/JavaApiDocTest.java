package io.hintgrpo.tests;

import io.hintgrpo.trainer.eval.EvalReport;
import io.hintgrpo.trainer.eval.Metrics;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** docs/java-api.md shows JavaApiExample verbatim, and the example runs and gives sane metrics. */
class JavaApiDocTest {
    static final Path SOURCE = Path.of("src/test/java/io/hintgrpo/tests/JavaApiExample.java");
    static final Path DOC = Path.of("../docs/java-api.md");
    static final String BEGIN = "// BEGIN docs/java-api.md", END = "// END docs/java-api.md";

    @TempDir
    Path dir;

    @Test
    void theDocShowsTheExampleVerbatim() throws Exception {
        List<String> src = Files.readAllLines(SOURCE);
        List<String> region = src.subList(src.indexOf(BEGIN) + 1, src.indexOf(END));
        assertFalse(region.isEmpty(), "marked region in " + SOURCE);
        List<String> doc = Files.readAllLines(DOC);
        int open = doc.indexOf("<!-- BEGIN JavaApiExample.java -->"), close = doc.indexOf("<!-- END JavaApiExample.java -->");
        assertTrue(open >= 0 && close > open, "markers in " + DOC);
        List<String> block = doc.subList(open + 1, close);
        assertEquals("```java", block.get(0));
        assertEquals("```", block.get(block.size() - 1));
        assertEquals(String.join("\n", region), String.join("\n", block.subList(1, block.size() - 1)),
                DOC + " must show " + SOURCE + " between the markers, verbatim");
    }

    @Test
    void theExampleRunsAndItsMetricsAreSane() throws Exception {
        EvalReport report = JavaApiExample.run(dir);
        Metrics.Scores s = report.overall();
        assertTrue(s.n() > 0);
        assertTrue(Double.isFinite(s.mae()) && s.mae() >= 0 && s.mae() <= 6, "MAE " + s.mae());
        assertTrue(s.formatValidRate() > 0, "format valid rate " + s.formatValidRate());
        assertTrue(Double.isFinite(s.acc7()) && Double.isFinite(s.acc2Has0()), "accuracies finite");
        assertEquals(s.n(), report.byDomain().values().stream().mapToInt(Metrics.Scores::n).sum());
        assertTrue(Files.isDirectory(dir.resolve("sft/model")));
        assertTrue(Files.isDirectory(dir.resolve("grpo/model")), "the GRPO stage exported its policy");
        assertEquals(4, Files.readAllLines(dir.resolve("grpo/metrics.jsonl")).size(), "3 steps and the evaluation at the last");
    }
}
