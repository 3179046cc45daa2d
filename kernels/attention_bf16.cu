// Causal grouped-query attention forward and backward on bf16 q/k/v with tensor cores. Forward
// (Kernels.attentionBf16): the semantics of attention.cu's attention_forward (fp32 out, fp32 log-sum-exp per row, zeros on
// padding rows), FlashAttention-2 style: S = Q·Kᵀ and O += P·V on mma.m16n8k16, the online
// softmax in fp32 registers, nothing of size t × t anywhere.
//
// Layout as attention.cu: qkv rows are [q heads | k heads | v heads] × headDim (bf16), row (s, i)
// at s·t + i; query head h reads kv head h / (heads / kvHeads); row i of sequence s sees keys
// j ≤ i with j < lengths[s]; scale 1/sqrt(headDim). headDim is a multiple of 16 (one mma k-step)
// and ≤ DMAX of the instantiation: attention_forward_bf16_d64 for headDim ≤ 64, _d128 for ≤ 128.
//
// Forward launch shape: grid (ceil(t / 64), heads, b), block (128), no dynamic shared memory (static:
// two 64 × (DMAX + 8) bf16 tiles, 17 KiB for d64, 34 KiB for d128). A block owns 64 query rows of
// one query head; warp w owns rows 16w .. 16w+15 of them, keeps its Q fragments in registers for
// the whole loop, and walks tiles of 64 keys up to the block's last row (causal): per tile one
// 16 × 64 score block per warp (8 n8 tiles), its online softmax (running max and sum per row),
// then P (rounded to bf16 in registers: the mma's A fragment is the score accumulator's layout)
// times the V tile via ldmatrix.trans. K and V of a tile land in shared memory as two cp.async
// groups, so V arrives while the warps score K, and the next K while they multiply V.
//
// Backward (Kernels.attentionBackwardBf16), the semantics of attention.cu's attention_backward_dq
// and _dkv: D_i = dout_i · out_i (fp32, with dout rounded to bf16 as dP sees it),
// p = exp(s · scale − lse), ds = p (dp − D) · scale, dq = ds·K, dk = dsᵀ·Q, dv = pᵀ·dout; dk/dv
// of a kv head sum over its query heads. Two kernels because dq and dk/dv have different owners
// (FlashAttention-2's split), neither uses atomics:
//   attention_backward_bf16_dq_d64/_d128: grid (ceil(t / 64), heads, b), block (128). A block owns
//     64 query rows of one query head, warp w rows 16w .. 16w+15; Q and dout (cast to bf16 while
//     staged) are A fragments in registers; per tile of keys (64 for d64, 32 for d128: registers)
//     S = Q·Kᵀ and dP = dout·Vᵀ on the mma, ds in fp32, then dq += dS·K (K read transposed).
//     Static shared: the block's Q and dout, reused for the K and V tiles (18.25 KiB d64, 34.25 KiB d128).
//   attention_backward_bf16_dkv_d64/_d128: grid (ceil(t / 64), kvHeads, b), block (128). A block
//     owns 64 keys of one kv head, warp w keys 16w .. 16w+15 (K and V tiles stay in shared memory);
//     it walks the group's query heads and, per head, tiles of query rows i ≥ its first key (64
//     rows for d64, 16 for d128: 48 KiB static shared memory), computing Sᵀ = K·Qᵀ and dPᵀ = V·doutᵀ,
//     then dv += Pᵀ·dout and dk += dSᵀ·Q with dk, dv in fp32 registers summed in that fixed order.
//     Static shared: K, V, Q, dout tiles + lse and D of the query tile (36.5 KiB d64, 42.6 KiB d128).
//   Registers (ptxas, sm_80–90, no spills): dq 168 (d64) / 202 (d128), dk/dv 167–190 / 190–199.
//   Every element of dqkv is written: padding rows (i ≥ lengths[s]) get zeros. Precision: dout is
//   rounded to bf16 as an mma operand, p and ds only as the A operands of dv, dk, dq; S, dP, p, ds,
//   D and the accumulators are fp32.
//
// Precision (forward): scores, softmax statistics, lse and the O accumulator are fp32; P is
// rounded to bf16 before P·V (the only rounding beyond the bf16 inputs); the row sum l uses the unrounded p,
// so lse = m + log(l) is the fp32 statistic the fp32 backward expects.
//
// Loads: chunks of 8 elements (16 bytes). headDim % 16 == 0 puts every head of every row at a
// multiple of 32 bytes from the base, so cp.async is used whenever the base is 16-byte aligned,
// plain loads otherwise. Rows past the tile's valid range are zero-filled: a poisoned (NaN) V row
// times p = 0 would still give NaN.

