package io.hintgrpo.trainer.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.trainer.format.Polarity;

import java.io.IOException;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * Teacher chains from any OpenAI-compatible chat server ({@code hintgrpo data teacher}): for each
 * record, the prompt templates filled with its transcript and gold label go to
 * {@code POST ENDPOINT/chat/completions}; the answer is kept as the record's {@code cot} only when
 * {@link TeacherFilter} keeps it (DC grammar, the label's polarity, the answer within the
 * tolerance), exactly as the synthetic teacher's chains are filtered.
 *
 * <p>Resumable by construction: every finished record (kept or not) is appended to the output as
 * one line and flushed, so after a stop the next run skips the ids already there; a torn last line
 * (a kill mid-write) is cut off first. Requests run {@code concurrency} at a time; 429, 5xx,
 * timeouts and refused connections are retried with exponential backoff (honouring Retry-After);
 * other 4xx and malformed responses count as the record's failure, never the run's. The API key
 * comes from an environment variable only, so it never lands in a flag, a config or a run folder.
 */
public final class RemoteTeacher {
    private RemoteTeacher() {}

    private static final ObjectMapper JSON = new ObjectMapper();

    /** The default templates; {text}, {label}, {polarity}, {id}, {domain} are replaced per record. */
    public static final String DEFAULT_SYSTEM = "You are an expert annotator of multimodal sentiment. You explain a sentiment score in two "
            + "phases: first discriminate the coarse polarity, then calibrate the fine intensity.";
    public static final String DEFAULT_USER = """
            Transcript: "{text}"
            Gold sentiment score: {label} (scale -3 to 3; polarity: {polarity}).
            Write the reasoning that leads to this score in exactly this format and nothing else:
            <disc>polarity: {polarity}. one or two sentences of evidence</disc><calib>one or two sentences on the intensity</calib><answer>{label}</answer>
            The answer is the score with one decimal.""";

    /** Why a record ends without a kept chain, or that it kept one. */
    public enum Outcome { KEPT, INVALID_FORMAT, WRONG_POLARITY, WRONG_ANSWER, EMPTY_RESPONSE, MALFORMED_RESPONSE, HTTP_ERROR, GAVE_UP }

    public record Settings(URI endpoint, String model, Path in, Path out, Path prompts, int concurrency, int retries,
                           Duration timeout, double tolerance, double temperature, int maxTokens, String apiKeyEnv) {}

    public record Templates(String system, String user) {}

    /** Counts of one run: per outcome, records skipped as already done, requests sent, retries. */
    public record Report(Map<Outcome, Integer> outcomes, int alreadyDone, int requests, int retries, double seconds) {
        public int kept() { return outcomes.getOrDefault(Outcome.KEPT, 0); }

        public String table() {
            StringBuilder sb = new StringBuilder("| outcome | records |\n|---|---:|\n");
            outcomes.forEach((o, n) -> sb.append("| ").append(o.name().toLowerCase(Locale.ROOT)).append(" | ").append(n).append(" |\n"));
            sb.append(String.format(Locale.ROOT, "| (already in the output, skipped) | %d |%n", alreadyDone));
            sb.append(String.format(Locale.ROOT, "%d requests (%d retries) in %.1f s%n", requests, retries, seconds));
            return sb.toString();
        }

        public ObjectNode json() {
            ObjectNode o = JSON.createObjectNode();
            ObjectNode c = o.putObject("outcomes");
            outcomes.forEach((k, v) -> c.put(k.name().toLowerCase(Locale.ROOT), v));
            o.put("already_done", alreadyDone);
            o.put("requests", requests);
            o.put("retries", retries);
            o.put("seconds", seconds);
            return o;
        }
    }

