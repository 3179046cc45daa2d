// Causal grouped-query attention over right-padded batches (Kernels.attention,
// attentionBackward) and decode over per-sequence KV caches (Kernels.kvCacheWrite,
// decodeAttention). fp32, flash-style: online softmax, nothing of size t × t in device memory,
// the backward recomputes p from the saved log-sum-exp.
//
// Layout: qkv rows are [q heads | k heads | v heads] × headDim, row (s, i) at s·t + i; query head
// h reads kv head h / (heads / kvHeads); row i of sequence s sees keys j ≤ i with j < lengths[s];
// scale 1/sqrt(headDim). headDim ≤ 128 (MAX_D): a lane owns dims lane + 32·u of a row.
//
// Launch shapes. group = heads / kvHeads query heads share a kv head; a block stages each tile of
// 32 keys/values of its kv head in shared memory once and every warp of the block uses it, so
// K and V are read once per kv head, not once per query head. The group is cut into the fewest
// slices of at most MAX_WARPS heads, evenly: slices = ceil(group / 8), hpb = ceil(group / slices)
// heads per block; rows = max(1, 8 / hpb) query rows per block (CudaKernels.attentionShape):
//   group 1 → 8 rows × 1 head, 2 → 4 × 2, 3 → 2 × 3, 4 → 2 × 4, 5…8 → 1 × group (Qwen2.5-0.5B's
//   14/2: 7 warps), 14 → 2 slices of 1 × 7. So 5 to 8 warps (160–256 threads) per block.
//   attention_forward, attention_backward_dq: grid (ceil(t / rows), kvHeads · slices, b), block
//     (32, rows, hpb): warp (y, z) takes query row blockIdx.x · rows + y of head z of the block's
//     slice; blockIdx.y = g · slices + slice. Lane l scores key j0 + l of a tile; the tile's
//     scores go through an online softmax (running max and sum), so no score row is ever
//     materialised; forward saves the log-sum-exp of each row, the backward's dq recomputes
//     p = exp(s − lse). Static shared memory: 41.25 KiB (dq), 37.25 KiB (forward, decode).
//   attention_backward_dkv: grid (ceil(t / 4), kvHeads, b), block (32, 4): one warp per key row
//     j of a kv head; it walks the query heads of the group and tiles of 32 query rows i ≥ j,
//     so dk and dv of a row are summed by one warp in a fixed order (no atomics, deterministic).
//     dq and dk/dv are two kernels because they have different owners.
//   kv_cache_write: grid (m), block (32…256 threads, a power of two sized to kvHeads·headDim): one
//     block per packed qkv row.
//   decode_attention: grid (kvHeads · slices, b), block (32, 1, hpb): one warp per (sequence,
//     query head), the block's warps share tiles of 32 cached keys (loaded coalesced, once per kv
//     head) with the same online softmax as the forward.
// Padding rows (i ≥ lengths[s]) get zeros in out, lse, dq, dk and dv.

#include "common/cuda_compat.cuh"
#include "common/launch.cuh"
#include "common/reduce.cuh"

