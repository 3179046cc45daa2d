package io.hintgrpo.engine.cuda;

import io.hintgrpo.engine.Bf16;
import io.hintgrpo.engine.Buf;
import io.hintgrpo.engine.Kernels;

/**
 * The {@code cuda} and {@code cuda-emu} backends: every {@link Kernels} op as a launch of the
 * kernels in {@code kernels/*.cu} through a {@link Driver} (a real GPU or the CUDA emulator).
 * A {@link Buf}'s memory is a {@link DeviceMemory.Block}; element offsets become byte addresses
 * (address + bytes·offset: 4 for F32 and I32, 2 for BF16). Each op checks its buffers' types and lengths (cheap, host-side), then
 * computes the launch shape its kernel file documents and launches by name. Values inside
 * device buffers (token ids, row indices, cache positions) cannot be checked without a copy:
 * the kernels guard their writes and turn an out-of-range id into NaN output instead.
 *
 * <p>Ops launch on the driver's default stream, except inside {@link #captureGraph}, which
 * captures on a stream of its own (the default stream cannot be captured) and replays the graph
 * on the default stream, ordered with everything else.
 *
 * <p>The backend owns its driver: {@link #close()} closes it.
 */
public final class CudaKernels implements Kernels {
    /** Largest head dimension of the attention kernels (kernels/common/launch.cuh). */
    public static final int MAX_HEAD_DIM = LaunchShapes.ATTENTION_MAX_D;
    /** Largest head dimension of rope. */
    public static final int MAX_ROPE_HEAD_DIM = 2 * LaunchShapes.ROPE_MAX_HALF;

    // the launch shapes the kernels assume come from the header they include (LaunchShapes, generated)
    private static final int ROWS_PER_DKV_BLOCK = LaunchShapes.ATTENTION_DKV_ROWS;
    private static final int ATTENTION_MAX_WARPS = LaunchShapes.ATTENTION_MAX_WARPS;
    private static final int GEMM_TILE = LaunchShapes.GEMM_TILE;
    private static final int GEMM_BF16_TILE = LaunchShapes.GEMM_BF16_TILE;
    private static final int GEMM_BF16_THREADS = LaunchShapes.GEMM_BF16_THREADS;
    private static final long SUM_CHUNK = LaunchShapes.SUM_CHUNK;
    private static final int MAX_ELEMENTWISE_BLOCKS = 4096;      // grid-stride kernels: any grid works; this caps it

    private final Driver driver;
    private final DeviceMemory memory;
    private final String name;
    private DeviceMemory.Block partials; // sumSquares scratch, grown on demand
    private long captureStream = Driver.DEFAULT_STREAM; // made by the first capture
    private boolean capturing;

    /** The {@code cuda} backend on a driver. */
    public CudaKernels(Driver driver) {
        this(driver, "cuda");
    }

    /** A CUDA backend named {@code name} ("cuda", or "cuda-emu" on the emulator driver). */
    public CudaKernels(Driver driver, String name) {
        this.driver = driver;
        this.memory = new DeviceMemory(driver);
        this.name = name;
    }

    @Override
    public String name() {
        return name;
    }

    /** The device this backend launches on. */
    public Driver driver() {
        return driver;
    }

    /** The allocator behind {@link #allocF32}, {@link #allocI32} and {@link #allocBf16} (statistics: bytes in use, peak). */
    public DeviceMemory memory() {
        return memory;
    }

    // ---- memory ----

    @Override
    public Buf allocF32(long n) {
        return new Buf(alloc("allocF32", 4 * checkCount(n)), Buf.Type.F32, 0, n);
    }

    @Override
    public Buf allocI32(long n) {
        return new Buf(alloc("allocI32", 4 * checkCount(n)), Buf.Type.I32, 0, n);
    }

    @Override
    public Buf allocBf16(long n) {
        return new Buf(alloc("allocBf16", 2 * checkCount(n)), Buf.Type.BF16, 0, n);
    }

    /** The caching allocator would often serve a capture without the driver, so refuse here, always. */
    private DeviceMemory.Block alloc(String op, long bytes) {
        notCapturing(op);
        return memory.alloc(bytes);
    }

    private void notCapturing(String op) {
        if (capturing)
            throw new IllegalStateException(op + " during a graph capture: a graph bakes buffer addresses in, "
                    + "so its buffers must be allocated before the capture and freed after the graph");
    }

    private static long checkCount(long n) {
        if (n < 0) throw new IllegalArgumentException("cannot allocate " + n + " elements");
        return n;
    }