#include "common/launch.cuh"
#include "common/ptx.cuh"
#include "common/reduce.cuh"

namespace hg_attn_bf16 {

constexpr int BQ = hg_launch::ATTENTION_BF16_ROWS;         // query rows per block
constexpr int BK = 64;      // keys per tile
constexpr int THREADS = hg_launch::ATTENTION_BF16_THREADS; // 4 warps × 16 query rows
constexpr int PAD = 8;      // elements per shared row: 16-byte aligned rows, conflict-free ldmatrix

// dst (NROWS rows, stride DMAX + PAD) = columns [col, col + headDim) of rows r0 .. r0+63 of seq
// (row stride width), zero for rows ≥ rowEnd.
template <int DMAX, int NROWS = BK>
static __device__ inline void load_rows(uint16_t* dst, const uint16_t* seq, int r0, int rowEnd, int col, int width,
                                        int headDim, bool vec) {
    int perRow = headDim / 8;
    for (int ch = threadIdx.x; ch < NROWS * perRow; ch += THREADS) {
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


// ---- backward ----

// 8 fp32 elements → 8 bf16 in shared memory (dout is staged as an mma operand); zeros when !in.
static __device__ inline void stage_f32_as_bf16(uint16_t* d, const float* src, bool in) {
    #pragma unroll
    for (int e = 0; e < 8; e += 2) {
        uint32_t v = in ? hg::pack_bf16x2(src[e], src[e + 1]) : 0u;
        memcpy(d + e, &v, 4);
    }
}

// dst (rows r0 .. r0+nrows−1, stride DMAX + PAD) = head h of dout rows (seq base doutSeq, row
// stride qWidth) as bf16, zero for rows ≥ rowEnd.
template <int DMAX>
static __device__ inline void load_dout_rows(uint16_t* dst, int nrows, const float* doutSeq, int r0, int rowEnd,
                                             int col, int qWidth, int headDim) {
    int perRow = headDim / 8;
    for (int ch = threadIdx.x; ch < nrows * perRow; ch += THREADS) {
        int r = ch / perRow, c = ch % perRow * 8;
        bool in = r0 + r < rowEnd;
        stage_f32_as_bf16(dst + r * (DMAX + PAD) + c, doutSeq + (size_t)(r0 + r) * qWidth + col + c, in);
    }
}

// D_i = dout_i · out_i (head col of rows r0 .. r0+nrows−1; 0 for rows ≥ rowEnd) into Dsm, one warp a
// row, with dout rounded to bf16 as dP's mma sees it: then Σ_j p_ij (dp_ij − D_i) cancels as it does
// in exact arithmetic, instead of leaving dout's rounding in every ds (it biases the k gradients).
static __device__ inline void row_deltas(float* Dsm, int nrows, const float* doutSeq, const float* outSeq, int r0,
                                         int rowEnd, int col, int qWidth, int headDim) {
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int r = warp; r < nrows; r += THREADS / 32) {
        float acc = 0.0f;
        if (r0 + r < rowEnd) {
            size_t o = (size_t)(r0 + r) * qWidth + col;
            for (int d = lane; d < headDim; d += 32) acc += __bfloat162float(__float2bfloat16_rn(doutSeq[o + d])) * outSeq[o + d];
        }
        acc = hg::warp_sum(acc);
        if (lane == 0) Dsm[r] = acc;
    }
}

// C (16 × 8·NT, fp32 fragments) += A (16 rows at Arow of a [row][dim] tile) · Bᵀ, where B's
// n-rows are NT·8 rows at Brow of another [row][dim] tile: C[i][j] = Σ_d A[i][d] · B[j][d].
// Both tiles are read with ldmatrix (no trans), k-steps over the head dim.
template <int DMAX, int NT>
static __device__ inline void mma_abt(float (&c)[NT][4], const uint16_t* Arow, const uint16_t* Brow, int nks) {
    constexpr int STRIDE = DMAX + PAD;
    int lane = threadIdx.x % 32;
    #pragma unroll
    for (int ks = 0; ks < DMAX / 16; ks++) {
        if (ks >= nks) continue;
        uint32_t a[4];
        hg::ldmatrix_x4(a, Arow + (lane % 16) * STRIDE + 16 * ks + lane / 16 * 8);
        #pragma unroll
        for (int jn = 0; jn < NT / 2; jn++) { // B rows 16jn .. 16jn+15: two n8 tiles
            uint32_t r4[4];
            hg::ldmatrix_x4(r4, Brow + (16 * jn + lane / 16 * 8 + lane % 8) * STRIDE + 16 * ks + lane / 8 % 2 * 8);
            uint32_t b0[2] = {r4[0], r4[1]}, b1[2] = {r4[2], r4[3]};
            hg::mma_bf16_16816(c[2 * jn], a, b0, c[2 * jn]);
            hg::mma_bf16_16816(c[2 * jn + 1], a, b1, c[2 * jn + 1]);
        }
    }
}

// acc (16 × DMAX) += X (16 × 16·KT, fp32 fragments of the score layout, rounded to bf16 here) ·
// T (rows 0 .. 16·KT−1 of a [row][dim] tile, read transposed): the P·V shape of the forward.
template <int DMAX, int KT>
static __device__ inline void mma_xt(float (&acc)[DMAX / 8][4], const float (&x)[2 * KT][4], const uint16_t* T, int nks) {
    constexpr int STRIDE = DMAX + PAD;
    int lane = threadIdx.x % 32;
    #pragma unroll
    for (int kk = 0; kk < KT; kk++) {
        uint32_t a[4] = {hg::pack_bf16x2(x[2 * kk][0], x[2 * kk][1]), hg::pack_bf16x2(x[2 * kk][2], x[2 * kk][3]),
                         hg::pack_bf16x2(x[2 * kk + 1][0], x[2 * kk + 1][1]),
                         hg::pack_bf16x2(x[2 * kk + 1][2], x[2 * kk + 1][3])};
        #pragma unroll
        for (int dn = 0; dn < DMAX / 16; dn++) {
            if (dn >= nks) continue;
            uint32_t r4[4];
            hg::ldmatrix_x4_trans(r4, T + (16 * kk + lane % 16) * STRIDE + 16 * dn + lane / 16 * 8);
            uint32_t b0[2] = {r4[0], r4[1]}, b1[2] = {r4[2], r4[3]};
            hg::mma_bf16_16816(acc[2 * dn], a, b0, acc[2 * dn]);
            hg::mma_bf16_16816(acc[2 * dn + 1], a, b1, acc[2 * dn + 1]);
        }
    }
}

// dq of 64 query rows of one query head (block), 16 per warp; key tiles of BKT keys.
template <int DMAX, int BKT>
static __device__ inline void backward_dq(uint16_t* buf, float* Dsm, float* dqkv, const float* dout,
                                          const uint16_t* qkv, const float* out, const float* lse, const int* lengths,
                                          int t, int heads, int kvHeads, int headDim) {
    constexpr int STRIDE = DMAX + PAD;
    constexpr int KSTEPS = DMAX / 16;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, tq = lane % 4;
    int s = blockIdx.z, h = blockIdx.y, kvh = h / (heads / kvHeads);
    int q0 = blockIdx.x * BQ, rowW = q0 + 16 * warp;
    int width = (heads + 2 * kvHeads) * headDim, qWidth = heads * headDim;
    int len = min(lengths[s], t);
    int nks = headDim / 16;
    const uint16_t* seq = qkv + (size_t)s * t * width;
    const float* doutSeq = dout + (size_t)s * t * qWidth;
    const float* outSeq = out + (size_t)s * t * qWidth;
    bool vec = (uintptr_t)qkv % 16 == 0;
    float scale = (float)(1.0 / sqrt((double)headDim));

    // Q and dout (as bf16) of the block's rows → each warp's A fragments, kept in registers; then
    // the same shared memory holds the K and V tiles.
    uint16_t *Qs = buf, *dOs = buf + BQ * STRIDE, *Ks = buf, *Vs = buf + BKT * STRIDE;
    load_rows<DMAX>(Qs, seq, q0, len, h * headDim, width, headDim, vec);
    hg::cp_async_commit();
    load_dout_rows<DMAX>(dOs, BQ, doutSeq, q0, len, h * headDim, qWidth, headDim);
    row_deltas(Dsm, BQ, doutSeq, outSeq, q0, len, h * headDim, qWidth, headDim);
    hg::cp_async_wait<0>();
    __syncthreads();
    uint32_t qf[KSTEPS][4], of[KSTEPS][4];
    #pragma unroll
    for (int ks = 0; ks < KSTEPS; ks++)
        if (ks < nks) {
            hg::ldmatrix_x4(qf[ks], Qs + (16 * warp + lane % 16) * STRIDE + 16 * ks + lane / 16 * 8);
            hg::ldmatrix_x4(of[ks], dOs + (16 * warp + lane % 16) * STRIDE + 16 * ks + lane / 16 * 8);
        }
    float rowLse[2], rowD[2];
    #pragma unroll
    for (int r = 0; r < 2; r++) {
        int i = rowW + g + 8 * r;
        rowLse[r] = i < len ? lse[((size_t)s * heads + h) * t + i] : 0.0f;
        rowD[r] = Dsm[16 * warp + g + 8 * r];
    }
    float dq[DMAX / 8][4] = {};

    int keyEnd = min(len, q0 + BQ);
    int kCol = (heads + kvh) * headDim, vCol = (heads + kvHeads + kvh) * headDim;
    for (int j0 = 0; j0 < keyEnd; j0 += BKT) {
        __syncthreads(); // every warp is done with the previous tile (or with Q and dout)
        load_rows<DMAX, BKT>(Ks, seq, j0, keyEnd, kCol, width, headDim, vec);
        load_rows<DMAX, BKT>(Vs, seq, j0, keyEnd, vCol, width, headDim, vec);
        hg::cp_async_commit();
        hg::cp_async_wait<0>();
        __syncthreads();
        if (rowW >= len || j0 > rowW + 15) continue; // padding rows, or keys all past the warp's rows

        float sc[BKT / 8][4] = {}, dp[BKT / 8][4] = {};
        #pragma unroll
        for (int ks = 0; ks < KSTEPS; ks++) {
            if (ks >= nks) continue;
            #pragma unroll
            for (int jn = 0; jn < BKT / 16; jn++) {
                uint32_t r4[4];
                int off = (16 * jn + lane / 16 * 8 + lane % 8) * STRIDE + 16 * ks + lane / 8 % 2 * 8;
                hg::ldmatrix_x4(r4, Ks + off);
                uint32_t b0[2] = {r4[0], r4[1]}, b1[2] = {r4[2], r4[3]};
                hg::mma_bf16_16816(sc[2 * jn], qf[ks], b0, sc[2 * jn]);
                hg::mma_bf16_16816(sc[2 * jn + 1], qf[ks], b1, sc[2 * jn + 1]);
                hg::ldmatrix_x4(r4, Vs + off);
                uint32_t c0[2] = {r4[0], r4[1]}, c1[2] = {r4[2], r4[3]};
                hg::mma_bf16_16816(dp[2 * jn], of[ks], c0, dp[2 * jn]);
                hg::mma_bf16_16816(dp[2 * jn + 1], of[ks], c1, dp[2 * jn + 1]);
            }
        }
        // ds = p (dp − D) · scale in place of sc: element e of n8 tile jn is row g + 8·(e / 2), key j0 + 8jn + 2tq + e % 2
        #pragma unroll
        for (int jn = 0; jn < BKT / 8; jn++)
            #pragma unroll
            for (int e = 0; e < 4; e++) {
                int r = e / 2, i = rowW + g + 8 * r, j = j0 + 8 * jn + 2 * tq + e % 2;
                float p = j <= i && j < len && i < len ? expf(sc[jn][e] * scale - rowLse[r]) : 0.0f;
                sc[jn][e] = p * (dp[jn][e] - rowD[r]) * scale;
            }
        mma_xt<DMAX, BKT / 16>(dq, sc, Ks, nks); // dq += dS·K
    }

    #pragma unroll
    for (int r = 0; r < 2; r++) {
        int i = rowW + g + 8 * r;
        if (i >= t) continue;
        bool valid = i < len;
        float* row = dqkv + ((size_t)s * t + i) * width + h * headDim;
        #pragma unroll
        for (int dn = 0; dn < DMAX / 8; dn++) {
            if (dn >= 2 * nks) continue;
            row[8 * dn + 2 * tq] = valid ? dq[dn][2 * r] : 0.0f;
            row[8 * dn + 2 * tq + 1] = valid ? dq[dn][2 * r + 1] : 0.0f;
        }
    }
}

// dk, dv of 64 keys of one kv head (block), 16 per warp, summed over the group's query heads and
// tiles of QT query rows in a fixed order (deterministic, no atomics).
template <int DMAX, int QT>
static __device__ inline void backward_dkv(uint16_t* Ks, uint16_t* Vs, uint16_t* Qs, uint16_t* dOs, float* Ls,
                                           float* Dsm, float* dqkv, const float* dout, const uint16_t* qkv,
                                           const float* out, const float* lse, const int* lengths, int t, int heads,
                                           int kvHeads, int headDim) {
    constexpr int NT = QT / 8; // n8 tiles of query rows per warp
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, tq = lane % 4;
    int s = blockIdx.z, kvh = blockIdx.y, group = heads / kvHeads;
    int k0 = blockIdx.x * BK, keyW = k0 + 16 * warp; // the warp's first key
    int width = (heads + 2 * kvHeads) * headDim, qWidth = heads * headDim;
    int len = min(lengths[s], t);
    int nks = headDim / 16;
    const uint16_t* seq = qkv + (size_t)s * t * width;
    const float* doutSeq = dout + (size_t)s * t * qWidth;
    const float* outSeq = out + (size_t)s * t * qWidth;
    bool vec = (uintptr_t)qkv % 16 == 0;
    float scale = (float)(1.0 / sqrt((double)headDim));
    constexpr int STRIDE = DMAX + PAD;

    int kCol = (heads + kvh) * headDim, vCol = (heads + kvHeads + kvh) * headDim;
    load_rows<DMAX>(Ks, seq, k0, len, kCol, width, headDim, vec);
    load_rows<DMAX>(Vs, seq, k0, len, vCol, width, headDim, vec);
    hg::cp_async_commit();
    float dk[DMAX / 8][4] = {}, dv[DMAX / 8][4] = {};

    for (int h = kvh * group; h < (kvh + 1) * group; h++) {
        for (int i0 = k0; i0 < len; i0 += QT) { // causal: query rows i ≥ the block's first key
            __syncthreads(); // every warp is done with the previous query tile
            load_rows<DMAX, QT>(Qs, seq, i0, len, h * headDim, width, headDim, vec);
            hg::cp_async_commit();
            load_dout_rows<DMAX>(dOs, QT, doutSeq, i0, len, h * headDim, qWidth, headDim);
            row_deltas(Dsm, QT, doutSeq, outSeq, i0, len, h * headDim, qWidth, headDim);
            for (int r = threadIdx.x; r < QT; r += THREADS)
                Ls[r] = i0 + r < len ? lse[((size_t)s * heads + h) * t + i0 + r] : 0.0f;
            hg::cp_async_wait<0>();
            __syncthreads();
            if (keyW >= len || i0 + QT - 1 < keyW) continue; // padding keys, or rows all before the warp's keys

            // Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ: rows are the warp's keys, columns the tile's query rows
            float st[NT][4] = {}, dpt[NT][4] = {};
            mma_abt<DMAX, NT>(st, Ks + 16 * warp * STRIDE, Qs, nks);
            mma_abt<DMAX, NT>(dpt, Vs + 16 * warp * STRIDE, dOs, nks);
            // element e of n8 tile jn: key keyW + g + 8·(e / 2), query row i0 + 8jn + 2tq + e % 2
            #pragma unroll
            for (int jn = 0; jn < NT; jn++)
                #pragma unroll
                for (int e = 0; e < 4; e++) {
                    int j = keyW + g + 8 * (e / 2), ii = 8 * jn + 2 * tq + e % 2, i = i0 + ii;
                    float p = j <= i && i < len && j < len ? expf(st[jn][e] * scale - Ls[ii]) : 0.0f;
                    st[jn][e] = p;
                    dpt[jn][e] = p * (dpt[jn][e] - Dsm[ii]) * scale;
                }
            mma_xt<DMAX, QT / 16>(dv, st, dOs, nks);  // dv += Pᵀ·dO
            mma_xt<DMAX, QT / 16>(dk, dpt, Qs, nks);  // dk += dSᵀ·Q
        }
    }
    hg::cp_async_wait<0>(); // a block with no query tile still drains its K, V loads

    #pragma unroll
    for (int r = 0; r < 2; r++) {
        int j = keyW + g + 8 * r;
        if (j >= t) continue;
        bool valid = j < len;
        float* row = dqkv + ((size_t)s * t + j) * width;
        #pragma unroll
        for (int dn = 0; dn < DMAX / 8; dn++) {
            if (dn >= 2 * nks) continue;
            int d = 8 * dn + 2 * tq;
            row[kCol + d] = valid ? dk[dn][2 * r] : 0.0f;
            row[kCol + d + 1] = valid ? dk[dn][2 * r + 1] : 0.0f;
            row[vCol + d] = valid ? dv[dn][2 * r] : 0.0f;
            row[vCol + d + 1] = valid ? dv[dn][2 * r + 1] : 0.0f;
        }
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

// dq: BKT keys per tile, 32 for d128 so that Q, dout and dq fragments and two score blocks fit
// the registers. Shared: Q and dout of the block's 64 rows, reused for the K and V tiles.
extern "C" __global__ __launch_bounds__(hg_attn_bf16::THREADS) void attention_backward_bf16_dq_d64(
    float* dqkv, const float* dout, const __nv_bfloat16* qkv, const float* out, const float* lse, const int* lengths,
    int t, int heads, int kvHeads, int headDim) {
    using namespace hg_attn_bf16;
    __shared__ __align__(16) uint16_t buf[2 * BQ * (64 + PAD)];
    __shared__ float Dsm[BQ];
    backward_dq<64, 64>(buf, Dsm, dqkv, dout, reinterpret_cast<const uint16_t*>(qkv), out, lse, lengths, t, heads,
                        kvHeads, headDim);
}

extern "C" __global__ __launch_bounds__(hg_attn_bf16::THREADS) void attention_backward_bf16_dq_d128(
    float* dqkv, const float* dout, const __nv_bfloat16* qkv, const float* out, const float* lse, const int* lengths,
    int t, int heads, int kvHeads, int headDim) {
    using namespace hg_attn_bf16;
    __shared__ __align__(16) uint16_t buf[2 * BQ * (128 + PAD)];
    __shared__ float Dsm[BQ];
    backward_dq<128, 32>(buf, Dsm, dqkv, dout, reinterpret_cast<const uint16_t*>(qkv), out, lse, lengths, t, heads,
                         kvHeads, headDim);
}

// dk/dv: QT query rows per tile, 16 for d128 so that K, V (64 keys) and Q, dout fit 48 KiB static
// shared memory and dk, dv (128 fp32 per lane) leave room for the score blocks.
extern "C" __global__ __launch_bounds__(hg_attn_bf16::THREADS) void attention_backward_bf16_dkv_d64(
    float* dqkv, const float* dout, const __nv_bfloat16* qkv, const float* out, const float* lse, const int* lengths,
    int t, int heads, int kvHeads, int headDim) {
    using namespace hg_attn_bf16;
    constexpr int QT = 64;
    __shared__ __align__(16) uint16_t Ks[BK * (64 + PAD)];
    __shared__ __align__(16) uint16_t Vs[BK * (64 + PAD)];
    __shared__ __align__(16) uint16_t Qs[QT * (64 + PAD)];
    __shared__ __align__(16) uint16_t dOs[QT * (64 + PAD)];
    __shared__ float Ls[QT], Dsm[QT];
    backward_dkv<64, QT>(Ks, Vs, Qs, dOs, Ls, Dsm, dqkv, dout, reinterpret_cast<const uint16_t*>(qkv), out, lse,
                         lengths, t, heads, kvHeads, headDim);
}

extern "C" __global__ __launch_bounds__(hg_attn_bf16::THREADS) void attention_backward_bf16_dkv_d128(
    float* dqkv, const float* dout, const __nv_bfloat16* qkv, const float* out, const float* lse, const int* lengths,
    int t, int heads, int kvHeads, int headDim) {
    using namespace hg_attn_bf16;
    constexpr int QT = 16;
    __shared__ __align__(16) uint16_t Ks[BK * (128 + PAD)];
    __shared__ __align__(16) uint16_t Vs[BK * (128 + PAD)];
    __shared__ __align__(16) uint16_t Qs[QT * (128 + PAD)];
    __shared__ __align__(16) uint16_t dOs[QT * (128 + PAD)];
    __shared__ float Ls[QT], Dsm[QT];
    backward_dkv<128, QT>(Ks, Vs, Qs, dOs, Ls, Dsm, dqkv, dout, reinterpret_cast<const uint16_t*>(qkv), out, lse,
                          lengths, t, heads, kvHeads, headDim);
}
