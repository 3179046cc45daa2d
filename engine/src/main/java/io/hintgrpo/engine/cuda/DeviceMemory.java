package io.hintgrpo.engine.cuda;

/**
 * Device memory for the CUDA backends: every allocation of {@code CudaKernels} goes through here,
 * so its statistics (bytes in use, peak) are the backend's. First form: straight to the driver.
 */
public final class DeviceMemory {
    /** One allocation: the Buf.memory object of the CUDA backends. */
    public record Block(long address, long bytes) {}

    private final Driver driver;
    private long inUse, peak;

    public DeviceMemory(Driver driver) {
        this.driver = driver;
    }

    public Block alloc(long bytes) {
        long address = driver.malloc(Math.max(bytes, 1));
        inUse += bytes;
        peak = Math.max(peak, inUse);
        return new Block(address, bytes);
    }

    public void free(Block block) {
        driver.free(block.address());
        inUse -= block.bytes();
    }

    public long bytesInUse() {
        return inUse;
    }

    public long peakBytes() {
        return peak;
    }
}
