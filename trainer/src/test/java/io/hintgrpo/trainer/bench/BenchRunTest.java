package io.hintgrpo.trainer.bench;

import io.hintgrpo.trainer.cli.CliRun;

import io.hintgrpo.engine.BadInputException;
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

    /** A runnable jar whose main is {@link FakeJmh}, so the whole run path is exercised without JMH. */
    @BeforeEach
    void packFakeJmh() throws IOException {
        fakeJar = dir.resolve("fake-benchmarks.jar");
        Manifest mf = new Manifest();
        mf.getMainAttributes().put(Attributes.Name.MANIFEST_VERSION, "1.0");
        mf.getMainAttributes().put(Attributes.Name.MAIN_CLASS, FakeJmh.class.getName());
        String entry = FakeJmh.class.getName().replace('.', '/') + ".class";
        try (OutputStream f = Files.newOutputStream(fakeJar); JarOutputStream jar = new JarOutputStream(f, mf);
             InputStream cls = FakeJmh.class.getClassLoader().getResourceAsStream(entry)) {
            jar.putNextEntry(new JarEntry(entry));
            cls.transferTo(jar);
            jar.closeEntry();
        }
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
        assertTrue(q.startsWith("x -f 1 -wi 1 -w 1s -i 3 -r 1s -foe true"), q);
        assertEquals(List.of("x", "-foe", "true", "-rf", "json", "-rff", json.toAbsolutePath().toString()),
                BenchRun.jmhArgs(BenchRun.Mode.FULL, "x", List.of(), json));
    }

    @Test
    void aRunWritesJsonAndAMarkdownTableWithTheRatioToTheReference() throws IOException {
        Path o = dir.resolve("results");
        assertEquals(0, cli("bench", "--quick", "--jar", fakeJar.toString(), "--filter", "ok", "--out", o.toString()), err);
        assertTrue(out.contains("# fake JMH: ok -f 1 -wi 1"), out);                      // JMH's output is passed through
        String md = Files.readString(o.resolve(BenchRun.MARKDOWN));
        assertTrue(md.contains("| FwdBench.ours | config=embedded | 250.0 ± 5.000 | ops/s | 0.25× ort |"), md);
        assertTrue(md.contains("| FwdBench.ort | config=embedded | 1,000 ± 20.00 | ops/s | (reference) |"), md);
        assertTrue(md.contains("JMH quick run"), md);
        assertEquals(2, BenchCompare.read(o.resolve(BenchRun.JSON)).size());
        assertTrue(Files.readString(o.resolve(BenchRun.LOG)).contains("# fake JMH"));
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
