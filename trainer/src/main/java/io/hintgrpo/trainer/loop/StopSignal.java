package io.hintgrpo.trainer.loop;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * SIGINT / SIGTERM ask a run to stop after the current step; the loop then writes a checkpoint
 * and returns normally. A second signal while stopping exits at once.
 */
public final class StopSignal {
    private static final AtomicBoolean REQUESTED = new AtomicBoolean();
    private static volatile boolean installed;

    private StopSignal() {}

    public static synchronized void install() {
        if (installed) return;
        for (String name : new String[]{"INT", "TERM"}) {
            try {
                sun.misc.Signal.handle(new sun.misc.Signal(name), sig -> {
                    if (REQUESTED.getAndSet(true)) Runtime.getRuntime().halt(130);
                    System.err.println("\nhintgrpo: SIG" + sig.getName() + " received: stopping after this step and writing a checkpoint");
                });
            } catch (IllegalArgumentException e) {
                // the signal is not available on this platform
            }
        }
        installed = true;
    }

    public static boolean requested() {
        return REQUESTED.get();
    }

    /** Tests and API callers can ask for a stop too. */
    public static void request() {
        REQUESTED.set(true);
    }

    public static void clear() {
        REQUESTED.set(false);
    }
}