    @Override
    public void free(Buf buf) {
        notCapturing("free");
        DeviceMemory.Block b = block(buf);
        if (buf.offset != 0 || buf.type.bytes * buf.length != b.bytes())
            throw new IllegalArgumentException("free takes a whole allocation, not the slice " + buf);
        memory.free(b);
    }

    @Override
    public void upload(Buf dst, float[] src) {
        sameLength("upload", dst, src.length);
        driver.copyHostToDevice(f32("upload", "dst", dst, src.length), src, 0, src.length);
    }

    @Override
    public void upload(Buf dst, int[] src) {
        sameLength("upload", dst, src.length);
        driver.copyHostToDevice(i32("upload", "dst", dst, src.length), src, 0, src.length);
    }

    @Override
    public void upload(Buf dst, short[] src) {
        sameLength("upload", dst, src.length);
        driver.copyHostToDevice(bf16("upload", "dst", dst, src.length), src, 0, src.length);
    }

    @Override
    public void download(Buf src, float[] dst) {
        sameLength("download", src, dst.length);
        long address = f32("download", "src", src, dst.length);
        driver.synchronize();
        driver.copyDeviceToHost(dst, 0, address, dst.length);
    }

    @Override
    public void download(Buf src, int[] dst) {
        sameLength("download", src, dst.length);
        long address = i32("download", "src", src, dst.length);
        driver.synchronize();
        driver.copyDeviceToHost(dst, 0, address, dst.length);
    }

    @Override
    public void download(Buf src, short[] dst) {
        sameLength("download", src, dst.length);
        long address = bf16("download", "src", src, dst.length);
        driver.synchronize();
        driver.copyDeviceToHost(dst, 0, address, dst.length);
    }

    private static void sameLength(String op, Buf b, int n) {
        if (b.length != n) throw new IllegalArgumentException(op + ": buffer of " + b.length + " elements, array of " + n);
    }

    @Override
    public void fill(Buf dst, float value) {
        if (dst.length == 0) return;
        switch (dst.type) {
            case F32 -> launch1D("fill_f32", dst.length, f32("fill", "dst", dst, dst.length), value, dst.length);
            case I32 -> launch1D("fill_i32", dst.length, i32("fill", "dst", dst, dst.length), (int) value, dst.length);
            case BF16 -> launch1D("fill_u16", dst.length, bf16("fill", "dst", dst, dst.length),
                    Bf16.fromFloat(value) & 0xFFFF, dst.length);
        }
    }

    @Override
    public void copy(Buf dst, Buf src) {
        if (dst.length != src.length || dst.type != src.type)
            throw new IllegalArgumentException("copy " + src + " to " + dst);
        if (src.length == 0) return;
        driver.copyDeviceToDevice(address(dst), address(src), src.type.bytes * src.length);
    }

    @Override
    public void synchronize() {
        driver.synchronize();
    }

    // ---- graphs ----

    /** 256 MB of fp32 logits a chunk: 441 rows at a 152k vocabulary, where 4M floats would give 27-row GEMMs. */
    @Override
    public long logitChunkFloats() {
        return LOGIT_CHUNK_FLOATS;
    }

    /** Logits materialised at once by the LM head (256 MiB of fp32), whatever the batch. */
    public static final long LOGIT_CHUNK_FLOATS = 1L << 26;

    @Override
    public boolean supportsGraphs() {
        return true;
    }

    @Override
    public Graph captureGraph(Runnable work) {
        if (capturing) throw new IllegalStateException("captureGraph inside a graph capture");
        if (captureStream == Driver.DEFAULT_STREAM) captureStream = driver.newStream();
        long handle;
        capturing = true;
        driver.setStream(captureStream);
        try {
            handle = driver.captureGraph(captureStream, work);
        } finally {
            driver.setStream(Driver.DEFAULT_STREAM);
            capturing = false;
        }
        return new Graph() {
            private boolean closed;

            @Override
            public void launch() {
                if (closed) throw new IllegalStateException("the graph is closed");
                driver.launchGraph(handle, Driver.DEFAULT_STREAM);
            }

            @Override
            public void close() {
                if (!closed) driver.destroyGraph(handle);
                closed = true;
            }
        };
    }

    @Override
    public void close() {
        if (partials != null) memory.free(partials);
        partials = null;
        driver.close();
    }

    // ---- precision ----

    @Override
    public void castF32ToBf16(Buf dst, Buf src, long n) {
        String op = "castF32ToBf16";
        positive(op, n);
        if (n == 0) return;
        launch1D("cast_f32_to_bf16", n, bf16(op, "dst", dst, n), f32(op, "src", src, n), n);
    }

