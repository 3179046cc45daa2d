package io.hintgrpo.engine.cuda;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class DeviceMemoryTest {

    /** A device that only hands out addresses: counts mallocs and frees, refuses past its capacity. */
    static final class FakeDriver implements Driver {
        final long total;
        long capacity;   // what malloc still grants; may be set below total to play other processes
        long next = 1L << 32, held;
        int mallocs, frees;
        final Map<Long, Long> blocks = new HashMap<>();

        FakeDriver(long total) {
            this.total = total;
            this.capacity = total;
        }

        @Override public String describe() { return "fake"; }
        @Override public long totalMemory() { return total; }

        @Override
        public long malloc(long bytes) {
            if (held + bytes > capacity) throw new IllegalStateException("cuMemAlloc of " + bytes + " bytes failed: CUDA_ERROR_OUT_OF_MEMORY");
            long a = next;
            next += bytes + 256;
            blocks.put(a, bytes);
            held += bytes;
            mallocs++;
            return a;
        }

        @Override
        public void free(long address) {
            Long b = blocks.remove(address);
            if (b == null) throw new AssertionError("driver free of unknown address " + address);
            held -= b;
            frees++;
        }

        @Override public void copyHostToDevice(long dst, float[] src, int srcOffset, int count) {}
        @Override public void copyHostToDevice(long dst, int[] src, int srcOffset, int count) {}
        @Override public void copyDeviceToHost(float[] dst, int dstOffset, long src, int count) {}
        @Override public void copyDeviceToHost(int[] dst, int dstOffset, long src, int count) {}
        @Override public void copyHostToDevice(long dst, short[] src, int srcOffset, int count) {}
        @Override public void copyDeviceToHost(short[] dst, int dstOffset, long src, int count) {}
        @Override public void copyDeviceToDevice(long dst, long src, long bytes) {}
        @Override public void launch(String name, int gx, int gy, int gz, int bx, int by, int bz, int shared, Object... args) {}
        @Override public void synchronize() {}
        // streams, events, pinned buffers and graphs: DeviceMemory uses none of them
        @Override public long newStream() { throw new UnsupportedOperationException(); }
        @Override public void destroyStream(long stream) { throw new UnsupportedOperationException(); }
        @Override public void setStream(long stream) { throw new UnsupportedOperationException(); }
        @Override public void synchronizeStream(long stream) { throw new UnsupportedOperationException(); }
        @Override public long recordEvent(long stream) { throw new UnsupportedOperationException(); }
        @Override public void awaitEvent(long stream, long event) { throw new UnsupportedOperationException(); }
        @Override public void synchronizeEvent(long event) { throw new UnsupportedOperationException(); }
        @Override public float elapsedMillis(long start, long end) { throw new UnsupportedOperationException(); }
        @Override public void destroyEvent(long event) { throw new UnsupportedOperationException(); }
        @Override public java.nio.ByteBuffer allocPinned(long bytes) { throw new UnsupportedOperationException(); }
        @Override public void freePinned(java.nio.ByteBuffer pinned) { throw new UnsupportedOperationException(); }
        @Override public void copyHostToDeviceAsync(long dst, java.nio.ByteBuffer src, long srcOffset, long bytes, long stream) { throw new UnsupportedOperationException(); }
        @Override public void copyDeviceToHostAsync(java.nio.ByteBuffer dst, long dstOffset, long src, long bytes, long stream) { throw new UnsupportedOperationException(); }
        @Override public long captureGraph(long stream, Runnable work) { throw new UnsupportedOperationException(); }
        @Override public void launchGraph(long graph, long stream) { throw new UnsupportedOperationException(); }
        @Override public void destroyGraph(long graph) { throw new UnsupportedOperationException(); }
        @Override public void close() {}
    }

    static final long MiB = 1L << 20;

    @Test
    void sizeClasses() {
        assertEquals(256, DeviceMemory.sizeClass(0));
        assertEquals(256, DeviceMemory.sizeClass(1));
        assertEquals(256, DeviceMemory.sizeClass(256));
        assertEquals(512, DeviceMemory.sizeClass(257));
        assertEquals(4096, DeviceMemory.sizeClass(4096));
        assertEquals(8192, DeviceMemory.sizeClass(4097));
        assertEquals(2 * MiB, DeviceMemory.sizeClass(2 * MiB));
        assertEquals(4 * MiB, DeviceMemory.sizeClass(2 * MiB + 1));
        assertEquals(6 * MiB, DeviceMemory.sizeClass(5 * MiB));
        assertEquals(6L << 30, DeviceMemory.sizeClass((6L << 30) - 3));
        for (long b = 1; b < 64 * MiB; b = b * 3 + 7) assertTrue(DeviceMemory.sizeClass(b) >= b);
    }

    @Test
    void repeatedStepsReuseTheCacheInsteadOfTheDriver() {
        FakeDriver d = new FakeDriver(1L << 30);
        DeviceMemory mem = new DeviceMemory(d);
        DeviceMemory.Block params = mem.alloc(3 * MiB + 5);
        long[] shapes = {1000, 4 * 4096, 3 * MiB, 17, 100 * MiB / 3};
        for (int step = 0; step < 5; step++) {
            List<DeviceMemory.Block> acts = new ArrayList<>();
            for (long s : shapes) acts.add(mem.alloc(s));
            assertEquals(3 * MiB + 5 + sum(shapes), mem.bytesInUse());
            for (DeviceMemory.Block b : acts) mem.free(b);
            assertEquals(3 * MiB + 5, mem.bytesInUse());
        }
        // one driver malloc per shape, the first step only
        assertEquals(1 + shapes.length, d.mallocs);
        assertEquals(4 * shapes.length, mem.reuses());
        assertEquals(0, d.frees);
        assertEquals(3 * MiB + 5 + sum(shapes), mem.peakBytes());
        assertEquals(d.held, mem.reservedBytes());
        assertTrue(mem.cachedBytes() > 0);
        assertEquals(1, mem.liveBlocks());

        long cachedBefore = d.held - DeviceMemory.sizeClass(3 * MiB + 5);
        assertEquals(cachedBefore, mem.trim());
        assertEquals(0, mem.cachedBytes());
        assertEquals(shapes.length, d.frees);
        mem.free(params);
        mem.close();
        assertEquals(0, d.held);
        assertEquals(d.mallocs, d.frees);
        assertEquals(0, mem.bytesInUse());
    }

    @Test
    void closeFreesLiveBlocksToo() {
        FakeDriver d = new FakeDriver(1L << 30);
        DeviceMemory mem = new DeviceMemory(d);
        mem.alloc(10);
        mem.free(mem.alloc(20 * MiB));
        mem.close();
        assertEquals(0, d.held);
        assertTrue(d.blocks.isEmpty());
    }

    @Test
    void aRequestBeyondTheCardNamesItselfAndWhatIsHeld() {
        FakeDriver d = new FakeDriver(80L << 30);
        DeviceMemory mem = new DeviceMemory(d);
        mem.alloc(5 * MiB);
        mem.free(mem.alloc(1000));
        DeviceMemory.OutOfDeviceMemory e = assertThrows(DeviceMemory.OutOfDeviceMemory.class, () -> mem.alloc(100L << 30));
        String m = e.getMessage();
        assertTrue(m.contains("100.00 GiB") && m.contains("107374182400 bytes"), m);
        assertTrue(m.contains("the device has only 80.00 GiB"), m);
        assertTrue(m.contains("in use 5.0 MiB in 1 blocks") && m.contains("cached 1.0 KiB"), m);
        assertEquals(2, d.mallocs); // none for the impossible request
    }

    @Test
    void aFailingMallocTrimsTheCacheAndRetriesOnce() {
        FakeDriver d = new FakeDriver(64 * MiB);
        DeviceMemory mem = new DeviceMemory(d);
        DeviceMemory.Block a = mem.alloc(30 * MiB);
        mem.free(mem.alloc(20 * MiB));            // 20 MiB cached
        DeviceMemory.Block b = mem.alloc(30 * MiB);  // 30 + 20 + 30 > 64: needs the cache back
        assertEquals(0, mem.cachedBytes());
        assertEquals(1, d.frees);
        mem.free(b);
        mem.trim();
        d.capacity = 40 * MiB;                    // another process took the rest
        DeviceMemory.OutOfDeviceMemory e = assertThrows(DeviceMemory.OutOfDeviceMemory.class, () -> mem.alloc(20 * MiB));
        String m = e.getMessage();
        assertTrue(m.contains("cannot allocate 20.0 MiB") && m.contains("the driver refused")
                && m.contains("in use 30.0 MiB in 1 blocks") && m.contains("CUDA_ERROR_OUT_OF_MEMORY"), m);
        // the failure left the books straight
        assertEquals(30 * MiB, mem.bytesInUse());
        mem.free(a);
        mem.close();
        assertEquals(0, d.held);
    }

    @Test
    void doubleFreeAndForeignBlocksAreRefused() {
        DeviceMemory mem = new DeviceMemory(new FakeDriver(1L << 30));
        DeviceMemory.Block b = mem.alloc(100);
        mem.free(b);
        assertThrows(IllegalStateException.class, () -> mem.free(b));
        assertThrows(IllegalStateException.class, () -> mem.free(new DeviceMemory.Block(12345, 100)));
        DeviceMemory.Block c = mem.alloc(100);
        assertThrows(IllegalStateException.class, () -> mem.free(new DeviceMemory.Block(c.address(), 1 << 20)));
        mem.free(c);
        assertEquals(0, mem.bytesInUse());
    }

    private static long sum(long[] v) {
        long s = 0;
        for (long x : v) s += x;
        return s;
    }
}
