package io.hintgrpo.engine;

/**
 * Bad input from outside (a file, a config, a flag): the message names the place and the reason,
 * and the command line turns it into one line on stderr and a non-zero exit.
 */
public class BadInputException extends RuntimeException {
    private final String reason;

    public BadInputException(String where, String reason) {
        super(where + ": " + reason);
        this.reason = reason;
    }

    public BadInputException(String where, String reason, Throwable cause) {
        super(where + ": " + reason, cause);
        this.reason = reason;
    }

    /** The reason without the place, for a caller that knows the place better. */
    public String reason() {
        return reason;
    }
}