    @Override
    public void castBf16ToF32(Buf dst, Buf src, long n) {
        String op = "castBf16ToF32";
        positive(op, n);
        if (n == 0) return;
        launch1D("cast_bf16_to_f32", n, f32(op, "dst", dst, n), bf16(op, "src", src, n), n);
    }

    // ---- embedding and modality rows ----

    @Override
    public void embedding(Buf out, Buf ids, Buf table, int m, int c) {
        String op = "embedding";
        positive(op, m, c);
        if (m == 0 || c == 0) return;
        long vocabRows = table.length / c;
        boolean bf16 = table.type == Buf.Type.BF16;
        driver.launch(bf16 ? "embedding_forward_bf16" : "embedding_forward", m, 1, 1, rowThreads(c), 1, 1, 0,
                f32(op, "out", out, (long) m * c), i32(op, "ids", ids, m),
                bf16 ? bf16(op, "table", table, c) : f32(op, "table", table, c), c, (int) vocabRows);
    }

    @Override
    public void embeddingBackward(Buf dtable, Buf dout, Buf ids, int m, int c) {
        String op = "embeddingBackward";
        positive(op, m, c);
        if (m == 0 || c == 0) return;
        int threads = rowThreads(c);
        driver.launch("embedding_backward", ceilDiv(c, threads), 1, 1, threads, 1, 1, 0,
                f32(op, "dtable", dtable, c), f32(op, "dout", dout, (long) m * c), i32(op, "ids", ids, m),
                m, c, (int) (dtable.length / c));
    }

    @Override
    public void scatterRows(Buf out, Buf src, Buf rows, int n, int c) {
        String op = "scatterRows";
        positive(op, n, c);
        if (n == 0 || c == 0) return;
        driver.launch("scatter_rows", n, 1, 1, rowThreads(c), 1, 1, 0,
                f32(op, "out", out, c), f32(op, "src", src, (long) n * c), i32(op, "rows", rows, n), c, (int) (out.length / c));
    }

    @Override
    public void gatherRows(Buf out, Buf src, Buf rows, int n, int c) {
        String op = "gatherRows";
        positive(op, n, c);
        if (n == 0 || c == 0) return;
        driver.launch("gather_rows", n, 1, 1, rowThreads(c), 1, 1, 0,
                f32(op, "out", out, (long) n * c), f32(op, "src", src, c), i32(op, "rows", rows, n), c, (int) (src.length / c));
    }

    // ---- dense ----

    @Override
    public void gemm(Gemm layout, Buf out, Buf a, Buf b, Buf bias, int m, int n, int k, boolean accumulate) {
        String op = "gemm " + layout;
        positive(op, m, n, k);
        if (m == 0 || n == 0) return;
        long outAddress = f32(op, "out", out, (long) m * n);
        long aAddress = f32(op, "a", a, (long) m * k), bAddress = f32(op, "b", b, (long) n * k);
        long biasAddress = bias == null ? 0L : f32(op, "bias", bias, n);
        String kernel = switch (layout) {
            case NT -> "gemm_nt";
            case NN -> "gemm_nn";
            case TN -> "gemm_tn";
        };
        driver.launch(kernel, ceilDiv(n, GEMM_TILE), ceilDiv(m, GEMM_TILE), 1, 16, 16, 1, 0,
                outAddress, aAddress, bAddress, biasAddress, m, n, k, accumulate ? 1 : 0);
    }

    @Override
    public void gemmBf16(Gemm layout, Buf out, Buf a, Buf b, Buf bias, int m, int n, int k, boolean accumulate) {
        String op = "gemmBf16 " + layout;
        positive(op, m, n, k);
        if (m == 0 || n == 0) return;
        long outAddress = f32(op, "out", out, (long) m * n);
        long aAddress = bf16(op, "a", a, (long) m * k), bAddress = bf16(op, "b", b, (long) n * k);
        long biasAddress = bias == null ? 0L : f32(op, "bias", bias, n);
        String kernel = switch (layout) {
            case NT -> "gemm_bf16_nt";
            case NN -> "gemm_bf16_nn";
            case TN -> "gemm_bf16_tn";
        };
        driver.launch(kernel, ceilDiv(n, GEMM_BF16_TILE), ceilDiv(m, GEMM_BF16_TILE), 1, GEMM_BF16_THREADS, 1, 1, 0,
                outAddress, aAddress, bAddress, biasAddress, m, n, k, accumulate ? 1 : 0);
    }

    @Override
    public void biasBackward(Buf dbias, Buf dout, int m, int n) {
        String op = "biasBackward";
        positive(op, m, n);
        if (n == 0) return;
        driver.launch("bias_backward", ceilDiv(n, 32), 1, 1, 32, 8, 1, 0,
                f32(op, "dbias", dbias, n), f32(op, "dout", dout, (long) m * n), m, n);
    }

