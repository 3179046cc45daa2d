// bf16 tensor-core GEMM with fp32 accumulation (Kernels.gemmBf16): the layouts of gemm.cu with
// bf16 operands, an fp32 output and an optional fp32 bias.
//
// out[m,n] = op(a)·op(b) (+ bias[n]), written or (accumulate ≠ 0) added to out:
//   gemm_bf16_nt: a[m,k] · b[n,k]ᵀ   (Linear forward, weights stored [out, in])
//   gemm_bf16_nn: a[m,k] · b[k,n]    (gradient of a Linear's input)
//   gemm_bf16_tn: a[k,m]ᵀ · b[k,n]   (gradient of a Linear's weight)
//
// Launch shapes:
//   gemm_bf16_*: grid (ceil(n / 128), ceil(m / 128)), block (256), no dynamic shared memory
//     (40 KiB static). A block computes a 128×128 tile of out with 8 warps in a 2 (m) × 4 (n)
//     grid, each warp a 64×32 tile: 4×4 mma.m16n8k16 per 16 of k, accumulating in registers.
//     k advances 32 at a time through two shared-memory stages: cp.async fills one stage while
//     the warps multiply the other.
//
// Shared tiles keep each operand as it is stored (its contiguous dimension contiguous), so a
// 16-byte global chunk lands as one 16-byte shared chunk. Fragments come from ldmatrix on the
// [x][k] tiles (a of NT/NN, b of NT: k contiguous, as mma's row-major A and "col" B want) and from
// ldmatrix.trans on the [k][x] tiles (a of TN, b of NN/TN). Each shared row is padded by 8
// elements: row starts stay 16-byte aligned (ldmatrix, cp.async) and the 8 rows one ldmatrix
// matrix reads fall in distinct banks (row strides of 80 and 272 bytes).
//
// Edges and alignment: tile elements past m, n or k are zero in shared memory, so they add
// nothing. An operand is copied with cp.async (16 bytes = 8 elements per copy) only when its base
// address is 16-byte aligned and its row length (k for a [x][k] operand, m or n for a [k][x] one)
// is a multiple of 8: then every chunk starts 16-byte aligned and lies wholly inside or wholly
// past the row, and a chunk past an edge is a zero-filling cp.async of 0 source bytes. Otherwise
// (a Buf slice at an odd offset, an odd k, ...) that operand takes plain guarded 2-byte loads
// into the same tiles: correct for any shape, slower.

#include "common/launch.cuh"
#include "common/ptx.cuh"

