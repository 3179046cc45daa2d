package io.hintgrpo.engine.cpu;

import io.hintgrpo.engine.Kernels.Gemm;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import java.util.function.IntConsumer;

/**
 * The SIMD path of {@link CpuGemm}. Only {@link CpuGemm} touches this class, and only after it has
 * seen jdk.incubator.vector in the boot layer, so nothing here is loaded without the module.
 *
 * <p>GotoBLAS layout: op(A) is packed into panels of MR rows and op(B) into panels of NR columns,
 * k-blocked by KC, so that the micro-kernel reads both contiguously; the kernel keeps an MR×NR tile
 * of C in MR × 2 vector accumulators (one broadcast of A per row, one fma per accumulator per k).
 * A KC×NR B panel stays in L1 while the row panels of a row block (MC rows, in L2) stream past it.
 * How B gets packed depends on how often a panel is used (see {@link #packed}). NT with few rows
 * (decode) does not pack at all: dot products straight from the rows of a and b.
 *
 * <p>Determinism: an output element is always computed by the same kernel (chosen from m, n, k
 * only), summed over the k-blocks in order, each block sequentially along k; lane sums use a fixed
 * network. Task boundaries depend on m, n, k only. So the result is bit-identical for any thread
 * count.
 *
 * <p>JDK 17's C2 keeps vectors in registers only when they never meet at a control-flow merge and
 * never pass through a method that is compiled on its own; hence the written-out kernels, the
 * two-branch stores and the lane sums through a scratch array. Until C2 has compiled the kernels
 * (the first few calls, up to seconds for big shapes) the vector code runs far slower than scalar.
 */
final class CpuGemmVector {
    private CpuGemmVector() {}

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();

    /** Micro-tile columns: two vectors. */
    static final int NR = 2 * L;
    /**
     * Packed B starts this many floats into its array. G1 puts every array over half a region (packed
     * weights and the packing scratch are) at a region start, and HotSpot's array data begins 16 bytes
     * after it, so without the offset every 64-byte panel load would straddle two cache lines.
     */
    static final int B_BASE = 12;
    /** Micro-tile rows: 12 × 2 accumulators fill AVX-512's 32 registers; AVX2 (8 lanes) has only 16. */
    static final int MR = L == 8 ? 4 : 12;
    /** Rows of the panels that finish a row block whose height is not a multiple of MR. */
    private static final int MR_EDGE = 4;
    /** k-block: a packed KC×NR B panel (32 KiB at 512 bits) stays in L1 while a row block's MC/MR tiles use it. */
    private static final int KC = 256;
    /** Rows per row block, a multiple of MR and MR_EDGE: its MC×KC packed A (96 KiB) stays in L2. */
    private static final int MC = 96;
    /** NT with fewer rows than this runs as dot products: packing B would cost more than it saves. */
    static final int DOT_M = 16;
    /** NN/TN with at most this many rows read b in place: each b element is used too few times to copy it. */
    static final int IN_PLACE_M = 48;
    /** Packed A and packed B are each built in chunks of at most this many floats (an LM head can be huge). */
    private static final long CHUNK = 4L << 20;
    /** Compute tasks per chunk: plenty to balance a few threads (the tiles share nothing). */
    private static final int TASKS = 32;
    /** Below this many flops per task the thread hand-off costs more than the work. */
    private static final long TASK_FLOPS = 1L << 20;
    /** Below this many flops in all, one thread does everything. */
    private static final long PARALLEL_FLOPS = 1L << 22;

    private static final class Scratch {
        final float[] tile = new float[Math.max(MR, 2 * MR_EDGE) * NR]; // one tile, or two short ones side by side
        final float[] panel = new float[KC * NR];
        final int[] rows = new int[L];
        final float[] dot = new float[64], acc = new float[16];
        final int[] bRows = new int[16];
        final float[] lanes = new float[16 * L];
        float[] pa = new float[0], pb = new float[0]; // packed operands, used by the thread that calls gemm
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    static void gemm(Gemm layout, float[] out, int outOff, float[] a, int aOff, float[] b, int bOff,
                     float[] bias, int biasOff, int m, int n, int k, boolean accumulate) {
        if (layout == Gemm.NT && m < DOT_M) dotNT(out, outOff, a, aOff, b, bOff, bias, biasOff, m, n, k, accumulate);
        else packed(layout, out, outOff, a, aOff, b, bOff, null, bias, biasOff, m, n, k, accumulate);
    }

    /** Floats {@link #prepareNT} makes for w [n, k]: whole panels of NR columns over all k. */
    static long preparedLength(int n, int k) {
        return B_BASE + (long) (n + NR - 1) / NR * NR * k;
    }

    /**
     * w [n, k] packed once as {@link #packed} packs B for NT when it shares B across row blocks:
     * every panel, k-block after k-block (block (k0, kcb), panel q at B_BASE + k0·panels·NR + q·kcb·NR).
     * A weight used by many calls (decode steps) is then never repacked.
     */
    static float[] prepareNT(float[] w, int wOff, int n, int k) {
        int kBlocks = (k + KC - 1) / KC, kc = (k + kBlocks - 1) / kBlocks, panels = (n + NR - 1) / NR;
        float[] pb = new float[Math.toIntExact(preparedLength(n, k))];
        int per = Math.max(1, (1 << 16) / (k * NR));
        run(2L * n * k >= PARALLEL_FLOPS, (panels + per - 1) / per, t -> packB(Gemm.NT, w, wOff, n, k, kc, 0, panels, t * per,
                Math.min(panels, (t + 1) * per), pb, SCRATCH.get().rows));
        return pb;
    }

    /**
     * out = a·wᵀ (+ bias) with w as {@link #prepareNT} made it: the packed path for every m (no dot
     * products for few rows: without packing to pay for, the micro-kernel wins there too), bit for
     * bit what {@link #gemm} gives for m ≥ {@link #DOT_M}.
     */
    static void gemmPrepared(float[] out, int outOff, float[] a, int aOff, float[] prepared, float[] bias, int biasOff,
                             int m, int n, int k, boolean accumulate) {
        packed(Gemm.NT, out, outOff, a, aOff, null, 0, prepared, bias, biasOff, m, n, k, accumulate);
    }

    private static void run(boolean parallel, int tasks, IntConsumer body) {
        if (parallel) Parallel.forEach(tasks, body);
        else for (int t = 0; t < tasks; t++) body.accept(t);
    }

    // ---- packed path ----

    /** Where a tile's B panels come from. */
    private static final int B_SHARED = 0, B_PANEL = 1, B_IN_PLACE = 2;

