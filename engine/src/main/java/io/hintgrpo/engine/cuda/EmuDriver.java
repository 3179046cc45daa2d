package io.hintgrpo.engine.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * The CUDA emulator as a {@link Driver} ({@code cuda-emu}): kernels/ compiled with g++ into
 * {@code libhintgrpo_emu.so} (native/, shipped in this jar for linux-x86_64) run on the CPU.
 * Device memory is host memory with guard zones; a launch runs its blocks one after another and a
 * block's threads as fibers, synchronously, so {@link #synchronize()} only checks the guard zones.
 * Every failure is an {@link EmuException} with the native message.
 *
 * <p>Streams, events and pinned buffers keep the seam's contract with synchronous semantics: a
 * stream is a token (checked, never waited on), since every launch and copy has completed when
 * its call returns, so work completes in issue order whatever the stream; an event records the
 * host's monotonic clock ({@link System#nanoTime}) when it is recorded, which is when the work
 * issued before it finished, so {@link #elapsedMillis} measures the emulated work between two
 * events. Pinned buffers are plain direct ByteBuffers (the GC reclaims them once freed and dropped);
 * asynchronous copies read and write them directly.
 *
 * <p>Graphs: a capture records each launch (kernel, grid and block, shared bytes, the argument
 * slots) and each copy issued to the capturing stream instead of running it, and a replay runs
 * the records in order, so a replay reads the buffers' current contents and its pointers are
 * checked against the allocations live then. The capture rules of {@link Driver#captureGraph}
 * hold for every caller (the emulator does not tell threads apart); events on a capturing stream
 * and a second capture at once are not emulated and fail.
 *
 * <p>One emulator library per JVM: the first driver loads it (the production library, or the test
 * library, which adds planted kernels), later drivers share it and its global state (thread order,
 * memory budget). Launches from several threads are serialised by the native side.
 */
public final class EmuDriver implements Driver {
    /** The production library: the kernels of kernels/. */
    public static final String LIBRARY = "/native/linux-x86_64/libhintgrpo_emu.so";

    /** The order in which a block's threads run between two synchronisation points. */
    public enum ThreadOrder { FORWARD, REVERSE, SHUFFLED }

    private static String loaded;

    private final Map<String, Integer> kernels = new HashMap<>();
    private final Set<Long> allocations = new HashSet<>();
    private long[] args = new long[32];
    // the seam's handles: streams and events share one counter, so neither passes for the other
    private final Set<Long> streams = new HashSet<>();
    private final Map<Long, Long> events = new HashMap<>(); // handle → System.nanoTime() at record
    private long nextHandle = 1;
    private final Set<ByteBuffer> pinned = Collections.newSetFromMap(new IdentityHashMap<>()); // equals compares contents
    private long current = DEFAULT_STREAM;
    // graphs: each a list of recorded launches and copies; while capturing, what goes to the capturing stream lands in `recording`
    private final Map<Long, List<Runnable>> graphs = new HashMap<>();
    private volatile StreamCapture capture;
    private List<Runnable> recording;

    /** A driver on the production library. */
    public EmuDriver() {
        this(LIBRARY);
    }

    /** A driver on the emulator library at class-path resource {@code libraryResource}. */
    public EmuDriver(String libraryResource) {
        load(libraryResource);
        orderFromProperty();
    }

    /**
     * The thread order from system property {@code hintgrpo.emu.order} ({@code forward},
     * {@code reverse} or {@code shuffled[:seed]}), so a whole suite can run in another order; applied
     * by every new driver.
     */
    private static void orderFromProperty() {
        String p = System.getProperty("hintgrpo.emu.order");
        if (p == null || p.isBlank()) return;
        String[] parts = p.trim().toLowerCase(Locale.ROOT).split(":", 2);
        ThreadOrder order;
        try {
            order = ThreadOrder.valueOf(parts[0].toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new EmuException("hintgrpo.emu.order=" + p + ": expected forward, reverse or shuffled[:seed]");
        }
        long seed;
        try {
            seed = parts.length > 1 ? Long.parseLong(parts[1]) : 0;
        } catch (NumberFormatException e) {
            throw new EmuException("hintgrpo.emu.order=" + p + ": the seed is not a number");
        }
        nSetOrder(order.ordinal(), seed);
    }

    private static synchronized void load(String resource) {
        if (loaded != null) { // every emulator library holds the production kernels
            if (!loaded.equals(resource) && !resource.equals(LIBRARY))
                throw new EmuException("this JVM already loaded the emulator library " + loaded
                        + "; it cannot load " + resource + " as well (one emulator library per JVM)");
            return;
        }
        String os = System.getProperty("os.name"), arch = System.getProperty("os.arch");
        if (!os.toLowerCase(Locale.ROOT).startsWith("linux") || !(arch.equals("amd64") || arch.equals("x86_64")))
            throw new EmuException("the CUDA emulator runs on linux-x86_64 only, not " + os + "/" + arch);
        URL url = EmuDriver.class.getResource(resource);
        if (url == null)
            throw new EmuException("the CUDA emulator library " + resource + " is not on the class path "
                    + "(native/build.sh did not build it: is g++ installed?)");
        try {
            Path file;
            if (url.getProtocol().equals("file")) {
                file = Path.of(url.toURI());
            } else { // inside a jar: System.load needs a file
                file = Files.createTempFile("hintgrpo_emu", ".so");
                file.toFile().deleteOnExit();
                try (InputStream in = url.openStream()) {
                    Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
                }
            }
            System.load(file.toAbsolutePath().toString());
        } catch (IOException | URISyntaxException | UnsatisfiedLinkError e) {
            throw new EmuException("cannot load the CUDA emulator library " + resource + ": " + e);
        }
        loaded = resource;
    }

    @Override
    public String describe() {
        return "CUDA emulator (cpu)";
    }

    /** The emulator's memory budget (16 GiB unless {@link #setMemoryBudget} changed it). */
    @Override
    public long totalMemory() {
        return nBudget();
    }

    public void setMemoryBudget(long bytes) {
        nSetBudget(bytes);
    }

    public long bytesInUse() {
        return nBytesInUse();
    }

    @Override
    public synchronized long malloc(long bytes) {
        refuseDuringCapture("malloc");
        long address = nMalloc(bytes);
        allocations.add(address);
        return address;
    }

    @Override
    public synchronized void free(long address) {
        refuseDuringCapture("free");
        allocations.remove(address);
        nFree(address);
    }

    @Override
    public void copyHostToDevice(long dst, float[] src, int srcOffset, int count) {
        refuseDuringCapture("copyHostToDevice");
        Objects.checkFromIndexSize(srcOffset, count, src.length);
        nCopyIn(dst, src, 4L * srcOffset, 4L * count);
    }

    @Override
    public void copyHostToDevice(long dst, int[] src, int srcOffset, int count) {
        refuseDuringCapture("copyHostToDevice");
        Objects.checkFromIndexSize(srcOffset, count, src.length);
        nCopyIn(dst, src, 4L * srcOffset, 4L * count);
    }

    /** bf16/fp16 data as raw 16-bit values. */
    @Override
    public void copyHostToDevice(long dst, short[] src, int srcOffset, int count) {
        refuseDuringCapture("copyHostToDevice");
        Objects.checkFromIndexSize(srcOffset, count, src.length);
        nCopyIn(dst, src, 2L * srcOffset, 2L * count);
    }

    @Override
    public void copyDeviceToHost(float[] dst, int dstOffset, long src, int count) {
        refuseDuringCapture("copyDeviceToHost");
        Objects.checkFromIndexSize(dstOffset, count, dst.length);
        nCopyOut(dst, 4L * dstOffset, src, 4L * count);
    }

    @Override
    public void copyDeviceToHost(int[] dst, int dstOffset, long src, int count) {
        refuseDuringCapture("copyDeviceToHost");
        Objects.checkFromIndexSize(dstOffset, count, dst.length);
        nCopyOut(dst, 4L * dstOffset, src, 4L * count);
    }

    @Override
    public void copyDeviceToHost(short[] dst, int dstOffset, long src, int count) {
        refuseDuringCapture("copyDeviceToHost");
        Objects.checkFromIndexSize(dstOffset, count, dst.length);
        nCopyOut(dst, 2L * dstOffset, src, 2L * count);
    }

    /** On the current stream: recorded there while it captures. */
    @Override
    public synchronized void copyDeviceToDevice(long dst, long src, long bytes) {
        if (!recorded("copyDeviceToDevice", current, () -> nCopyDevice(dst, src, bytes))) nCopyDevice(dst, src, bytes);
    }

    /**
     * Runs kernel {@code name} to completion. Arguments go into 8-byte slots like cuLaunchKernel's
     * kernelParams: a Long whole, an Integer or a Float in the low 4 bytes; the native side checks
     * them against the kernel's parameter types and every pointer against the live allocations.
     */
    @Override
    public synchronized void launch(String name, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ,
                                    int sharedBytes, Object... arguments) {
        int kernel = kernel(name);
        int n = arguments.length;
        if (args.length < 2 * n) args = new long[2 * n];
        for (int i = 0; i < n; i++) {
            Object a = arguments[i];
            if (a instanceof Long v) {
                args[i] = v;
                args[n + i] = 'L';
            } else if (a instanceof Integer v) {
                args[i] = v & 0xffffffffL;
                args[n + i] = 'I';
            } else if (a instanceof Float v) {
                args[i] = Float.floatToRawIntBits(v) & 0xffffffffL;
                args[n + i] = 'F';
            } else {
                throw new IllegalArgumentException("kernel " + name + ": argument " + i + " is "
                        + (a == null ? "null" : "a " + a.getClass().getSimpleName()) + "; launches take Long, Integer or Float");
            }
        }
        if (capture != null) {
            long[] slots = Arrays.copyOf(args, 2 * n); // args is reused by the next launch
            if (recorded("launch of " + name, current,
                    () -> nLaunch(kernel, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes, slots, n))) return;
        }
        nLaunch(kernel, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes, args, n);
    }

    /** Launches run synchronously; this checks every allocation's guard zones for stray writes. */
    @Override
    public void synchronize() {
        refuseDuringCapture("synchronize");
        nCheckAll();
    }

    // ---- streams, events, pinned buffers: synchronous, see the class comment ----

    @Override
    public synchronized long newStream() {
        streams.add(nextHandle);
        return nextHandle++;
    }

    @Override
    public synchronized void destroyStream(long stream) {
        if (stream == DEFAULT_STREAM) throw new IllegalArgumentException("the default stream cannot be destroyed");
        checkStream(stream);
        if (capture != null && capture.captures(stream)) throw capture.unsafe("destroyStream of the capturing stream");
        streams.remove(stream);
        if (current == stream) current = DEFAULT_STREAM;
    }

    /** Launches and copies complete when issued; the current stream only matters to a capture. */
    @Override
    public synchronized void setStream(long stream) {
        checkStream(stream);
        current = stream;
    }

    /** The stream's work is done already; like {@link #synchronize()}, checks the guard zones. */
    @Override
    public synchronized void synchronizeStream(long stream) {
        checkStream(stream);
        StreamCapture c = capture;
        if (c != null && (c.captures(stream) || stream == DEFAULT_STREAM)) throw c.unsafe("synchronizeStream");
        nCheckAll();
    }

    @Override
    public synchronized long recordEvent(long stream) {
        checkStream(stream);
        eventsOutsideCapture("recordEvent", stream);
        events.put(nextHandle, System.nanoTime());
        return nextHandle++;
    }

    @Override
    public synchronized void awaitEvent(long stream, long event) {
        checkStream(stream);
        eventsOutsideCapture("awaitEvent", stream);
        eventTime(event);
    }

    @Override
    public synchronized void synchronizeEvent(long event) {
        eventTime(event);
    }

    @Override
    public synchronized float elapsedMillis(long start, long end) {
        return (eventTime(end) - eventTime(start)) / 1e6f;
    }

    @Override
    public synchronized void destroyEvent(long event) {
        eventTime(event);
        events.remove(event);
    }

    /** A direct ByteBuffer in native byte order; host memory is all "pinned" to the emulator. */
    @Override
    public synchronized ByteBuffer allocPinned(long bytes) {
        if (bytes <= 0 || bytes > Integer.MAX_VALUE) throw new IllegalArgumentException("pinned buffer of " + bytes + " bytes: need 1 .. 2^31-1");
        ByteBuffer buffer = ByteBuffer.allocateDirect((int) bytes).order(ByteOrder.nativeOrder());
        pinned.add(buffer);
        return buffer;
    }

    @Override
    public synchronized void freePinned(ByteBuffer buffer) {
        checkPinned(buffer);
        pinned.remove(buffer);
    }

    @Override
    public synchronized void copyHostToDeviceAsync(long dst, ByteBuffer src, long srcOffset, long bytes, long stream) {
        checkPinned(src);
        Objects.checkFromIndexSize(srcOffset, bytes, src.capacity());
        checkStream(stream);
        if (!recorded("copyHostToDeviceAsync", stream, () -> nCopyInBuffer(dst, src, srcOffset, bytes)))
            nCopyInBuffer(dst, src, srcOffset, bytes);
    }

    @Override
    public synchronized void copyDeviceToHostAsync(ByteBuffer dst, long dstOffset, long src, long bytes, long stream) {
        checkPinned(dst);
        Objects.checkFromIndexSize(dstOffset, bytes, dst.capacity());
        checkStream(stream);
        if (!recorded("copyDeviceToHostAsync", stream, () -> nCopyOutBuffer(dst, dstOffset, src, bytes)))
            nCopyOutBuffer(dst, dstOffset, src, bytes);
    }

    // ---- graphs ----

    @Override
    public long captureGraph(long stream, Runnable work) {
        List<Runnable> nodes = new ArrayList<>();
        StreamCapture c = new StreamCapture(stream);
        synchronized (this) {
            if (stream == DEFAULT_STREAM) throw new IllegalArgumentException("the default stream cannot be captured");
            checkStream(stream);
            if (capture != null)
                throw new EmuException("a graph capture is already on (stream " + capture.stream + "); the emulator captures one stream at a time");
            recording = nodes;
            capture = c;
        }
        // not under the lock: work may wait on other threads that use this driver
        try {
            work.run();
        } finally {
            synchronized (this) {
                capture = null;
                recording = null;
            }
        }
        c.checkValid();
        synchronized (this) {
            graphs.put(nextHandle, List.copyOf(nodes));
            return nextHandle++;
        }
    }

    /** Runs the graph's launches and copies in capture order (or records them, on a capturing stream). */
    @Override
    public synchronized void launchGraph(long graph, long stream) {
        List<Runnable> nodes = graph(graph);
        checkStream(stream);
        if (!recorded("launchGraph", stream, () -> nodes.forEach(Runnable::run))) nodes.forEach(Runnable::run);
    }

    @Override
    public synchronized void destroyGraph(long graph) {
        graph(graph);
        graphs.remove(graph);
    }

    /** The number of launches and copies a graph replays. */
    public synchronized int graphNodes(long graph) {
        return graph(graph).size();
    }

    private List<Runnable> graph(long handle) {
        List<Runnable> g = graphs.get(handle);
        if (g == null) throw new IllegalArgumentException("graph " + handle + " is not a live graph of this driver");
        return g;
    }

    /**
     * During a capture: true when the op goes to the capturing stream and is now recorded, a
     * failure when it goes to the default stream; false (run it now) otherwise.
     */
    private boolean recorded(String op, long stream, Runnable node) {
        StreamCapture c = capture;
        if (c == null) return false;
        if (c.captures(stream)) {
            recording.add(node);
            return true;
        }
        c.checkStream(op, stream);
        return false;
    }

    private void refuseDuringCapture(String op) {
        StreamCapture c = capture;
        if (c != null) throw c.unsafe(op);
    }

    private void eventsOutsideCapture(String op, long stream) {
        StreamCapture c = capture;
        if (c == null) return;
        if (c.captures(stream)) throw new EmuException(op + " on a capturing stream: events inside graphs are not emulated");
        c.checkStream(op, stream);
    }

    private void checkStream(long stream) {
        if (stream != DEFAULT_STREAM && !streams.contains(stream))
            throw new IllegalArgumentException("stream " + stream + " is not a live stream of this driver");
    }

    private long eventTime(long event) {
        Long t = events.get(event);
        if (t == null) throw new IllegalArgumentException("event " + event + " is not a live event of this driver");
        return t;
    }

    private void checkPinned(ByteBuffer buffer) {
        if (!pinned.contains(buffer))
            throw new IllegalArgumentException("not a live pinned buffer of this driver (allocPinned makes them)");
    }

    /**
     * Sets the order in which a block's threads run between synchronisation points (all launches of
     * this JVM). A missing __syncthreads() usually shows in one order and hides in another.
     */
    public void setThreadOrder(ThreadOrder order, long seed) {
        nSetOrder(order.ordinal(), seed);
    }

    /** Seconds a launch may run without any thread reaching a barrier or exiting (default 60). */
    public void setWatchdogSeconds(double seconds) {
        nSetWatchdog(seconds);
    }

    /** Launch names in the loaded library. */
    public String[] kernelNames() {
        return nKernelNames();
    }

    /** Parameter kinds of a kernel, one letter each: p pointer, i int, l 64-bit int, f float. */
    public String signature(String name) {
        return nSignature(kernel(name));
    }

    private int kernel(String name) {
        Integer k = kernels.get(name);
        if (k == null) {
            int found = nFindKernel(name);
            if (found < 0) {
                String[] names = nKernelNames();
                throw new EmuException("no kernel named " + name + " in the emulator library (" + names.length
                        + " kernels" + (names.length > 0 && names.length <= 40 ? ": " + String.join(", ", names) : "") + ")");
            }
            kernels.put(name, k = found);
        }
        return k;
    }

    /**
     * Frees what this driver allocated and still holds (device memory, streams, events, pinned
     * buffers); then checks the remaining guard zones.
     */
    @Override
    public synchronized void close() {
        capture = null;
        graphs.clear();
        current = DEFAULT_STREAM;
        streams.clear();
        events.clear();
        pinned.clear();
        EmuException first = null;
        for (long address : allocations) {
            try {
                nFree(address);
            } catch (EmuException e) {
                if (first == null) first = e;
            }
        }
        allocations.clear();
        if (first != null) throw first;
    }

    private static native long nMalloc(long bytes);
    private static native void nFree(long address);
    private static native void nCopyIn(long dst, Object array, long byteOffset, long bytes);
    private static native void nCopyOut(Object array, long byteOffset, long src, long bytes);
    private static native void nCopyInBuffer(long dst, ByteBuffer src, long byteOffset, long bytes);
    private static native void nCopyOutBuffer(ByteBuffer dst, long byteOffset, long src, long bytes);
    private static native void nCopyDevice(long dst, long src, long bytes);
    private static native int nFindKernel(String name);
    private static native String[] nKernelNames();
    private static native String nSignature(int kernel);
    private static native void nLaunch(int kernel, int gx, int gy, int gz, int bx, int by, int bz, int shared,
                                       long[] args, int nargs);
    private static native void nSetOrder(int order, long seed);
    private static native void nSetWatchdog(double seconds);
    private static native void nCheckAll();
    private static native long nBytesInUse();
    private static native long nBudget();
    private static native void nSetBudget(long bytes);
}
