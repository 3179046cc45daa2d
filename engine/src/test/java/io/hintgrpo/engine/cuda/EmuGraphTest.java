package io.hintgrpo.engine.cuda;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** Stream capture and graph replay on the emulator: what is recorded, what replays, what capture refuses. */
class EmuGraphTest extends EmuTest {
    @Test
    void aReplayRerunsTheLaunchesOnWhatTheBuffersHoldThen() {
        int n = 300;
        float[] x0 = EmuTesting.gaussian(1, n), y0 = EmuTesting.gaussian(2, n);
        long px = t.upload(x0), py = t.upload(y0), pz = emu.malloc(4L * n);
        long s = emu.newStream();
        emu.setStream(s);
        // y = 2x + y + 1, then z = y: a launch and a device copy
        long g = emu.captureGraph(s, () -> {
            emu.launch("emu_axpy", 2, 1, 1, 128, 1, 1, 0, py, px, 2f, n, 1L);
            emu.copyDeviceToDevice(pz, py, 4L * n);
        });
        emu.setStream(Driver.DEFAULT_STREAM);
        assertEquals(2, emu.graphNodes(g));
        assertArrayEquals(y0, t.floats(py, n), "a capture records, it does not run");

        float[] x1 = EmuTesting.gaussian(3, n);
        emu.copyHostToDevice(px, x1, 0, n); // the graph's argument is the address: it reads the new x
        emu.launchGraph(g, Driver.DEFAULT_STREAM);
        float[] y1 = t.floats(py, n);
        for (int i = 0; i < n; i++) assertEquals(2f * x1[i] + y0[i] + 1f, y1[i], 0f, "y[" + i + "]");
        assertArrayEquals(y1, t.floats(pz, n));

        emu.launchGraph(g, s); // again, on another stream, from where the first replay left y
        float[] y2 = t.floats(py, n);
        for (int i = 0; i < n; i++) assertEquals(2f * x1[i] + y1[i] + 1f, y2[i], 0f, "y[" + i + "]");

        // a replay's pointers are checked against the allocations live then
        emu.free(pz);
        EmuException gone = assertThrows(EmuException.class, () -> emu.launchGraph(g, Driver.DEFAULT_STREAM));
        assertTrue(gone.getMessage().contains("emu_axpy") || gone.getMessage().contains("copy"), gone.getMessage());

        emu.destroyGraph(g);
        assertThrows(IllegalArgumentException.class, () -> emu.launchGraph(g, Driver.DEFAULT_STREAM));
        assertThrows(IllegalArgumentException.class, () -> emu.destroyGraph(g));
        assertThrows(IllegalArgumentException.class, () -> emu.launchGraph(s, Driver.DEFAULT_STREAM), "a stream is not a graph");
        emu.destroyStream(s);
        emu.free(px);
        emu.free(py);
    }

    @Test
    void asyncCopiesAndGraphLaunchesOnTheCapturingStreamAreRecordedToo() {
        int n = 64;
        float[] x = EmuTesting.gaussian(4, n);
        long px = emu.malloc(4L * n), py = t.upload(new float[n]);
        ByteBuffer in = emu.allocPinned(4L * n), out = emu.allocPinned(4L * n);
        long s = emu.newStream();
        emu.setStream(s);
        long inner = emu.captureGraph(s, () -> emu.launch("emu_axpy", 1, 1, 1, 64, 1, 1, 0, py, px, 1f, n, 0L));
        long outer = emu.captureGraph(s, () -> {
            emu.copyHostToDeviceAsync(px, in, 0, 4L * n, s);
            emu.launchGraph(inner, s);
            emu.copyDeviceToHostAsync(out, 0, py, 4L * n, s);
        });
        emu.setStream(Driver.DEFAULT_STREAM);
        assertEquals(3, emu.graphNodes(outer));
        in.asFloatBuffer().put(x); // written after the capture, read by the replay
        emu.launchGraph(outer, s);
        emu.synchronizeStream(s);
        for (int i = 0; i < n; i++) assertEquals(x[i], out.asFloatBuffer().get(i), 0f);
        emu.destroyGraph(inner);
        emu.destroyGraph(outer);
        emu.destroyStream(s);
        emu.freePinned(in);
        emu.freePinned(out);
        emu.free(px);
        emu.free(py);
    }

