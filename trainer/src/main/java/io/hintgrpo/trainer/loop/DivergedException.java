package io.hintgrpo.trainer.loop;

/** Raised when too many steps in a row had a non-finite loss or gradient (LoopSettings.maxBadStepsInARow). */
public final class DivergedException extends RuntimeException {
    public DivergedException(String message) {
        super(message);
    }
}