namespace hg_attn {

constexpr int KT = 32;            // keys (or query rows) per shared-memory tile: one per lane
constexpr int ROWS = hg_launch::ATTENTION_DKV_ROWS;       // attention_backward_dkv: warps per block
constexpr int MAX_WARPS = hg_launch::ATTENTION_MAX_WARPS; // forward, dq, decode: at most rows × hpb warps per block
constexpr int MAX_D = hg_launch::ATTENTION_MAX_D;
constexpr int DPL = MAX_D / 32;   // dims per lane
constexpr int STRIDE = MAX_D + 1; // tiles read row-per-lane are padded: conflict-free banks

static __device__ inline float dot(const float* a, const float* b, int n) {
    float s = 0.0f;
    for (int d = 0; d < n; d++) s += a[d] * b[d];
    return s;
}

/** Keys and values of kv head g for sequence rows j0 .. j0+nk−1 into the block's shared tiles (all threads). */
static __device__ inline void load_kv_tile(float (*Ks)[STRIDE], float (*Vs)[STRIDE], const float* seq, int j0, int nk,
                                           int width, int heads, int kvHeads, int g, int headDim, int tid, int threads) {
    for (int e = tid; e < nk * headDim; e += threads) {
        int jj = e / headDim, d = e % headDim;
        const float* r = seq + (size_t)(j0 + jj) * width;
        Ks[jj][d] = r[(heads + g) * headDim + d];
        Vs[jj][d] = r[(heads + kvHeads + g) * headDim + d];
    }
}

// 1/sqrt(headDim) rounded once, as the CPU twin computes it
static __device__ inline float attention_scale(int headDim) {
    return (float)(1.0 / sqrt((double)headDim));
}

/** Who a warp of a grouped block (forward, dq, decode) is: see the launch shapes above. */
struct GroupWarp {
    int lane, warp, tid, threads; // warp: index into the block's per-warp shared rows
    int g, h;                     // kv head of the block, query head of the warp
    bool head;                    // h exists (the last slice of a group may be short)
};

// headBlock: the block's index along the grid dimension of kvHeads · slices blocks
static __device__ inline GroupWarp group_warp(int headBlock, int headBlocks, int heads, int kvHeads) {
    GroupWarp w;
    int group = heads / kvHeads, slices = headBlocks / kvHeads;
    int inGroup = headBlock % slices * (int)blockDim.z + (int)threadIdx.z;
    w.lane = threadIdx.x;
    w.warp = threadIdx.z * blockDim.y + threadIdx.y;
    w.tid = w.warp * 32 + w.lane;
    w.threads = 32 * blockDim.y * blockDim.z;
    w.g = headBlock / slices;
    w.head = inGroup < group;
    w.h = w.g * group + inGroup;
    return w;
}

} // namespace hg_attn

extern "C" __global__ void attention_forward(float* out, float* lse, const float* qkv, const int* lengths,
                                             int t, int heads, int kvHeads, int headDim) {
    using namespace hg_attn;
    __shared__ float Ks[KT][STRIDE];
    __shared__ float Vs[KT][STRIDE];
    __shared__ float Qs[MAX_WARPS][MAX_D];
    __shared__ float Ps[MAX_WARPS][KT];
    GroupWarp w = group_warp(blockIdx.y, gridDim.y, heads, kvHeads);
    int lane = w.lane, warp = w.warp, h = w.h, s = blockIdx.z;
    int width = (heads + 2 * kvHeads) * headDim;
    int len = min(lengths[s], t);
    int row0 = blockIdx.x * blockDim.y, i = row0 + threadIdx.y;
    bool active = w.head && i < len; // uniform within the warp
    const float* seq = qkv + (size_t)s * t * width;
    float scale = attention_scale(headDim);

    if (active)
        for (int d = lane; d < headDim; d += 32) Qs[warp][d] = seq[(size_t)i * width + h * headDim + d];
    float m_run = -INFINITY, l_run = 0.0f, acc[DPL] = {};

    int keyEnd = min(len, row0 + (int)blockDim.y); // the block's rows see keys [0, keyEnd)
    for (int j0 = 0; j0 < keyEnd; j0 += KT) {
        int nk = min(KT, keyEnd - j0);
        __syncthreads(); // the previous tile (K, V and every warp's Ps) has been consumed
        load_kv_tile(Ks, Vs, seq, j0, nk, width, heads, kvHeads, w.g, headDim, w.tid, w.threads);
        __syncthreads();
        if (!active || j0 > i) continue;
        int j = j0 + lane;
        float score = j <= i ? dot(Qs[warp], Ks[lane], headDim) * scale : -INFINITY;
        float m_new = fmaxf(m_run, hg::warp_max(score));
        float p = j <= i ? expf(score - m_new) : 0.0f;
        float corr = expf(m_run - m_new); // 0 on the first tile (m_run = −inf)
        l_run = l_run * corr + hg::warp_sum(p);
        Ps[warp][lane] = p;
        __syncwarp();
        int nv = min(KT, i - j0 + 1); // only keys ≤ i: rows past them were never loaded
        for (int u = 0; u < DPL; u++) {
            int d = lane + 32 * u;
            if (d >= headDim) break;
            float a = acc[u] * corr;
            for (int jj = 0; jj < nv; jj++) a += Ps[warp][jj] * Vs[jj][d];
            acc[u] = a;
        }
        m_run = m_new;
    }

    if (!w.head || i >= t) return;
    float* o = out + ((size_t)s * t + i) * heads * headDim + h * headDim;
    float inv = active ? 1.0f / l_run : 0.0f;
    for (int u = 0; u < DPL; u++) {
        int d = lane + 32 * u;
        if (d < headDim) o[d] = active ? acc[u] * inv : 0.0f;
    }
    if (lane == 0) lse[((size_t)s * heads + h) * t + i] = active ? m_run + logf(l_run) : 0.0f;
}