    @Test
    void illegalOpsDuringACaptureFailNamingTheOpAndEndIt() {
        long p = t.upload(new float[16]);
        long s = emu.newStream(), other = emu.newStream();
        float[] host = new float[16];
        Map<String, Runnable> illegal = new LinkedHashMap<>();
        illegal.put("malloc", () -> emu.malloc(64));
        illegal.put("free", () -> emu.free(p));
        illegal.put("copyHostToDevice", () -> emu.copyHostToDevice(p, host, 0, 16));
        illegal.put("copyDeviceToHost", () -> emu.copyDeviceToHost(host, 0, p, 16));
        illegal.put("synchronize", emu::synchronize);
        illegal.put("synchronizeStream", () -> emu.synchronizeStream(s));
        illegal.put("destroyStream of the capturing stream", () -> emu.destroyStream(s));
        illegal.put("launch of emu_axpy", () -> { // on the default stream
            emu.setStream(Driver.DEFAULT_STREAM);
            emu.launch("emu_axpy", 1, 1, 1, 32, 1, 1, 0, p, p, 1f, 16, 0L);
        });
        illegal.put("copyDeviceToDevice", () -> {
            emu.setStream(Driver.DEFAULT_STREAM);
            emu.copyDeviceToDevice(p, p, 4);
        });
        illegal.put("recordEvent", () -> emu.recordEvent(Driver.DEFAULT_STREAM));
        for (Map.Entry<String, Runnable> e : illegal.entrySet()) {
            emu.setStream(s);
            IllegalStateException x = assertThrows(IllegalStateException.class, () -> emu.captureGraph(s, e.getValue()), e.getKey());
            assertTrue(x.getMessage().startsWith(e.getKey() + " during the graph capture on stream " + s), x.getMessage());
        }
        emu.setStream(Driver.DEFAULT_STREAM);
        // each failure ended its capture: the driver works as before, the buffer is still there
        assertEquals(16, t.floats(p, 16).length);
        long q = emu.malloc(64);
        emu.free(q);

        // a caught refusal still invalidates the capture, as the real driver's does
        emu.setStream(s);
        IllegalStateException swallowed = assertThrows(IllegalStateException.class, () -> emu.captureGraph(s, () -> {
            try {
                emu.synchronize();
            } catch (IllegalStateException ignored) {
                // carry on capturing
            }
            emu.launch("emu_axpy", 1, 1, 1, 32, 1, 1, 0, p, p, 1f, 16, 0L);
        }));
        assertTrue(swallowed.getMessage().contains("invalidated by synchronize"), swallowed.getMessage());

        // work on a third stream is no part of the capture: it runs at once
        float[] before = t.floats(p, 16);
        long g = emu.captureGraph(s, () -> {
            emu.setStream(other);
            emu.launch("emu_axpy", 1, 1, 1, 32, 1, 1, 0, p, p, 1f, 16, 2L); // p = 2p + 2 now
            emu.setStream(s);
        });
        emu.setStream(Driver.DEFAULT_STREAM);
        assertEquals(0, emu.graphNodes(g));
        float[] after = t.floats(p, 16);
        for (int i = 0; i < 16; i++) assertEquals(2f * before[i] + 2f, after[i], 0f);

        assertThrows(IllegalArgumentException.class, () -> emu.captureGraph(Driver.DEFAULT_STREAM, () -> {}));
        assertThrows(EmuException.class, () -> emu.captureGraph(s, () -> emu.captureGraph(other, () -> {})));
        assertThrows(EmuException.class, () -> emu.captureGraph(s, () -> emu.recordEvent(s)), "events inside graphs");
        emu.destroyGraph(g);
        emu.destroyStream(s);
        emu.destroyStream(other);
        emu.free(p);
    }
}
