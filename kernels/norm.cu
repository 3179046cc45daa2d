// RMSNorm (Kernels.rmsnorm, rmsnormBackward): out = w · x / sqrt(mean(x²) + eps), in fp32.
//
// Launch shapes:
//   rmsnorm_forward, rmsnorm_backward_dx: grid (m), block (32…256 threads, a power of two sized
//     to the row): one block per row, a block
//     reduction for the row's sum (Σ x² forward, Σ w·dy·x backward).
//   rmsnorm_backward_dweight: grid (ceil(c / 32)), block (32, 8): dweight[j] is a sum over rows;
//     8 partial sums per column over strided rows, then one fixed-order sum, so the result is
//     deterministic without float atomics.

#include "common/cuda_compat.cuh"
#include "common/reduce.cuh"

extern "C" __global__ void rmsnorm_forward(float* out, float* rstd, const float* x, const float* weight, int c, float eps) {
    __shared__ float scratch[32];
    const float* xr = x + (size_t)blockIdx.x * c;
    float* o = out + (size_t)blockIdx.x * c;
    float ss = 0.0f;
    for (int j = threadIdx.x; j < c; j += blockDim.x) ss += xr[j] * xr[j];
    ss = hg::block_sum(ss, scratch);
    float inv = 1.0f / sqrtf(ss / c + eps);
    if (threadIdx.x == 0) rstd[blockIdx.x] = inv;
    for (int j = threadIdx.x; j < c; j += blockDim.x) o[j] = weight[j] * (xr[j] * inv);
}

// dx += inv·w·dy − (Σ_j w·dy·x)·inv³/c · x
extern "C" __global__ void rmsnorm_backward_dx(float* dx, const float* dout, const float* x, const float* weight,
                                               const float* rstd, int c) {
    __shared__ float scratch[32];
    size_t row = (size_t)blockIdx.x * c;
    float inv = rstd[blockIdx.x];
    float dot = 0.0f;
    for (int j = threadIdx.x; j < c; j += blockDim.x) dot += weight[j] * dout[row + j] * x[row + j];
    dot = hg::block_sum(dot, scratch);
    float k = dot * inv * inv * inv / c;
    for (int j = threadIdx.x; j < c; j += blockDim.x)
        dx[row + j] += inv * weight[j] * dout[row + j] - k * x[row + j];
}

// dweight[j] += Σ_i dout[i,j] · x[i,j] · rstd[i]
extern "C" __global__ void rmsnorm_backward_dweight(float* dweight, const float* dout, const float* x, const float* rstd,
                                                    int m, int c) {
    __shared__ float partial[8][32];
    int tx = threadIdx.x, ty = threadIdx.y;
    int j = blockIdx.x * 32 + tx;
    float s = 0.0f;
    if (j < c)
        for (int i = ty; i < m; i += 8) s += dout[(size_t)i * c + j] * (x[(size_t)i * c + j] * rstd[i]);
    partial[ty][tx] = s;
    __syncthreads();
    if (ty == 0 && j < c) {
        float total = 0.0f;
        for (int r = 0; r < 8; r++) total += partial[r][tx];
        dweight[j] += total;
    }
}
