package io.hintgrpo.engine.cuda;

/**
 * The seam between the CUDA backend's Java code and a device: the real GPU through JCuda's
 * driver API ({@code cuda}) or the CUDA emulator running the same kernels/ sources on the CPU
 * ({@code cuda-emu}). Everything above it (kernel launchers, the caching allocator, the arena) is
 * shared. Device addresses are plain longs; sizes are bytes.
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

    @Override
    void close();
}