    /**
     * A is packed up front (a task per row block). B depends on how often a panel is used: with
     * several row blocks, all of B is packed up front too and shared; with one row block each panel
     * is used once, so the tile packs it right before use (it stays in L1), or, for NN/TN with very
     * few rows, the kernel reads b in place. Then tiles of (row block × run of panels) are computed.
     *
     * <p>Packed A: row block after row block (MC·k floats each), k-block after k-block within it,
     * each a run of row panels stored [kcb][h]. Packed B: see {@link #packB}.
     */
    private static void packed(Gemm layout, float[] out, int outOff, float[] a, int aOff, float[] b, int bOff, float[] prepared,
                               float[] bias, int biasOff, int m, int n, int k, boolean accumulate) {
        int kBlocks = (k + KC - 1) / KC, kc = (k + kBlocks - 1) / kBlocks; // near-equal k-blocks, each ≤ KC
        int panels = (n + NR - 1) / NR, rowBlocks = (m + MC - 1) / MC;
        int bMode = rowBlocks > 1 || prepared != null ? B_SHARED : layout != Gemm.NT && m <= IN_PLACE_M ? B_IN_PLACE : B_PANEL;
        // prepared: all of B is one chunk, already packed
        int bChunk = bMode != B_SHARED || prepared != null ? panels : (int) Math.max(1, Math.min(panels, CHUNK / ((long) k * NR)));
        int aChunk = (int) Math.max(1, Math.min(rowBlocks, CHUNK / ((long) k * MC)));
        boolean parallel = 2L * m * n * k >= PARALLEL_FLOPS;
        Scratch caller = SCRATCH.get();
        if (caller.pa.length < aChunk * MC * k) caller.pa = new float[aChunk * MC * k];
        if (bMode == B_SHARED && prepared == null && caller.pb.length < B_BASE + bChunk * NR * k) caller.pb = new float[B_BASE + bChunk * NR * k];
        float[] pa = caller.pa, pb = prepared != null ? prepared : caller.pb;

        for (int q0 = 0; q0 < panels; q0 += bChunk) {
            int np = Math.min(bChunk, panels - q0), jc = q0 * NR;
            for (int rb0 = 0; rb0 < rowBlocks; rb0 += aChunk) {
                int nrb = Math.min(aChunk, rowBlocks - rb0), i0 = rb0 * MC;
                // pack: a task per row block of A, then (shared B, first time round for this chunk) ~64K floats of B per task
                int bPer = Math.max(1, (1 << 16) / (k * NR));
                int bTasks = bMode == B_SHARED && prepared == null && rb0 == 0 ? (np + bPer - 1) / bPer : 0;
                run(parallel, nrb + bTasks, t -> {
                    if (t < nrb) {
                        int r0 = i0 + t * MC;
                        packA(layout, a, aOff, m, k, kc, r0, Math.min(m, r0 + MC), pa, t * MC * k);
                    } else {
                        int u = t - nrb;
                        packB(layout, b, bOff, n, k, kc, jc, np, u * bPer, Math.min(np, (u + 1) * bPer), pb, SCRATCH.get().rows);
                    }
                });
                // compute: tasks are (run of row blocks) × (run of panels), sized from the shape only
                long flops = 2L * Math.min(m - i0, nrb * MC) * Math.min(n - jc, np * NR) * k;
                int want = (int) Math.max(1, Math.min(TASKS, flops / TASK_FLOPS));
                int rbPer = (nrb + want - 1) / want, rTasks = (nrb + rbPer - 1) / rbPer;
                int cWant = Math.max(1, Math.min(np, (want + rTasks - 1) / rTasks));
                int qPer = (np + cWant - 1) / cWant, cTasks = (np + qPer - 1) / qPer;
                run(parallel, rTasks * cTasks, t -> {
                    int rt = t / cTasks, qa = t % cTasks * qPer, qb = Math.min(np, qa + qPer);
                    Scratch s = SCRATCH.get();
                    for (int r = rt * rbPer; r < Math.min(nrb, (rt + 1) * rbPer); r++) {
                        int r0 = i0 + r * MC;
                        tile(layout, out, outOff, pa, r * MC * k, b, bOff, pb, bMode, bias, biasOff, n, k, kc, accumulate,
                                r0, Math.min(m, r0 + MC), jc, np, qa, qb, s);
                    }
                });
            }
        }
    }

    /** Rows padded to whole panels: MR-row panels, then MR_EDGE-row panels. */
    private static int padRows(int rows) {
        return rows / MR * MR + (rows % MR + MR_EDGE - 1) / MR_EDGE * MR_EDGE;
    }

