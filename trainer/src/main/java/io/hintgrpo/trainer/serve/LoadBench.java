package io.hintgrpo.trainer.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.eval.Evaluation;
import io.hintgrpo.trainer.tokenizer.Tokenizer;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * {@code hintgrpo bench serve}: the server under load on loopback. For each number of concurrent
 * clients, every client sends the next utterance's greedy request until all are answered; then
 * {@code generate} runs the same utterances in batches as the in-run reference. Greedy decoding
 * makes both produce the same tokens, so the numbers compare the same work, and the answers are
 * checked against the reference. Not a timed test: numbers for docs/serving.md.
 */
public final class LoadBench {
    private LoadBench() {}

    private static final ObjectMapper JSON = new ObjectMapper();

    /** One load level: requests answered, wall time, completion tokens, per-request latencies, answers unlike generate's. */
    public record Level(int clients, int requests, double seconds, long tokens, double[] latenciesMs, int mismatches) {
        double percentile(double p) {
            double[] s = latenciesMs.clone();
            Arrays.sort(s);
            return s[Math.min(s.length - 1, (int) Math.ceil(p * s.length) - 1)];
        }
    }

    /** The reference: generate over the same utterances, batchSize at a time. */
    public record Reference(int batchSize, double seconds, long tokens) {}

    public record Result(List<Level> levels, Reference reference, Server.Settings settings) {}

    /**
     * Serves model on a free loopback port with the given decode batch size and runs each client
     * count over the utterances (maxTokens each, greedy); then the generate reference.
     */
    public static Result run(Model model, Tokenizer tok, List<Utterance> utterances, int[] clients, int batchSize, int maxTokens,
                             Consumer<String> log) throws IOException, InterruptedException {
        int most = Arrays.stream(clients).max().orElse(1);
        int context = Math.min(model.config.maxPositionEmbeddings(), 4096);
        Server.Settings settings = new Server.Settings("127.0.0.1", 0, "bench", batchSize, Math.max(1, (most + batchSize - 1) / batchSize),
                context, maxTokens, 1L << 26, most + 1, false, 5);
        Evaluation.Options greedy = new Evaluation.Options(maxTokens, 0f, 0, 1f, batchSize, 0, Evaluation.Drop.NONE);
        Evaluation.generate(model, tok, utterances.subList(0, Math.min(batchSize, utterances.size())), greedy, null); // warm-up (JIT)
        long t0 = System.nanoTime();
        List<Evaluation.Row> expected = Evaluation.generate(model, tok, utterances, greedy, null);
        double refSeconds = (System.nanoTime() - t0) / 1e9;
        long refTokens = expected.stream().mapToLong(Evaluation.Row::tokens).sum();
        List<String> bodies = new ArrayList<>();
        for (Utterance u : utterances) bodies.add(body(u, maxTokens));
        List<Level> levels = new ArrayList<>();
        Server server = Server.start(model, tok, settings, log);
        try {
            HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
            URI uri = URI.create(server.url() + "/v1/chat/completions");
            send(http, uri, bodies.get(0)); // warm-up: the first batch, JIT
            for (int c : clients) {
                levels.add(level(http, uri, bodies, expected, c));
                log.accept(c + " client" + (c == 1 ? "" : "s") + ": done");
            }
        } finally {
            server.stop();
        }
        return new Result(levels, new Reference(batchSize, refSeconds, refTokens), settings);
    }

    private static String body(Utterance u, int maxTokens) {
        ObjectNode b = JSON.createObjectNode();
        ArrayNode msgs = b.putArray("messages");
        ObjectNode user = msgs.addObject().put("role", "user").put("content", u.text());
        if (u.audio() != null) user.set("audio", JSON.valueToTree(u.audio()));
        if (u.vision() != null) user.set("vision", JSON.valueToTree(u.vision()));
        return b.put("temperature", 0).put("max_tokens", maxTokens).toString();
    }

    private static JsonNode send(HttpClient http, URI uri, String body) throws IOException, InterruptedException {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(uri).POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() != 200) throw new IOException("the server answered " + r.statusCode() + ": " + r.body());
        return JSON.readTree(r.body());
    }

    /** c threads take the next utterance until none is left; each request's latency, the wall time, the tokens. */
    private static Level level(HttpClient http, URI uri, List<String> bodies, List<Evaluation.Row> expected, int c) throws InterruptedException {
        AtomicInteger next = new AtomicInteger(), mismatches = new AtomicInteger();
        double[] latency = new double[bodies.size()];
        long[] tokens = new long[bodies.size()];
        Throwable[] failure = new Throwable[1];
        List<Thread> threads = new ArrayList<>();
        long t0 = System.nanoTime();
        for (int t = 0; t < c; t++) {
            Thread th = new Thread(() -> {
                for (int i = next.getAndIncrement(); i < bodies.size(); i = next.getAndIncrement()) {
                    long s = System.nanoTime();
                    try {
                        JsonNode r = send(http, uri, bodies.get(i));
                        latency[i] = (System.nanoTime() - s) / 1e6;
                        tokens[i] = r.get("usage").get("completion_tokens").asLong();
                        if (!r.get("choices").get(0).get("message").get("content").asText().equals(expected.get(i).response()))
                            mismatches.incrementAndGet();
                    } catch (IOException | InterruptedException e) {
                        synchronized (failure) { failure[0] = e; }
                        return;
                    }
                }
            });
            threads.add(th);
            th.start();
        }
        for (Thread th : threads) th.join();
        double seconds = (System.nanoTime() - t0) / 1e9;
        if (failure[0] != null) throw new IllegalStateException("a client failed: " + failure[0].getMessage(), failure[0]);
        return new Level(c, bodies.size(), seconds, Arrays.stream(tokens).sum(), latency, mismatches.get());
    }

    /** The markdown table of docs/serving.md. */
    public static String markdown(Result r) {
        StringBuilder sb = new StringBuilder();
        sb.append("| clients | requests | requests/s | completion tokens/s | p50 latency (ms) | p99 latency (ms) | answers ≠ generate |\n");
        sb.append("|---|---|---|---|---|---|---|\n");
        for (Level l : r.levels())
            sb.append(String.format(Locale.ROOT, "| %d | %d | %.2f | %.0f | %.0f | %.0f | %d |%n", l.clients(), l.requests(),
                    l.requests() / l.seconds(), l.tokens() / l.seconds(), l.percentile(0.5), l.percentile(0.99), l.mismatches()));
        Reference ref = r.reference();
        int n = r.levels().isEmpty() ? 0 : r.levels().get(0).requests();
        sb.append(String.format(Locale.ROOT, "| generate, batch %d (reference) | %d | %.2f | %.0f | | | |%n", ref.batchSize(), n,
                n / ref.seconds(), ref.tokens() / ref.seconds()));
        return sb.toString();
    }
}
