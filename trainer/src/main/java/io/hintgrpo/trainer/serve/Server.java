package io.hintgrpo.trainer.serve;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.trainer.format.DcParser;
import io.hintgrpo.trainer.tokenizer.Tokenizer;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * {@code hintgrpo serve}: OpenAI-compatible chat completions over the JDK's HTTP server.
 * {@code POST /v1/chat/completions} (a JSON completion, or server-sent events with
 * {@code "stream": true}), {@code GET /v1/models}, {@code GET /health}. Each request is parsed and
 * checked on an HTTP thread ({@link ChatRequest}), handed to the {@link Scheduler} (the one thread
 * that runs the model) and answered from its events; errors are OpenAI's error object with a 4xx
 * status, and no request can stop the server. {@link #stop} (the command's shutdown hook) takes no
 * new requests, lets those in flight finish within the grace period, then closes. docs/serving.md
 * has the protocol.
 */
public final class Server {
    /**
     * host and port to listen on (port 0: any free one); the model's name in requests and
     * responses; rows per decode batch and batches open at once; positions per row (prompt +
     * response); the most tokens a request may ask for (and its default); the largest body; the
     * most requests in at once (waiting or running); whether features may be .npy paths; seconds
     * in-flight requests get at shutdown.
     */
    public record Settings(String host, int port, String modelName, int batchSize, int maxBatches, int maxContext, int maxTokens,
                           long maxBodyBytes, int maxQueue, boolean allowPaths, int shutdownGraceSeconds) {}

    private static final ObjectMapper JSON = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private final Settings settings;
    private final Tokenizer tok;
    private final ChatRequest.Context context;
    private final Scheduler scheduler;
    private final HttpServer http;
    private final ExecutorService pool;
    private final Consumer<String> log;
    private final long created = System.currentTimeMillis() / 1000;
    private final AtomicInteger inFlight = new AtomicInteger();
    private final CountDownLatch stopped = new CountDownLatch(1);
    private volatile boolean stopping;

    private Server(Model model, Tokenizer tok, Settings s, Consumer<String> log) throws IOException {
        this.settings = s;
        this.tok = tok;
        this.log = log;
        this.context = new ChatRequest.Context(s, tok, model.config);
        try {
            http = HttpServer.create(new InetSocketAddress(s.host(), s.port()), 0);
        } catch (IOException e) {
            throw new BadInputException("--host/--port", "cannot listen on " + s.host() + ":" + s.port() + ": " + BadInputException.osReason(e), e);
        }
        scheduler = new Scheduler(model, tok, s.batchSize(), s.maxContext(), s.maxBatches(), s.maxQueue(), log);
        // one thread per request in flight (it waits on its job's events), a few more for health checks and refusals
        AtomicInteger n = new AtomicInteger();
        pool = Executors.newFixedThreadPool(s.maxQueue() + 8, r -> {
            Thread t = new Thread(r, "hintgrpo-http-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        http.setExecutor(pool);
        http.createContext("/", this::handle);
        http.start();
    }

    /** Listens and serves until {@link #stop}; the caller keeps model and tokenizer open until then. */
    public static Server start(Model model, Tokenizer tok, Settings settings, Consumer<String> log) throws IOException {
        return new Server(model, tok, settings, log);
    }

    /** http://host:port, with the port actually bound. */
    public String url() {
        String host = settings.host().contains(":") ? "[" + settings.host() + "]" : settings.host();
        return "http://" + host + ":" + http.getAddress().getPort();
    }

    public Scheduler scheduler() {
        return scheduler;
    }

    /**
     * Graceful stop: new requests get 503, those in flight finish (up to the grace period; past it
     * they end with an error), then the listener closes. Idempotent; a second caller waits for the first.
     */
    public void stop() {
        synchronized (this) {
            if (stopping) {
                awaitStopped();
                return;
            }
            stopping = true;
        }
        try {
            int in = scheduler.requests();
            log.accept("stopping: " + (in == 0 ? "no requests in flight" : "finishing " + in + " request" + (in == 1 ? "" : "s")
                    + " (up to " + settings.shutdownGraceSeconds() + " s)"));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(settings.shutdownGraceSeconds());
            if (!scheduler.stop(deadline)) log.accept("grace period over: the requests still running were ended");
            // the handlers write what the scheduler left them; a few seconds at most
            long writeDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            while (inFlight.get() > 0 && System.nanoTime() < writeDeadline) Thread.sleep(10);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            http.stop(0);
            pool.shutdownNow();
            log.accept("stopped");
            stopped.countDown();
        }
    }

    /** Returns once {@link #stop} has finished. */
    public void awaitStopped() {
        try {
            stopped.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void handle(HttpExchange ex) {
        inFlight.incrementAndGet();
        try {
            String path = ex.getRequestURI().getPath(), method = ex.getRequestMethod();
            switch (path) {
                case "/v1/chat/completions" -> {
                    allow(method, "POST");
                    chat(ex);
                }
                case "/v1/models" -> {
                    allow(method, "GET");
                    send(ex, 200, models());
                }
                case "/health" -> {
                    allow(method, "GET");
                    send(ex, stopping ? 503 : 200, health());
                }
                default -> throw new ApiError(404, "invalid_request_error", null, "not_found", "unknown path " + path
                        + " (this server has POST /v1/chat/completions, GET /v1/models, GET /health)");
            }
        } catch (ApiError e) {
            if (e.status == 405) ex.getResponseHeaders().set("Allow", e.param);
            trySend(ex, e.status, error(e.status == 405 ? null : e.param, e.type, e.code, e.getMessage()));
        } catch (IOException e) {
            // the client went away while we read or wrote: nothing to answer
        } catch (RuntimeException e) { // a bug, not the client's fault: say so, and keep serving
            log.accept("request failed: " + e);
            trySend(ex, 500, error(null, "server_error", "internal_error", "internal error: " + e));
        } finally {
            ex.close();
            inFlight.decrementAndGet();
        }
    }

    private static void allow(String method, String allowed) {
        if (!method.equals(allowed))
            throw new ApiError(405, "invalid_request_error", allowed, "method_not_allowed", method + " is not allowed here; use " + allowed);
    }

    private void chat(HttpExchange ex) throws IOException {
        JsonNode body;
        try {
            body = JSON.readTree(body(ex));
        } catch (JsonProcessingException e) {
            throw ApiError.invalid(null, "invalid_json", "the body is not valid JSON: " + e.getOriginalMessage());
        }
        if (body == null) throw ApiError.invalid(null, "invalid_json", "the body is empty");
        ChatRequest req = ChatRequest.parse(body, context);
        Scheduler.Job job = new Scheduler.Job(req);
        scheduler.submit(job);
        try {
            String id = "chatcmpl-" + UUID.randomUUID().toString().replace("-", "");
            long now = System.currentTimeMillis() / 1000;
            if (req.stream()) stream(ex, req, job, id, now);
            else complete(ex, req, job, id, now);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            job.cancel(); // a no-op once the job is done; otherwise (client gone, error) its rows stop
        }
    }

    /** The body, refused (413) past the limit before it is all read. */
    private byte[] body(HttpExchange ex) throws IOException {
        long max = settings.maxBodyBytes();
        String declared = ex.getRequestHeaders().getFirst("Content-Length");
        ApiError tooLarge = new ApiError(413, "invalid_request_error", null, "request_too_large",
                "the body is larger than this server's limit of " + max + " bytes (--max-body-bytes)");
        try {
            if (declared != null && Long.parseLong(declared.trim()) > max) throw tooLarge;
        } catch (NumberFormatException e) {
            throw ApiError.invalid(null, "invalid_header", "Content-Length is not a number: " + declared);
        }
        InputStream in = ex.getRequestBody();
        byte[] b = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, max + 1));
        if (b.length > max) throw tooLarge;
        return b;
    }

    /** What one choice has so far: its text, token count, log-probs and finish reason. */
    private final class Choice {
        final StringBuilder text = new StringBuilder();
        final ArrayNode logprobs = JSON.createArrayNode();
        int tokens;
        String finish;

        /** Takes an event's token; returns the log-prob entry when log-probs are asked for, else null. */
        ObjectNode add(Scheduler.Event e, boolean withLogprobs) {
            text.append(e.text());
            tokens++;
            finish = e.finish();
            if (!withLogprobs) return null;
            String piece;
            synchronized (tok) {
                piece = tok.decode(new int[]{e.token()});
            }
            ObjectNode lp = logprobs.addObject();
            lp.put("token", piece);
            lp.put("logprob", e.logprob());
            ArrayNode bytes = lp.putArray("bytes");
            for (byte x : piece.getBytes(StandardCharsets.UTF_8)) bytes.add(x & 0xff);
            lp.putArray("top_logprobs");
            return lp;
        }

        /** What the DC parser finds in the text, and the request's seed. */
        ObjectNode extension(long seed) {
            return DcParser.parse(text.toString()).writeTo(JSON.createObjectNode()).put("seed", seed);
        }
    }

    /** The whole answer in one chat.completion object once every choice has finished. */
    private void complete(HttpExchange ex, ChatRequest req, Scheduler.Job job, String id, long now) throws IOException, InterruptedException {
        Choice[] choices = new Choice[req.n()];
        for (int c = 0; c < choices.length; c++) choices[c] = new Choice();
        for (int done = 0; done < choices.length; ) {
            Scheduler.Event e = job.next(1000);
            if (e == null) continue;
            if (e.error() != null) throw failure(e.error());
            choices[e.choice()].add(e, req.sampling().logprobs());
            if (e.finish() != null) done++;
        }
        ObjectNode out = head(id, "chat.completion", now);
        ArrayNode arr = out.putArray("choices");
        int completion = 0;
        for (int c = 0; c < choices.length; c++) {
            ObjectNode ch = arr.addObject();
            ch.put("index", c);
            ObjectNode msg = ch.putObject("message");
            msg.put("role", "assistant");
            msg.put("content", choices[c].text.toString());
            if (req.sampling().logprobs()) ch.putObject("logprobs").set("content", choices[c].logprobs);
            else ch.putNull("logprobs");
            ch.put("finish_reason", choices[c].finish);
            ch.set("hintgrpo", choices[c].extension(req.seed()));
            completion += choices[c].tokens;
        }
        out.set("usage", usage(req, completion));
        send(ex, 200, out);
    }

    /**
     * Server-sent events: per choice a first chunk with the role, then one chunk per token that adds
     * text (or carries a log-prob), the last with finish_reason and the hintgrpo extension; the
     * usage chunk where asked; then {@code data: [DONE]}. A write that fails means the client left:
     * the job is cancelled and its rows retired.
     */
    private void stream(HttpExchange ex, ChatRequest req, Scheduler.Job job, String id, long now) throws IOException, InterruptedException {
        ex.getResponseHeaders().set("Content-Type", "text/event-stream; charset=utf-8");
        ex.getResponseHeaders().set("Cache-Control", "no-cache");
        ex.sendResponseHeaders(200, 0);
        OutputStream out = ex.getResponseBody();
        Choice[] choices = new Choice[req.n()];
        for (int c = 0; c < choices.length; c++) {
            choices[c] = new Choice();
            ObjectNode chunk = head(id, "chat.completion.chunk", now);
            ObjectNode ch = chunk.putArray("choices").addObject();
            ch.put("index", c);
            ch.putObject("delta").put("role", "assistant").put("content", "");
            ch.putNull("logprobs");
            ch.putNull("finish_reason");
            event(out, chunk);
        }
        int completion = 0;
        for (int done = 0; done < choices.length; ) {
            Scheduler.Event e = job.next(1000);
            if (e == null) continue;
            if (e.error() != null) {
                ApiError f = failure(e.error());
                event(out, error(null, f.type, f.code, f.getMessage())); // no [DONE]: the answer is incomplete
                return;
            }
            Choice c = choices[e.choice()];
            ObjectNode lp = c.add(e, req.sampling().logprobs());
            completion++;
            if (e.text().isEmpty() && lp == null && e.finish() == null) continue;
            ObjectNode chunk = head(id, "chat.completion.chunk", now);
            ObjectNode ch = chunk.putArray("choices").addObject();
            ch.put("index", e.choice());
            ObjectNode delta = ch.putObject("delta");
            if (!e.text().isEmpty()) delta.put("content", e.text());
            if (lp == null) ch.putNull("logprobs");
            else ch.putObject("logprobs").putArray("content").add(lp);
            ch.put("finish_reason", e.finish());
            if (e.finish() != null) {
                ch.set("hintgrpo", c.extension(req.seed()));
                done++;
            }
            event(out, chunk);
        }
        if (req.includeUsage()) {
            ObjectNode chunk = head(id, "chat.completion.chunk", now);
            chunk.putArray("choices");
            chunk.set("usage", usage(req, completion));
            event(out, chunk);
        }
        out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private ApiError failure(String message) {
        return message.equals(Scheduler.SHUTTING_DOWN) ? new ApiError(503, "server_error", null, "shutting_down", message)
                : new ApiError(500, "server_error", null, "generation_failed", message);
    }

    private ObjectNode head(String id, String object, long now) {
        ObjectNode o = JSON.createObjectNode();
        o.put("id", id);
        o.put("object", object);
        o.put("created", now);
        o.put("model", settings.modelName());
        return o;
    }

    private static ObjectNode usage(ChatRequest req, int completion) {
        ObjectNode u = JSON.createObjectNode();
        int prompt = req.prompt().length();
        u.put("prompt_tokens", prompt);
        u.put("completion_tokens", completion);
        u.put("total_tokens", prompt + completion);
        return u;
    }

    private ObjectNode models() {
        ObjectNode out = JSON.createObjectNode();
        out.put("object", "list");
        ObjectNode m = out.putArray("data").addObject();
        m.put("id", settings.modelName());
        m.put("object", "model");
        m.put("created", created);
        m.put("owned_by", "hintgrpo");
        m.put("max_model_len", settings.maxContext());
        return out;
    }

    private ObjectNode health() {
        ObjectNode out = JSON.createObjectNode();
        out.put("status", stopping ? "stopping" : "ok");
        out.put("model", settings.modelName());
        out.put("requests", scheduler.requests());
        out.put("running_rows", scheduler.running());
        out.put("waiting_rows", scheduler.waiting());
        out.put("batches", scheduler.batches());
        return out;
    }

    static ObjectNode error(String param, String type, String code, String message) {
        ObjectNode out = JSON.createObjectNode();
        ObjectNode e = out.putObject("error");
        e.put("message", message);
        e.put("type", type);
        if (param == null) e.putNull("param");
        else e.put("param", param);
        e.put("code", code);
        return out;
    }

    private static void event(OutputStream out, ObjectNode chunk) throws IOException {
        out.write(("data: " + JSON.writeValueAsString(chunk) + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private static void send(HttpExchange ex, int status, ObjectNode body) throws IOException {
        byte[] b = JSON.writeValueAsBytes(body);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(status, b.length);
        ex.getResponseBody().write(b);
    }

    /** An error answer where headers may already be out (a failed stream): then there is nothing more to say. */
    private static void trySend(HttpExchange ex, int status, ObjectNode body) {
        try {
            if (ex.getResponseCode() == -1) send(ex, status, body);
        } catch (IOException ignored) {
            // the client is gone
        }
    }
}
