package io.hintgrpo.engine.cuda;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;

import static org.junit.jupiter.api.Assertions.*;

/** The Driver seam's streams, events, pinned buffers and async copies on the (synchronous) emulator. */
class EmuStreamsTest extends EmuTest {
    @Test
    void asyncRoundTripThroughPinnedBuffersOnAStream() {
        int n = 10_000;
        float[] x = EmuTesting.gaussian(3, n);
        long s = emu.newStream();
        assertNotEquals(Driver.DEFAULT_STREAM, s);
        ByteBuffer in = emu.allocPinned(4L * n), out = emu.allocPinned(4L * n);
        assertTrue(in.isDirect());
        assertEquals(ByteOrder.nativeOrder(), in.order());
        in.asFloatBuffer().put(x);
        long p = emu.malloc(4L * n);
        // offsets on both sides: floats [10, n) of the pinned buffer land at device float 0, come back at float 5
        emu.copyHostToDeviceAsync(p, in, 40, 4L * (n - 10), s);
        emu.copyDeviceToHostAsync(out, 20, p, 4L * (n - 10), s);
        emu.synchronizeStream(s);
        FloatBuffer back = out.asFloatBuffer();
        for (int i = 0; i < n - 10; i++) assertEquals(x[i + 10], back.get(i + 5));
        // what a sync copy reads agrees with what the async copy wrote
        assertEquals(x[10], t.floats(p, 1)[0]);

        assertThrows(IndexOutOfBoundsException.class, () -> emu.copyHostToDeviceAsync(p, in, 4L * n - 4, 8, s));
        ByteBuffer plain = ByteBuffer.allocateDirect(16);
        assertThrows(IllegalArgumentException.class, () -> emu.copyHostToDeviceAsync(p, plain, 0, 16, s));
        emu.freePinned(in);
        assertThrows(IllegalArgumentException.class, () -> emu.copyHostToDeviceAsync(p, in, 0, 4, s));
        assertThrows(IllegalArgumentException.class, () -> emu.freePinned(in));
        emu.freePinned(out);
        emu.free(p);
        emu.destroyStream(s);
    }

    @Test
    void eventsAreOrderedAndTimeTheWorkBetweenThem() {
        long s = emu.newStream();
        int n = 1 << 16;
        long px = t.upload(EmuTesting.gaussian(1, n)), py = t.upload(EmuTesting.gaussian(2, n));
        emu.setStream(s);
        long start = emu.recordEvent(s);
        for (int i = 0; i < 20; i++) emu.launch("emu_axpy", n / 128, 1, 1, 128, 1, 1, 0, py, px, 0.5f, n, 0L);
        long middle = emu.recordEvent(s);
        long end = emu.recordEvent(Driver.DEFAULT_STREAM);
        emu.awaitEvent(Driver.DEFAULT_STREAM, middle);
        emu.synchronizeEvent(end);
        float work = emu.elapsedMillis(start, middle), total = emu.elapsedMillis(start, end);
        assertTrue(work > 0, "20 launches took " + work + " ms");
        assertTrue(total >= work && emu.elapsedMillis(middle, end) >= 0, work + " ms then " + total + " ms");
        assertNotEquals(start, middle);
        // a stream handle is not an event handle, nor the reverse
        assertThrows(IllegalArgumentException.class, () -> emu.synchronizeEvent(s));
        assertThrows(IllegalArgumentException.class, () -> emu.setStream(start));
        emu.destroyEvent(start);
        assertThrows(IllegalArgumentException.class, () -> emu.elapsedMillis(start, end));
        emu.destroyEvent(middle);
        emu.destroyEvent(end);
        emu.setStream(Driver.DEFAULT_STREAM);
        emu.destroyStream(s);
        emu.free(px);
        emu.free(py);
    }

    @Test
    void aLaunchOnAStreamThenSynchronize() {
        int n = 1000;
        float[] x = EmuTesting.gaussian(4, n), y = EmuTesting.gaussian(5, n);
        long px = t.upload(x), py = t.upload(y);
        long s = emu.newStream();
        emu.setStream(s);
        emu.launch("emu_axpy", 8, 1, 1, 128, 1, 1, 0, py, px, 2f, n, 1L);
        emu.synchronizeStream(s);
        float[] r = t.floats(py, n);
        for (int i = 0; i < n; i++) assertEquals(2f * x[i] + y[i] + 1f, r[i], 0f);
        // destroying the current stream makes the default stream current again
        emu.destroyStream(s);
        emu.launch("emu_axpy", 8, 1, 1, 128, 1, 1, 0, py, px, 0f, n, 0L);
        emu.synchronize();
        emu.free(px);
        emu.free(py);
    }

    @Test
    void destroyedAndForeignStreamsAreRefused() {
        long s = emu.newStream();
        emu.destroyStream(s);
        long p = emu.malloc(64);
        ByteBuffer b = emu.allocPinned(64);
        assertThrows(IllegalArgumentException.class, () -> emu.setStream(s));
        assertThrows(IllegalArgumentException.class, () -> emu.synchronizeStream(s));
        assertThrows(IllegalArgumentException.class, () -> emu.recordEvent(s));
        assertThrows(IllegalArgumentException.class, () -> emu.destroyStream(s));
        assertThrows(IllegalArgumentException.class, () -> emu.copyHostToDeviceAsync(p, b, 0, 64, s));
        assertThrows(IllegalArgumentException.class, () -> emu.destroyStream(Driver.DEFAULT_STREAM));
        assertThrows(IllegalArgumentException.class, () -> emu.setStream(12345));
        emu.synchronizeStream(Driver.DEFAULT_STREAM);
        emu.freePinned(b);
        emu.free(p);
    }
}
