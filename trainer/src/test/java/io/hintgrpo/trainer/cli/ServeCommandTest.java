package io.hintgrpo.trainer.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.hintgrpo.trainer.TinyModels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/** hintgrpo serve as a command: flags checked before it listens; a real process that SIGTERM stops after its requests finish. */
class ServeCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    @Test
    void badFlagsAreOneErrorLineBeforeAnythingListens() throws Exception {
        Path model = dir.resolve("model");
        TinyModels.write(model, 3);
        for (List<String> bad : List.of(List.of("--batch-size", "0"), List.of("--port", "70000"), List.of("--max-queue", "0"),
                List.of("--max-context", "99999"), List.of("--max-tokens", "0"))) {
            String[] args = java.util.stream.Stream.concat(java.util.stream.Stream.of("serve", "--model", model.toString(), "--backend", "cpu"),
                    bad.stream()).toArray(String[]::new);
            CliRun r = CliRun.of(args);
            assertEquals(Main.EXIT_BAD_INPUT, r.code(), bad + ": " + r.err());
            assertTrue(r.err().startsWith("hintgrpo: error: " + bad.get(0)), bad + ": " + r.err());
        }
        CliRun missing = CliRun.of("serve", "--model", dir.resolve("nope").toString());
        assertEquals(Main.EXIT_BAD_INPUT, missing.code());
        assertTrue(missing.err().contains("nope: not a model directory"), missing.err());
    }

    /** bench serve runs its load levels and the generate reference, and every greedy answer equals generate's. */
    @Test
    void benchServePrintsItsTableAndAgreesWithGenerate() throws Exception {
        Path model = dir.resolve("model");
        TinyModels.write(model, 3);
        Path data = dir.resolve("in.jsonl");
        List<io.hintgrpo.trainer.data.Utterance> us = new java.util.ArrayList<>();
        for (io.hintgrpo.trainer.data.SynthCorpus.Sample s : io.hintgrpo.trainer.data.SynthCorpus.generate(
                io.hintgrpo.trainer.data.SynthCorpus.Options.defaults(2, 20)).subList(0, 6)) us.add(s.utterance());
        io.hintgrpo.trainer.data.Jsonl.write(data, us, io.hintgrpo.trainer.data.Jsonl.Features.INLINE);
        CliRun r = CliRun.of("bench", "serve", "--model", model.toString(), "--data", data.toString(), "--clients", "1,3",
                "--requests", "5", "--max-tokens", "12", "--batch-size", "2", "--backend", "cpu");
        assertEquals(0, r.code(), r.err());
        List<String> rows = r.out().lines().filter(l -> l.startsWith("| ")).toList();
        assertEquals(4, rows.size(), r.out());
        assertTrue(rows.get(1).startsWith("| 1 | 5 | ") && rows.get(1).endsWith("| 0 |"), rows.get(1));
        assertTrue(rows.get(2).startsWith("| 3 | 5 | ") && rows.get(2).endsWith("| 0 |"), rows.get(2));
        assertTrue(rows.get(3).startsWith("| generate, batch 2 (reference) | 5 | "), rows.get(3));
        assertEquals(Main.EXIT_BAD_INPUT, CliRun.of("bench", "serve", "--model", model.toString(), "--data", data.toString(), "--clients", "0").code());
    }

    /** A child JVM: `serve --port 0` prints its URL; SIGTERM with a request in flight lets it finish, then the process exits. */
    @Test
    void sigtermFinishesTheRequestInFlightThenExits() throws Exception {
        Path model = dir.resolve("model");
        TinyModels.write(model, 3);
        String java = ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        Path log = dir.resolve("serve.log");
        Process p = new ProcessBuilder(java, "--add-modules", "jdk.incubator.vector", "-Xmx1g", "-cp", System.getProperty("java.class.path"),
                "io.hintgrpo.trainer.cli.Main", "serve", "--model", model.toString(), "--port", "0", "--backend", "cpu", "--batch-size", "2",
                "--max-context", "256").redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            Matcher url = null;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (System.nanoTime() < deadline && p.isAlive()) {
                url = Pattern.compile("hintgrpo: serving model on (http://127\\.0\\.0\\.1:(\\d+)) ").matcher(Files.readString(log));
                if (url.find()) break;
                url = null;
                Thread.sleep(50);
            }
            assertNotNull(url, "no URL line: " + Files.readString(log));
            assertNotEquals("0", url.group(2), "--port 0 prints the port it got");
            String base = url.group(1);
            HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
            String body = "{\"messages\": [{\"role\": \"user\", \"content\": \"the film was fine\"}], \"n\": 48, \"max_tokens\": 150, \"seed\": 1}";
            CompletableFuture<HttpResponse<String>> inFlight = http.sendAsync(HttpRequest.newBuilder(URI.create(base + "/v1/chat/completions"))
                    .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
            for (int running = 0; running == 0; Thread.sleep(5)) {
                JsonNode h = JSON.readTree(http.send(HttpRequest.newBuilder(URI.create(base + "/health")).build(), HttpResponse.BodyHandlers.ofString()).body());
                running = h.get("requests").asInt();
            }
            p.destroy(); // SIGTERM
            HttpResponse<String> r = inFlight.get(120, TimeUnit.SECONDS);
            assertEquals(200, r.statusCode(), r.body());
            assertEquals(48, JSON.readTree(r.body()).get("choices").size());
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the process exits");
            String out = Files.readString(log);
            assertTrue(out.contains("hintgrpo: serve: stopping: finishing 1 request"), out);
            assertTrue(out.contains("hintgrpo: serve: stopped"), out);
        } finally {
            p.destroyForcibly();
        }
    }
}