    /** Rows [i0, i1) (one row block, packed at pa[ab]) × panels [qa, qb) of the B chunk at column jc. */
    private static void tile(Gemm layout, float[] out, int outOff, float[] pa, int ab, float[] b, int bOff, float[] pb,
                             int bMode, float[] bias, int biasOff, int n, int k, int kc, boolean accumulate,
                             int i0, int i1, int jc, int np, int qa, int qb, Scratch s) {
        int rowsPad = padRows(i1 - i0), full = (i1 - i0) / MR, groups = full + (i1 - i0 - full * MR + MR_EDGE - 1) / MR_EDGE;
        if (bMode != B_SHARED) gatherMap(s.rows, k);
        for (int k0 = 0; k0 < k; k0 += kc) {
            int kcb = Math.min(kc, k - k0);
            boolean first = k0 == 0, keep = !first || accumulate, withBias = first && bias != null;
            boolean edgeDone = false; // this panel's short group ran beside the previous panel's
            for (int q = qa; q < qb; q++) {
                int j0 = jc + q * NR, w = Math.min(NR, n - j0);
                float[] bp = s.panel;
                int bo = 0, ldb = NR;
                if (bMode == B_SHARED) {
                    bp = pb;
                    bo = B_BASE + k0 * np * NR + q * kcb * NR;
                } else if (bMode == B_IN_PLACE && w == NR) {
                    bp = b;
                    bo = bOff + k0 * n + j0;
                    ldb = n;
                } else {
                    packPanel(layout, b, bOff, n, k, j0, w, k0, kcb, s.panel, 0, s.rows);
                }
                // The short (4-row) group first: it reads the B panel at three times the pace of a
                // 12-row one, and with packed B it reads this panel and the next side by side, two
                // streams at once, so B that comes from memory (decode's weights) streams in faster;
                // the 12-row groups then find it in cache. An element's sum does not depend on the order.
                boolean skipEdge = edgeDone;
                edgeDone = false;
                if (!skipEdge && bMode == B_SHARED && groups > full && q + 1 < qb && n - j0 >= 2 * NR) {
                    int i = i0 + full * MR, v = Math.min(MR_EDGE, i1 - i);
                    int po = ab + k0 * rowsPad + (i - i0) * kcb, oo = outOff + i * n + j0;
                    if (v == MR_EDGE) {
                        if (withBias) initBias(out, oo, n, v, 2 * NR, bias, biasOff + j0, keep);
                        kernel4x2(kcb, pa, po, pb, bo, bo + kcb * NR, out, oo, n, keep || withBias);
                    } else { // the last rows: both tiles on a padded copy, [4][2·NR]
                        float[] t = s.tile;
                        if (keep) for (int r = 0; r < v; r++) System.arraycopy(out, oo + r * n, t, r * 2 * NR, 2 * NR);
                        if (withBias) initBias(t, 0, 2 * NR, v, 2 * NR, bias, biasOff + j0, keep);
                        kernel4x2(kcb, pa, po, pb, bo, bo + kcb * NR, t, 0, 2 * NR, keep || withBias);
                        for (int r = 0; r < v; r++) System.arraycopy(t, r * 2 * NR, out, oo + r * n, 2 * NR);
                    }
                    skipEdge = edgeDone = true;
                }
                for (int gi = skipEdge ? 1 : 0; gi < groups; gi++) {
                    int g = (gi + full) % groups, h = g < full ? MR : MR_EDGE;
                    int i = i0 + (g < full ? g * MR : full * MR + (g - full) * MR_EDGE), v = Math.min(h, i1 - i);
                    int po = ab + k0 * rowsPad + (i - i0) * kcb;
                    int oo = outOff + i * n + j0;
                    if (v == h && w == NR) {
                        if (withBias) initBias(out, oo, n, v, w, bias, biasOff + j0, keep);
                        kernel(h, kcb, pa, po, bp, bo, ldb, out, oo, n, keep || withBias);
                    } else { // edge tile: run the full kernel on a padded copy
                        float[] t = s.tile;
                        if (keep) for (int r = 0; r < v; r++) System.arraycopy(out, oo + r * n, t, r * NR, w);
                        if (withBias) initBias(t, 0, NR, v, w, bias, biasOff + j0, keep);
                        kernel(h, kcb, pa, po, bp, bo, ldb, t, 0, NR, keep || withBias);
                        for (int r = 0; r < v; r++) System.arraycopy(t, r * NR, out, oo + r * n, w);
                    }
                }
            }
        }
    }

    /** c[r, j] = (add ? c[r, j] : 0) + bias[j] over a rows × w tile, before the first k-block. */
    private static void initBias(float[] c, int co, int ldc, int rows, int w, float[] bias, int bo, boolean add) {
        for (int r = 0; r < rows; r++) {
            int o = co + r * ldc;
            for (int j = 0; j < w; j++) c[o + j] = (add ? c[o + j] : 0f) + bias[bo + j];
        }
    }

    private static void kernel(int h, int kc, float[] a, int ao, float[] b, int bo, int ldb,
                               float[] c, int co, int ldc, boolean load) {
        if (h == 12) kernel12(kc, a, ao, b, bo, ldb, c, co, ldc, load);
        else kernel4(kc, a, ao, b, bo, ldb, c, co, ldc, load);
    }

    /**
     * Packs rows [i0, i1) of op(A) at pa[base]: k-block after k-block (block k0 at base + k0·padRows),
     * each a run of panels of MR rows (then MR_EDGE rows for the remainder, zero-padded) stored
     * [kcb][h], so the kernel reads one row-group per k.
     */
    private static void packA(Gemm layout, float[] a, int aOff, int m, int k, int kc, int i0, int i1, float[] pa, int base) {
        int rowsPad = padRows(i1 - i0);
        // gather maps for NN/NT: lane r reads row min(r, h-1), for h = MR and h = MR_EDGE
        int[] rowsMr = new int[L], rowsEdge = new int[L];
        for (int r = 0; r < L; r++) {
            rowsMr[r] = Math.min(r, MR - 1) * k;
            rowsEdge[r] = Math.min(r, MR_EDGE - 1) * k;
        }
        for (int k0 = 0; k0 < k; k0 += kc) {
            int kcb = Math.min(kc, k - k0), po = base + k0 * rowsPad;
            for (int i = i0; i < i1; ) {
                int h = i1 - i >= MR ? MR : MR_EDGE, v = Math.min(h, i1 - i);
                // whole panels move L lanes per k: lanes past h spill into the next k's slots (rewritten
                // next), so only k's whose L lanes end inside the panel do it; the rest go one by one
                int pv = v == h ? Math.max(0, kcb + 1 - (L + h - 1) / h) : 0;
                if (layout == Gemm.TN) { // a is [k, m]: the panel's rows are contiguous at each k
                    for (int p = 0; p < kcb; p++) {
                        int src = aOff + (k0 + p) * m + i, dst = po + p * h;
                        if (p < pv && src + L <= a.length) {
                            FloatVector.fromArray(S, a, src).intoArray(pa, dst);
                        } else {
                            for (int r = 0; r < v; r++) pa[dst + r] = a[src + r];
                            for (int r = v; r < h; r++) pa[dst + r] = 0f;
                        }
                    }
                } else { // a is [m, k]: transpose, a gathered column per k
                    int[] rows = h == MR ? rowsMr : rowsEdge;
                    int src = aOff + i * k + k0;
                    for (int p = 0; p < pv; p++) FloatVector.fromArray(S, a, src + p, rows, 0).intoArray(pa, po + p * h);
                    for (int r = 0; r < v; r++)
                        for (int p = pv; p < kcb; p++) pa[po + r + p * h] = a[src + r * k + p];
                    for (int r = v; r < h; r++)
                        for (int p = pv; p < kcb; p++) pa[po + r + p * h] = 0f;
                }
                po += h * kcb;
                i += h;
            }
        }
    }

    /**
     * Packs panels [qa, qb) of the chunk that starts at column jc (np panels) for every k-block:
     * block (k0, kcb), panel q lives at B_BASE + k0·np·NR + q·kcb·NR.
     */
    private static void packB(Gemm layout, float[] b, int bOff, int n, int k, int kc, int jc, int np,
                              int qa, int qb, float[] pb, int[] rows) {
        gatherMap(rows, k);
        for (int q = qa; q < qb; q++) {
            int j0 = jc + q * NR, w = Math.min(NR, n - j0);
            for (int k0 = 0; k0 < k; k0 += kc) {
                int kcb = Math.min(kc, k - k0);
                packPanel(layout, b, bOff, n, k, j0, w, k0, kcb, pb, B_BASE + k0 * np * NR + q * kcb * NR, rows);
            }
        }
    }