// dq_i = scale · Σ_j p_ij (dout_i·v_j − delta_i) k_j, with delta_i = dout_i·out_i
extern "C" __global__ void attention_backward_dq(float* dqkv, const float* dout, const float* qkv, const float* out,
                                                 const float* lse, const int* lengths,
                                                 int t, int heads, int kvHeads, int headDim) {
    using namespace hg_attn;
    __shared__ float Ks[KT][STRIDE];
    __shared__ float Vs[KT][STRIDE];
    __shared__ float Qs[MAX_WARPS][MAX_D];
    __shared__ float dOs[MAX_WARPS][MAX_D];
    __shared__ float DSs[MAX_WARPS][KT];
    GroupWarp w = group_warp(blockIdx.y, gridDim.y, heads, kvHeads);
    int lane = w.lane, warp = w.warp, h = w.h, s = blockIdx.z;
    int width = (heads + 2 * kvHeads) * headDim, qWidth = heads * headDim;
    int len = min(lengths[s], t);
    int row0 = blockIdx.x * blockDim.y, i = row0 + threadIdx.y;
    bool active = w.head && i < len;
    const float* seq = qkv + (size_t)s * t * width;
    size_t orow = ((size_t)s * t + i) * qWidth + h * headDim; // this row's head in dout and out
    float scale = attention_scale(headDim);

    float delta = 0.0f, row_lse = 0.0f;
    if (active) {
        for (int d = lane; d < headDim; d += 32) {
            Qs[warp][d] = seq[(size_t)i * width + h * headDim + d];
            dOs[warp][d] = dout[orow + d];
        }
        delta = dot(dout + orow, out + orow, headDim); // every lane, in the CPU twin's order
        row_lse = lse[((size_t)s * heads + h) * t + i];
    }
    float acc[DPL] = {};

    int keyEnd = min(len, row0 + (int)blockDim.y);
    for (int j0 = 0; j0 < keyEnd; j0 += KT) {
        int nk = min(KT, keyEnd - j0);
        __syncthreads(); // the previous tile (K, V and every warp's DSs) has been consumed
        load_kv_tile(Ks, Vs, seq, j0, nk, width, heads, kvHeads, w.g, headDim, w.tid, w.threads);
        __syncthreads();
        if (!active || j0 > i) continue;
        int j = j0 + lane;
        float ds = 0.0f;
        if (j <= i) {
            float p = expf(dot(Qs[warp], Ks[lane], headDim) * scale - row_lse);
            float dp = dot(dOs[warp], Vs[lane], headDim);
            ds = p * (dp - delta) * scale;
        }
        DSs[warp][lane] = ds;
        __syncwarp();
        int nv = min(KT, i - j0 + 1);
        for (int u = 0; u < DPL; u++) {
            int d = lane + 32 * u;
            if (d >= headDim) break;
            float a = acc[u];
            for (int jj = 0; jj < nv; jj++) a += DSs[warp][jj] * Ks[jj][d];
            acc[u] = a;
        }
    }

    if (!w.head || i >= t) return;
    float* dq = dqkv + ((size_t)s * t + i) * width + h * headDim;
    for (int u = 0; u < DPL; u++) {
        int d = lane + 32 * u;
        if (d < headDim) dq[d] = active ? acc[u] : 0.0f;
    }
}

