package io.hintgrpo.trainer.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.trainer.cli.CliRun;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * data teacher against a test server that answers each record the way its transcript says: a
 * good chain, a wrong polarity, no grammar, a body that is not JSON, 429 / 500 / a slow answer the
 * first time (then a good chain), a 400.
 */
class RemoteTeacherTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern TRANSCRIPT = Pattern.compile("Transcript: \"([^\"]*)\""), LABEL = Pattern.compile("Gold sentiment score: (-?[0-9.]+)");

    @TempDir
    Path dir;
    HttpServer server;
    URI endpoint;
    final Map<String, AtomicInteger> calls = new ConcurrentHashMap<>();
    final List<String> authorizations = java.util.Collections.synchronizedList(new ArrayList<>());
    final List<JsonNode> bodies = java.util.Collections.synchronizedList(new ArrayList<>());
    Path in;

    @BeforeEach
    void start() throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/v1/chat/completions", this::answer);
        server.setExecutor(Executors.newFixedThreadPool(8));
        server.start();
        endpoint = URI.create("http://127.0.0.1:" + server.getAddress().getPort() + "/v1");
        in = dir.resolve("in.jsonl");
        StringBuilder sb = new StringBuilder();
        String[][] recs = {{"good", "2.0"}, {"wrongpolarity", "-1.5"}, {"noformat", "0.0"}, {"malformed", "1.0"},
                {"flaky429", "-2.4"}, {"flaky500", "0.3"}, {"slow", "1.2"}, {"http400", "2.0"}};
        for (String[] r : recs)
            sb.append("{\"id\": \"").append(r[0]).append("\", \"text\": \"").append(r[0]).append("\", \"label\": ").append(r[1])
                    .append(", \"cot\": \"an old chain that must not survive\"}\n");
        Files.writeString(in, sb.toString());
    }

    @AfterEach
    void stop() {
        server.stop(0);
    }

    private void answer(HttpExchange ex) throws IOException {
        String body = new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
        JsonNode req = JSON.readTree(body);
        bodies.add(req);
        authorizations.add(String.valueOf(ex.getRequestHeaders().getFirst("Authorization")));
        String user = req.path("messages").path(1).path("content").asText();
        Matcher t = TRANSCRIPT.matcher(user), l = LABEL.matcher(user);
        assertTrue(t.find() && l.find(), user);
        String text = t.group(1), label = l.group(1);
        int n = calls.computeIfAbsent(text, k -> new AtomicInteger()).incrementAndGet();
        float y = Float.parseFloat(label);
        String pol = y < -0.5 ? "negative" : y > 0.5 ? "positive" : "neutral", wrong = pol.equals("negative") ? "positive" : "negative";
        String chain = "<disc>polarity: " + pol + ". the words say so.</disc><calib>the intensity is clear.</calib><answer>" + label + "</answer>";
        switch (text) {
            case "wrongpolarity" -> chain = chain.replace("polarity: " + pol, "polarity: " + wrong);
            case "noformat" -> chain = "I think it is " + pol;
            case "malformed" -> { send(ex, 200, "{\"choices\": [", null); return; }
            case "flaky429" -> { if (n == 1) { send(ex, 429, "{\"error\": {\"message\": \"slow down\"}}", "0"); return; } }
            case "flaky500" -> { if (n == 1) { send(ex, 500, "oops", null); return; } }
            case "slow" -> { if (n == 1) { sleep(1500); } }
            case "http400" -> { send(ex, 400, "{\"error\": {\"message\": \"bad\"}}", null); return; }
            default -> { }
        }
        ObjectNode resp = JSON.createObjectNode();
        resp.putArray("choices").addObject().putObject("message").put("role", "assistant").put("content", chain);
        send(ex, 200, resp.toString(), null);
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void send(HttpExchange ex, int code, String body, String retryAfter) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        if (retryAfter != null) ex.getResponseHeaders().add("Retry-After", retryAfter);
        try {
            ex.sendResponseHeaders(code, b.length);
            try (OutputStream o = ex.getResponseBody()) {
                o.write(b);
            }
        } catch (IOException e) {
            // the client gave up waiting (the slow case): nothing to answer
        }
    }

    private RemoteTeacher.Settings settings(Path out) {
        return new RemoteTeacher.Settings(endpoint, "teacher-7b", in, out, null, 3, 3, Duration.ofMillis(700), 0.5, 0.7, 200, "HOME");
    }

    private static List<JsonNode> lines(Path f) throws IOException {
        List<JsonNode> out = new ArrayList<>();
        for (String line : Files.readAllLines(f)) out.add(JSON.readTree(line));
        return out;
    }

    private static JsonNode byId(List<JsonNode> recs, String id) {
        return recs.stream().filter(r -> r.get("id").asText().equals(id)).findFirst().orElseThrow(() -> new AssertionError(id));
    }

    @Test
    void keepsOnlyChainsTheFilterKeepsAndRetriesWhatTheServerAsksToRetry() throws IOException {
        Path out = dir.resolve("out/with-cot.jsonl");
        Files.createDirectories(out.getParent());
        RemoteTeacher.Report r = RemoteTeacher.run(settings(out), msg -> {});
        Map<RemoteTeacher.Outcome, Integer> o = r.outcomes();
        assertEquals(4, r.kept(), o.toString()); // good, and the three that succeed on their second try
        assertEquals(1, o.get(RemoteTeacher.Outcome.WRONG_POLARITY));
        assertEquals(1, o.get(RemoteTeacher.Outcome.INVALID_FORMAT));
        assertEquals(1, o.get(RemoteTeacher.Outcome.MALFORMED_RESPONSE));
        assertEquals(1, o.get(RemoteTeacher.Outcome.HTTP_ERROR));
        assertEquals(3, r.retries(), "429, 500 and the timeout each retried once");
        List<JsonNode> recs = lines(out);
        assertEquals(8, recs.size(), "every record is written, kept or not");
        for (String id : List.of("good", "flaky429", "flaky500", "slow"))
            assertTrue(byId(recs, id).get("cot").asText().startsWith("<disc>polarity:"), id);
        for (String id : List.of("wrongpolarity", "noformat", "malformed", "http400"))
            assertFalse(byId(recs, id).has("cot"), id + ": no chain, and the old one is gone");
        assertEquals(-2.4, byId(recs, "flaky429").get("label").asDouble(), 1e-6, "input fields kept");
        // the request: the model name, system + user with the transcript and the label, the key from $HOME
        JsonNode first = bodies.get(0);
        assertEquals("teacher-7b", first.get("model").asText());
        assertEquals("system", first.path("messages").path(0).path("role").asText());
        assertEquals(200, first.get("max_tokens").asInt());
        assertTrue(authorizations.stream().allMatch(a -> a.equals("Bearer " + System.getenv("HOME"))), authorizations.toString());
        assertTrue(r.table().contains("| kept | 4 |"), r.table());

        // a rerun asks for nothing: every id is already in the output
        int before = bodies.size();
        RemoteTeacher.Report again = RemoteTeacher.run(settings(out), msg -> {});
        assertEquals(8, again.alreadyDone());
        assertEquals(0, again.requests());
        assertEquals(before, bodies.size());
        assertEquals(8, lines(out).size());
    }

    @Test
    void aTornLastLineIsCutAndThatRecordAskedAgain() throws IOException {
        Path out = dir.resolve("resume.jsonl");
        Files.writeString(out, "{\"id\": \"good\", \"text\": \"good\", \"label\": 2.0}\n{\"id\": \"wrongpolarity\", \"te");
        RemoteTeacher.Report r = RemoteTeacher.run(settings(out), msg -> {});
        assertEquals(1, r.alreadyDone());
        assertNull(calls.get("good"), "a finished record is not asked again");
        assertEquals(1, calls.get("wrongpolarity").get(), "the torn one is");
        List<JsonNode> recs = lines(out);
        assertEquals(8, recs.size());
        assertEquals(8, recs.stream().map(x -> x.get("id").asText()).distinct().count());
    }

    @Test
    void relativeFeaturePathsFollowTheOutputFolder() throws IOException {
        Files.createDirectories(dir.resolve("features"));
        float[][] frames = {{0.5f, 1f}};
        Npy.write(dir.resolve("features/a.npy"), frames);
        Files.writeString(in, "{\"id\": \"good\", \"text\": \"good\", \"label\": 2.0, \"audio\": \"features/a.npy\"}\n");
        Path out = dir.resolve("sub/folder/out.jsonl");
        Files.createDirectories(out.getParent());
        RemoteTeacher.run(settings(out), msg -> {});
        String audio = lines(out).get(0).get("audio").asText();
        assertEquals("../../features/a.npy", audio);
        assertTrue(Files.isRegularFile(out.getParent().resolve(audio)));
    }

    @Test
    void badTemplatesAndEndpointsAreOneClearError() throws IOException {
        Path t = dir.resolve("t.json");
        Files.writeString(t, "{\"system\": \"s\", \"usr\": \"x\"}");
        BadInputException e = assertThrows(BadInputException.class, () -> RemoteTeacher.templates(t));
        assertTrue(e.getMessage().contains("unknown key \"usr\""), e.getMessage());
        Files.writeString(t, "{\"user\": \"rate this\"}");
        e = assertThrows(BadInputException.class, () -> RemoteTeacher.templates(t));
        assertTrue(e.getMessage().contains("{text}"), e.getMessage());
        Files.writeString(t, "{\"user\": \"Transcript: \\\"{text}\\\" Gold sentiment score: {label} ({polarity}, {id}, {domain})\"}");
        Utterance u = new Utterance("u1", "fine", -1.25f, "reviews", null, null, null, null);
        assertEquals("Transcript: \"fine\" Gold sentiment score: -1.3 (negative, u1, reviews)", RemoteTeacher.fill(RemoteTeacher.templates(t).user(), u));

        CliRun r = CliRun.of("data", "teacher", "--endpoint", "ftp://x", "--in", in.toString(), "--out", dir.resolve("o.jsonl").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--endpoint") && r.err().contains("not an http(s) URL"), r.err());
        r = CliRun.of("data", "teacher", "--endpoint", endpoint.toString(), "--in", in.toString(), "--out", in.toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("is the input"), r.err());
        Files.writeString(dir.resolve("nolabel.jsonl"), "{\"id\": \"a\", \"text\": \"x\"}\n");
        r = CliRun.of("data", "teacher", "--endpoint", endpoint.toString(), "--in", dir.resolve("nolabel.jsonl").toString(), "--out",
                dir.resolve("o.jsonl").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("nolabel.jsonl:1") && r.err().contains("no \"label\""), r.err());
    }

    @Test
    void theCommandPrintsItsReport() throws IOException {
        Path out = dir.resolve("cli.jsonl");
        CliRun r = CliRun.of("data", "teacher", "--endpoint", endpoint + "/", "--in", in.toString(), "--out", out.toString(),
                "--timeout", "0.7", "--retries", "3", "--api-key-env", "NO_SUCH_VARIABLE_HERE");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("| kept | 4 |"), r.out());
        assertTrue(r.err().contains("8 records, 0 already in"), r.err());
        assertTrue(authorizations.stream().allMatch(a -> a.equals("null")), "no key: no Authorization header");
    }
}