    @Override
    public void add(Buf out, Buf a, Buf b, long n) {
        String op = "add";
        positive(op, n);
        if (n == 0) return;
        launch1D("add_f32", n, f32(op, "out", out, n), f32(op, "a", a, n), f32(op, "b", b, n), n);
    }

    @Override
    public void addBlock(Buf dst, int ldDst, Buf src, int ldSrc, int m, int n, float alpha) {
        String op = "addBlock";
        positive(op, m, n);
        if (ldDst < n || ldSrc < n)
            throw new IllegalArgumentException(op + ": row strides " + ldDst + ", " + ldSrc + " must be ≥ n = " + n);
        long total = (long) m * n;
        if (total == 0) return;
        launch1D("add_block", total, f32(op, "dst", dst, (long) (m - 1) * ldDst + n), ldDst,
                f32(op, "src", src, (long) (m - 1) * ldSrc + n), ldSrc, n, alpha, total);
    }

    // ---- norm, activations ----

    @Override
    public void rmsnorm(Buf out, Buf rstd, Buf x, Buf weight, int m, int c, float eps) {
        String op = "rmsnorm";
        positive(op, m, c);
        if (m == 0) return;
        driver.launch("rmsnorm_forward", m, 1, 1, rowThreads(c), 1, 1, 0,
                f32(op, "out", out, (long) m * c), f32(op, "rstd", rstd, m), f32(op, "x", x, (long) m * c),
                f32(op, "weight", weight, c), c, eps);
    }

    @Override
    public void rmsnormBackward(Buf dx, Buf dweight, Buf dout, Buf x, Buf weight, Buf rstd, int m, int c) {
        String op = "rmsnormBackward";
        positive(op, m, c);
        if (m == 0 || c == 0) return;
        long dxA = f32(op, "dx", dx, (long) m * c);
        long dyA = f32(op, "dout", dout, (long) m * c), xA = f32(op, "x", x, (long) m * c);
        long wA = f32(op, "weight", weight, c), rA = f32(op, "rstd", rstd, m);
        driver.launch("rmsnorm_backward_dx", m, 1, 1, rowThreads(c), 1, 1, 0, dxA, dyA, xA, wA, rA, c);
        if (dweight == null) return; // a frozen norm
        driver.launch("rmsnorm_backward_dweight", ceilDiv(c, 32), 1, 1, 32, 8, 1, 0, f32(op, "dweight", dweight, c), dyA, xA, rA, m, c);
    }

    @Override
    public void swiglu(Buf out, Buf gateUp, int m, int inter) {
        String op = "swiglu";
        positive(op, m, inter);
        long n = (long) m * inter;
        if (n == 0) return;
        launch1D("swiglu_forward", n, f32(op, "out", out, n), f32(op, "gateUp", gateUp, 2 * n), inter, n);
    }

    @Override
    public void swigluBackward(Buf dgateUp, Buf dout, Buf gateUp, int m, int inter) {
        String op = "swigluBackward";
        positive(op, m, inter);
        long n = (long) m * inter;
        if (n == 0) return;
        launch1D("swiglu_backward", n, f32(op, "dgateUp", dgateUp, 2 * n), f32(op, "dout", dout, n),
                f32(op, "gateUp", gateUp, 2 * n), inter, n);
    }

    @Override
    public void gelu(Buf out, Buf x, long n) {
        String op = "gelu";
        positive(op, n);
        if (n == 0) return;
        launch1D("gelu_forward", n, f32(op, "out", out, n), f32(op, "x", x, n), n);
    }

    @Override
    public void geluBackward(Buf dx, Buf dout, Buf x, long n) {
        String op = "geluBackward";
        positive(op, n);
        if (n == 0) return;
        launch1D("gelu_backward", n, f32(op, "dx", dx, n), f32(op, "dout", dout, n), f32(op, "x", x, n), n);
    }

    // ---- attention ----

    @Override
    public void rope(Buf qkv, Buf positions, int m, int heads, int kvHeads, int headDim, float theta, boolean inverse) {
        String op = "rope";
        positive(op, m, heads, kvHeads, headDim);
        if (headDim % 2 != 0 || headDim > MAX_ROPE_HEAD_DIM)
            throw new IllegalArgumentException(op + ": headDim must be even and ≤ " + MAX_ROPE_HEAD_DIM + ", got " + headDim);
        if (m == 0) return;
        long width = (long) (heads + 2 * kvHeads) * headDim;
        int pairs = (heads + kvHeads) * headDim / 2;
        driver.launch("rope_rotate", m, 1, 1, rowThreads(pairs), 1, 1, 0,
                f32(op, "qkv", qkv, m * width), i32(op, "positions", positions, m), heads, kvHeads, headDim, theta, inverse ? 1 : 0);
    }