    /** rows[c] = c·k: lane c of a gather reads row c of an NT b. */
    private static void gatherMap(int[] rows, int k) {
        for (int c = 0; c < L; c++) rows[c] = c * k;
    }

    /** Columns [j0, j0+w) × k [k0, k0+kcb) of op(B) at dst[d], stored [kcb][NR], columns past w zero. */
    private static void packPanel(Gemm layout, float[] b, int bOff, int n, int k, int j0, int w, int k0, int kcb,
                                  float[] dst, int d, int[] rows) {
        if (layout == Gemm.NT && w == NR) { // b is [n, k]: transpose, a gathered column per k
            int src = bOff + j0 * k + k0;
            for (int p = 0; p < kcb; p++) {
                FloatVector.fromArray(S, b, src + p, rows, 0).intoArray(dst, d + p * NR);
                FloatVector.fromArray(S, b, src + L * k + p, rows, 0).intoArray(dst, d + p * NR + L);
            }
        } else if (layout == Gemm.NT) {
            for (int c = 0; c < w; c++) {
                int src = bOff + (j0 + c) * k + k0;
                for (int p = 0; p < kcb; p++) dst[d + p * NR + c] = b[src + p];
            }
            for (int c = w; c < NR; c++)
                for (int p = 0; p < kcb; p++) dst[d + p * NR + c] = 0f;
        } else { // b is [k, n]: rows are already contiguous
            for (int p = 0; p < kcb; p++) {
                int src = bOff + (k0 + p) * n + j0, o = d + p * NR;
                for (int c = 0; c < w; c++) dst[o + c] = b[src + c];
                for (int c = w; c < NR; c++) dst[o + c] = 0f;
            }
        }
    }

    // ---- NT with few rows: dot products ----

    /**
     * out[i, j] = a[i, :]·b[j, :] straight from the rows (b is read once, the rows of a stay in L1).
     * Tasks own groups of 16 columns; inside, 4 rows × 4 columns at a time, then single rows × 16.
     */
    private static void dotNT(float[] out, int outOff, float[] a, int aOff, float[] b, int bOff,
                              float[] bias, int biasOff, int m, int n, int k, boolean accumulate) {
        int groups = (n + 15) / 16;
        long flops = 2L * m * n * k;
        int want = (int) Math.max(1, Math.min(Math.min(groups, 4L * TASKS), flops / TASK_FLOPS));
        int gPer = (groups + want - 1) / want, tasks = (groups + gPer - 1) / gPer;
        Parallel.forEach(tasks, t -> {
            Scratch s = SCRATCH.get();
            float[] res = s.dot, acc = s.acc;
            int[] bo = s.bRows;
            for (int g = t * gPer; g < Math.min(groups, (t + 1) * gPer); g++) {
                int j = g * 16, cols = Math.min(16, n - j);
                // columns past the edge repeat the last one: computed, never stored
                for (int c = 0; c < 16; c++) bo[c] = bOff + Math.min(j + c, n - 1) * k;
                int i = 0;
                for (; i + 4 <= m; i += 4) {
                    int a0 = aOff + i * k;
                    for (int c = 0; c < 16; c += 4) {
                        dot4x4(k, a, a0, a0 + k, a0 + 2 * k, a0 + 3 * k, b, bo[c], bo[c + 1], bo[c + 2], bo[c + 3], acc, s.lanes);
                        for (int r = 0; r < 4; r++)
                            for (int cc = 0; cc < 4; cc++) res[r * 16 + c + cc] = acc[r * 4 + cc];
                    }
                    store(out, outOff, n, i, 4, j, cols, res, bias, biasOff, accumulate);
                }
                for (; i < m; i++) {
                    dot1x16(k, a, aOff + i * k, b, bo, res, s.lanes);
                    store(out, outOff, n, i, 1, j, cols, res, bias, biasOff, accumulate);
                }
            }
        });
    }

    /** out[i0 + r, j + c] (+)= res[r·16 + c] + bias[j + c]. */
    private static void store(float[] out, int outOff, int n, int i0, int rows, int j, int cols, float[] res,
                              float[] bias, int biasOff, boolean accumulate) {
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) {
                float v = res[r * 16 + c];
                if (bias != null) v += bias[biasOff + j + c];
                int o = outOff + (i0 + r) * n + j + c;
                out[o] = accumulate ? out[o] + v : v;
            }
    }

