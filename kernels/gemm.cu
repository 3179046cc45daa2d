// fp32 GEMM for every product of the forward and backward (Kernels.gemm) and the bias gradient
// (Kernels.biasBackward). First correct form: plain FMA, shared-memory tiles, any sizes.
//
// out[m,n] = op(a)·op(b) (+ bias[n]), written or (accumulate ≠ 0) added to out:
//   gemm_nt: a[m,k] · b[n,k]ᵀ   (Linear forward, weights stored [out, in])
//   gemm_nn: a[m,k] · b[k,n]    (gradient of a Linear's input)
//   gemm_tn: a[k,m]ᵀ · b[k,n]   (gradient of a Linear's weight)
//
// Launch shapes:
//   gemm_*: grid (ceil(n / 64), ceil(m / 64)), block (16, 16). A block computes a 64×64 tile of
//     out; thread (tx, ty) owns rows ty + 16·i and columns tx + 16·j (i, j < 4), so a warp's
//     stores are contiguous and its shared-memory reads are broadcasts or conflict-free rows.
//     Each k-step stages a 64×16 slice of op(a) and a 16×64 slice of op(b) in shared memory,
//     loaded along whichever dimension is contiguous in memory (coalesced for every layout),
//     zero-filled past the edges so sizes need not divide the tile.
//   bias_backward: grid (ceil(n / 32)), block (32, 8): 8 partial sums per column over strided
//     rows, then one fixed-order sum (deterministic, no atomics).

#include "common/cuda_compat.cuh"
#include "common/launch.cuh"

namespace hg_gemm {

constexpr int BM = hg_launch::GEMM_TILE, BN = hg_launch::GEMM_TILE, BK = 16, THREADS = 256;

// A_KM: a is stored [k, m] (TN); otherwise [m, k]. B_KN: b is stored [k, n] (NN, TN); otherwise [n, k] (NT).
template <bool A_KM, bool B_KN>
static __device__ inline void gemm_block(float (*As)[BM], float (*Bs)[BN], float* out, const float* a,
                                         const float* b, const float* bias, int m, int n, int k, int accumulate) {
    int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;
    int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    float acc[4][4] = {};

    for (int k0 = 0; k0 < k; k0 += BK) {
        for (int e = tid; e < BM * BK; e += THREADS) {
            // A_KM: consecutive threads walk m; otherwise they walk k (the contiguous dimension)
            int i = A_KM ? e % BM : e / BK, p = A_KM ? e / BM : e % BK;
            int gi = m0 + i, gp = k0 + p;
            float x = 0.0f;
            if (gi < m && gp < k) x = A_KM ? a[(size_t)gp * m + gi] : a[(size_t)gi * k + gp];
            As[p][i] = x;
        }
        for (int e = tid; e < BN * BK; e += THREADS) {
            int j = B_KN ? e % BN : e / BK, p = B_KN ? e / BN : e % BK;
            int gj = n0 + j, gp = k0 + p;
            float x = 0.0f;
            if (gj < n && gp < k) x = B_KN ? b[(size_t)gp * n + gj] : b[(size_t)gj * k + gp];
            Bs[p][j] = x;
        }
        __syncthreads();
        for (int p = 0; p < BK; p++) {
            float av[4], bv[4];
            for (int i = 0; i < 4; i++) av[i] = As[p][ty + 16 * i];
            for (int j = 0; j < 4; j++) bv[j] = Bs[p][tx + 16 * j];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) acc[i][j] += av[i] * bv[j];
        }
        __syncthreads(); // the tiles are overwritten next step
    }

    for (int i = 0; i < 4; i++) {
        int gi = m0 + ty + 16 * i;
        if (gi >= m) continue;
        for (int j = 0; j < 4; j++) {
            int gj = n0 + tx + 16 * j;
            if (gj >= n) continue;
            float s = acc[i][j];
            if (bias != nullptr) s += bias[gj];
            float* o = out + (size_t)gi * n + gj;
            *o = accumulate ? *o + s : s;
        }
    }
}

} // namespace hg_gemm

extern "C" __global__ void gemm_nt(float* out, const float* a, const float* b, const float* bias, int m, int n, int k, int accumulate) {
    __shared__ float As[hg_gemm::BK][hg_gemm::BM];
    __shared__ float Bs[hg_gemm::BK][hg_gemm::BN];
    hg_gemm::gemm_block<false, false>(As, Bs, out, a, b, bias, m, n, k, accumulate);
}

extern "C" __global__ void gemm_nn(float* out, const float* a, const float* b, const float* bias, int m, int n, int k, int accumulate) {
    __shared__ float As[hg_gemm::BK][hg_gemm::BM];
    __shared__ float Bs[hg_gemm::BK][hg_gemm::BN];
    hg_gemm::gemm_block<false, true>(As, Bs, out, a, b, bias, m, n, k, accumulate);
}

extern "C" __global__ void gemm_tn(float* out, const float* a, const float* b, const float* bias, int m, int n, int k, int accumulate) {
    __shared__ float As[hg_gemm::BK][hg_gemm::BM];
    __shared__ float Bs[hg_gemm::BK][hg_gemm::BN];
    hg_gemm::gemm_block<true, true>(As, Bs, out, a, b, bias, m, n, k, accumulate);
}

// dbias[j] += Σ_i dout[i, j]
extern "C" __global__ void bias_backward(float* dbias, const float* dout, int m, int n) {
    __shared__ float partial[8][32];
    int tx = threadIdx.x, ty = threadIdx.y;
    int j = blockIdx.x * 32 + tx;
    float s = 0.0f;
    if (j < n)
        for (int i = ty; i < m; i += 8) s += dout[(size_t)i * n + j];
    partial[ty][tx] = s;
    __syncthreads();
    if (ty == 0 && j < n) {
        float total = 0.0f;
        for (int r = 0; r < 8; r++) total += partial[r][tx];
        dbias[j] += total;
    }
}