namespace hg_gemm_bf16 {

constexpr int BM = hg_launch::GEMM_BF16_TILE, BN = hg_launch::GEMM_BF16_TILE, BK = 32, THREADS = hg_launch::GEMM_BF16_THREADS;
constexpr int WM = 64, WN = 32;         // one warp's tile of out
constexpr int PAD = 8;                  // elements added to each shared row (16 bytes)
constexpr int STAGE = BM * (BK + PAD);  // elements of one operand's stage, [x][k] (128×40) or [k][x] (32×136)
static_assert(BN == BM && BK * (BM + PAD) <= STAGE, "one stage size fits both orientations");
static_assert(BM / WM * (BN / WN) * 32 == THREADS, "8 warps cover the block tile");

// dst (ROWS × COLS, row stride COLS + PAD) = the tile at (r0, c0) of a row-major rows × cols
// matrix src, zero past its edges. vec: cp.async 16-byte chunks (see the header for when).
template <int ROWS, int COLS>
static __device__ inline void load_tile(uint16_t* dst, const uint16_t* src, int rows, int cols, int r0, int c0,
                                        bool vec) {
    constexpr int CHUNKS = ROWS * COLS / 8;
    static_assert(CHUNKS % THREADS == 0, "every thread copies the same number of chunks");
    for (int ch = threadIdx.x; ch < CHUNKS; ch += THREADS) {
        int r = ch / (COLS / 8), c = ch % (COLS / 8) * 8; // consecutive threads walk a row: coalesced
        int gr = r0 + r, gc = c0 + c;
        uint16_t* d = dst + r * (COLS + PAD) + c;
        if (vec) {
            bool in = gr < rows && gc < cols;
            hg::cp_async_16_zfill(d, in ? src + (size_t)gr * cols + gc : src, in ? 16 : 0);
        } else {
            #pragma unroll
            for (int e = 0; e < 8; e++) d[e] = gr < rows && gc + e < cols ? src[(size_t)gr * cols + gc + e] : 0;
        }
    }
}

// A_KM: a is stored [k, m] (TN); otherwise [m, k]. B_KN: b is stored [k, n] (NN, TN); otherwise [n, k] (NT).
template <bool A_KM, bool B_KN>
static __device__ inline void gemm_block(uint16_t* As, uint16_t* Bs, float* out, const uint16_t* a, const uint16_t* b,
                                         const float* bias, int m, int n, int k, int accumulate) {
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    int wm = warp / (BN / WN) * WM, wn = warp % (BN / WN) * WN; // the warp's tile inside the block's
    // cp.async needs 16-byte aligned sources: an aligned base and rows a multiple of 16 bytes long
    bool a_vec = (uintptr_t)a % 16 == 0 && (A_KM ? m : k) % 8 == 0;
    bool b_vec = (uintptr_t)b % 16 == 0 && (B_KN ? n : k) % 8 == 0;

    auto load = [&](int stage, int k0) {
        if (A_KM) load_tile<BK, BM>(As + stage * STAGE, a, k, m, k0, m0, a_vec);
        else load_tile<BM, BK>(As + stage * STAGE, a, m, k, m0, k0, a_vec);
        if (B_KN) load_tile<BK, BN>(Bs + stage * STAGE, b, k, n, k0, n0, b_vec);
        else load_tile<BN, BK>(Bs + stage * STAGE, b, n, k, n0, k0, b_vec);
        hg::cp_async_commit();
    };

    float acc[WM / 16][WN / 8][4] = {}; // [m16 tile][n8 tile][mma fragment]
    int tiles = (k + BK - 1) / BK;
    if (tiles > 0) load(0, 0);
    for (int t = 0; t < tiles; t++) {
        int stage = t & 1;
        if (t + 1 < tiles) { // prefetch the next stage, then wait for this one only
            load(stage ^ 1, (t + 1) * BK);
            hg::cp_async_wait<1>();
        } else {
            hg::cp_async_wait<0>();
        }
        __syncthreads(); // every thread's copies (and plain stores) of this stage are visible
        const uint16_t* as = As + stage * STAGE;
        const uint16_t* bs = Bs + stage * STAGE;
        #pragma unroll
        for (int kk = 0; kk < BK; kk += 16) {
            // Lane l passes the address of row l % 8 of 8×8 matrix l / 8 (ptx.cuh). In op(a)'s m × k
            // and op(b)'s k × n terms, however the tile is stored, the matrices are: for a, m 0-7 and
            // m 8-15 of k 0-7, then of k 8-15 (the mma's a[0..3]); for b, k 0-7 and k 8-15 of n 0-7,
            // then of n 8-15 (b[0..1] of two n8 tiles).
            uint32_t af[WM / 16][4], bf[WN / 8][2];
            #pragma unroll
            for (int i = 0; i < WM / 16; i++) {
                int r = wm + 16 * i;
                if (A_KM)
                    hg::ldmatrix_x4_trans(af[i], as + (kk + lane / 16 * 8 + lane % 8) * (BM + PAD) + r + lane / 8 % 2 * 8);
                else
                    hg::ldmatrix_x4(af[i], as + (r + lane % 16) * (BK + PAD) + kk + lane / 16 * 8);
            }
            #pragma unroll
            for (int j = 0; j < WN / 16; j++) {
                int c = wn + 16 * j;
                uint32_t r4[4];
                if (B_KN)
                    hg::ldmatrix_x4_trans(r4, bs + (kk + lane % 16) * (BN + PAD) + c + lane / 16 * 8);
                else
                    hg::ldmatrix_x4(r4, bs + (c + lane / 16 * 8 + lane % 8) * (BK + PAD) + kk + lane / 8 % 2 * 8);
                bf[2 * j][0] = r4[0];
                bf[2 * j][1] = r4[1];
                bf[2 * j + 1][0] = r4[2];
                bf[2 * j + 1][1] = r4[3];
            }
            #pragma unroll
            for (int i = 0; i < WM / 16; i++)
                for (int j = 0; j < WN / 8; j++) hg::mma_bf16_16816(acc[i][j], af[i], bf[j], acc[i][j]);
        }
        __syncthreads(); // this stage is refilled by the next iteration's prefetch
    }

    // fragment element e of tile (i, j): row g + 8·(e / 2), column 2·t + e % 2 (ptx.cuh)
    int g = lane / 4, tq = lane % 4;
    #pragma unroll
    for (int i = 0; i < WM / 16; i++)
        for (int h = 0; h < 2; h++) {
            int row = m0 + wm + 16 * i + g + 8 * h;
            if (row >= m) continue;
            float* o = out + (size_t)row * n;
            #pragma unroll
            for (int j = 0; j < WN / 8; j++)
                for (int e = 0; e < 2; e++) {
                    int col = n0 + wn + 8 * j + 2 * tq + e;
                    if (col >= n) continue;
                    float s = acc[i][j][2 * h + e];
                    if (bias != nullptr) s += bias[col];
                    o[col] = accumulate ? o[col] + s : s;
                }
        }
}

} // namespace hg_gemm_bf16