    /** The templates file: JSON {"system": …, "user": …}; either may be left out (the default stays). */
    public static Templates templates(Path file) {
        if (file == null) return new Templates(DEFAULT_SYSTEM, DEFAULT_USER);
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(file));
        } catch (IOException e) {
            throw new BadInputException(file.toString(), "cannot read the prompt templates: " + BadInputException.osReason(e));
        }
        if (root == null || !root.isObject()) throw new BadInputException(file.toString(), "expected a JSON object {\"system\": …, \"user\": …}");
        for (var it = root.fieldNames(); it.hasNext(); ) {
            String f = it.next();
            if (!f.equals("system") && !f.equals("user"))
                throw new BadInputException(file.toString(), "unknown key \"" + f + "\" (the templates are \"system\" and \"user\")");
            if (!root.get(f).isTextual()) throw new BadInputException(file.toString(), "\"" + f + "\" must be a string");
        }
        String user = root.path("user").asText(DEFAULT_USER);
        if (!user.contains("{text}")) throw new BadInputException(file.toString(), "the user template never uses {text}: every request would be the same");
        return new Templates(root.path("system").asText(DEFAULT_SYSTEM), user);
    }

    /** A template with the record's fields filled in. */
    static String fill(String template, Utterance u) {
        return template.replace("{text}", u.text()).replace("{label}", String.format(Locale.ROOT, "%.1f", u.label()))
                .replace("{polarity}", Polarity.of(u.label()).word()).replace("{id}", u.id()).replace("{domain}", u.domain());
    }

    public static Report run(Settings s, Consumer<String> progress) throws IOException {
        if (s.concurrency() < 1) throw new BadInputException("--concurrency", "must be ≥ 1, got " + s.concurrency());
        if (s.retries() < 0) throw new BadInputException("--retries", "must be ≥ 0, got " + s.retries());
        if (!(s.tolerance() >= 0)) throw new BadInputException("--tolerance", "must be ≥ 0, got " + s.tolerance());
        if (s.maxTokens() < 1) throw new BadInputException("--max-tokens", "must be ≥ 1, got " + s.maxTokens());
        if (!(s.temperature() >= 0) || Double.isInfinite(s.temperature()))
            throw new BadInputException("--temperature", "must be ≥ 0, got " + s.temperature());
        String scheme = s.endpoint().getScheme();
        if (scheme == null || !(scheme.equals("http") || scheme.equals("https")) || s.endpoint().getHost() == null)
            throw new BadInputException("--endpoint", "not an http(s) URL: " + s.endpoint());
        String key = null;
        if (s.apiKeyEnv() != null && !s.apiKeyEnv().isEmpty()) {
            key = System.getenv(s.apiKeyEnv());
            if (key == null || key.isBlank()) key = null; // a local server needs none
        }
        Templates t = templates(s.prompts());
        List<Jsonl.Record> records = Jsonl.readPrompts(s.in(), Jsonl.Expect.any());
        for (Jsonl.Record r : records)
            if (Float.isNaN(r.utterance().label()))
                throw new BadInputException(s.in() + ":" + r.line(), "no \"label\": the teacher is asked for a chain that reaches the gold label");
        Set<String> done = resume(s.out());
        List<Jsonl.Record> todo = new ArrayList<>();
        for (Jsonl.Record r : records) if (!done.contains(r.utterance().id())) todo.add(r);
        progress.accept(String.format(Locale.ROOT, "%d records, %d already in %s, %d to ask %s for",
                records.size(), records.size() - todo.size(), s.out(), todo.size(), s.endpoint()));

        Map<Outcome, AtomicInteger> counts = new EnumMap<>(Outcome.class);
        for (Outcome o : Outcome.values()) counts.put(o, new AtomicInteger());
        AtomicInteger requests = new AtomicInteger(), retries = new AtomicInteger(), finished = new AtomicInteger();
        HttpClient http = HttpClient.newBuilder().connectTimeout(s.timeout()).version(HttpClient.Version.HTTP_1_1).build();
        URI url = s.endpoint().resolve(s.endpoint().getPath().endsWith("/") ? "chat/completions" : s.endpoint().getPath() + "/chat/completions");
        Path inFolder = s.in().toAbsolutePath().getParent(), outFolder = s.out().toAbsolutePath().getParent();
        long start = System.nanoTime();
        ExecutorService pool = Executors.newFixedThreadPool(s.concurrency(), r -> {
            Thread th = new Thread(r, "teacher");
            th.setDaemon(true);
            return th;
        });
        String apiKey = key;
        try (OutputStream out = Files.newOutputStream(s.out(), StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
            List<Future<?>> jobs = new ArrayList<>();
            for (Jsonl.Record r : todo) {
                jobs.add(pool.submit(() -> {
                    Answer a = ask(http, url, apiKey, s, t, r.utterance(), requests, retries);
                    ObjectNode rec = relocated(r.json(), inFolder, outFolder);
                    rec.remove("cot");
                    if (a.outcome == Outcome.KEPT) rec.put("cot", a.chain);
                    byte[] line = (JSON.writeValueAsString(rec) + "\n").getBytes(StandardCharsets.UTF_8);
                    synchronized (out) { // one whole line at a time: a kill leaves at most one torn last line
                        out.write(line);
                        out.flush();
                    }
                    counts.get(a.outcome).incrementAndGet();
                    int n = finished.incrementAndGet();
                    if (n % Math.max(1, todo.size() / 20) == 0 || n == todo.size()) {
                        double secs = (System.nanoTime() - start) / 1e9, rate = n / Math.max(secs, 1e-9);
                        progress.accept(String.format(Locale.ROOT, "%d/%d records (%d kept), %.1f records/s, ETA %.0f s",
                                n, todo.size(), counts.get(Outcome.KEPT).get(), rate, (todo.size() - n) / rate));
                    }
                    return null;
                }));
            }
            for (Future<?> f : jobs) {
                try {
                    f.get();
                } catch (java.util.concurrent.ExecutionException e) {
                    if (e.getCause() instanceof IOException io) throw BadInputException.io(s.out(), "cannot write", io);
                    if (e.getCause() instanceof RuntimeException re) throw re;
                    throw new IllegalStateException(e.getCause());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted; finished records are in " + s.out() + " and a rerun resumes");
                }
            }
        } finally {
            pool.shutdownNow();
        }
        Map<Outcome, Integer> c = new EnumMap<>(Outcome.class);
        counts.forEach((k, v) -> c.put(k, v.get()));
        return new Report(c, records.size() - todo.size(), requests.get(), retries.get(), (System.nanoTime() - start) / 1e9);
    }

    private record Answer(Outcome outcome, String chain) {}

    /** One record's request, retried while the server says "later" (429, 5xx) or does not answer in time. */
    private static Answer ask(HttpClient http, URI url, String apiKey, Settings s, Templates t, Utterance u,
                              AtomicInteger requests, AtomicInteger retries) throws InterruptedException {
        ObjectNode body = JSON.createObjectNode();
        if (s.model() != null) body.put("model", s.model());
        ArrayNode messages = body.putArray("messages");
        messages.addObject().put("role", "system").put("content", fill(t.system(), u));
        messages.addObject().put("role", "user").put("content", fill(t.user(), u));
        body.put("temperature", s.temperature());
        body.put("max_tokens", s.maxTokens());
        HttpRequest.Builder req = HttpRequest.newBuilder(url).timeout(s.timeout()).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body.toString()));
        if (apiKey != null) req.header("Authorization", "Bearer " + apiKey);
        for (int attempt = 0; ; attempt++) {
            long waitMillis;
            try {
                requests.incrementAndGet();
                HttpResponse<String> resp = http.send(req.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
                int code = resp.statusCode();
                if (code == 200) return judge(resp.body(), u, s.tolerance());
                if (code != 429 && code < 500) return new Answer(Outcome.HTTP_ERROR, null);
                waitMillis = retryAfterMillis(resp).orElse(backoffMillis(attempt));
            } catch (HttpTimeoutException | ConnectException e) {
                waitMillis = backoffMillis(attempt);
            } catch (IOException e) { // a dropped connection mid-answer: as a 5xx
                waitMillis = backoffMillis(attempt);
            }
            if (attempt >= s.retries()) return new Answer(Outcome.GAVE_UP, null);
            retries.incrementAndGet();
            Thread.sleep(waitMillis);
        }
    }

    /** 0.25 s, doubling, capped at 8 s, with ±25 % jitter so concurrent workers do not retry in step. */
    static long backoffMillis(int attempt) {
        long base = Math.min(8000L, 250L << Math.min(attempt, 10));
        return (long) (base * (0.75 + 0.5 * ThreadLocalRandom.current().nextDouble()));
    }

    /** Retry-After in seconds (the form OpenAI-compatible servers send), capped at 60 s. */
    private static java.util.Optional<Long> retryAfterMillis(HttpResponse<?> resp) {
        return resp.headers().firstValue("Retry-After").flatMap(v -> {
            try {
                double secs = Double.parseDouble(v.trim());
                return secs >= 0 ? java.util.Optional.of((long) (Math.min(secs, 60) * 1000)) : java.util.Optional.empty();
            } catch (NumberFormatException e) {
                return java.util.Optional.empty();
            }
        });
    }

    /** The chain from a chat.completion body, judged as the distillation filter judges it. */
    static Answer judge(String body, Utterance u, double tolerance) {
        JsonNode root;
        try {
            root = JSON.readTree(body);
        } catch (IOException e) {
            return new Answer(Outcome.MALFORMED_RESPONSE, null);
        }
        JsonNode content = root == null ? null : root.path("choices").path(0).path("message").path("content");
        if (content == null || !content.isTextual()) return new Answer(Outcome.MALFORMED_RESPONSE, null);
        String chain = content.asText().strip();
        if (chain.isEmpty()) return new Answer(Outcome.EMPTY_RESPONSE, null);
        Outcome o = switch (TeacherFilter.judge(u.withCot(chain), tolerance)) {
            case KEPT -> Outcome.KEPT;
            case NO_CHAIN -> Outcome.EMPTY_RESPONSE;
            case INVALID_FORMAT -> Outcome.INVALID_FORMAT;
            case WRONG_POLARITY -> Outcome.WRONG_POLARITY;
            case WRONG_ANSWER -> Outcome.WRONG_ANSWER;
        };
        return new Answer(o, o == Outcome.KEPT ? chain : null);
    }

    /**
     * The ids already in the output (a previous run's finished records). A last line without its
     * newline is a torn write: it is cut off, and that record is asked again.
     */
    static Set<String> resume(Path out) throws IOException {
        Set<String> ids = new HashSet<>();
        if (!Files.exists(out)) return ids;
        if (Files.isDirectory(out)) throw new BadInputException(out.toString(), "is a folder; --out is a JSONL file");
        byte[] bytes = Files.readAllBytes(out);
        int end = bytes.length;
        while (end > 0 && bytes[end - 1] != '\n') end--;
        if (end < bytes.length) {
            try (FileChannel ch = FileChannel.open(out, StandardOpenOption.WRITE)) {
                ch.truncate(end);
            }
        }
        String text = new String(bytes, 0, end, StandardCharsets.UTF_8);
        int lineNo = 0;
        for (String line : text.split("\n")) {
            lineNo++;
            if (line.isBlank()) continue;
            try {
                JsonNode rec = JSON.readTree(line);
                if (rec != null && rec.path("id").isTextual()) ids.add(rec.get("id").asText());
                else throw new BadInputException(out + ":" + lineNo, "a line without an \"id\": --out is not an output of data teacher");
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new BadInputException(out + ":" + lineNo, "not JSON: --out is not an output of data teacher");
            }
        }
        return ids;
    }

    /** The record with relative .npy paths rewritten for the output's folder (the input's folder resolved them). */
    private static ObjectNode relocated(ObjectNode rec, Path inFolder, Path outFolder) {
        ObjectNode copy = rec.deepCopy();
        if (inFolder.equals(outFolder)) return copy;
        for (String field : new String[]{"audio", "vision"}) {
            JsonNode v = copy.get(field);
            if (v != null && v.isTextual() && !Path.of(v.asText()).isAbsolute())
                copy.put(field, outFolder.relativize(inFolder.resolve(v.asText()).normalize()).toString());
        }
        return copy;
    }
}