    /** res[r·4 + c] = Σ_p a[ar + p]·b[bc + p] for 4 rows of a and 4 rows of b: lanes, then the k tail (t: 16·L scratch). */
    private static void dot4x4(int k, float[] a, int a0, int a1, int a2, int a3,
                               float[] b, int b0, int b1, int b2, int b3, float[] res, float[] t) {
        FloatVector zero = FloatVector.zero(S);
        FloatVector s00 = zero, s01 = zero, s02 = zero, s03 = zero, s10 = zero, s11 = zero, s12 = zero, s13 = zero,
                s20 = zero, s21 = zero, s22 = zero, s23 = zero, s30 = zero, s31 = zero, s32 = zero, s33 = zero;
        int kv = k - k % L;
        for (int p = 0; p < kv; p += L) {
            FloatVector y0 = FloatVector.fromArray(S, b, b0 + p), y1 = FloatVector.fromArray(S, b, b1 + p),
                    y2 = FloatVector.fromArray(S, b, b2 + p), y3 = FloatVector.fromArray(S, b, b3 + p);
            FloatVector x = FloatVector.fromArray(S, a, a0 + p);
            s00 = x.fma(y0, s00); s01 = x.fma(y1, s01); s02 = x.fma(y2, s02); s03 = x.fma(y3, s03);
            x = FloatVector.fromArray(S, a, a1 + p);
            s10 = x.fma(y0, s10); s11 = x.fma(y1, s11); s12 = x.fma(y2, s12); s13 = x.fma(y3, s13);
            x = FloatVector.fromArray(S, a, a2 + p);
            s20 = x.fma(y0, s20); s21 = x.fma(y1, s21); s22 = x.fma(y2, s22); s23 = x.fma(y3, s23);
            x = FloatVector.fromArray(S, a, a3 + p);
            s30 = x.fma(y0, s30); s31 = x.fma(y1, s31); s32 = x.fma(y2, s32); s33 = x.fma(y3, s33);
        }
        // through memory: 16 vectors as arguments would be boxed
        s00.intoArray(t, 0); s01.intoArray(t, 1 * L); s02.intoArray(t, 2 * L); s03.intoArray(t, 3 * L);
        s10.intoArray(t, 4 * L); s11.intoArray(t, 5 * L); s12.intoArray(t, 6 * L); s13.intoArray(t, 7 * L);
        s20.intoArray(t, 8 * L); s21.intoArray(t, 9 * L); s22.intoArray(t, 10 * L); s23.intoArray(t, 11 * L);
        s30.intoArray(t, 12 * L); s31.intoArray(t, 13 * L); s32.intoArray(t, 14 * L); s33.intoArray(t, 15 * L);
        sum16(t, res);
        for (int p = kv; p < k; p++) {
            float x0 = a[a0 + p], x1 = a[a1 + p], x2 = a[a2 + p], x3 = a[a3 + p];
            float y0 = b[b0 + p], y1 = b[b1 + p], y2 = b[b2 + p], y3 = b[b3 + p];
            res[0] = Math.fma(x0, y0, res[0]); res[1] = Math.fma(x0, y1, res[1]); res[2] = Math.fma(x0, y2, res[2]); res[3] = Math.fma(x0, y3, res[3]);
            res[4] = Math.fma(x1, y0, res[4]); res[5] = Math.fma(x1, y1, res[5]); res[6] = Math.fma(x1, y2, res[6]); res[7] = Math.fma(x1, y3, res[7]);
            res[8] = Math.fma(x2, y0, res[8]); res[9] = Math.fma(x2, y1, res[9]); res[10] = Math.fma(x2, y2, res[10]); res[11] = Math.fma(x2, y3, res[11]);
            res[12] = Math.fma(x3, y0, res[12]); res[13] = Math.fma(x3, y1, res[13]); res[14] = Math.fma(x3, y2, res[14]); res[15] = Math.fma(x3, y3, res[15]);
        }
    }

    /** res[c] = Σ_p a[a0 + p]·b[bo[c] + p] for one row of a and 16 rows of b: lanes, then the k tail (t: 16·L scratch). */
    private static void dot1x16(int k, float[] a, int a0, float[] b, int[] bo, float[] res, float[] t) {
        FloatVector zero = FloatVector.zero(S);
        FloatVector s0 = zero, s1 = zero, s2 = zero, s3 = zero, s4 = zero, s5 = zero, s6 = zero, s7 = zero,
                s8 = zero, s9 = zero, s10 = zero, s11 = zero, s12 = zero, s13 = zero, s14 = zero, s15 = zero;
        int b0 = bo[0], b1 = bo[1], b2 = bo[2], b3 = bo[3], b4 = bo[4], b5 = bo[5], b6 = bo[6], b7 = bo[7],
                b8 = bo[8], b9 = bo[9], b10 = bo[10], b11 = bo[11], b12 = bo[12], b13 = bo[13], b14 = bo[14], b15 = bo[15];
        int kv = k - k % L;
        for (int p = 0; p < kv; p += L) {
            FloatVector x = FloatVector.fromArray(S, a, a0 + p);
            s0 = x.fma(FloatVector.fromArray(S, b, b0 + p), s0); s1 = x.fma(FloatVector.fromArray(S, b, b1 + p), s1);
            s2 = x.fma(FloatVector.fromArray(S, b, b2 + p), s2); s3 = x.fma(FloatVector.fromArray(S, b, b3 + p), s3);
            s4 = x.fma(FloatVector.fromArray(S, b, b4 + p), s4); s5 = x.fma(FloatVector.fromArray(S, b, b5 + p), s5);
            s6 = x.fma(FloatVector.fromArray(S, b, b6 + p), s6); s7 = x.fma(FloatVector.fromArray(S, b, b7 + p), s7);
            s8 = x.fma(FloatVector.fromArray(S, b, b8 + p), s8); s9 = x.fma(FloatVector.fromArray(S, b, b9 + p), s9);
            s10 = x.fma(FloatVector.fromArray(S, b, b10 + p), s10); s11 = x.fma(FloatVector.fromArray(S, b, b11 + p), s11);
            s12 = x.fma(FloatVector.fromArray(S, b, b12 + p), s12); s13 = x.fma(FloatVector.fromArray(S, b, b13 + p), s13);
            s14 = x.fma(FloatVector.fromArray(S, b, b14 + p), s14); s15 = x.fma(FloatVector.fromArray(S, b, b15 + p), s15);
        }
        // through memory: 16 vectors as arguments would be boxed
        s0.intoArray(t, 0); s1.intoArray(t, 1 * L); s2.intoArray(t, 2 * L); s3.intoArray(t, 3 * L);
        s4.intoArray(t, 4 * L); s5.intoArray(t, 5 * L); s6.intoArray(t, 6 * L); s7.intoArray(t, 7 * L);
        s8.intoArray(t, 8 * L); s9.intoArray(t, 9 * L); s10.intoArray(t, 10 * L); s11.intoArray(t, 11 * L);
        s12.intoArray(t, 12 * L); s13.intoArray(t, 13 * L); s14.intoArray(t, 14 * L); s15.intoArray(t, 15 * L);
        sum16(t, res);
        for (int p = kv; p < k; p++)
            for (int c = 0; c < 16; c++) res[c] = Math.fma(a[a0 + p], b[bo[c] + p], res[c]);
    }

    // Lane sums in a fixed order, not reduceLanes (which may associate differently in the interpreter
    // and in compiled code, and so break run-to-run identity). A fold of x and y with bit d gives,
    // at lane l, x[l] + x[l^d] where bit d of l is clear and y[l] + y[l^d] where it is set; four
    // rounds of folds (d = 8, 4, 2, 1) turn 16 vectors of 16 lanes into one vector of 16 sums.
    // (The shuffles and masks are built for any width so that class initialisation never fails.)
    private static final VectorShuffle<Float> SWAP8 = swap(8), SWAP4 = swap(4), SWAP2 = swap(2), SWAP1 = swap(1);
    private static final VectorMask<Float> BIT8 = bitMask(8), BIT4 = bitMask(4), BIT2 = bitMask(2), BIT1 = bitMask(1);
    /** After the folds, lane l holds the sum of vector bit-reverse(l). */
    private static final int[] REVERSED = new int[16];

    static {
        for (int l = 0; l < 16; l++) REVERSED[l] = Integer.reverse(l) >>> 28;
    }

    private static VectorShuffle<Float> swap(int bit) {
        return VectorShuffle.fromOp(S, l -> (l ^ bit) & (L - 1));
    }

