package io.hintgrpo.trainer.serve;

import com.fasterxml.jackson.databind.JsonNode;
import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.Sequence;
import io.hintgrpo.trainer.data.Jsonl;
import io.hintgrpo.trainer.data.Utterance;
import io.hintgrpo.trainer.format.Examples;
import io.hintgrpo.trainer.tokenizer.Tokenizer;

import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;

/**
 * A {@code POST /v1/chat/completions} body, checked and turned into what the scheduler runs: the
 * DC prompt of the last user message (its text, and its "audio"/"vision" frames when given), the
 * sampling settings, the seed and the limits. Everything a request can get wrong is an
 * {@link ApiError} naming the field (docs/serving.md lists the fields and their rules).
 */
public record ChatRequest(Sequence prompt, Scheduler.Sampling sampling, long seed, int n, int maxTokens,
                          List<String> stop, boolean stream, boolean includeUsage) {
    /** Top-level fields a request may have; "user" is accepted and ignored, as OpenAI's servers only log it. */
    static final Set<String> FIELDS = Set.of("messages", "model", "temperature", "top_p", "top_k", "max_tokens",
            "max_completion_tokens", "seed", "n", "stop", "stream", "stream_options", "logprobs", "top_logprobs", "user");
    /** Most choices a request may ask for, and most stop strings (OpenAI's limit). */
    static final int MAX_N = 64, MAX_STOP = 4;
    /** A seed the server picks lies below 2^53, so a JavaScript client reads it back exactly. */
    private static final long RANDOM_SEED_BOUND = 1L << 53;
    private static final SecureRandom SEEDS = new SecureRandom();

    /** What the checks need from the server: its limits and model. */
    record Context(Server.Settings settings, Tokenizer tok, ModelConfig cfg) {}

    static ChatRequest parse(JsonNode body, Context ctx) {
        if (!body.isObject()) throw ApiError.invalid(null, "invalid_type", "the request body must be a JSON object");
        for (Iterator<String> it = body.fieldNames(); it.hasNext(); ) {
            String f = it.next();
            if (!FIELDS.contains(f)) throw ApiError.invalid(f, "unknown_parameter", "unknown field \"" + f + "\"");
        }
        Server.Settings s = ctx.settings();
        JsonNode model = present(body, "model");
        if (model != null && !model.isTextual()) throw ApiError.invalid("model", "invalid_type", "\"model\" must be a string");
        if (model != null && !model.textValue().equals(s.modelName()))
            throw new ApiError(404, "invalid_request_error", "model", "model_not_found",
                    "model \"" + model.textValue() + "\" is not served here; this server serves \"" + s.modelName() + "\"");

        Sequence prompt = prompt(body, ctx);
        float temperature = (float) number(body, "temperature", 1, 0, 2, true);
        float topP = (float) number(body, "top_p", 1, 0, 1, false);
        int topK = integer(body, "top_k", 0, 0, Integer.MAX_VALUE);
        boolean logprobs = bool(body, "logprobs", false);
        if (integer(body, "top_logprobs", 0, 0, 20) > 0)
            throw ApiError.invalid("top_logprobs", "unsupported_parameter", "top_logprobs > 0 is not supported: the sampler "
                    + "returns the drawn token's log-prob only (\"logprobs\": true)");
        int n = integer(body, "n", 1, 1, MAX_N);
        int maxTokens = maxTokens(body, s, prompt.length());
        long seed;
        JsonNode sd = present(body, "seed");
        if (sd == null) seed = SEEDS.nextLong(RANDOM_SEED_BOUND);
        else if (sd.isIntegralNumber() && sd.canConvertToLong()) seed = sd.longValue();
        else throw ApiError.invalid("seed", "invalid_type", "\"seed\" must be a whole number that fits 64 bits, got " + sd);
        List<String> stop = stop(body);
        boolean stream = bool(body, "stream", false);
        boolean includeUsage = false;
        JsonNode so = present(body, "stream_options");
        if (so != null) {
            if (!so.isObject()) throw ApiError.invalid("stream_options", "invalid_type", "\"stream_options\" must be an object");
            for (Iterator<String> it = so.fieldNames(); it.hasNext(); ) {
                String f = it.next();
                if (!f.equals("include_usage"))
                    throw ApiError.invalid("stream_options." + f, "unknown_parameter", "unknown field \"stream_options." + f + "\"");
            }
            includeUsage = bool(so, "include_usage", false);
        }
        return new ChatRequest(prompt, Scheduler.Sampling.of(temperature, topK, topP, logprobs), seed, n, maxTokens, stop, stream, includeUsage);
    }

    /** max_tokens or max_completion_tokens (the same value where both are given); default: the limit or what the context leaves. */
    private static int maxTokens(JsonNode body, Server.Settings s, int promptTokens) {
        int room = s.maxContext() - promptTokens;
        if (room < 1)
            throw ApiError.invalid("messages", "context_length_exceeded", "the prompt is " + promptTokens + " tokens; this server's context of "
                    + s.maxContext() + " leaves no room for a response");
        int a = integer(body, "max_tokens", -1, 1, Integer.MAX_VALUE), b = integer(body, "max_completion_tokens", -1, 1, Integer.MAX_VALUE);
        if (a > 0 && b > 0 && a != b)
            throw ApiError.invalid("max_completion_tokens", "invalid_value", "max_tokens " + a + " and max_completion_tokens " + b + " disagree");
        int asked = Math.max(a, b);
        String param = b > 0 ? "max_completion_tokens" : "max_tokens";
        if (asked < 0) return Math.min(s.maxTokens(), room);
        if (asked > s.maxTokens())
            throw ApiError.invalid(param, "invalid_value", param + " " + asked + " is above this server's limit of " + s.maxTokens());
        if (asked > room)
            throw ApiError.invalid(param, "context_length_exceeded", "the prompt's " + promptTokens + " tokens + " + param + " " + asked
                    + " exceed this server's context of " + s.maxContext() + " tokens");
        return asked;
    }

    private static List<String> stop(JsonNode body) {
        JsonNode st = present(body, "stop");
        List<String> out = new ArrayList<>();
        if (st == null) return out;
        if (st.isTextual()) {
            out.add(st.textValue());
        } else if (st.isArray()) {
            for (JsonNode x : st) {
                if (!x.isTextual()) throw ApiError.invalid("stop", "invalid_type", "\"stop\" must be a string or a list of strings, got " + x);
                out.add(x.textValue());
            }
        } else {
            throw ApiError.invalid("stop", "invalid_type", "\"stop\" must be a string or a list of strings");
        }
        if (out.size() > MAX_STOP) throw ApiError.invalid("stop", "invalid_value", "at most " + MAX_STOP + " stop strings, got " + out.size());
        for (String x : out) if (x.isEmpty()) throw ApiError.invalid("stop", "invalid_value", "a stop string is empty");
        return out;
    }

    /**
     * The DC prompt, exactly as {@code hintgrpo generate} builds it for an utterance: the last user
     * message's text (a string, or the text parts joined by newlines) with that message's feature
     * frames. System and developer messages are ignored (the DC format has its own instruction);
     * the conversation must end with the user message; assistant and tool turns are refused.
     */
    private static Sequence prompt(JsonNode body, Context ctx) {
        JsonNode msgs = present(body, "messages");
        if (msgs == null) throw ApiError.invalid("messages", "missing_required_parameter", "missing required field \"messages\"");
        if (!msgs.isArray() || msgs.isEmpty())
            throw ApiError.invalid("messages", "invalid_type", "\"messages\" must be a non-empty list of messages");
        int user = -1;
        for (int i = 0; i < msgs.size(); i++) {
            JsonNode m = msgs.get(i);
            String at = "messages[" + i + "]";
            if (!m.isObject()) throw ApiError.invalid(at, "invalid_type", at + " must be an object");
            JsonNode role = m.get("role");
            if (role == null || !role.isTextual()) throw ApiError.invalid(at + ".role", "invalid_type", at + ".role must be a string");
            Set<String> allowed = switch (role.textValue()) {
                case "system", "developer" -> Set.of("role", "content", "name");
                case "user" -> Set.of("role", "content", "name", "audio", "vision");
                case "assistant", "tool", "function" -> throw ApiError.invalid(at + ".role", "unsupported_value", "role \""
                        + role.textValue() + "\" is not supported: the model answers one utterance in the DC format, the last user message");
                default -> throw ApiError.invalid(at + ".role", "invalid_value", "unknown role \"" + role.textValue() + "\"");
            };
            for (Iterator<String> it = m.fieldNames(); it.hasNext(); ) {
                String f = it.next();
                if (!allowed.contains(f)) throw ApiError.invalid(at + "." + f, "unknown_parameter", "unknown field \"" + at + "." + f + "\"");
            }
            text(m, at); // every message's content is checked, the ignored ones too
            if (role.textValue().equals("user")) user = i;
        }
        if (user < 0) throw ApiError.invalid("messages", "invalid_value", "no user message: the last user message is the utterance");
        if (user != msgs.size() - 1)
            throw ApiError.invalid("messages", "invalid_value", "the last message must be the user's (the utterance to answer)");
        JsonNode m = msgs.get(user);
        String at = "messages[" + user + "]";
        float[][] audio = frames(m, "audio", at, ctx, ctx.cfg().hasAudio(), ctx.cfg().audioFeatureSize());
        float[][] vision = frames(m, "vision", at, ctx, ctx.cfg().hasVision(), ctx.cfg().visionFeatureSize());
        Utterance u = new Utterance("request", text(m, at), Float.NaN, Jsonl.DEFAULT_DOMAIN, audio, vision, null);
        try {
            synchronized (ctx.tok()) { // the scheduler thread decodes with the same tokenizer
                return Examples.prompt(u, ctx.tok(), ctx.cfg()).sequence();
            }
        } catch (BadInputException e) {
            throw ApiError.invalid(at, "invalid_value", at + ": " + e.reason());
        }
    }

    private static String text(JsonNode m, String at) {
        JsonNode c = m.get("content");
        if (c == null || c.isNull()) throw ApiError.invalid(at + ".content", "missing_required_parameter", at + " has no content");
        if (c.isTextual()) return c.textValue();
        if (!c.isArray()) throw ApiError.invalid(at + ".content", "invalid_type", at + ".content must be a string or a list of text parts");
        StringBuilder sb = new StringBuilder();
        for (int p = 0; p < c.size(); p++) {
            JsonNode part = c.get(p);
            String pat = at + ".content[" + p + "]";
            if (!part.isObject() || !part.path("type").isTextual())
                throw ApiError.invalid(pat, "invalid_type", pat + " must be an object with a \"type\"");
            if (!part.get("type").textValue().equals("text"))
                throw ApiError.invalid(pat + ".type", "unsupported_value", "content part type \"" + part.get("type").textValue()
                        + "\" is not supported: send features as the message's \"audio\" / \"vision\" frames");
            if (!part.path("text").isTextual()) throw ApiError.invalid(pat + ".text", "invalid_type", pat + ".text must be a string");
            if (sb.length() > 0) sb.append('\n');
            sb.append(part.get("text").textValue());
        }
        return sb.toString();
    }

    /** A modality's frames × dims from the message: inline, or an .npy path where the server allows paths; null when absent. */
    private static float[][] frames(JsonNode m, String field, String at, Context ctx, boolean modelHasIt, int dim) {
        JsonNode n = present(m, field);
        if (n == null) return null;
        String param = at + "." + field;
        if (!modelHasIt) throw ApiError.invalid(param, "invalid_value", "the model has no " + field + " projector: leave out \"" + field + "\"");
        if (n.isTextual() && !ctx.settings().allowPaths())
            throw ApiError.invalid(param, "invalid_value", param + ": .npy paths are read only when the server runs with --allow-paths; "
                    + "send the frames inline as a list of lists");
        try {
            return Jsonl.features(n, field, dim, Path.of("").toAbsolutePath(), at);
        } catch (BadInputException e) {
            throw ApiError.invalid(param, "invalid_value", e.getMessage());
        }
    }

    /** The field, or null when absent or JSON null (OpenAI's clients send null for "not set"). */
    private static JsonNode present(JsonNode obj, String field) {
        JsonNode n = obj.get(field);
        return n == null || n.isNull() ? null : n;
    }

    /** A number in [lo, hi] (lo itself excluded unless loInclusive), or dflt when absent. */
    private static double number(JsonNode body, String field, double dflt, double lo, double hi, boolean loInclusive) {
        JsonNode n = present(body, field);
        if (n == null) return dflt;
        if (!n.isNumber()) throw ApiError.invalid(field, "invalid_type", "\"" + field + "\" must be a number, got " + n);
        double x = n.doubleValue();
        if (!(loInclusive ? x >= lo : x > lo) || !(x <= hi))
            throw ApiError.invalid(field, "invalid_value", "\"" + field + "\" must be in " + (loInclusive ? "[" : "(") + fmt(lo) + ", " + fmt(hi)
                    + "], got " + n);
        return x;
    }

    private static int integer(JsonNode body, String field, int dflt, int lo, int hi) {
        JsonNode n = present(body, field);
        if (n == null) return dflt;
        if (!n.isIntegralNumber()) throw ApiError.invalid(field, "invalid_type", "\"" + field + "\" must be a whole number, got " + n);
        if (!n.canConvertToInt() || n.intValue() < lo || n.intValue() > hi)
            throw ApiError.invalid(field, "invalid_value", "\"" + field + "\" must be in [" + lo + ", " + hi + "], got " + n);
        return n.intValue();
    }

    private static boolean bool(JsonNode body, String field, boolean dflt) {
        JsonNode n = present(body, field);
        if (n == null) return dflt;
        if (!n.isBoolean()) throw ApiError.invalid(field, "invalid_type", "\"" + field + "\" must be true or false, got " + n);
        return n.booleanValue();
    }

    private static String fmt(double x) {
        return x == Math.rint(x) ? String.valueOf((long) x) : String.valueOf(x);
    }
}
