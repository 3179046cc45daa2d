package io.hintgrpo.engine.cuda;

import java.nio.ByteBuffer;

/**
 * The seam between the CUDA backend's Java code and a device: the real GPU through JCuda's
 * driver API ({@code cuda}) or the CUDA emulator running the same kernels/ sources on the CPU
 * ({@code cuda-emu}). Everything above it (kernel launchers, the caching allocator, the arena) is
 * shared. Device addresses are plain longs; sizes are bytes.
 *
 * <p>Streams and events are opaque {@code long} handles that only the driver which made them
 * accepts; {@link #DEFAULT_STREAM} (0) is the default stream, current until {@link #setStream}
 * picks another. A destroyed handle, or one of the wrong kind, is refused with an
 * {@link IllegalArgumentException}. Pinned host buffers are direct {@link ByteBuffer}s in native
 * byte order, the buffer itself being the handle; asynchronous copies take only buffers from
 * {@link #allocPinned}, and their offsets count from the buffer's start (position and limit are
 * ignored). On {@code cuda} the work on a stream runs in issue order, concurrently with the host
 * and with other streams; the emulator runs everything synchronously in issue order.
 */
public interface Driver extends AutoCloseable {

    /** A human-readable description: device name, compute capability, driver version (or "emulator"). */
    String describe();

    /** Total device memory in bytes. */
    long totalMemory();

    /** Raw device allocation (the caching allocator sits above this); fails with a message naming the request. */
    long malloc(long bytes);

    void free(long address);

    void copyHostToDevice(long dst, float[] src, int srcOffset, int count);

    void copyHostToDevice(long dst, int[] src, int srcOffset, int count);

    /** 16-bit elements (bf16 bit patterns); offset and count in elements. */
    void copyHostToDevice(long dst, short[] src, int srcOffset, int count);

    void copyDeviceToHost(float[] dst, int dstOffset, long src, int count);

    void copyDeviceToHost(int[] dst, int dstOffset, long src, int count);

    void copyDeviceToHost(short[] dst, int dstOffset, long src, int count);

    void copyDeviceToDevice(long dst, long src, long bytes);

    /**
     * Launches kernel {@code name} (its {@code extern "C" __global__} name) on the current stream,
     * cuLaunchKernel-shaped: grid and block dimensions, dynamic shared memory bytes, and the
     * arguments in order, each a {@link Long} (a device address or a 64-bit integer), an
     * {@link Integer} or a {@link Float}.
     */
    void launch(String name, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ,
                int sharedBytes, Object... args);

    /** Waits for all launched work; device-side errors surface here at the latest. */
    void synchronize();

    // ---- streams, events, pinned host buffers, asynchronous copies ----

    long DEFAULT_STREAM = 0;

    /** A new stream (a non-default one, ordered with the default stream as CUDA's blocking streams are). */
    long newStream();

    /** Refuses the default stream; if the stream was current, the default stream becomes current. */
    void destroyStream(long stream);

    /** Launches and {@link #copyDeviceToDevice} go to this stream from now on. */
    void setStream(long stream);

    /** Waits until the work issued to the stream has completed. */
    void synchronizeStream(long stream);

    /** A new event recorded on the stream: it completes when the work issued there before it has. */
    long recordEvent(long stream);

    /** Work issued to the stream after this call waits for the event (on the device, not the host). */
    void awaitEvent(long stream, long event);

    /** Waits on the host until the event has completed. */
    void synchronizeEvent(long event);

    /** Milliseconds from {@code start} to {@code end}, waiting for {@code end} to complete first. */
    float elapsedMillis(long start, long end);

    void destroyEvent(long event);

    /** Page-locked host memory of 1 .. 2^31-1 bytes for asynchronous copies; free it with {@link #freePinned}. */
    ByteBuffer allocPinned(long bytes);

    void freePinned(ByteBuffer pinned);

    /** Bytes [srcOffset, srcOffset + bytes) of a pinned buffer to device address {@code dst}, on the stream. */
    void copyHostToDeviceAsync(long dst, ByteBuffer src, long srcOffset, long bytes, long stream);

    /** {@code bytes} from device address {@code src} into a pinned buffer at {@code dstOffset}, on the stream. */
    void copyDeviceToHostAsync(ByteBuffer dst, long dstOffset, long src, long bytes, long stream);

    // ---- CUDA graphs: stream capture and replay ----

    /**
     * Captures into an executable graph the work that {@code work} issues to {@code stream} (which
     * must be current for launches and {@link #copyDeviceToDevice} to go there), without running
     * it, and returns the graph's handle. Launches and device-side and asynchronous copies are
     * recorded with their arguments as given: a replay re-runs the same kernels on the same
     * addresses, reading whatever memory holds then, so anything that changes between replays must
     * live in device memory.
     *
     * <p>During the capture the driver API's rules hold (a blocking stream, thread-local mode):
     * malloc, free, the synchronous copies, {@link #synchronize}, synchronising the capturing
     * stream and any use of the default stream fail with an {@link IllegalStateException} naming
     * the op, and invalidate the capture. The capture ends when {@code work} returns or throws; an
     * invalidated capture fails then. The default stream cannot be captured.
     */
    long captureGraph(long stream, Runnable work);

    /** Runs a captured graph on the stream, ordered after the work issued there before. */
    void launchGraph(long graph, long stream);

    void destroyGraph(long graph);

    /** Also destroys the streams, events and graphs and frees the pinned buffers this driver still holds. */
    @Override
    void close();
}
