package io.hintgrpo.engine.cuda;

import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUfunction;
import jcuda.driver.CUfunction_attribute;
import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.CUmodule;
import jcuda.driver.CUstream;
import jcuda.driver.CUstreamCaptureMode;
import jcuda.driver.CUresult;
import org.lwjgl.system.MemoryUtil;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static jcuda.driver.JCudaDriver.*;

/**
 * The {@code cuda} backend's {@link Driver}: JCuda's binding of the CUDA driver API. It needs only
 * the NVIDIA driver's {@code libcuda.so.1} (no CUDA runtime libraries), so it runs on CUDA 12 and
 * 13 drivers alike; the kernels come from the fatbin built into the engine jar.
 *
 * <p>Open one through {@link #probe()}, which never throws: it answers either a usable driver or
 * "no usable GPU: reason"; {@code new JCudaDriver()} does the same but throws {@link NoUsableGpu}
 * with the reason. The driver works in device 0's primary context (the one PyTorch and
 * other libraries share), made current on whichever thread calls. Not thread-safe: one caller at
 * a time, like the backends above it.
 *
 * <p>Streams and events are CUstreams and CUevents behind the seam's long handles; pinned buffers
 * are LWJGL native memory (outside the Java heap, so the GC never moves it) registered with the
 * driver, which makes asynchronous copies truly asynchronous.
 *
 * <p>Graphs are captured with cuStreamBeginCapture in thread-local mode: the capture-unsafe calls
 * (cuMemAlloc, synchronous copies, synchronisation) are refused on the capturing thread, which is
 * where all of this driver's calls come from, while other threads of the process (another library
 * on the same primary context) are left alone, as global mode would not. Captured graphs are
 * instantiated at once and kept as CUgraphExecs; the CUgraph is destroyed after instantiation.
 */
public final class JCudaDriver implements Driver {

    /** Where native/build.sh puts the fatbin inside the engine jar. */
    public static final String FATBIN_RESOURCE = "/native/hintgrpo.fatbin";
    /** nvcc 13's PTX needs a driver speaking CUDA 13.0 (r580 or newer) to be compiled at load. */
    static final int PTX_DRIVER_VERSION = 13000;
    /** The fatbin's lowest target, sm_80: older GPUs can run neither its cubins nor its compute_90 PTX. */
    static final int MIN_COMPUTE_CAPABILITY = 80;
    /** Above this much dynamic shared memory a kernel must opt in (cuFuncSetAttribute). */
    private static final int DEFAULT_SHARED_LIMIT = 48 * 1024;

    /** Device 0's properties, read once when the driver opens. */
    public record DeviceInfo(String name, int major, int minor, long totalMemory, int multiprocessors,
                             long l2Bytes, int sharedPerBlockOptin, int driverApiVersion, String kernelDriver) {
        public String computeCapability() {
            return major + "." + minor;
        }

        /** e.g. "CUDA 13.0, r580.159.04"; the r-number comes from the kernel module when readable. */
        public String driverVersion() {
            return describeDriver(driverApiVersion, kernelDriver);
        }
    }

    /** The probe's answer: a driver, or why there is none. */
    public record Probe(JCudaDriver driver, String reason) {
        public boolean usable() {
            return driver != null;
        }

        /** The driver, or an exception carrying "no usable GPU: reason". */
        public JCudaDriver require() {
            if (driver == null) throw new IllegalStateException(reason);
            return driver;
        }
    }

    // Set once: JCuda's driver class throws UnsatisfiedLinkError in its static initialiser where
    // libcuda.so.1 is missing, and every later touch of the class then fails differently.
    private static boolean libraryTried;
    private static String libraryProblem;

