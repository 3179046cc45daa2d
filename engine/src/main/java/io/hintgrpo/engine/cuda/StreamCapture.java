package io.hintgrpo.engine.cuda;

/**
 * One stream capture in progress and the rules both drivers enforce during it, those of the CUDA
 * driver API for a capture of a blocking stream in thread-local mode: calls that are not ordered
 * on a stream (allocation, free, synchronous copies, synchronisation) are refused, and so is any
 * use of the legacy default stream, which every blocking stream synchronises with. An illegal op
 * fails naming itself and invalidates the capture, which can then only end, with an error.
 */
final class StreamCapture {
    /** The capturing stream's handle. */
    final long stream;
    private String invalidatedBy;

    StreamCapture(long stream) {
        this.stream = stream;
    }

    boolean captures(long s) {
        return s == stream;
    }

    /** An op that is never legal during a capture (the driver answers CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED). */
    IllegalStateException unsafe(String op) {
        return illegal(op, "it is not stream-ordered, so a graph cannot record it");
    }

    /** Fails when an op goes to the default stream while a capture is on. */
    void checkStream(String op, long s) {
        if (s == Driver.DEFAULT_STREAM)
            throw illegal(op, "the default stream is unusable while a blocking stream captures (CUDA_ERROR_STREAM_CAPTURE_IMPLICIT)");
    }

    private IllegalStateException illegal(String op, String why) {
        if (invalidatedBy == null) invalidatedBy = op;
        return new IllegalStateException(op + " during the graph capture on stream " + stream + ": " + why
                + "; the capture is invalidated");
    }

    /** At the end of the capture: fails if an illegal op invalidated it (CUDA_ERROR_STREAM_CAPTURE_INVALIDATED). */
    void checkValid() {
        if (invalidatedBy != null)
            throw new IllegalStateException("the graph capture on stream " + stream + " was invalidated by " + invalidatedBy);
    }
}
