// Causal grouped-query attention forward on bf16 q/k/v with tensor cores (Kernels.attentionBf16):
// the semantics of attention.cu's attention_forward (fp32 out, fp32 log-sum-exp per row, zeros on
// padding rows), FlashAttention-2 style: S = Q·Kᵀ and O += P·V on mma.m16n8k16, the online
// softmax in fp32 registers, nothing of size t × t anywhere.
//
// Layout as attention.cu: qkv rows are [q heads | k heads | v heads] × headDim (bf16), row (s, i)
// at s·t + i; query head h reads kv head h / (heads / kvHeads); row i of sequence s sees keys
// j ≤ i with j < lengths[s]; scale 1/sqrt(headDim). headDim is a multiple of 16 (one mma k-step)
// and ≤ DMAX of the instantiation: attention_forward_bf16_d64 for headDim ≤ 64, _d128 for ≤ 128.
//
// Launch shape: grid (ceil(t / 64), heads, b), block (128), no dynamic shared memory (static:
// two 64 × (DMAX + 8) bf16 tiles, 17 KiB for d64, 34 KiB for d128). A block owns 64 query rows of
// one query head; warp w owns rows 16w .. 16w+15 of them, keeps its Q fragments in registers for
// the whole loop, and walks tiles of 64 keys up to the block's last row (causal): per tile one
// 16 × 64 score block per warp (8 n8 tiles), its online softmax (running max and sum per row),
// then P (rounded to bf16 in registers: the mma's A fragment is the score accumulator's layout)
// times the V tile via ldmatrix.trans. K and V of a tile land in shared memory as two cp.async
// groups, so V arrives while the warps score K, and the next K while they multiply V.
//
// Precision: scores, softmax statistics, lse and the O accumulator are fp32; P is rounded to
// bf16 before P·V (the only rounding beyond the bf16 inputs); the row sum l uses the unrounded p,
// so lse = m + log(l) is the fp32 statistic the fp32 backward expects.
//
// Loads: chunks of 8 elements (16 bytes). headDim % 16 == 0 puts every head of every row at a
// multiple of 32 bytes from the base, so cp.async is used whenever the base is 16-byte aligned,
// plain loads otherwise. Rows past the tile's valid range are zero-filled: a poisoned (NaN) V row
// times p = 0 would still give NaN.

#include "common/ptx.cuh"

