package io.hintgrpo.engine.cuda;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** -Dhintgrpo.emu.order sets the thread order of a whole JVM (this class runs in its own). */
class EmuOrderPropertyTest {
    @Test
    void reverseOrderFromTheSystemProperty() {
        System.setProperty("hintgrpo.emu.order", "reverse");
        EmuTesting t = new EmuTesting();
        EmuDriver emu = t.emu;
        int threads = 64;
        float[] x = new float[threads];
        for (int i = 0; i < threads; i++) x[i] = 1 + i;
        long px = t.upload(x), out = emu.malloc(4L * threads);
        emu.launch("emu_normalize_missing_sync", 1, 1, 1, threads, 1, 1, 0, out, px);
        float[] r = t.floats(out, threads);
        assertTrue(Float.isNaN(r[threads - 1]), "in reverse order the last thread reads the poison first");
        emu.setThreadOrder(EmuDriver.ThreadOrder.FORWARD, 0);
        emu.launch("emu_normalize_missing_sync", 1, 1, 1, threads, 1, 1, 0, out, px);
        assertFalse(Float.isNaN(t.floats(out, threads)[threads - 1]));
        emu.close();
    }
}