    private final CUdevice device;
    private final CUcontext context;
    private final CUmodule module;
    private final DeviceInfo info;
    private final Map<String, CUfunction> functions = new HashMap<>();
    private final Map<String, Integer> sharedLimits = new HashMap<>();
    private CUstream current; // null: the default stream
    private long currentHandle = DEFAULT_STREAM;
    private final Map<Long, CUgraphExec> graphs = new HashMap<>();
    private StreamCapture capture; // the capture in progress, if any
    // the seam's handles: streams and events share one counter, so neither passes for the other
    private final Map<Long, CUstream> streams = new HashMap<>();
    private final Map<Long, CUevent> events = new HashMap<>();
    private long nextHandle = 1;
    // each pinned buffer and the Pointer it was registered through (identity: ByteBuffer.equals compares contents)
    private final Map<ByteBuffer, Pointer> pinned = new IdentityHashMap<>();
    private Thread boundThread;
    private boolean closed;

    /**
     * Opens device 0 with the engine's fatbin, or throws {@link NoUsableGpu} saying why ("no usable
     * GPU: …"). {@link #probe()} is the same without the exception.
     */
    public JCudaDriver() {
        this(open(readFatbin()));
    }

    private JCudaDriver(Opened o) {
        this.device = o.device();
        this.context = o.context();
        this.module = o.module();
        this.info = o.info();
        this.boundThread = Thread.currentThread();
    }

    /** What a successful open holds. */
    private record Opened(CUdevice device, CUcontext context, CUmodule module, DeviceInfo info) {}

    /** The cuda backend cannot run here; the message is "no usable GPU: reason". */
    public static final class NoUsableGpu extends IllegalStateException {
        NoUsableGpu(String reason) {
            super("no usable GPU: " + reason);
        }
    }

    // ---- detection ----

    /**
     * Opens device 0 with the engine's fatbin, or says why not. Never throws and never crashes the
     * JVM: a missing driver library, a failing cuInit, no device, a GPU older than sm_80, a jar
     * without the fatbin and a driver too old for it all become "no usable GPU: …".
     */
    public static Probe probe() {
        try {
            return new Probe(new JCudaDriver(), null);
        } catch (NoUsableGpu e) {
            return new Probe(null, e.getMessage());
        } catch (RuntimeException | LinkageError e) {
            return new Probe(null, "no usable GPU: unexpected failure while probing: " + e);
        }
    }

    static synchronized Opened open(byte[] fatbin) {
        String kernelDriver = kernelDriverVersion();
        String problem = loadLibrary();
        if (problem != null) {
            throw new NoUsableGpu(problem
                    + (kernelDriver != null ? " (the kernel module reports driver " + kernelDriver + ")" : ""));
        }
        int[] version = {0};
        // cuDriverGetVersion works before cuInit, so even a failing cuInit gets a version in its message
        int versionResult = cuDriverGetVersionQuietly(version);
        String driver = versionResult == CUresult.CUDA_SUCCESS ? describeDriver(version[0], kernelDriver)
                : kernelDriver != null ? "r" + kernelDriver : "version unknown";
        try {
            cuInit(0);
        } catch (CudaException e) {
            throw new NoUsableGpu("cuInit failed with " + e.getMessage() + " (driver " + driver + ")");
        }
        int[] count = {0};
        cuDeviceGetCount(count);
        if (count[0] == 0) throw new NoUsableGpu("the driver sees no CUDA device (driver " + driver + ")");

        CUdevice device = new CUdevice();
        cuDeviceGet(device, 0);
        DeviceInfo info = readInfo(device, version[0], kernelDriver);
        int cc = info.major() * 10 + info.minor();
        if (cc < MIN_COMPUTE_CAPABILITY) {
            throw new NoUsableGpu(info.name() + " has compute capability " + info.computeCapability()
                    + "; the fatbin needs 8.0 or newer (driver " + driver + ")");
        }
        if (fatbin == null) {
            throw new NoUsableGpu("the engine jar has no " + FATBIN_RESOURCE
                    + " (it was built where nvcc was missing); found " + info.name() + ", driver " + driver);
        }

        CUcontext context = new CUcontext();
        try {
            cuDevicePrimaryCtxRetain(context, device);
            cuCtxSetCurrent(context);
        } catch (CudaException e) {
            // e.g. a GPU in exclusive-process mode that another process holds
            throw new NoUsableGpu("creating a context on " + info.name() + " failed with " + e.getMessage() + " (driver " + driver + ")");
        }
        CUmodule module = new CUmodule();
        try {
            cuModuleLoadData(module, fatbin);
        } catch (CudaException e) {
            cuDevicePrimaryCtxRelease(device);
            String hint = version[0] < PTX_DRIVER_VERSION
                    ? "; the fatbin is built by nvcc 13, whose code needs a CUDA 13 driver (r580 or newer) on "
                      + "GPUs other than sm_80/86/89/90, and this driver is older"
                    : "";
            throw new NoUsableGpu("loading the fatbin on " + info.name() + " (compute capability "
                    + info.computeCapability() + ") failed with " + e.getMessage() + " (driver " + driver + ")" + hint);
        }
        return new Opened(device, context, module, info);
    }

