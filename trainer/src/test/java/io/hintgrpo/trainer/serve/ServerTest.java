package io.hintgrpo.trainer.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.cpu.CpuKernels;
import io.hintgrpo.engine.io.ModelDir;
import io.hintgrpo.engine.model.Generator;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.trainer.TinyModels;
import io.hintgrpo.trainer.data.SynthCorpus;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.eval.Evaluation;
import io.hintgrpo.trainer.format.DcParser;
import io.hintgrpo.trainer.format.Examples;
import io.hintgrpo.trainer.format.ParsedResponse;
import io.hintgrpo.trainer.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.*;

/**
 * hintgrpo serve over real HTTP on loopback, on a tiny random model on the cpu backend: answers
 * equal {@code generate}'s for the same seed alone, among concurrent requests and streamed; n,
 * stop strings, log-probs; every kind of bad request gets its JSON error and the server goes on; a
 * client that leaves mid-stream has its rows retired; stop() lets the requests in flight finish.
 */
class ServerTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int MAX_TOKENS = 24;

    @TempDir
    static Path dir;
    static Path modelDir;
    static Kernels kernels;
    static Model model;
    static Tokenizer tok;
    static Server server;
    static List<Utterance> utterances;
    static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10)).build();

    @BeforeAll
    static void start() throws Exception {
        modelDir = dir.resolve("tiny");
        TinyModels.write(modelDir, 11);
        kernels = new CpuKernels();
        model = ModelDir.load(kernels, modelDir, 0, msg -> {});
        tok = Tokenizer.load(modelDir);
        server = Server.start(model, tok, settings(0, 4, 64, 8192), msg -> {});
        utterances = new ArrayList<>();
        for (SynthCorpus.Sample s : SynthCorpus.generate(SynthCorpus.Options.defaults(3, 20)).subList(0, 8)) utterances.add(s.utterance());
    }

    @AfterAll
    static void stop() {
        server.stop();
        model.close();
        tok.close();
        kernels.close();
    }

    static Server.Settings settings(int port, int batchSize, int maxQueue, long maxBody) {
        return new Server.Settings("127.0.0.1", port, "tiny", batchSize, 2, 256, 200, maxBody, maxQueue, false, 30);
    }

    // ---- requests and references

    /** A chat request for utterance u: its text as the user message, its frames as "audio"/"vision" when withFeatures. */
    static ObjectNode request(Utterance u, boolean withFeatures) {
        ObjectNode body = JSON.createObjectNode();
        ArrayNode msgs = body.putArray("messages");
        msgs.addObject().put("role", "system").put("content", "ignored: the DC format has its own instruction");
        ObjectNode user = msgs.addObject().put("role", "user").put("content", u.text());
        if (withFeatures) {
            user.set("audio", JSON.valueToTree(u.audio()));
            user.set("vision", JSON.valueToTree(u.vision()));
        }
        body.put("max_tokens", MAX_TOKENS);
        return body;
    }

    static ObjectNode request(Utterance u, boolean withFeatures, float temperature, long seed) {
        return request(u, withFeatures).put("temperature", temperature).put("seed", seed);
    }

    /** What hintgrpo generate answers for u (features or text only) with these settings: n copies, copy i = stream (seed, i). */
    static List<Evaluation.Row> reference(Utterance u, boolean withFeatures, float temperature, long seed, int n) {
        Utterance in = withFeatures ? u : new Utterance(u.id(), u.text(), u.label(), u.domain(), null, null, null);
        List<Utterance> copies = new ArrayList<>();
        for (int i = 0; i < n; i++) copies.add(in);
        try (Kernels k = new CpuKernels(); Model m = ModelDir.load(k, modelDir, 0, msg -> {})) {
            return Evaluation.generate(m, tok, copies, new Evaluation.Options(MAX_TOKENS, temperature, 0, 1f, n, seed, Evaluation.Drop.NONE), null);
        }
    }

    static HttpResponse<String> post(Server s, String body) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create(s.url() + "/v1/chat/completions"))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    static CompletableFuture<HttpResponse<String>> postAsync(Server s, JsonNode body) {
        return HTTP.sendAsync(HttpRequest.newBuilder(URI.create(s.url() + "/v1/chat/completions"))
                .POST(HttpRequest.BodyPublishers.ofString(body.toString())).build(), HttpResponse.BodyHandlers.ofString());
    }

    static HttpResponse<String> get(Server s, String path) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create(s.url() + path)).GET().build(), HttpResponse.BodyHandlers.ofString());
    }

    /** The 200 response's JSON. */
    static JsonNode chat(JsonNode body) throws Exception {
        HttpResponse<String> r = post(server, body.toString());
        assertEquals(200, r.statusCode(), r.body());
        assertEquals("application/json", r.headers().firstValue("Content-Type").orElse(""));
        return JSON.readTree(r.body());
    }

    /** The data: events of a streamed answer, [DONE] excluded (asserted last). */
    static List<JsonNode> events(String sse) throws Exception {
        List<JsonNode> out = new ArrayList<>();
        String[] blocks = sse.split("\n\n");
        assertEquals("data: [DONE]", blocks[blocks.length - 1], "the stream ends with [DONE]");
        for (int i = 0; i < blocks.length - 1; i++) {
            assertTrue(blocks[i].startsWith("data: "), blocks[i]);
            out.add(JSON.readTree(blocks[i].substring("data: ".length())));
        }
        return out;
    }

    static String content(JsonNode response, int choice) {
        return response.get("choices").get(choice).get("message").get("content").asText();
    }

    // ---- tests

    @Test
    void anAnswerIsWhatGenerateWritesForTheSameSeedWithTheDcParseAndUsage() throws Exception {
        Utterance u = utterances.get(0);
        for (boolean features : new boolean[]{true, false}) {
            for (float temperature : new float[]{0f, 1f}) {
                JsonNode r = chat(request(u, features, temperature, 5));
                Evaluation.Row ref = reference(u, features, temperature, 5, 1).get(0);
                String where = "features " + features + ", temperature " + temperature;
                assertEquals("chat.completion", r.get("object").asText());
                assertEquals("tiny", r.get("model").asText());
                assertTrue(r.get("id").asText().startsWith("chatcmpl-"));
                JsonNode c = r.get("choices").get(0);
                assertEquals("assistant", c.get("message").get("role").asText());
                assertEquals(ref.response(), content(r, 0), where);
                assertEquals(ref.tokens() < MAX_TOKENS ? "stop" : "length", c.get("finish_reason").asText(), where);
                assertTrue(c.get("logprobs").isNull());
                ParsedResponse p = DcParser.parse(ref.response());
                JsonNode h = c.get("hintgrpo");
                assertEquals(p.formatValid(), h.get("format_valid").asBoolean());
                assertEquals(p.problem() == null ? null : p.problem(), h.get("problem").isNull() ? null : h.get("problem").asText());
                assertEquals(p.polarity() == null, h.get("polarity").isNull());
                assertEquals(5, h.get("seed").asLong());
                int promptTokens = Examples.prompt(features ? u : new Utterance(u.id(), u.text(), u.label(), u.domain(), null, null, null),
                        tok, model.config).sequence().length();
                assertEquals(promptTokens, r.get("usage").get("prompt_tokens").asInt(), where);
                assertEquals(ref.tokens(), r.get("usage").get("completion_tokens").asInt(), where);
                assertEquals(promptTokens + ref.tokens(), r.get("usage").get("total_tokens").asInt());
            }
        }
        // content as OpenAI's list of text parts is the same message
        ObjectNode parts = request(u, true, 1f, 5);
        ObjectNode user = (ObjectNode) parts.get("messages").get(1);
        user.putArray("content").addObject().put("type", "text").put("text", u.text());
        assertEquals(reference(u, true, 1f, 5, 1).get(0).response(), content(chat(parts), 0));
    }

    @Test
    void withoutASeedTheServerPicksOneAndReturnsItForReplay() throws Exception {
        ObjectNode body = request(utterances.get(1), true).put("temperature", 1.0);
        JsonNode first = chat(body);
        long seed = first.get("choices").get(0).get("hintgrpo").get("seed").asLong();
        assertTrue(seed >= 0 && seed < (1L << 53), "a seed JavaScript reads exactly: " + seed);
        assertEquals(content(first, 0), content(chat(body.deepCopy().put("seed", seed)), 0));
    }

    @Test
    void concurrentClientsEachGetTheirSoloAnswerInAnyArrivalOrder() throws Exception {
        List<ObjectNode> bodies = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            ObjectNode b = request(utterances.get(i), i % 3 != 2, i % 2 == 0 ? 1f : 0f, 100 + i);
            if (i == 4) b.put("top_k", 5).put("top_p", 0.9);
            if (i == 5) b.put("n", 2);
            bodies.add(b);
        }
        List<JsonNode> solo = new ArrayList<>();
        for (ObjectNode b : bodies) solo.add(chat(b));
        for (boolean reversed : new boolean[]{false, true}) {
            List<CompletableFuture<HttpResponse<String>>> futures = new ArrayList<>();
            for (int i = 0; i < bodies.size(); i++) futures.add(postAsync(server, bodies.get(reversed ? bodies.size() - 1 - i : i)));
            for (int i = 0; i < bodies.size(); i++) {
                HttpResponse<String> r = futures.get(i).get();
                assertEquals(200, r.statusCode(), r.body());
                JsonNode got = JSON.readTree(r.body()), want = solo.get(reversed ? bodies.size() - 1 - i : i);
                assertEquals(want.get("choices"), got.get("choices"), "request " + i + (reversed ? " (reversed)" : ""));
                assertEquals(want.get("usage"), got.get("usage"));
            }
        }
    }

    @Test
    void choiceIOfNDrawsStreamIOfTheSeed() throws Exception {
        Utterance u = utterances.get(2);
        JsonNode r = chat(request(u, true, 1f, 9).put("n", 3));
        List<Evaluation.Row> ref = reference(u, true, 1f, 9, 3);
        int total = 0;
        for (int i = 0; i < 3; i++) {
            assertEquals(i, r.get("choices").get(i).get("index").asInt());
            assertEquals(ref.get(i).response(), content(r, i), "choice " + i);
            total += ref.get(i).tokens();
        }
        assertEquals(total, r.get("usage").get("completion_tokens").asInt());
        assertNotEquals(content(r, 1), content(r, 2), "the choices differ: " + r);
    }

    @Test
    void streamedChunksAddUpToTheAnswer() throws Exception {
        for (int n : new int[]{1, 2}) {
            ObjectNode body = request(utterances.get(3), true, 1f, 21).put("n", n);
            JsonNode whole = chat(body);
            HttpResponse<String> r = post(server, body.deepCopy().put("stream", true).set("stream_options",
                    JSON.createObjectNode().put("include_usage", true)).toString());
            assertEquals(200, r.statusCode(), r.body());
            assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
            List<JsonNode> events = events(r.body());
            StringBuilder[] text = {new StringBuilder(), new StringBuilder()};
            String[] finish = new String[n];
            JsonNode[] ext = new JsonNode[n];
            for (int i = 0; i < n; i++) {
                JsonNode first = events.get(i).get("choices").get(0);
                assertEquals(i, first.get("index").asInt());
                assertEquals("assistant", first.get("delta").get("role").asText(), "the first chunk of each choice names the role");
            }
            for (JsonNode e : events.subList(0, events.size() - 1)) {
                assertEquals("chat.completion.chunk", e.get("object").asText());
                assertEquals(events.get(0).get("id"), e.get("id"));
                JsonNode c = e.get("choices").get(0);
                int i = c.get("index").asInt();
                assertNull(finish[i], "nothing after a choice's finish");
                if (c.get("delta").has("content")) text[i].append(c.get("delta").get("content").asText());
                if (!c.get("finish_reason").isNull()) {
                    finish[i] = c.get("finish_reason").asText();
                    ext[i] = c.get("hintgrpo");
                }
            }
            JsonNode usage = events.get(events.size() - 1);
            assertEquals(0, usage.get("choices").size());
            assertEquals(whole.get("usage"), usage.get("usage"));
            for (int i = 0; i < n; i++) {
                assertEquals(content(whole, i), text[i].toString(), "choice " + i + " of " + n);
                assertEquals(whole.get("choices").get(i).get("finish_reason").asText(), finish[i]);
                assertEquals(whole.get("choices").get(i).get("hintgrpo"), ext[i]);
            }
        }
    }

    @Test
    void aStopStringEndsTheAnswerBeforeItInBothModes() throws Exception {
        Utterance u = utterances.get(4);
        ObjectNode body = request(u, true, 1f, 33).put("max_tokens", 60);
        String full = content(chat(body), 0);
        assertTrue(full.length() > 12, full);
        // a piece from the middle of the answer, as one string and in a list beside one that never occurs
        String stop = full.substring(full.length() / 2, full.length() / 2 + 3);
        String want = full.substring(0, full.indexOf(stop));
        for (JsonNode stops : List.<JsonNode>of(JSON.getNodeFactory().textNode(stop), JSON.createArrayNode().add("\u0000never").add(stop))) {
            ObjectNode b = body.deepCopy();
            b.set("stop", stops);
            JsonNode r = chat(b);
            assertEquals(want, content(r, 0), "stop " + stops);
            assertEquals("stop", r.get("choices").get(0).get("finish_reason").asText());
            assertTrue(r.get("usage").get("completion_tokens").asInt() < 60);
            b.put("stream", true);
            StringBuilder streamed = new StringBuilder();
            for (JsonNode e : events(post(server, b.toString()).body())) {
                JsonNode d = e.get("choices").get(0).get("delta");
                if (d.has("content")) streamed.append(d.get("content").asText());
            }
            assertEquals(want, streamed.toString(), "streamed, stop " + stops);
        }
    }

    @Test
    void logprobsAreTheDrawnTokensLogProbsAtTheSamplingTemperature() throws Exception {
        Utterance u = utterances.get(5);
        JsonNode r = chat(request(u, true, 0.8f, 44).put("logprobs", true));
        JsonNode c = r.get("choices").get(0);
        JsonNode lps = c.get("logprobs").get("content");
        Tokenizer.Specials sp = tok.specials();
        Generator.Completion ref;
        try (Kernels k = new CpuKernels(); Model m = ModelDir.load(k, modelDir, 0, msg -> {})) {
            ref = new Generator(m).generate(List.of(Examples.prompt(u, tok, m.config).sequence()),
                    new Generator.Options(MAX_TOKENS, 0.8f, 0, 1f, 0, new int[]{sp.answerClose(), sp.imEnd()}).withLogprobs(),
                    new long[]{Kernels.streamKey(44, 0)}).get(0);
        }
        assertEquals(ref.tokens().length, lps.size());
        assertEquals(ref.tokens().length, r.get("usage").get("completion_tokens").asInt());
        for (int t = 0; t < lps.size(); t++) {
            assertEquals(ref.logprobs()[t], lps.get(t).get("logprob").floatValue(), 1e-5, "token " + t);
            assertEquals(tok.decode(new int[]{ref.tokens()[t]}), lps.get(t).get("token").asText());
            assertEquals(0, lps.get(t).get("top_logprobs").size());
        }
        HttpResponse<String> refused = post(server, request(u, true).put("logprobs", true).put("top_logprobs", 2).toString());
        assertError(refused, 400, "top_logprobs");
    }

    static JsonNode assertError(HttpResponse<String> r, int status, String param) throws Exception {
        assertEquals(status, r.statusCode(), r.body());
        JsonNode e = JSON.readTree(r.body()).get("error");
        assertNotNull(e, r.body());
        assertFalse(e.get("message").asText().isBlank());
        assertTrue(e.has("type") && e.has("code") && e.has("param"), r.body());
        if (param != null) assertEquals(param, e.get("param").asText(), r.body());
        return e;
    }

    @Test
    void badRequestsGetTheirJsonErrorAndTheServerGoesOn() throws Exception {
        Utterance u = utterances.get(0);
        String ok = request(u, true).toString();
        assertError(post(server, "{\"messages\": [garbage"), 400, null);
        assertError(post(server, ""), 400, null);
        assertError(post(server, "[1, 2]"), 400, null);
        assertError(post(server, ok + " trailing"), 400, null);
        assertError(post(server, "{}"), 400, "messages");
        JsonNode unknown = assertError(post(server, request(u, true).put("frobnicate", 1).toString()), 400, "frobnicate");
        assertTrue(unknown.get("message").asText().contains("frobnicate"));
        assertEquals("invalid_request_error", unknown.get("type").asText());
        assertError(post(server, request(u, true).put("temperature", "hot").toString()), 400, "temperature");
        assertError(post(server, request(u, true).put("temperature", 3).toString()), 400, "temperature");
        assertError(post(server, request(u, true).put("top_p", 0).toString()), 400, "top_p");
        assertError(post(server, request(u, true).put("top_k", -1).toString()), 400, "top_k");
        assertError(post(server, request(u, true).put("n", 0).toString()), 400, "n");
        assertError(post(server, request(u, true).put("n", 1.5).toString()), 400, "n");
        assertError(post(server, request(u, true).put("max_tokens", 100000).toString()), 400, "max_tokens");
        assertError(post(server, request(u, true).put("max_tokens", 0).toString()), 400, "max_tokens");
        assertError(post(server, request(u, true).put("max_completion_tokens", 9).toString()), 400, "max_completion_tokens");
        assertError(post(server, request(u, true).put("seed", "x").toString()), 400, "seed");
        assertError(post(server, request(u, true).put("stop", 5).toString()), 400, "stop");
        assertError(post(server, request(u, true).put("stream", "yes").toString()), 400, "stream");
        assertError(post(server, request(u, true).put("messages", "hi").toString()), 400, "messages");
        assertError(post(server, request(u, true).set("messages", JSON.createArrayNode()).toString()), 400, "messages");
        assertError(post(server, "{\"messages\": [{\"role\": \"assistant\", \"content\": \"hi\"}]}"), 400, "messages[0].role");
        assertError(post(server, "{\"messages\": [{\"role\": \"user\"}]}"), 400, "messages[0].content");
        assertError(post(server, "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"system\", \"content\": \"b\"}]}"), 400, "messages");
        assertError(post(server, "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": {}}]}]}"), 400,
                "messages[0].content[0].type");
        assertError(post(server, "{\"messages\": [{\"role\": \"user\", \"content\": \"a\", \"audio\": [[1, 2, 3]]}]}"), 400, "messages[0].audio");
        assertError(post(server, "{\"messages\": [{\"role\": \"user\", \"content\": \"a\", \"vision\": \"/etc/passwd\"}]}"), 400, "messages[0].vision");
        assertError(post(server, "{\"messages\": [{\"role\": \"user\", \"content\": \"a\", \"mood\": 1}]}"), 400, "messages[0].mood");
        JsonNode model = assertError(post(server, request(u, true).put("model", "gpt-4").toString()), 404, "model");
        assertEquals("model_not_found", model.get("code").asText());
        // 8 KiB is this server's limit
        assertEquals("request_too_large", assertError(post(server, request(u, true).put("user", "x".repeat(20_000)).toString()), 413, null)
                .get("code").asText());
        assertEquals("not_found", assertError(get(server, "/v1/nope"), 404, null).get("code").asText());
        HttpResponse<String> wrongMethod = get(server, "/v1/chat/completions");
        assertError(wrongMethod, 405, null);
        assertEquals("POST", wrongMethod.headers().firstValue("Allow").orElse(""));
        // not even HTTP
        try (Socket s = new Socket("127.0.0.1", URI.create(server.url()).getPort())) {
            s.getOutputStream().write("\u0001\u0002garbage\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1));
            s.getOutputStream().flush();
            s.setSoTimeout(5000);
            s.getInputStream().read(new byte[256]);
        }
        // still serving; "user" and null fields are accepted
        assertEquals(200, get(server, "/health").statusCode());
        JsonNode models = JSON.readTree(get(server, "/v1/models").body());
        assertEquals("tiny", models.get("data").get(0).get("id").asText());
        chat(request(u, true).put("user", "someone").put("model", "tiny").putNull("top_p").putNull("stop"));
    }

    @Test
    void withAllowPathsFeaturesMayBeNpyFilesAndAnswerAsInline() throws Exception {
        Utterance u = utterances.get(1);
        Path audio = dir.resolve("u1.audio.npy"), vision = dir.resolve("u1.vision.npy");
        io.hintgrpo.trainer.data.Npy.write(audio, u.audio());
        io.hintgrpo.trainer.data.Npy.write(vision, u.vision());
        String inline = content(chat(request(u, true, 1f, 12)), 0);
        ObjectNode byPath = request(u, false, 1f, 12);
        ((ObjectNode) byPath.get("messages").get(1)).put("audio", audio.toString()).put("vision", vision.toString());
        assertError(post(server, byPath.toString()), 400, "messages[1].audio"); // this server does not read paths
        try (Kernels k = new CpuKernels(); Model m = ModelDir.load(k, modelDir, 0, msg -> {})) {
            Server.Settings base = settings(0, 4, 8, 1 << 20);
            Server s = Server.start(m, tok, new Server.Settings(base.host(), 0, base.modelName(), base.batchSize(), base.maxBatches(),
                    base.maxContext(), base.maxTokens(), base.maxBodyBytes(), base.maxQueue(), true, 30), msg -> {});
            try {
                HttpResponse<String> r = post(s, byPath.toString());
                assertEquals(200, r.statusCode(), r.body());
                assertEquals(inline, content(JSON.readTree(r.body()), 0));
                ((ObjectNode) byPath.get("messages").get(1)).put("vision", dir.resolve("missing.npy").toString());
                assertError(post(s, byPath.toString()), 400, "messages[1].vision");
                // an idle batch closes after a while
                long deadline = System.nanoTime() + 20_000_000_000L;
                while (s.scheduler().batches() > 0 && System.nanoTime() < deadline) Thread.sleep(20);
                assertEquals(0, JSON.readTree(get(s, "/health").body()).get("batches").asInt());
            } finally {
                s.stop();
            }
        }
    }

    /** A streamed request with many rows: long enough that its client can leave while it runs. */
    static ObjectNode longRequest(Utterance u) {
        return request(u, false, 1f, 77).put("n", 64).put("max_tokens", 200);
    }

    @Test
    void aClientThatLeavesMidStreamHasItsRowsRetiredWhileAnotherRequestCompletes() throws Exception {
        try (Kernels k = new CpuKernels(); Model m = ModelDir.load(k, modelDir, 0, msg -> {})) {
            Server s = Server.start(m, tok, settings(0, 2, 8, 1 << 20), msg -> {});
            try {
                ObjectNode other = request(utterances.get(6), true, 1f, 3);
                JsonNode solo = JSON.readTree(post(s, other.toString()).body());
                String body = longRequest(utterances.get(7)).put("stream", true).toString();
                try (Socket sock = new Socket("127.0.0.1", URI.create(s.url()).getPort())) {
                    OutputStream o = sock.getOutputStream();
                    byte[] b = body.getBytes(StandardCharsets.UTF_8);
                    o.write(("POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: "
                            + b.length + "\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
                    o.write(b);
                    o.flush();
                    BufferedReader in = new BufferedReader(new InputStreamReader(sock.getInputStream(), StandardCharsets.UTF_8));
                    assertTrue(in.readLine().startsWith("HTTP/1.1 200"));
                    int data = 0;
                    for (String line; data < 70 && (line = in.readLine()) != null; ) if (line.contains("data: ")) data++;
                    assertEquals(70, data, "the stream started");
                    assertTrue(s.scheduler().requests() >= 1, "still running when the client leaves");
                }
                // the other request runs beside the abandoned one and gets its own answer
                HttpResponse<String> r = postAsync(s, other).get();
                assertEquals(solo.get("choices"), JSON.readTree(r.body()).get("choices"));
                long deadline = System.nanoTime() + 30_000_000_000L;
                while (s.scheduler().requests() > 0 && System.nanoTime() < deadline) Thread.sleep(10);
                assertEquals(0, s.scheduler().requests(), "the abandoned request is gone");
                assertEquals(0, s.scheduler().running());
                assertTrue(s.scheduler().cancelledRows() > 0, "its rows were retired, not run to the end");
                JsonNode health = JSON.readTree(get(s, "/health").body());
                assertEquals("ok", health.get("status").asText());
            } finally {
                s.stop();
            }
        }
    }

    @Test
    void aFullQueueAnswers429() throws Exception {
        try (Kernels k = new CpuKernels(); Model m = ModelDir.load(k, modelDir, 0, msg -> {})) {
            Server s = Server.start(m, tok, settings(0, 2, 1, 1 << 20), msg -> {});
            try {
                CompletableFuture<HttpResponse<String>> running = postAsync(s, longRequest(utterances.get(0)));
                while (s.scheduler().requests() == 0) Thread.sleep(1);
                JsonNode e = assertError(post(s, request(utterances.get(1), true).toString()), 429, null);
                assertEquals("queue_full", e.get("code").asText());
                assertEquals(200, running.get().statusCode());
                assertEquals(200, post(s, request(utterances.get(1), true).toString()).statusCode(), "room again");
            } finally {
                s.stop();
            }
        }
    }

    @Test
    void stopLetsTheRequestsInFlightFinishAndRefusesNewOnes() throws Exception {
        List<String> log = new ArrayList<>();
        Consumer<String> logTo = msg -> { synchronized (log) { log.add(msg); } };
        try (Kernels k = new CpuKernels(); Model m = ModelDir.load(k, modelDir, 0, msg -> {})) {
            Server s = Server.start(m, tok, settings(0, 4, 8, 1 << 20), logTo);
            List<CompletableFuture<HttpResponse<String>>> inFlight = new ArrayList<>();
            inFlight.add(postAsync(s, longRequest(utterances.get(0)).put("n", 16)));
            inFlight.add(postAsync(s, longRequest(utterances.get(1)).put("n", 16).put("stream", true)));
            while (s.scheduler().requests() < 2) Thread.sleep(1);
            Thread stopper = new Thread(s::stop);
            stopper.start();
            while (!JSON.readTree(get(s, "/health").body()).get("status").asText().equals("stopping")) Thread.sleep(1);
            assertTrue(s.scheduler().requests() > 0, "requests were in flight when stop began");
            assertEquals("shutting_down", assertError(post(s, request(utterances.get(2), true).toString()), 503, null).get("code").asText());
            for (CompletableFuture<HttpResponse<String>> f : inFlight) {
                HttpResponse<String> r = f.get();
                assertEquals(200, r.statusCode(), r.body());
            }
            JsonNode whole = JSON.readTree(inFlight.get(0).get().body());
            assertEquals(16, whole.get("choices").size());
            for (JsonNode c : whole.get("choices")) assertFalse(c.get("finish_reason").isNull());
            List<JsonNode> streamed = events(inFlight.get(1).get().body());
            assertEquals(16, streamed.stream().filter(e -> e.has("choices") && e.get("choices").size() > 0
                    && !e.get("choices").get(0).get("finish_reason").isNull()).count(), "every streamed choice finished");
            stopper.join(60_000);
            assertFalse(stopper.isAlive());
            assertThrows(java.io.IOException.class, () -> get(s, "/health"), "the listener is closed");
            assertTrue(log.get(0).startsWith("stopping: finishing 2 requests"), log.toString());
            assertEquals("stopped", log.get(log.size() - 1));
        }
    }

    @Test
    void pastTheGracePeriodTheRequestsStillRunningEndWithAnError() throws Exception {
        try (Kernels k = new CpuKernels(); Model m = ModelDir.load(k, modelDir, 0, msg -> {})) {
            Server.Settings base = settings(0, 2, 8, 1 << 20);
            Server s = Server.start(m, tok, new Server.Settings(base.host(), 0, base.modelName(), base.batchSize(), base.maxBatches(),
                    base.maxContext(), base.maxTokens(), base.maxBodyBytes(), base.maxQueue(), false, 0), msg -> {});
            CompletableFuture<HttpResponse<String>> whole = postAsync(s, longRequest(utterances.get(0)));
            CompletableFuture<HttpResponse<String>> streamed = postAsync(s, longRequest(utterances.get(1)).put("stream", true));
            while (s.scheduler().requests() < 2) Thread.sleep(1);
            s.stop();
            assertEquals("shutting_down", assertError(whole.get(), 503, null).get("code").asText());
            HttpResponse<String> r = streamed.get();
            assertEquals(200, r.statusCode());
            assertFalse(r.body().contains("[DONE]"), "an ended stream has no [DONE]");
            assertTrue(r.body().contains("\"code\":\"shutting_down\""), r.body());
        }
    }
}