    private static void checkHeads(String op, int heads, int kvHeads, int headDim) {
        if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0)
            throw new IllegalArgumentException(op + ": heads (" + heads + ") must be a positive multiple of kvHeads (" + kvHeads + ")");
        if (headDim <= 0 || headDim > MAX_HEAD_DIM)
            throw new IllegalArgumentException(op + ": headDim must be in [1, " + MAX_HEAD_DIM + "], got " + headDim);
    }

    /**
     * attention.cu's block shape for group query heads per kv head, {rows, heads per block,
     * slices}: the group cut into the fewest even slices of at most MAX_WARPS heads, then as many
     * query rows as fill MAX_WARPS warps (group 1 → 8 rows, 2 → 4, 3 and 4 → 2, 5…8 → 1).
     */
    static int[] attentionShape(int group) {
        int slices = ceilDiv(group, ATTENTION_MAX_WARPS);
        int perBlock = ceilDiv(group, slices);
        return new int[]{Math.max(1, ATTENTION_MAX_WARPS / perBlock), perBlock, slices};
    }

    @Override
    public void attention(Buf out, Buf lse, Buf qkv, Buf lengths, int b, int t, int heads, int kvHeads, int headDim) {
        String op = "attention";
        positive(op, b, t);
        checkHeads(op, heads, kvHeads, headDim);
        if (b == 0 || t == 0) return;
        long rows = (long) b * t, width = (long) (heads + 2 * kvHeads) * headDim;
        int[] shape = attentionShape(heads / kvHeads);
        driver.launch("attention_forward", ceilDiv(t, shape[0]), kvHeads * shape[2], b, 32, shape[0], shape[1], 0,
                f32(op, "out", out, rows * heads * headDim), f32(op, "lse", lse, rows * heads), f32(op, "qkv", qkv, rows * width),
                i32(op, "lengths", lengths, b), t, heads, kvHeads, headDim);
    }

    /** attention_bf16.cu: query rows per block and threads per block of attention_forward_bf16_*. */
    private static final int ATTENTION_BF16_ROWS = LaunchShapes.ATTENTION_BF16_ROWS, ATTENTION_BF16_THREADS = LaunchShapes.ATTENTION_BF16_THREADS;

    @Override
    public void attentionBf16(Buf out, Buf lse, Buf qkvBf16, Buf lengths, int b, int t, int heads, int kvHeads, int headDim) {
        String op = "attentionBf16";
        positive(op, b, t);
        checkHeads(op, heads, kvHeads, headDim);
        if (headDim % 16 != 0)
            throw new IllegalArgumentException(op + ": headDim must be a multiple of 16 (one mma k-step), got " + headDim);
        if (b == 0 || t == 0) return;
        long rows = (long) b * t, width = (long) (heads + 2 * kvHeads) * headDim;
        driver.launch(headDim <= 64 ? "attention_forward_bf16_d64" : "attention_forward_bf16_d128",
                ceilDiv(t, ATTENTION_BF16_ROWS), heads, b, ATTENTION_BF16_THREADS, 1, 1, 0,
                f32(op, "out", out, rows * heads * headDim), f32(op, "lse", lse, rows * heads),
                bf16(op, "qkv", qkvBf16, rows * width), i32(op, "lengths", lengths, b), t, heads, kvHeads, headDim);
    }

    @Override
    public void attentionBackward(Buf dqkv, Buf dout, Buf qkv, Buf out, Buf lse, Buf lengths,
                                  int b, int t, int heads, int kvHeads, int headDim) {
        String op = "attentionBackward";
        positive(op, b, t);
        checkHeads(op, heads, kvHeads, headDim);
        if (b == 0 || t == 0) return;
        long rows = (long) b * t, width = (long) (heads + 2 * kvHeads) * headDim;
        long dqkvA = f32(op, "dqkv", dqkv, rows * width), doutA = f32(op, "dout", dout, rows * heads * headDim);
        long qkvA = f32(op, "qkv", qkv, rows * width), outA = f32(op, "out", out, rows * heads * headDim);
        long lseA = f32(op, "lse", lse, rows * heads), lenA = i32(op, "lengths", lengths, b);
        int[] shape = attentionShape(heads / kvHeads);
        driver.launch("attention_backward_dq", ceilDiv(t, shape[0]), kvHeads * shape[2], b, 32, shape[0], shape[1], 0,
                dqkvA, doutA, qkvA, outA, lseA, lenA, t, heads, kvHeads, headDim);
        driver.launch("attention_backward_dkv", ceilDiv(t, ROWS_PER_DKV_BLOCK), kvHeads, b, 32, ROWS_PER_DKV_BLOCK, 1, 0,
                dqkvA, doutA, qkvA, outA, lseA, lenA, t, heads, kvHeads, headDim);
    }

    @Override
    public void attentionBackwardBf16(Buf dqkv, Buf dout, Buf qkvBf16, Buf out, Buf lse, Buf lengths,
                                      int b, int t, int heads, int kvHeads, int headDim) {
        String op = "attentionBackwardBf16";
        positive(op, b, t);
        checkHeads(op, heads, kvHeads, headDim);
        if (headDim % 16 != 0)
            throw new IllegalArgumentException(op + ": headDim must be a multiple of 16 (one mma k-step), got " + headDim);
        if (b == 0 || t == 0) return;
        long rows = (long) b * t, width = (long) (heads + 2 * kvHeads) * headDim;
        long dqkvA = f32(op, "dqkv", dqkv, rows * width), doutA = f32(op, "dout", dout, rows * heads * headDim);
        long qkvA = bf16(op, "qkv", qkvBf16, rows * width), outA = f32(op, "out", out, rows * heads * headDim);
        long lseA = f32(op, "lse", lse, rows * heads), lenA = i32(op, "lengths", lengths, b);
        String d = headDim <= 64 ? "_d64" : "_d128";
        // dq: a block per 64 query rows of a query head; dk/dv: a block per 64 keys of a kv head
        driver.launch("attention_backward_bf16_dq" + d, ceilDiv(t, ATTENTION_BF16_ROWS), heads, b,
                ATTENTION_BF16_THREADS, 1, 1, 0, dqkvA, doutA, qkvA, outA, lseA, lenA, t, heads, kvHeads, headDim);
        driver.launch("attention_backward_bf16_dkv" + d, ceilDiv(t, ATTENTION_BF16_ROWS), kvHeads, b,
                ATTENTION_BF16_THREADS, 1, 1, 0, dqkvA, doutA, qkvA, outA, lseA, lenA, t, heads, kvHeads, headDim);
    }

    // ---- decode ----

    @Override
    public void kvCacheWrite(Buf kCache, Buf vCache, Buf qkv, Buf rowSeq, Buf rowPos, int m, int maxT,
                             int heads, int kvHeads, int headDim) {
        String op = "kvCacheWrite";
        positive(op, m, maxT);
        checkHeads(op, heads, kvHeads, headDim);
        if (m == 0 || maxT == 0) return;
        long perSequence = (long) kvHeads * maxT * headDim;
        long sequences = Math.min(kCache.length, vCache.length) / perSequence;
        driver.launch("kv_cache_write", m, 1, 1, rowThreads(kvHeads * headDim), 1, 1, 0,
                f32(op, "kCache", kCache, perSequence), f32(op, "vCache", vCache, perSequence),
                f32(op, "qkv", qkv, (long) m * (heads + 2 * kvHeads) * headDim), i32(op, "rowSeq", rowSeq, m),
                i32(op, "rowPos", rowPos, m), maxT, heads, kvHeads, headDim, (int) sequences);
    }

    @Override
    public void decodeAttention(Buf out, Buf qkv, Buf kCache, Buf vCache, Buf lengths, int b, int maxT,
                                int heads, int kvHeads, int headDim) {
        String op = "decodeAttention";
        positive(op, b, maxT);
        checkHeads(op, heads, kvHeads, headDim);
        if (b == 0) return;
        long cache = (long) b * kvHeads * maxT * headDim;
        int[] shape = attentionShape(heads / kvHeads);
        driver.launch("decode_attention", kvHeads * shape[2], b, 1, 32, 1, shape[1], 0,
                f32(op, "out", out, (long) b * heads * headDim), f32(op, "qkv", qkv, (long) b * (heads + 2 * kvHeads) * headDim),
                f32(op, "kCache", kCache, cache), f32(op, "vCache", vCache, cache), i32(op, "lengths", lengths, b),
                maxT, heads, kvHeads, headDim);
    }

    @Override
    public void sample(Buf tokens, Buf logits, int b, int v, float temperature, int topK, float topP, long seed, long step,
                       Buf banned, int nBanned) {
        sample(tokens, logits, b, v, temperature, topK, topP, seed, step, null, null, banned, nBanned);
    }

    /** The kernel reads the step from the device (stepAt), so a captured graph draws anew on each replay. */
    @Override
    public void sample(Buf tokens, Buf logits, int b, int v, float temperature, int topK, float topP, long seed, Buf step,
                       Buf banned, int nBanned) {
        sample(tokens, logits, b, v, temperature, topK, topP, seed, 0, step, null, banned, nBanned);
    }

    /** Keys and steps per row, both read by the kernel from the device. */
    @Override
    public void sampleRows(Buf tokens, Buf logits, int b, int v, float temperature, int topK, float topP, Buf keys, Buf steps,
                           Buf banned, int nBanned) {
        sample(tokens, logits, b, v, temperature, topK, topP, 0, 0, steps, keys, banned, nBanned);
    }

    /** stepAt: null, or the step ([1]; [b] with rowKeys); rowKeys: null, or per-row keys as I32 pairs [2b]. */
    private void sample(Buf tokens, Buf logits, int b, int v, float temperature, int topK, float topP, long seed, long step,
                        Buf stepAt, Buf rowKeys, Buf banned, int nBanned) {
        String op = "sample";
        positive(op, b, v, nBanned);
        if (!(temperature >= 0) || !Float.isFinite(temperature))
            throw new IllegalArgumentException(op + ": temperature must be ≥ 0, got " + temperature);
        if (b == 0) return;
        boolean greedy = temperature == 0f;
        long bannedA = nBanned == 0 && banned == null ? 0L : i32(op, "banned", banned, nBanned);
        long stepA = stepAt == null ? 0L : i32(op, "step", stepAt, rowKeys == null ? 1 : b);
        long keysA = rowKeys == null ? 0L : i32(op, "keys", rowKeys, 2L * b);
        driver.launch("sample_tokens", b, 1, 1, LaunchShapes.SAMPLE_THREADS, 1, 1, 0,
                i32(op, "tokens", tokens, b), f32(op, "logits", logits, (long) b * v), v, greedy ? 1 : 0,
                greedy ? 1f : 1f / temperature, topK, topP, seed, step, stepA, keysA, bannedA, nBanned);
    }

    // ---- LM head loss ----

    @Override
    public void crossEntropy(Buf logits, Buf logprob, Buf entropy, Buf logZ, Buf targets, Buf weights,
                             int m, int v, float invTemperature, boolean backward) {
        String op = "crossEntropy";
        positive(op, m, v);
        if (m == 0) return;
        driver.launch("cross_entropy", m, 1, 1, rowThreads(v), 1, 1, 0,
                f32(op, "logits", logits, (long) m * v), f32(op, "logprob", logprob, m), f32(op, "entropy", entropy, m),
                logZ == null ? 0L : f32(op, "logZ", logZ, m), i32(op, "targets", targets, m), f32(op, "weights", weights, m), v,
                invTemperature, backward ? 1 : 0);
    }

    @Override
    public void crossEntropyBackward(Buf logits, Buf logZ, Buf targets, Buf weights, int m, int v, float invTemperature) {
        String op = "crossEntropyBackward";
        positive(op, m, v);
        if (m == 0) return;
        driver.launch("cross_entropy_backward", m, 1, 1, rowThreads(v), 1, 1, 0,
                f32(op, "logits", logits, (long) m * v), f32(op, "logZ", logZ, m), i32(op, "targets", targets, m),
                f32(op, "weights", weights, m), v, invTemperature);
    }

    // ---- optimizer ----

    /** Bytes of the partials {@link #sumSquares} keeps for n elements (one double per chunk): the memory plan's workspace. */
    public static long sumSquaresScratchBytes(long n) {
        return 8L * ((n + SUM_CHUNK - 1) / SUM_CHUNK);
    }

    @Override
    public double sumSquares(Buf x, long n) {
        String op = "sumSquares";
        positive(op, n);
        if (n == 0) return 0;
        long xA = f32(op, "x", x, n);
        int blocks = Math.toIntExact((n + SUM_CHUNK - 1) / SUM_CHUNK);
        if (partials == null || partials.bytes() < 8L * blocks) {
            if (partials != null) memory.free(partials);
            partials = memory.alloc(8L * blocks);
        }
        driver.launch("sum_squares_partials", blocks, 1, 1, 256, 1, 1, 0, partials.address(), xA, n);
        // the partials are doubles: fetch their 32-bit halves (little-endian) and add in index order
        int[] words = new int[2 * blocks];
        driver.synchronize();
        driver.copyDeviceToHost(words, 0, partials.address(), words.length);
        double total = 0;
        for (int i = 0; i < blocks; i++)
            total += Double.longBitsToDouble(((long) words[2 * i + 1] << 32) | (words[2 * i] & 0xFFFFFFFFL));
        return total;
    }

    @Override
    public void adamw(Buf params, Buf grads, Buf m, Buf v, long n, float lr, float beta1, float beta2,
                      float eps, float weightDecay, float gradScale, int t) {
        String op = "adamw";
        positive(op, n);
        if (t < 1) throw new IllegalArgumentException(op + ": step t is 1-based, got " + t);
        if (n == 0) return;
        // bias corrections rounded to fp32 exactly as the CPU twin rounds them
        float c1 = (float) (1.0 - Math.pow(beta1, t)), c2 = (float) (1.0 - Math.pow(beta2, t));
        launch1D("adamw", n, f32(op, "params", params, n), f32(op, "grads", grads, n), f32(op, "m", m, n),
                f32(op, "v", v, n), n, lr, beta1, beta2, eps, weightDecay, gradScale, c1, c2);
    }

    // ---- GRPO ----

    @Override
    public void grpoAdvantages(Buf advantages, Buf stats, Buf rewards, int groups, int groupSize, boolean drGrpo, float eps) {
        String op = "grpoAdvantages";
        positive(op, groups);
        if (groupSize < 1) throw new IllegalArgumentException(op + ": groupSize must be ≥ 1, got " + groupSize);
        if (groups == 0) return;
        long n = (long) groups * groupSize;
        driver.launch("grpo_advantages", groups, 1, 1, 32, 1, 1, 0,
                f32(op, "advantages", advantages, n), f32(op, "stats", stats, 2L * groups), f32(op, "rewards", rewards, n),
                groupSize, drGrpo ? 1 : 0, eps);
    }

    @Override
    public void grpoPolicyLoss(Buf loss, Buf weight, Buf clipped, Buf kl, Buf logp, Buf logpOld, Buf ref, Buf advantage,
                               Buf scale, int m, float epsLow, float epsHigh, float beta) {
        String op = "grpoPolicyLoss";
        positive(op, m);
        if (ref == null && beta != 0f)
            throw new IllegalArgumentException(op + ": ref is null but beta = " + beta + " (only beta = 0 runs without a reference)");
        if (m == 0) return;
        long refAddress = ref == null ? 0L : f32(op, "ref", ref, m);
        launch1D("grpo_policy_loss", m, f32(op, "loss", loss, m), f32(op, "weight", weight, m), f32(op, "clipped", clipped, m),
                f32(op, "kl", kl, m), f32(op, "logp", logp, m), f32(op, "logpOld", logpOld, m), refAddress,
                f32(op, "advantage", advantage, m), f32(op, "scale", scale, m), m, epsLow, epsHigh, beta);
    }

    // ---- launch helpers ----

    /** A grid-stride kernel over n elements: 256 threads a block, at most MAX_ELEMENTWISE_BLOCKS blocks. */
    private void launch1D(String kernel, long n, Object... args) {
        int blocks = (int) Math.min((n + 255) / 256, MAX_ELEMENTWISE_BLOCKS);
        driver.launch(kernel, blocks, 1, 1, 256, 1, 1, 0, args);
    }

    /** Threads of a one-block-per-row kernel: a power of two from 32 (a warp) to 256, ≥ the row width where possible. */
    private static int rowThreads(int width) {
        int threads = 32;
        while (threads < width && threads < 256) threads *= 2;
        return threads;
    }

    private static int ceilDiv(long a, int b) {
        return Math.toIntExact((a + b - 1) / b);
    }

    private static void positive(String op, long... sizes) {
        for (long s : sizes)
            if (s < 0) throw new IllegalArgumentException(op + ": negative size " + s);
    }

    private static DeviceMemory.Block block(Buf b) {
        if (!(b.memory instanceof DeviceMemory.Block block))
            throw new IllegalArgumentException("not a device buffer of a CUDA backend: " + b);
        return block;
    }

    private static long address(Buf b) {
        return block(b).address() + b.type.bytes * b.offset;
    }

    /** The device address of an F32 buffer that must hold at least {@code need} elements. */
    private static long f32(String op, String what, Buf b, long need) {
        return checked(op, what, b, Buf.Type.F32, need);
    }

    private static long i32(String op, String what, Buf b, long need) {
        return checked(op, what, b, Buf.Type.I32, need);
    }

    private static long bf16(String op, String what, Buf b, long need) {
        return checked(op, what, b, Buf.Type.BF16, need);
    }

    private static long checked(String op, String what, Buf b, Buf.Type type, long need) {
        if (b == null) throw new IllegalArgumentException(op + ": " + what + " is null");
        if (b.type != type) throw new IllegalArgumentException(op + ": " + what + " must be " + type + ", got " + b);
        if (b.length < need)
            throw new IllegalArgumentException(op + ": " + what + " holds " + b.length + " elements, needs " + need);
        return address(b);
    }
}