extern "C" __global__ __launch_bounds__(hg_gemm_bf16::THREADS) void gemm_bf16_nt(
    float* out, const __nv_bfloat16* a, const __nv_bfloat16* b, const float* bias, int m, int n, int k, int accumulate) {
    __shared__ __align__(16) uint16_t As[2 * hg_gemm_bf16::STAGE];
    __shared__ __align__(16) uint16_t Bs[2 * hg_gemm_bf16::STAGE];
    auto* a16 = reinterpret_cast<const uint16_t*>(a);
    auto* b16 = reinterpret_cast<const uint16_t*>(b);
    hg_gemm_bf16::gemm_block<false, false>(As, Bs, out, a16, b16, bias, m, n, k, accumulate);
}

extern "C" __global__ __launch_bounds__(hg_gemm_bf16::THREADS) void gemm_bf16_nn(
    float* out, const __nv_bfloat16* a, const __nv_bfloat16* b, const float* bias, int m, int n, int k, int accumulate) {
    __shared__ __align__(16) uint16_t As[2 * hg_gemm_bf16::STAGE];
    __shared__ __align__(16) uint16_t Bs[2 * hg_gemm_bf16::STAGE];
    auto* a16 = reinterpret_cast<const uint16_t*>(a);
    auto* b16 = reinterpret_cast<const uint16_t*>(b);
    hg_gemm_bf16::gemm_block<false, true>(As, Bs, out, a16, b16, bias, m, n, k, accumulate);
}

extern "C" __global__ __launch_bounds__(hg_gemm_bf16::THREADS) void gemm_bf16_tn(
    float* out, const __nv_bfloat16* a, const __nv_bfloat16* b, const float* bias, int m, int n, int k, int accumulate) {
    __shared__ __align__(16) uint16_t As[2 * hg_gemm_bf16::STAGE];
    __shared__ __align__(16) uint16_t Bs[2 * hg_gemm_bf16::STAGE];
    auto* a16 = reinterpret_cast<const uint16_t*>(a);
    auto* b16 = reinterpret_cast<const uint16_t*>(b);
    hg_gemm_bf16::gemm_block<true, true>(As, Bs, out, a16, b16, bias, m, n, k, accumulate);
}