// dk_j = scale · Σ_{h in group} Σ_{i ≥ j} p_ij (dout_i·v_j − delta_i) q_i,  dv_j = Σ_h Σ_{i ≥ j} p_ij dout_i
extern "C" __global__ void attention_backward_dkv(float* dqkv, const float* dout, const float* qkv, const float* out,
                                                  const float* lse, const int* lengths,
                                                  int t, int heads, int kvHeads, int headDim) {
    using namespace hg_attn;
    __shared__ float Qs[KT][STRIDE];
    __shared__ float dOs[KT][STRIDE];
    __shared__ float Kw[ROWS][MAX_D];
    __shared__ float Vw[ROWS][MAX_D];
    __shared__ float Ls[KT], Ds[KT];
    __shared__ float Ps[ROWS][KT], DSs[ROWS][KT];
    int lane = threadIdx.x, warp = threadIdx.y, tid = warp * 32 + lane;
    int s = blockIdx.z, g = blockIdx.y, group = heads / kvHeads;
    int width = (heads + 2 * kvHeads) * headDim, qWidth = heads * headDim;
    int len = min(lengths[s], t);
    int row0 = blockIdx.x * ROWS, j = row0 + warp;
    bool active = j < len;
    const float* seq = qkv + (size_t)s * t * width;
    float scale = attention_scale(headDim);

    if (active)
        for (int d = lane; d < headDim; d += 32) {
            Kw[warp][d] = seq[(size_t)j * width + (heads + g) * headDim + d];
            Vw[warp][d] = seq[(size_t)j * width + (heads + kvHeads + g) * headDim + d];
        }
    float dk[DPL] = {}, dv[DPL] = {};

    for (int h = g * group; h < (g + 1) * group; h++) {
        for (int i0 = row0; i0 < len; i0 += KT) { // query rows i ≥ the block's first key
            int nq = min(KT, len - i0);
            __syncthreads(); // the previous tile (Q, dO and every warp's Ps, DSs) has been consumed
            for (int e = tid; e < nq * headDim; e += 32 * ROWS) {
                int ii = e / headDim, d = e % headDim;
                Qs[ii][d] = seq[(size_t)(i0 + ii) * width + h * headDim + d];
                dOs[ii][d] = dout[((size_t)s * t + i0 + ii) * qWidth + h * headDim + d];
            }
            for (int ii = tid; ii < nq; ii += 32 * ROWS) {
                size_t orow = ((size_t)s * t + i0 + ii) * qWidth + h * headDim;
                Ls[ii] = lse[((size_t)s * heads + h) * t + i0 + ii];
                Ds[ii] = dot(dout + orow, out + orow, headDim);
            }
            __syncthreads();
            if (!active) continue;
            int i = i0 + lane;
            float p = 0.0f, ds = 0.0f;
            if (lane < nq && i >= j) {
                p = expf(dot(Qs[lane], Kw[warp], headDim) * scale - Ls[lane]);
                float dp = dot(dOs[lane], Vw[warp], headDim);
                ds = p * (dp - Ds[lane]) * scale;
            }
            Ps[warp][lane] = p;
            DSs[warp][lane] = ds;
            __syncwarp();
            for (int u = 0; u < DPL; u++) {
                int d = lane + 32 * u;
                if (d >= headDim) break;
                float a = dk[u], b = dv[u];
                for (int ii = 0; ii < nq; ii++) {
                    a += DSs[warp][ii] * Qs[ii][d];
                    b += Ps[warp][ii] * dOs[ii][d];
                }
                dk[u] = a;
                dv[u] = b;
            }
        }
    }

    if (j >= t) return;
    float* row = dqkv + ((size_t)s * t + j) * width;
    for (int u = 0; u < DPL; u++) {
        int d = lane + 32 * u;
        if (d >= headDim) break;
        row[(heads + g) * headDim + d] = active ? dk[u] : 0.0f;
        row[(heads + kvHeads + g) * headDim + d] = active ? dv[u] : 0.0f;
    }
}