    private static VectorMask<Float> bitMask(int bit) {
        boolean[] set = new boolean[L];
        for (int l = 0; l < L; l++) set[l] = (l & bit) != 0;
        return VectorMask.fromArray(S, set, 0);
    }

    /**
     * res[i] = lane sum of the vector stored at t[i·L, (i+1)·L), i < 16, in a fixed order. The
     * folds are written out: a helper taking vectors would be compiled on its own and box them.
     */
    private static void sum16(float[] t, float[] res) {
        if (L != 16) { // other widths: lanes in order
            for (int i = 0; i < 16; i++) {
                float s = 0f;
                for (int l = 0; l < L; l++) s += t[i * L + l];
                res[i] = s;
            }
            return;
        }
        FloatVector v0 = FloatVector.fromArray(S, t, 0), v1 = FloatVector.fromArray(S, t, 1 * L), v2 = FloatVector.fromArray(S, t, 2 * L), v3 = FloatVector.fromArray(S, t, 3 * L);
        FloatVector v4 = FloatVector.fromArray(S, t, 4 * L), v5 = FloatVector.fromArray(S, t, 5 * L), v6 = FloatVector.fromArray(S, t, 6 * L), v7 = FloatVector.fromArray(S, t, 7 * L);
        FloatVector v8 = FloatVector.fromArray(S, t, 8 * L), v9 = FloatVector.fromArray(S, t, 9 * L), v10 = FloatVector.fromArray(S, t, 10 * L), v11 = FloatVector.fromArray(S, t, 11 * L);
        FloatVector v12 = FloatVector.fromArray(S, t, 12 * L), v13 = FloatVector.fromArray(S, t, 13 * L), v14 = FloatVector.fromArray(S, t, 14 * L), v15 = FloatVector.fromArray(S, t, 15 * L);
        FloatVector x0 = v0.blend(v1, BIT8).add(v0.rearrange(SWAP8).blend(v1.rearrange(SWAP8), BIT8));
        FloatVector x1 = v2.blend(v3, BIT8).add(v2.rearrange(SWAP8).blend(v3.rearrange(SWAP8), BIT8));
        FloatVector x2 = v4.blend(v5, BIT8).add(v4.rearrange(SWAP8).blend(v5.rearrange(SWAP8), BIT8));
        FloatVector x3 = v6.blend(v7, BIT8).add(v6.rearrange(SWAP8).blend(v7.rearrange(SWAP8), BIT8));
        FloatVector x4 = v8.blend(v9, BIT8).add(v8.rearrange(SWAP8).blend(v9.rearrange(SWAP8), BIT8));
        FloatVector x5 = v10.blend(v11, BIT8).add(v10.rearrange(SWAP8).blend(v11.rearrange(SWAP8), BIT8));
        FloatVector x6 = v12.blend(v13, BIT8).add(v12.rearrange(SWAP8).blend(v13.rearrange(SWAP8), BIT8));
        FloatVector x7 = v14.blend(v15, BIT8).add(v14.rearrange(SWAP8).blend(v15.rearrange(SWAP8), BIT8));
        FloatVector y0 = x0.blend(x1, BIT4).add(x0.rearrange(SWAP4).blend(x1.rearrange(SWAP4), BIT4));
        FloatVector y1 = x2.blend(x3, BIT4).add(x2.rearrange(SWAP4).blend(x3.rearrange(SWAP4), BIT4));
        FloatVector y2 = x4.blend(x5, BIT4).add(x4.rearrange(SWAP4).blend(x5.rearrange(SWAP4), BIT4));
        FloatVector y3 = x6.blend(x7, BIT4).add(x6.rearrange(SWAP4).blend(x7.rearrange(SWAP4), BIT4));
        FloatVector z0 = y0.blend(y1, BIT2).add(y0.rearrange(SWAP2).blend(y1.rearrange(SWAP2), BIT2));
        FloatVector z1 = y2.blend(y3, BIT2).add(y2.rearrange(SWAP2).blend(y3.rearrange(SWAP2), BIT2));
        FloatVector w = z0.blend(z1, BIT1).add(z0.rearrange(SWAP1).blend(z1.rearrange(SWAP1), BIT1));
        w.intoArray(t, 0);
        for (int l = 0; l < 16; l++) res[REVERSED[l]] = t[l];
    }

    // ---- micro-kernels, written out so that every accumulator stays in a register ----

