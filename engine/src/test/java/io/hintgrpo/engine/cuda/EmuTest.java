package io.hintgrpo.engine.cuda;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The emulator's test classes: the test library (planted kernels) loaded once per class, closed after it with no memory left. */
abstract class EmuTest {
    static EmuTesting t;
    static EmuDriver emu;

    @BeforeAll
    static void loadTestLibrary() {
        t = new EmuTesting();
        emu = t.emu;
    }

    @AfterAll
    static void closeTestLibrary() {
        emu.close();
        assertEquals(0, emu.bytesInUse(), "native memory after close");
    }
}
