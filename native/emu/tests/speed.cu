// Planted kernels for EmuSpeedTest: typical shapes whose emulated run time we report.

#include "common/cuda_compat.cuh"

// RMSNorm forward like kernels/norm.cu: one block per row, warp shuffles and one shared round.
extern "C" __global__ void emu_rmsnorm(float* out, const float* x, const float* w, int c, float eps) {
    __shared__ float partial[32];
    const float* xr = x + (size_t)blockIdx.x * c;
    float ss = 0;
    for (int j = threadIdx.x; j < c; j += blockDim.x) ss += xr[j] * xr[j];
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = ss;
    __syncthreads();
    float total = 0;
    for (int k = 0; k < (int)blockDim.x / 32; k++) total += partial[k];
    float inv = rsqrtf(total / c + eps);
    for (int j = threadIdx.x; j < c; j += blockDim.x) out[(size_t)blockIdx.x * c + j] = w[j] * xr[j] * inv;
}

// C = A·B (n×n fp32) with 16×16 shared tiles, one thread per output.
extern "C" __global__ void emu_matmul_tiled(float* C, const float* A, const float* B, int n) {
    __shared__ float As[16][16], Bs[16][16];
    int tx = threadIdx.x, ty = threadIdx.y, row = blockIdx.y * 16 + ty, col = blockIdx.x * 16 + tx;
    float acc = 0;
    for (int k0 = 0; k0 < n; k0 += 16) {
        As[ty][tx] = A[row * n + k0 + tx];
        Bs[ty][tx] = B[(k0 + ty) * n + col];
        __syncthreads();
        for (int k = 0; k < 16; k++) acc += As[ty][k] * Bs[k][tx];
        __syncthreads();
    }
    C[row * n + col] = acc;
}