    /** c[12, NR] (load ? += : =) a-panel[kc][12] · b-panel[kc][NR] (b rows ldb apart). */
    private static void kernel12(int kc, float[] a, int ao, float[] b, int bo, int ldb,
                                 float[] c, int co, int ldc, boolean load) {
        FloatVector zero = FloatVector.zero(S); // made here: a static constant would stay boxed through the loop
        FloatVector c0a = zero, c0b = zero;
        FloatVector c1a = zero, c1b = zero;
        FloatVector c2a = zero, c2b = zero;
        FloatVector c3a = zero, c3b = zero;
        FloatVector c4a = zero, c4b = zero;
        FloatVector c5a = zero, c5b = zero;
        FloatVector c6a = zero, c6b = zero;
        FloatVector c7a = zero, c7b = zero;
        FloatVector c8a = zero, c8b = zero;
        FloatVector c9a = zero, c9b = zero;
        FloatVector c10a = zero, c10b = zero;
        FloatVector c11a = zero, c11b = zero;
        for (int p = 0; p < kc; p++) {
            int bi = bo + p * ldb, ai = ao + p * 12;
            FloatVector b0 = FloatVector.fromArray(S, b, bi), b1 = FloatVector.fromArray(S, b, bi + L);
            FloatVector x = FloatVector.broadcast(S, a[ai]); c0a = b0.fma(x, c0a); c0b = b1.fma(x, c0b);
            x = FloatVector.broadcast(S, a[ai + 1]); c1a = b0.fma(x, c1a); c1b = b1.fma(x, c1b);
            x = FloatVector.broadcast(S, a[ai + 2]); c2a = b0.fma(x, c2a); c2b = b1.fma(x, c2b);
            x = FloatVector.broadcast(S, a[ai + 3]); c3a = b0.fma(x, c3a); c3b = b1.fma(x, c3b);
            x = FloatVector.broadcast(S, a[ai + 4]); c4a = b0.fma(x, c4a); c4b = b1.fma(x, c4b);
            x = FloatVector.broadcast(S, a[ai + 5]); c5a = b0.fma(x, c5a); c5b = b1.fma(x, c5b);
            x = FloatVector.broadcast(S, a[ai + 6]); c6a = b0.fma(x, c6a); c6b = b1.fma(x, c6b);
            x = FloatVector.broadcast(S, a[ai + 7]); c7a = b0.fma(x, c7a); c7b = b1.fma(x, c7b);
            x = FloatVector.broadcast(S, a[ai + 8]); c8a = b0.fma(x, c8a); c8b = b1.fma(x, c8b);
            x = FloatVector.broadcast(S, a[ai + 9]); c9a = b0.fma(x, c9a); c9b = b1.fma(x, c9b);
            x = FloatVector.broadcast(S, a[ai + 10]); c10a = b0.fma(x, c10a); c10b = b1.fma(x, c10b);
            x = FloatVector.broadcast(S, a[ai + 11]); c11a = b0.fma(x, c11a); c11b = b1.fma(x, c11b);
        }
        // two straight branches: a vector merged through a phi would be boxed (JDK 17 C2)
        if (load) {
            c0a.add(FloatVector.fromArray(S, c, co)).intoArray(c, co); c0b.add(FloatVector.fromArray(S, c, co + L)).intoArray(c, co + L);
            c1a.add(FloatVector.fromArray(S, c, co + ldc)).intoArray(c, co + ldc); c1b.add(FloatVector.fromArray(S, c, co + ldc + L)).intoArray(c, co + ldc + L);
            c2a.add(FloatVector.fromArray(S, c, co + 2 * ldc)).intoArray(c, co + 2 * ldc); c2b.add(FloatVector.fromArray(S, c, co + 2 * ldc + L)).intoArray(c, co + 2 * ldc + L);
            c3a.add(FloatVector.fromArray(S, c, co + 3 * ldc)).intoArray(c, co + 3 * ldc); c3b.add(FloatVector.fromArray(S, c, co + 3 * ldc + L)).intoArray(c, co + 3 * ldc + L);
            c4a.add(FloatVector.fromArray(S, c, co + 4 * ldc)).intoArray(c, co + 4 * ldc); c4b.add(FloatVector.fromArray(S, c, co + 4 * ldc + L)).intoArray(c, co + 4 * ldc + L);
            c5a.add(FloatVector.fromArray(S, c, co + 5 * ldc)).intoArray(c, co + 5 * ldc); c5b.add(FloatVector.fromArray(S, c, co + 5 * ldc + L)).intoArray(c, co + 5 * ldc + L);
            c6a.add(FloatVector.fromArray(S, c, co + 6 * ldc)).intoArray(c, co + 6 * ldc); c6b.add(FloatVector.fromArray(S, c, co + 6 * ldc + L)).intoArray(c, co + 6 * ldc + L);
            c7a.add(FloatVector.fromArray(S, c, co + 7 * ldc)).intoArray(c, co + 7 * ldc); c7b.add(FloatVector.fromArray(S, c, co + 7 * ldc + L)).intoArray(c, co + 7 * ldc + L);
            c8a.add(FloatVector.fromArray(S, c, co + 8 * ldc)).intoArray(c, co + 8 * ldc); c8b.add(FloatVector.fromArray(S, c, co + 8 * ldc + L)).intoArray(c, co + 8 * ldc + L);
            c9a.add(FloatVector.fromArray(S, c, co + 9 * ldc)).intoArray(c, co + 9 * ldc); c9b.add(FloatVector.fromArray(S, c, co + 9 * ldc + L)).intoArray(c, co + 9 * ldc + L);
            c10a.add(FloatVector.fromArray(S, c, co + 10 * ldc)).intoArray(c, co + 10 * ldc); c10b.add(FloatVector.fromArray(S, c, co + 10 * ldc + L)).intoArray(c, co + 10 * ldc + L);
            c11a.add(FloatVector.fromArray(S, c, co + 11 * ldc)).intoArray(c, co + 11 * ldc); c11b.add(FloatVector.fromArray(S, c, co + 11 * ldc + L)).intoArray(c, co + 11 * ldc + L);
        } else {
            c0a.intoArray(c, co); c0b.intoArray(c, co + L);
            c1a.intoArray(c, co + ldc); c1b.intoArray(c, co + ldc + L);
            c2a.intoArray(c, co + 2 * ldc); c2b.intoArray(c, co + 2 * ldc + L);
            c3a.intoArray(c, co + 3 * ldc); c3b.intoArray(c, co + 3 * ldc + L);
            c4a.intoArray(c, co + 4 * ldc); c4b.intoArray(c, co + 4 * ldc + L);
            c5a.intoArray(c, co + 5 * ldc); c5b.intoArray(c, co + 5 * ldc + L);
            c6a.intoArray(c, co + 6 * ldc); c6b.intoArray(c, co + 6 * ldc + L);
            c7a.intoArray(c, co + 7 * ldc); c7b.intoArray(c, co + 7 * ldc + L);
            c8a.intoArray(c, co + 8 * ldc); c8b.intoArray(c, co + 8 * ldc + L);
            c9a.intoArray(c, co + 9 * ldc); c9b.intoArray(c, co + 9 * ldc + L);
            c10a.intoArray(c, co + 10 * ldc); c10b.intoArray(c, co + 10 * ldc + L);
            c11a.intoArray(c, co + 11 * ldc); c11b.intoArray(c, co + 11 * ldc + L);
        }
    }