    /** Null when JCuda's driver library loaded (with libcuda.so.1 under it), else why not. */
    private static String loadLibrary() {
        if (!libraryTried) {
            libraryTried = true;
            try {
                setExceptionsEnabled(true);
            } catch (LinkageError e) {
                libraryProblem = "JCuda's driver binding could not be loaded: " + linkProblem(e);
            }
        }
        return libraryProblem;
    }

    private static int cuDriverGetVersionQuietly(int[] version) {
        try {
            return cuDriverGetVersion(version);
        } catch (CudaException e) {
            return CUresult.CUDA_ERROR_UNKNOWN;
        }
    }

    private static DeviceInfo readInfo(CUdevice device, int driverApiVersion, String kernelDriver) {
        byte[] name = new byte[256];
        cuDeviceGetName(name, name.length, device);
        long[] total = {0};
        cuDeviceTotalMem(total, device);
        return new DeviceInfo(cString(name),
                attribute(device, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
                attribute(device, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR),
                total[0],
                attribute(device, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT),
                attribute(device, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE),
                attribute(device, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN),
                driverApiVersion, kernelDriver);
    }

    private static int attribute(CUdevice device, int attribute) {
        int[] value = {0};
        cuDeviceGetAttribute(value, attribute, device);
        return value[0];
    }

    static byte[] readFatbin() {
        try (InputStream in = JCudaDriver.class.getResourceAsStream(FATBIN_RESOURCE)) {
            return in == null ? null : in.readAllBytes();
        } catch (IOException e) {
            throw new IllegalStateException("cannot read " + FATBIN_RESOURCE + " from the engine jar", e);
        }
    }

    /** The kernel module's version ("580.159.04"), which the driver API does not report; null if unreadable. */
    static String kernelDriverVersion() {
        try {
            return parseKernelDriver(Files.readString(Path.of("/proc/driver/nvidia/version")));
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /** "NVRM version: NVIDIA UNIX [Open ]Kernel Module [for x86_64]  580.159.04  …" → "580.159.04". */
    static String parseKernelDriver(String procText) {
        Matcher m = Pattern.compile("Kernel Module(?: for \\S+)?\\s+(\\d+\\.\\d+(?:\\.\\d+)?)").matcher(procText);
        return m.find() ? m.group(1) : null;
    }

    static String describeDriver(int apiVersion, String kernelDriver) {
        String api = apiVersion > 0 ? "CUDA " + apiVersion / 1000 + "." + apiVersion % 1000 / 10 : "CUDA version unknown";
        return kernelDriver != null ? api + ", r" + kernelDriver : api;
    }

    private static String cString(byte[] bytes) {
        int n = 0;
        while (n < bytes.length && bytes[n] != 0) n++;
        return new String(bytes, 0, n, StandardCharsets.US_ASCII);
    }

    /**
     * JCuda's message holds the stack traces of each way it tried; the dynamic loader's own words
     * ("libcuda.so.1: cannot open shared object file: …") are what a person needs.
     */
    static String linkProblem(LinkageError e) {
        String m = String.valueOf(e.getMessage());
        Matcher loader = Pattern.compile("UnsatisfiedLinkError: \\S+\\.so: (.+)").matcher(m);
        String found = null;
        while (loader.find()) found = loader.group(1).trim();
        if (found != null) return found;
        int nl = m.indexOf('\n');
        return e.getClass().getSimpleName() + ": " + (nl < 0 ? m : m.substring(0, nl));
    }

    /**
     * Prints the probe's answer for scripts (scripts/gpu-check.sh): "usable: description" and exit
     * 0, or "no usable GPU: reason" and exit 1.
     */
    public static void main(String[] args) {
        Probe p = probe();
        if (!p.usable()) {
            System.out.println(p.reason());
            System.exit(1);
        }
        try (JCudaDriver d = p.driver()) {
            System.out.println("usable: " + d.describe());
        }
    }

    // ---- the Driver seam ----

    public DeviceInfo info() {
        return info;
    }

    @Override
    public String describe() {
        return String.format("%s, compute capability %s, %.1f GiB, %d SMs, driver %s", info.name(),
                info.computeCapability(), info.totalMemory() / (double) (1L << 30), info.multiprocessors(), info.driverVersion());
    }

    @Override
    public long totalMemory() {
        return info.totalMemory();
    }

    /** Free device memory as the driver sees it (other processes included). */
    public long freeMemory() {
        bind();
        long[] free = {0}, total = {0};
        cuMemGetInfo(free, total);
        return free[0];
    }

    @Override
    public long malloc(long bytes) {
        bind();
        refuseDuringCapture("malloc");
        Address p = new Address();
        try {
            cuMemAlloc(p, bytes);
        } catch (CudaException e) {
            throw new IllegalStateException("cuMemAlloc of " + bytes + " bytes failed: " + e.getMessage(), e);
        }
        return p.address();
    }

    @Override
    public void free(long address) {
        bind();
        refuseDuringCapture("free");
        cuMemFree(at(address));
    }

    @Override
    public void copyHostToDevice(long dst, float[] src, int srcOffset, int count) {
        bind();
        refuseDuringCapture("copyHostToDevice");
        cuMemcpyHtoD(at(dst), Pointer.to(src).withByteOffset(4L * srcOffset), 4L * count);
    }

    @Override
    public void copyHostToDevice(long dst, int[] src, int srcOffset, int count) {
        bind();
        refuseDuringCapture("copyHostToDevice");
        cuMemcpyHtoD(at(dst), Pointer.to(src).withByteOffset(4L * srcOffset), 4L * count);
    }

    @Override
    public void copyHostToDevice(long dst, short[] src, int srcOffset, int count) {
        bind();
        refuseDuringCapture("copyHostToDevice");
        cuMemcpyHtoD(at(dst), Pointer.to(src).withByteOffset(2L * srcOffset), 2L * count);
    }

    @Override
    public void copyDeviceToHost(float[] dst, int dstOffset, long src, int count) {
        bind();
        refuseDuringCapture("copyDeviceToHost");
        cuMemcpyDtoH(Pointer.to(dst).withByteOffset(4L * dstOffset), at(src), 4L * count);
    }

    @Override
    public void copyDeviceToHost(int[] dst, int dstOffset, long src, int count) {
        bind();
        refuseDuringCapture("copyDeviceToHost");
        cuMemcpyDtoH(Pointer.to(dst).withByteOffset(4L * dstOffset), at(src), 4L * count);
    }

    @Override
    public void copyDeviceToHost(short[] dst, int dstOffset, long src, int count) {
        bind();
        refuseDuringCapture("copyDeviceToHost");
        cuMemcpyDtoH(Pointer.to(dst).withByteOffset(2L * dstOffset), at(src), 2L * count);
    }

    /** On the current stream, like launches, so it stays ordered with them. */
    @Override
    public void copyDeviceToDevice(long dst, long src, long bytes) {
        bind();
        if (capture != null) capture.checkStream("copyDeviceToDevice", currentHandle);
        cuMemcpyDtoDAsync(at(dst), at(src), bytes, current);
    }

    @Override
    public void launch(String name, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ,
                       int sharedBytes, Object... args) {
        bind();
        if (capture != null) capture.checkStream("launch of " + name, currentHandle);
        CUfunction f = function(name);
        if (sharedBytes > DEFAULT_SHARED_LIMIT && sharedLimits.getOrDefault(name, DEFAULT_SHARED_LIMIT) < sharedBytes) {
            cuFuncSetAttribute(f, CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, sharedBytes);
            sharedLimits.put(name, sharedBytes);
        }
        // cuLaunchKernel takes an array of pointers to the argument values
        Pointer[] values = new Pointer[args.length];
        for (int i = 0; i < args.length; i++) {
            Object a = args[i];
            if (a instanceof Long v) values[i] = Pointer.to(new long[]{v});
            else if (a instanceof Integer v) values[i] = Pointer.to(new int[]{v});
            else if (a instanceof Float v) values[i] = Pointer.to(new float[]{v});
            else throw new IllegalArgumentException("kernel " + name + ": argument " + i + " is "
                        + (a == null ? "null" : a.getClass().getSimpleName()) + "; expected Long, Integer or Float");
        }
        try {
            cuLaunchKernel(f, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes, current, Pointer.to(values), null);
        } catch (CudaException e) {
            throw new IllegalStateException(String.format("launching %s grid (%d,%d,%d) block (%d,%d,%d) shared %d B failed: %s",
                    name, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes, e.getMessage()), e);
        }
    }

    private CUfunction function(String name) {
        CUfunction f = functions.get(name);
        if (f == null) {
            f = new CUfunction();
            try {
                cuModuleGetFunction(f, module, name);
            } catch (CudaException e) {
                throw new IllegalArgumentException("kernel \"" + name + "\" is not in the fatbin (" + e.getMessage() + ")", e);
            }
            functions.put(name, f);
        }
        return f;
    }

    @Override
    public void synchronize() {
        bind();
        refuseDuringCapture("synchronize");
        try {
            cuCtxSynchronize();
        } catch (CudaException e) {
            // a kernel fault surfaces here and leaves the context unusable: say so
            throw new IllegalStateException("device error (the CUDA context is now unusable): " + e.getMessage(), e);
        }
    }

    /** Unloads the module and releases the context; device memory still allocated goes with it. */
    @Override
    public void close() {
        if (closed) return;
        bind();
        // a context broken by a kernel fault refuses these; the host memory is freed all the same
        for (CUgraphExec g : graphs.values()) quietly(() -> cuGraphExecDestroy(g));
        for (CUevent e : events.values()) quietly(() -> cuEventDestroy(e));
        for (CUstream s : streams.values()) quietly(() -> cuStreamDestroy(s));
        for (Map.Entry<ByteBuffer, Pointer> p : pinned.entrySet()) {
            quietly(() -> cuMemHostUnregister(p.getValue()));
            MemoryUtil.memAlignedFree(p.getKey());
        }
        graphs.clear();
        events.clear();
        streams.clear();
        pinned.clear();
        current = null;
        currentHandle = DEFAULT_STREAM;
        closed = true;
        try {
            cuModuleUnload(module);
        } catch (CudaException e) {
            // a context broken by a kernel fault refuses this too; releasing it below still matters
        }
        cuDevicePrimaryCtxRelease(device);
    }

    // ---- streams, events, pinned memory, asynchronous copies ----

    @Override
    public long newStream() {
        bind();
        CUstream s = new CUstream();
        cuStreamCreate(s, 0);
        streams.put(nextHandle, s);
        return nextHandle++;
    }

    @Override
    public void destroyStream(long stream) {
        if (stream == DEFAULT_STREAM) throw new IllegalArgumentException("the default stream cannot be destroyed");
        CUstream s = stream(stream);
        bind();
        if (capture != null && capture.captures(stream)) throw capture.unsafe("destroyStream of the capturing stream");
        if (s == current) {
            current = null;
            currentHandle = DEFAULT_STREAM;
        }
        streams.remove(stream);
        cuStreamDestroy(s);
    }

    @Override
    public void setStream(long stream) {
        current = stream(stream);
        currentHandle = stream;
    }

    @Override
    public void synchronizeStream(long stream) {
        CUstream s = stream(stream);
        bind();
        if (capture != null && (capture.captures(stream) || stream == DEFAULT_STREAM)) throw capture.unsafe("synchronizeStream");
        cuStreamSynchronize(s);
    }

    @Override
    public long recordEvent(long stream) {
        CUstream s = stream(stream);
        bind();
        if (capture != null) capture.checkStream("recordEvent", stream);
        CUevent e = new CUevent();
        cuEventCreate(e, 0);
        cuEventRecord(e, s);
        events.put(nextHandle, e);
        return nextHandle++;
    }

    @Override
    public void awaitEvent(long stream, long event) {
        CUstream s = stream(stream);
        CUevent e = event(event);
        bind();
        if (capture != null) capture.checkStream("awaitEvent", stream);
        cuStreamWaitEvent(s, e, 0);
    }

    @Override
    public void synchronizeEvent(long event) {
        CUevent e = event(event);
        bind();
        cuEventSynchronize(e);
    }

    /** About half a microsecond resolution. */
    @Override
    public float elapsedMillis(long start, long end) {
        CUevent a = event(start), b = event(end);
        bind();
        cuEventSynchronize(b);
        float[] ms = {0};
        cuEventElapsedTime(ms, a, b);
        return ms[0];
    }

    @Override
    public void destroyEvent(long event) {
        CUevent e = event(event);
        bind();
        events.remove(event);
        cuEventDestroy(e);
    }

    /** LWJGL native memory, page-aligned, registered with cuMemHostRegister. */
    @Override
    public ByteBuffer allocPinned(long bytes) {
        if (bytes <= 0 || bytes > Integer.MAX_VALUE) throw new IllegalArgumentException("pinned buffer of " + bytes + " bytes: need 1 .. 2^31-1");
        bind();
        ByteBuffer buffer = MemoryUtil.memAlignedAlloc(4096, (int) bytes);
        Pointer base = Pointer.to(buffer);
        try {
            cuMemHostRegister(base, bytes, 0);
        } catch (CudaException e) {
            MemoryUtil.memAlignedFree(buffer);
            throw new IllegalStateException("pinning " + bytes + " bytes of host memory failed: " + e.getMessage(), e);
        }
        pinned.put(buffer, base);
        return buffer;
    }

    @Override
    public void freePinned(ByteBuffer buffer) {
        Pointer base = pinned(buffer);
        bind();
        pinned.remove(buffer);
        cuMemHostUnregister(base);
        MemoryUtil.memAlignedFree(buffer);
    }

    @Override
    public void copyHostToDeviceAsync(long dst, ByteBuffer src, long srcOffset, long bytes, long stream) {
        Pointer base = pinned(src);
        Objects.checkFromIndexSize(srcOffset, bytes, src.capacity());
        CUstream s = stream(stream);
        bind();
        if (capture != null) capture.checkStream("copyHostToDeviceAsync", stream);
        cuMemcpyHtoDAsync(at(dst), base.withByteOffset(srcOffset), bytes, s);
    }

    @Override
    public void copyDeviceToHostAsync(ByteBuffer dst, long dstOffset, long src, long bytes, long stream) {
        Pointer base = pinned(dst);
        Objects.checkFromIndexSize(dstOffset, bytes, dst.capacity());
        CUstream s = stream(stream);
        bind();
        if (capture != null) capture.checkStream("copyDeviceToHostAsync", stream);
        cuMemcpyDtoHAsync(base.withByteOffset(dstOffset), at(src), bytes, s);
    }

    // ---- graphs ----

    @Override
    public long captureGraph(long stream, Runnable work) {
        if (stream == DEFAULT_STREAM) throw new IllegalArgumentException("the default stream cannot be captured");
        CUstream s = stream(stream);
        bind();
        if (capture != null) throw new IllegalStateException("a graph capture is already on (stream " + capture.stream + ")");
        cuStreamBeginCapture(s, CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
        StreamCapture c = capture = new StreamCapture(stream);
        CUgraph graph = new CUgraph();
        try {
            work.run();
        } catch (RuntimeException | Error e) {
            // end the capture so the stream is usable again; what it recorded is dropped
            capture = null;
            quietly(() -> cuStreamEndCapture(s, graph));
            quietly(() -> cuGraphDestroy(graph));
            throw e;
        }
        capture = null;
        try {
            cuStreamEndCapture(s, graph);
        } catch (CudaException e) {
            c.checkValid(); // our own refusal names the op that invalidated it
            throw new IllegalStateException("ending the graph capture on stream " + stream + " failed: " + e.getMessage(), e);
        }
        CUgraphExec exec = new CUgraphExec();
        try {
            c.checkValid();
            cuGraphInstantiate(exec, graph, 0);
        } catch (CudaException e) {
            throw new IllegalStateException("instantiating the captured graph failed: " + e.getMessage(), e);
        } finally {
            cuGraphDestroy(graph); // the executable graph does not need it
        }
        graphs.put(nextHandle, exec);
        return nextHandle++;
    }

    @Override
    public void launchGraph(long graph, long stream) {
        CUgraphExec g = graph(graph);
        CUstream s = stream(stream);
        bind();
        if (capture != null) capture.checkStream("launchGraph", stream);
        try {
            cuGraphLaunch(g, s);
        } catch (CudaException e) {
            throw new IllegalStateException("launching graph " + graph + " failed: " + e.getMessage(), e);
        }
    }

    @Override
    public void destroyGraph(long graph) {
        CUgraphExec g = graph(graph);
        bind();
        graphs.remove(graph);
        cuGraphExecDestroy(g);
    }

    private CUgraphExec graph(long handle) {
        CUgraphExec g = graphs.get(handle);
        if (g == null) throw new IllegalArgumentException("graph " + handle + " is not a live graph of this driver");
        return g;
    }

    private void refuseDuringCapture(String op) {
        if (capture != null) throw capture.unsafe(op);
    }

    private CUstream stream(long handle) {
        if (handle == DEFAULT_STREAM) return null;
        CUstream s = streams.get(handle);
        if (s == null) throw new IllegalArgumentException("stream " + handle + " is not a live stream of this driver");
        return s;
    }

    private CUevent event(long handle) {
        CUevent e = events.get(handle);
        if (e == null) throw new IllegalArgumentException("event " + handle + " is not a live event of this driver");
        return e;
    }

    private Pointer pinned(ByteBuffer buffer) {
        Pointer base = pinned.get(buffer);
        if (base == null) throw new IllegalArgumentException("not a live pinned buffer of this driver (allocPinned makes them)");
        return base;
    }

    private static void quietly(Runnable cudaCall) {
        try {
            cudaCall.run();
        } catch (CudaException e) {
            // see close()
        }
    }

    // ---- plumbing ----

    /** The primary context must be current on the calling thread; rebind when the thread changes. */
    private void bind() {
        if (closed) throw new IllegalStateException("the CUDA driver is closed");
        Thread t = Thread.currentThread();
        if (t != boundThread) {
            cuCtxSetCurrent(context);
            boundThread = t;
        }
    }

    private static final CUdeviceptr NULL = new CUdeviceptr();

    /** A device address as JCuda wants it: the null pointer plus a byte offset. */
    private static CUdeviceptr at(long address) {
        return NULL.withByteOffset(address);
    }

    /** cuMemAlloc's output; the subclass can read the native pointer JCuda keeps protected. */
    private static final class Address extends CUdeviceptr {
        long address() {
            return getNativePointer() + getByteOffset();
        }
    }
}
