package io.hintgrpo.engine.cuda;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * Device memory for the CUDA backends: every allocation of {@code CudaKernels} goes through here,
 * so its statistics are the backend's.
 *
 * <p>A caching allocator: cudaMalloc/cudaFree synchronise the device and cost tens of
 * microseconds, and a training step frees and re-allocates the same shapes every step. Requests
 * are rounded up to a size class (powers of two up to 2 MiB, then multiples of 2 MiB), a freed
 * block goes to its class's free list, and the next request of that class takes it back without
 * the driver. {@link #trim()} hands the cached blocks back; a failing driver malloc trims and
 * retries once before giving up.
 *
 * <p>Freeing a block only makes it reusable by later launches on the same (single) stream, which
 * run after the work that used it: stream order keeps reuse safe without synchronising.
 */
public final class DeviceMemory implements AutoCloseable {
    /** One allocation: the Buf.memory object of the CUDA backends. {@code bytes} is what was asked for. */
    public record Block(long address, long bytes) {}

    /** Smallest class: cuMemAlloc's alignment. */
    static final long MIN_CLASS = 256;
    /** Up to here classes double; above, they grow by this step, so large blocks waste under 2 MiB. */
    static final long LARGE_STEP = 2L << 20;

    private final Driver driver;
    private final Map<Long, Long> live = new HashMap<>();              // address → class bytes
    private final TreeMap<Long, ArrayDeque<Long>> cache = new TreeMap<>(); // class bytes → free addresses
    private long inUse, peak, liveClassBytes, cached, driverMallocs, driverFrees, reuses;

    public DeviceMemory(Driver driver) {
        this.driver = driver;
    }

    /** The class a request of {@code bytes} is served from. */
    static long sizeClass(long bytes) {
        if (bytes <= MIN_CLASS) return MIN_CLASS;
        if (bytes <= LARGE_STEP) return Long.highestOneBit(bytes - 1) << 1;
        return (bytes + LARGE_STEP - 1) / LARGE_STEP * LARGE_STEP;
    }

    public synchronized Block alloc(long bytes) {
        if (bytes < 0) throw new IllegalArgumentException("device allocation of " + bytes + " bytes");
        long cls = sizeClass(bytes);
        long address;
        ArrayDeque<Long> free = cache.get(cls);
        if (free != null && !free.isEmpty()) {
            address = free.pop();
            if (free.isEmpty()) cache.remove(cls);
            cached -= cls;
            reuses++;
        } else {
            address = driverMalloc(bytes, cls);
        }
        live.put(address, cls);
        liveClassBytes += cls;
        inUse += bytes;
        peak = Math.max(peak, inUse);
        return new Block(address, bytes);
    }

    private long driverMalloc(long bytes, long cls) {
        long total = driver.totalMemory();
        if (cls > total) throw outOfMemory(bytes, cls, "the device has only " + human(total), null);
        try {
            long a = driver.malloc(cls);
            driverMallocs++;
            return a;
        } catch (RuntimeException first) {
            if (cached == 0) throw outOfMemory(bytes, cls, "the driver refused", first);
            trim();
            try {
                long a = driver.malloc(cls);
                driverMallocs++;
                return a;
            } catch (RuntimeException second) {
                throw outOfMemory(bytes, cls, "the driver refused even after the cache was emptied", second);
            }
        }
    }

    private OutOfDeviceMemory outOfMemory(long bytes, long cls, String why, RuntimeException cause) {
        return new OutOfDeviceMemory(String.format(
                "device memory: cannot allocate %s (%d bytes, class %s): %s; in use %s in %d blocks (peak %s), "
                + "cached %s, device total %s%s",
                human(bytes), bytes, human(cls), why, human(inUse), live.size(), human(peak), human(cached),
                human(driver.totalMemory()), cause == null ? "" : " [" + cause.getMessage() + "]"), cause);
    }

    public synchronized void free(Block block) {
        Long cls = live.remove(block.address());
        if (cls == null)
            throw new IllegalStateException("device memory: freeing a block that is not allocated (double free?): " + block);
        if (cls != sizeClass(block.bytes())) {
            live.put(block.address(), cls);
            throw new IllegalStateException("device memory: block " + block + " does not match its allocation of class " + cls);
        }
        liveClassBytes -= cls;
        inUse -= block.bytes();
        cache.computeIfAbsent(cls, k -> new ArrayDeque<>()).push(block.address());
        cached += cls;
    }

    /** Returns every cached block to the driver; live blocks stay. Returns the bytes released. */
    public synchronized long trim() {
        long released = cached;
        for (Map.Entry<Long, ArrayDeque<Long>> e : cache.entrySet()) {
            for (long address : e.getValue()) {
                driver.free(address);
                driverFrees++;
            }
        }
        cache.clear();
        cached = 0;
        return released;
    }

    /** Frees everything, live blocks included (the backend is closing). */
    @Override
    public synchronized void close() {
        trim();
        for (long address : live.keySet()) {
            driver.free(address);
            driverFrees++;
        }
        live.clear();
        liveClassBytes = 0;
        inUse = 0;
    }

    /** Bytes of live blocks, as requested (not rounded to classes). */
    public synchronized long bytesInUse() {
        return inUse;
    }

    /** Highest {@link #bytesInUse()} since the allocator opened or the last {@link #resetPeak}. */
    public synchronized long peakBytes() {
        return peak;
    }

    /** Starts a new peak from what is in use now (to measure one phase's peak). */
    public synchronized void resetPeak() {
        peak = inUse;
    }

    /** Bytes held in free lists, ready for reuse. */
    public synchronized long cachedBytes() {
        return cached;
    }

    /** Bytes held from the driver: live blocks rounded to their classes, plus the cache. */
    public synchronized long reservedBytes() {
        return liveClassBytes + cached;
    }

    public synchronized int liveBlocks() {
        return live.size();
    }

    public synchronized long driverMallocs() {
        return driverMallocs;
    }

    public synchronized long driverFrees() {
        return driverFrees;
    }

    /** Allocations served from the cache. */
    public synchronized long reuses() {
        return reuses;
    }

    @Override
    public synchronized String toString() {
        return String.format("device memory: in use %s in %d blocks, peak %s, cached %s, reserved %s, %d driver mallocs, %d reuses",
                human(inUse), live.size(), human(peak), human(cached), human(liveClassBytes + cached), driverMallocs, reuses);
    }

    static String human(long bytes) {
        if (bytes < 1024) return bytes + " B";
        if (bytes < 1L << 20) return String.format("%.1f KiB", bytes / 1024.0);
        if (bytes < 1L << 30) return String.format("%.1f MiB", bytes / (double) (1L << 20));
        return String.format("%.2f GiB", bytes / (double) (1L << 30));
    }

    /** An allocation the device cannot hold; the message names the request and what is held. */
    public static final class OutOfDeviceMemory extends RuntimeException {
        OutOfDeviceMemory(String message, Throwable cause) {
            super(message, cause);
        }
    }
}