    /**
     * c[4, 2·NR] (load ? += : =) a-panel[kc][4] · [b-panel at bo1 | b-panel at bo2] (both [kc][NR]):
     * two panels read side by side, so two streams of B are in flight at once. Each element's sum
     * is the one {@link #kernel4} computes.
     */
    private static void kernel4x2(int kc, float[] a, int ao, float[] b, int bo1, int bo2,
                                  float[] c, int co, int ldc, boolean load) {
        FloatVector zero = FloatVector.zero(S);
        FloatVector c0a = zero, c0b = zero, c0c = zero, c0d = zero;
        FloatVector c1a = zero, c1b = zero, c1c = zero, c1d = zero;
        FloatVector c2a = zero, c2b = zero, c2c = zero, c2d = zero;
        FloatVector c3a = zero, c3b = zero, c3c = zero, c3d = zero;
        for (int p = 0; p < kc; p++) {
            int bi = bo1 + p * NR, bj = bo2 + p * NR, ai = ao + p * 4;
            FloatVector b0 = FloatVector.fromArray(S, b, bi), b1 = FloatVector.fromArray(S, b, bi + L);
            FloatVector b2 = FloatVector.fromArray(S, b, bj), b3 = FloatVector.fromArray(S, b, bj + L);
            FloatVector x = FloatVector.broadcast(S, a[ai]);
            c0a = b0.fma(x, c0a); c0b = b1.fma(x, c0b); c0c = b2.fma(x, c0c); c0d = b3.fma(x, c0d);
            x = FloatVector.broadcast(S, a[ai + 1]);
            c1a = b0.fma(x, c1a); c1b = b1.fma(x, c1b); c1c = b2.fma(x, c1c); c1d = b3.fma(x, c1d);
            x = FloatVector.broadcast(S, a[ai + 2]);
            c2a = b0.fma(x, c2a); c2b = b1.fma(x, c2b); c2c = b2.fma(x, c2c); c2d = b3.fma(x, c2d);
            x = FloatVector.broadcast(S, a[ai + 3]);
            c3a = b0.fma(x, c3a); c3b = b1.fma(x, c3b); c3c = b2.fma(x, c3c); c3d = b3.fma(x, c3d);
        }
        int o1 = co + ldc, o2 = co + 2 * ldc, o3 = co + 3 * ldc;
        // two straight branches: a vector merged through a phi would be boxed (JDK 17 C2)
        if (load) {
            c0a.add(FloatVector.fromArray(S, c, co)).intoArray(c, co); c0b.add(FloatVector.fromArray(S, c, co + L)).intoArray(c, co + L);
            c0c.add(FloatVector.fromArray(S, c, co + 2 * L)).intoArray(c, co + 2 * L); c0d.add(FloatVector.fromArray(S, c, co + 3 * L)).intoArray(c, co + 3 * L);
            c1a.add(FloatVector.fromArray(S, c, o1)).intoArray(c, o1); c1b.add(FloatVector.fromArray(S, c, o1 + L)).intoArray(c, o1 + L);
            c1c.add(FloatVector.fromArray(S, c, o1 + 2 * L)).intoArray(c, o1 + 2 * L); c1d.add(FloatVector.fromArray(S, c, o1 + 3 * L)).intoArray(c, o1 + 3 * L);
            c2a.add(FloatVector.fromArray(S, c, o2)).intoArray(c, o2); c2b.add(FloatVector.fromArray(S, c, o2 + L)).intoArray(c, o2 + L);
            c2c.add(FloatVector.fromArray(S, c, o2 + 2 * L)).intoArray(c, o2 + 2 * L); c2d.add(FloatVector.fromArray(S, c, o2 + 3 * L)).intoArray(c, o2 + 3 * L);
            c3a.add(FloatVector.fromArray(S, c, o3)).intoArray(c, o3); c3b.add(FloatVector.fromArray(S, c, o3 + L)).intoArray(c, o3 + L);
            c3c.add(FloatVector.fromArray(S, c, o3 + 2 * L)).intoArray(c, o3 + 2 * L); c3d.add(FloatVector.fromArray(S, c, o3 + 3 * L)).intoArray(c, o3 + 3 * L);
        } else {
            c0a.intoArray(c, co); c0b.intoArray(c, co + L); c0c.intoArray(c, co + 2 * L); c0d.intoArray(c, co + 3 * L);
            c1a.intoArray(c, o1); c1b.intoArray(c, o1 + L); c1c.intoArray(c, o1 + 2 * L); c1d.intoArray(c, o1 + 3 * L);
            c2a.intoArray(c, o2); c2b.intoArray(c, o2 + L); c2c.intoArray(c, o2 + 2 * L); c2d.intoArray(c, o2 + 3 * L);
            c3a.intoArray(c, o3); c3b.intoArray(c, o3 + L); c3c.intoArray(c, o3 + 2 * L); c3d.intoArray(c, o3 + 3 * L);
        }
    }

    /** c[4, NR] (load ? += : =) a-panel[kc][4] · b-panel[kc][NR] (b rows ldb apart). */
    private static void kernel4(int kc, float[] a, int ao, float[] b, int bo, int ldb,
                                 float[] c, int co, int ldc, boolean load) {
        FloatVector zero = FloatVector.zero(S); // made here: a static constant would stay boxed through the loop
        FloatVector c0a = zero, c0b = zero;
        FloatVector c1a = zero, c1b = zero;
        FloatVector c2a = zero, c2b = zero;
        FloatVector c3a = zero, c3b = zero;
        for (int p = 0; p < kc; p++) {
            int bi = bo + p * ldb, ai = ao + p * 4;
            FloatVector b0 = FloatVector.fromArray(S, b, bi), b1 = FloatVector.fromArray(S, b, bi + L);
            FloatVector x = FloatVector.broadcast(S, a[ai]); c0a = b0.fma(x, c0a); c0b = b1.fma(x, c0b);
            x = FloatVector.broadcast(S, a[ai + 1]); c1a = b0.fma(x, c1a); c1b = b1.fma(x, c1b);
            x = FloatVector.broadcast(S, a[ai + 2]); c2a = b0.fma(x, c2a); c2b = b1.fma(x, c2b);
            x = FloatVector.broadcast(S, a[ai + 3]); c3a = b0.fma(x, c3a); c3b = b1.fma(x, c3b);
        }
        // two straight branches: a vector merged through a phi would be boxed (JDK 17 C2)
        if (load) {
            c0a.add(FloatVector.fromArray(S, c, co)).intoArray(c, co); c0b.add(FloatVector.fromArray(S, c, co + L)).intoArray(c, co + L);
            c1a.add(FloatVector.fromArray(S, c, co + ldc)).intoArray(c, co + ldc); c1b.add(FloatVector.fromArray(S, c, co + ldc + L)).intoArray(c, co + ldc + L);
            c2a.add(FloatVector.fromArray(S, c, co + 2 * ldc)).intoArray(c, co + 2 * ldc); c2b.add(FloatVector.fromArray(S, c, co + 2 * ldc + L)).intoArray(c, co + 2 * ldc + L);
            c3a.add(FloatVector.fromArray(S, c, co + 3 * ldc)).intoArray(c, co + 3 * ldc); c3b.add(FloatVector.fromArray(S, c, co + 3 * ldc + L)).intoArray(c, co + 3 * ldc + L);
        } else {
            c0a.intoArray(c, co); c0b.intoArray(c, co + L);
            c1a.intoArray(c, co + ldc); c1b.intoArray(c, co + ldc + L);
            c2a.intoArray(c, co + 2 * ldc); c2b.intoArray(c, co + 2 * ldc + L);
            c3a.intoArray(c, co + 3 * ldc); c3b.intoArray(c, co + 3 * ldc + L);
        }
    }
}
