package io.hintgrpo.engine.cuda;

/**
 * A failure inside the CUDA emulator: a launch that cannot run, a device assert, a deadlock, an
 * out-of-bounds access, a bad copy or allocation. The message comes from the native side and
 * names the kernel (and block and thread) where it applies.
 */
public final class EmuException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public EmuException(String message) {
        super(message);
    }
}
