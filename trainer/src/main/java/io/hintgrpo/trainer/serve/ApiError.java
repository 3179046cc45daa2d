package io.hintgrpo.trainer.serve;

/**
 * A request the server answers with the OpenAI error object
 * {@code {"error": {"message", "type", "param", "code"}}} and an HTTP status, instead of a completion.
 * param is the offending field (e.g. {@code "temperature"}, {@code "messages[1].audio"}) or null.
 */
public final class ApiError extends RuntimeException {
    public final int status;
    public final String type, param, code;

    public ApiError(int status, String type, String param, String code, String message) {
        super(message);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
    }

    /** 400 invalid_request_error. */
    public static ApiError invalid(String param, String code, String message) {
        return new ApiError(400, "invalid_request_error", param, code, message);
    }
}