// Caches are [sequences, kvHeads, maxT, headDim]; row r goes to sequence rowSeq[r] at position
// rowPos[r]. Negative positions are padding; positions ≥ maxT or sequences ≥ nSeq are skipped
// (a device cannot throw; the CPU twin does).
extern "C" __global__ void kv_cache_write(float* kCache, float* vCache, const float* qkv, const int* rowSeq,
                                          const int* rowPos, int maxT, int heads, int kvHeads, int headDim, int nSeq) {
    int r = blockIdx.x;
    int p = rowPos[r], s = rowSeq[r];
    if (p < 0 || p >= maxT || s < 0 || s >= nSeq) return;
    const float* row = qkv + (size_t)r * (heads + 2 * kvHeads) * headDim;
    for (int e = threadIdx.x; e < kvHeads * headDim; e += blockDim.x) {
        int g = e / headDim, d = e % headDim;
        size_t dst = (((size_t)s * kvHeads + g) * maxT + p) * headDim + d;
        kCache[dst] = row[(heads + g) * headDim + d];
        vCache[dst] = row[(heads + kvHeads + g) * headDim + d];
    }
}

extern "C" __global__ void decode_attention(float* out, const float* qkv, const float* kCache, const float* vCache,
                                            const int* lengths, int maxT, int heads, int kvHeads, int headDim) {
    using namespace hg_attn;
    __shared__ float Ks[KT][STRIDE];
    __shared__ float Vs[KT][STRIDE];
    __shared__ float Qs[MAX_WARPS][MAX_D];
    __shared__ float Ps[MAX_WARPS][KT];
    GroupWarp w = group_warp(blockIdx.x, gridDim.x, heads, kvHeads);
    int lane = w.lane, warp = w.warp, h = w.h, s = blockIdx.y;
    int width = (heads + 2 * kvHeads) * headDim;
    int n = min(lengths[s], maxT);
    float scale = attention_scale(headDim);
    if (w.head)
        for (int d = lane; d < headDim; d += 32) Qs[warp][d] = qkv[(size_t)s * width + h * headDim + d];
    const float* K = kCache + ((size_t)s * kvHeads + w.g) * maxT * headDim;
    const float* V = vCache + ((size_t)s * kvHeads + w.g) * maxT * headDim;

    float m_run = -INFINITY, l_run = 0.0f, acc[DPL] = {};
    for (int j0 = 0; j0 < n; j0 += KT) {
        int nk = min(KT, n - j0);
        __syncthreads(); // the previous tile (K, V and every warp's Ps) has been consumed
        for (int e = w.tid; e < nk * headDim; e += w.threads) { // cache rows are contiguous
            Ks[e / headDim][e % headDim] = K[(size_t)j0 * headDim + e];
            Vs[e / headDim][e % headDim] = V[(size_t)j0 * headDim + e];
        }
        __syncthreads();
        if (!w.head) continue;
        int j = j0 + lane;
        float score = j < n ? dot(Qs[warp], Ks[lane], headDim) * scale : -INFINITY;
        float m_new = fmaxf(m_run, hg::warp_max(score));
        float p = j < n ? expf(score - m_new) : 0.0f;
        float corr = expf(m_run - m_new);
        l_run = l_run * corr + hg::warp_sum(p);
        Ps[warp][lane] = p;
        __syncwarp();
        for (int u = 0; u < DPL; u++) {
            int d = lane + 32 * u;
            if (d >= headDim) break;
            float a = acc[u] * corr;
            for (int jj = 0; jj < nk; jj++) a += Ps[warp][jj] * Vs[jj][d];
            acc[u] = a;
        }
        m_run = m_new;
    }
    if (!w.head) return;
    float* o = out + (size_t)s * heads * headDim + h * headDim;
    for (int u = 0; u < DPL; u++) {
        int d = lane + 32 * u;
        if (d < headDim) o[d] = n > 0 ? acc[u] / l_run : 0.0f; // an empty cache attends to nothing
    }
}