namespace hg_attn_bf16 {

constexpr int BQ = 64;      // query rows per block
constexpr int BK = 64;      // keys per tile
constexpr int THREADS = 128; // 4 warps × 16 query rows
constexpr int PAD = 8;      // elements per shared row: 16-byte aligned rows, conflict-free ldmatrix

// dst (64 rows, stride DMAX + PAD) = columns [col, col + headDim) of rows r0 .. r0+63 of seq
// (row stride width), zero for rows ≥ rowEnd.
template <int DMAX>
static __device__ inline void load_rows(uint16_t* dst, const uint16_t* seq, int r0, int rowEnd, int col, int width,
                                        int headDim, bool vec) {
    int perRow = headDim / 8;
    for (int ch = threadIdx.x; ch < BK * perRow; ch += THREADS) {
        int r = ch / perRow, c = ch % perRow * 8; // consecutive threads walk a row: coalesced
        bool in = r0 + r < rowEnd;
        const uint16_t* src = seq + (size_t)(r0 + r) * width + col + c;
        uint16_t* d = dst + r * (DMAX + PAD) + c;
        if (vec) {
            hg::cp_async_16_zfill(d, in ? src : seq, in ? 16 : 0);
        } else {
            #pragma unroll
            for (int e = 0; e < 8; e++) d[e] = in ? src[e] : 0;
        }
    }
}

// max and sum over the 4 lanes (t = 0..3) that share a fragment row g
static __device__ inline float quad_max(float v) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
static __device__ inline float quad_sum(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

template <int DMAX>
static __device__ inline void forward(uint16_t* Ks, uint16_t* Vs, float* out, float* lse, const uint16_t* qkv,
                                      const int* lengths, int t, int heads, int kvHeads, int headDim) {
    constexpr int STRIDE = DMAX + PAD;
    constexpr int KSTEPS = DMAX / 16; // mma k-steps over the head dim (those ≥ headDim / 16 skipped)
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, tq = lane % 4;
    int s = blockIdx.z, h = blockIdx.y, kvh = h / (heads / kvHeads);
    int q0 = blockIdx.x * BQ;
    int width = (heads + 2 * kvHeads) * headDim;
    int len = min(lengths[s], t);
    int nks = headDim / 16;
    const uint16_t* seq = qkv + (size_t)s * t * width;
    bool vec = (uintptr_t)qkv % 16 == 0;
    float scale = (float)(1.0 / sqrt((double)headDim)); // rounded once, as the CPU twin does
    int rowW = q0 + 16 * warp;                          // the warp's first row

    // Q of the block's rows → (via the V tile's memory) each warp's A fragments, kept in registers
    load_rows<DMAX>(Vs, seq, q0, len, h * headDim, width, headDim, vec);
    hg::cp_async_wait_all();
    __syncthreads();
    uint32_t qf[KSTEPS][4];
    #pragma unroll
    for (int ks = 0; ks < KSTEPS; ks++)
        if (ks < nks) hg::ldmatrix_x4(qf[ks], Vs + (16 * warp + lane % 16) * STRIDE + 16 * ks + lane / 16 * 8);
    __syncthreads(); // every warp has its Q before V overwrites it

    // fragment rows g and g + 8 of the warp: m, l per row (l: this lane's partial sum), o per dim
    float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};
    float o[DMAX / 8][4] = {};

    int keyEnd = min(len, q0 + BQ); // the block's rows see keys [0, keyEnd)
    int kCol = (heads + kvh) * headDim, vCol = (heads + kvHeads + kvh) * headDim;
    if (keyEnd > 0) {
        load_rows<DMAX>(Ks, seq, 0, keyEnd, kCol, width, headDim, vec);
        hg::cp_async_commit();
        load_rows<DMAX>(Vs, seq, 0, keyEnd, vCol, width, headDim, vec);
        hg::cp_async_commit();
    }
    for (int j0 = 0; j0 < keyEnd; j0 += BK) {
        bool next = j0 + BK < keyEnd;
        // a warp whose rows are all padding, or all before the tile, only helps load
        bool work = rowW < len && j0 <= rowW + 15;
        hg::cp_async_wait<1>(); // K of this tile (V may still be in flight)
        __syncthreads();

        float sc[BK / 8][4] = {};
        if (work) {
            #pragma unroll
            for (int ks = 0; ks < KSTEPS; ks++) {
                if (ks >= nks) continue;
                #pragma unroll
                for (int jn = 0; jn < BK / 16; jn++) { // keys 16jn .. 16jn+15: two n8 tiles
                    uint32_t r4[4];
                    hg::ldmatrix_x4(r4, Ks + (16 * jn + lane / 16 * 8 + lane % 8) * STRIDE + 16 * ks + lane / 8 % 2 * 8);
                    uint32_t b0[2] = {r4[0], r4[1]}, b1[2] = {r4[2], r4[3]};
                    hg::mma_bf16_16816(sc[2 * jn], qf[ks], b0, sc[2 * jn]);
                    hg::mma_bf16_16816(sc[2 * jn + 1], qf[ks], b1, sc[2 * jn + 1]);
                }
            }
        }
        __syncthreads(); // every warp is done with Ks: the next tile's K may land there
        if (next) {
            load_rows<DMAX>(Ks, seq, j0 + BK, keyEnd, kCol, width, headDim, vec);
            hg::cp_async_commit();
            hg::cp_async_wait<1>(); // V of this tile
        } else {
            hg::cp_async_wait<0>();
        }
        __syncthreads();

        if (work) {
            // online softmax: element e of n8 tile jn is row g + 8·(e / 2), key j0 + 8jn + 2tq + e % 2
            uint32_t pf[BK / 16][4]; // P as the A fragments of the 4 k-steps of P·V
            #pragma unroll
            for (int r = 0; r < 2; r++) {
                int i = rowW + g + 8 * r;
                float mx = -INFINITY;
                #pragma unroll
                for (int jn = 0; jn < BK / 8; jn++)
                    #pragma unroll
                    for (int e = 0; e < 2; e++) {
                        int j = j0 + 8 * jn + 2 * tq + e;
                        float x = j <= i && j < len ? sc[jn][2 * r + e] * scale : -INFINITY;
                        sc[jn][2 * r + e] = x;
                        mx = fmaxf(mx, x);
                    }
                float m_new = fmaxf(m_run[r], quad_max(mx));
                float m_use = m_new == -INFINITY ? 0.0f : m_new; // a padding row: every p = 0, no NaN
                float corr = expf(m_run[r] - m_use);               // 0 on the row's first tile
                float sum = 0.0f;
                #pragma unroll
                for (int jn = 0; jn < BK / 8; jn++)
                    #pragma unroll
                    for (int e = 0; e < 2; e++) {
                        float p = expf(sc[jn][2 * r + e] - m_use);
                        sc[jn][2 * r + e] = p;
                        sum += p;
                    }
                l_run[r] = l_run[r] * corr + sum;
                m_run[r] = m_new;
                #pragma unroll
                for (int dn = 0; dn < DMAX / 8; dn++) {
                    o[dn][2 * r] *= corr;
                    o[dn][2 * r + 1] *= corr;
                }
            }
            // a[0] = P[g][2t..], a[1] = P[g+8][2t..] (keys 0-7 of the k-step), a[2], a[3] keys 8-15
            #pragma unroll
            for (int kk = 0; kk < BK / 16; kk++) {
                pf[kk][0] = hg::pack_bf16x2(sc[2 * kk][0], sc[2 * kk][1]);
                pf[kk][1] = hg::pack_bf16x2(sc[2 * kk][2], sc[2 * kk][3]);
                pf[kk][2] = hg::pack_bf16x2(sc[2 * kk + 1][0], sc[2 * kk + 1][1]);
                pf[kk][3] = hg::pack_bf16x2(sc[2 * kk + 1][2], sc[2 * kk + 1][3]);
            }
            // O += P·V: B[k][n] = V[key k][dim n], read transposed from the [key][dim] tile
            #pragma unroll
            for (int kk = 0; kk < BK / 16; kk++) {
                if (j0 + 16 * kk > rowW + 15) continue; // keys past the warp's last row: p = 0
                #pragma unroll
                for (int dn = 0; dn < DMAX / 16; dn++) { // dims 16dn .. 16dn+15: two n8 tiles
                    if (dn >= nks) continue;
                    uint32_t r4[4];
                    hg::ldmatrix_x4_trans(r4, Vs + (16 * kk + lane % 16) * STRIDE + 16 * dn + lane / 16 * 8);
                    uint32_t b0[2] = {r4[0], r4[1]}, b1[2] = {r4[2], r4[3]};
                    hg::mma_bf16_16816(o[2 * dn], pf[kk], b0, o[2 * dn]);
                    hg::mma_bf16_16816(o[2 * dn + 1], pf[kk], b1, o[2 * dn + 1]);
                }
            }
        }
        __syncthreads(); // every warp is done with Vs: the next tile's V may land there
        if (next) {
            load_rows<DMAX>(Vs, seq, j0 + BK, keyEnd, vCol, width, headDim, vec);
            hg::cp_async_commit();
        }
    }

    // out = o / l, lse = m + log(l); padding rows (i ≥ len) get zeros
    #pragma unroll
    for (int r = 0; r < 2; r++) {
        int i = rowW + g + 8 * r;
        float l = quad_sum(l_run[r]);
        if (i >= t) continue;
        bool valid = i < len;
        float inv = valid ? 1.0f / l : 0.0f;
        float* orow = out + ((size_t)s * t + i) * heads * headDim + h * headDim;
        #pragma unroll
        for (int dn = 0; dn < DMAX / 8; dn++) {
            if (dn >= 2 * nks) continue;
            orow[8 * dn + 2 * tq] = valid ? o[dn][2 * r] * inv : 0.0f;
            orow[8 * dn + 2 * tq + 1] = valid ? o[dn][2 * r + 1] * inv : 0.0f;
        }
        if (tq == 0) lse[((size_t)s * heads + h) * t + i] = valid ? m_run[r] + logf(l) : 0.0f;
    }
}

} // namespace hg_attn_bf16

extern "C" __global__ __launch_bounds__(hg_attn_bf16::THREADS) void attention_forward_bf16_d64(
    float* out, float* lse, const __nv_bfloat16* qkv, const int* lengths, int t, int heads, int kvHeads, int headDim) {
    using namespace hg_attn_bf16;
    __shared__ __align__(16) uint16_t Ks[BK * (64 + PAD)];
    __shared__ __align__(16) uint16_t Vs[BK * (64 + PAD)];
    forward<64>(Ks, Vs, out, lse, reinterpret_cast<const uint16_t*>(qkv), lengths, t, heads, kvHeads, headDim);
}

extern "C" __global__ __launch_bounds__(hg_attn_bf16::THREADS) void attention_forward_bf16_d128(
    float* out, float* lse, const __nv_bfloat16* qkv, const int* lengths, int t, int heads, int kvHeads, int headDim) {
    using namespace hg_attn_bf16;
    __shared__ __align__(16) uint16_t Ks[BK * (128 + PAD)];
    __shared__ __align__(16) uint16_t Vs[BK * (128 + PAD)];
    forward<128>(Ks, Vs, out, lse, reinterpret_cast<const uint16_t*>(qkv), lengths, t, heads, kvHeads, headDim);
}
