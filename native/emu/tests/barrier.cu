// Planted kernels for EmuBarrierTest: a block-wide normalisation with and without its last barrier,
// block votes, and the deadlocks the emulator must report instead of hanging.
#include "common/cuda_compat.cuh"

// out[i] = x[i] / Σ x over the block (blockDim.x ≤ 1024, a multiple of 32, one block per row).
template <bool LAST_BARRIER>
__device__ void normalize(float* out, const float* x) {
    __shared__ float partial[32];
    __shared__ float total;
    int t = threadIdx.x, lane = t & 31, warp = t >> 5;
    float v = x[blockIdx.x * blockDim.x + t];
    float s = v;
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) partial[warp] = s;
    __syncthreads();
    if (t == 0) {
        float sum = 0;
        for (int w = 0; w < (int)blockDim.x / 32; w++) sum += partial[w];
        total = sum;
    }
    if (LAST_BARRIER) __syncthreads();
    out[blockIdx.x * blockDim.x + t] = v / total;
}

extern "C" __global__ void emu_normalize(float* out, const float* x) { normalize<true>(out, x); }
// Bug: threads read `total` before thread 0 wrote it. Right when thread 0 happens to run first.
extern "C" __global__ void emu_normalize_missing_sync(float* out, const float* x) { normalize<false>(out, x); }

// out[b·3 + k] = __syncthreads_count / _and / _or of (x[t] > 0).
extern "C" __global__ void emu_block_votes(int* out, const float* x) {
    int p = x[blockIdx.x * blockDim.x + threadIdx.x] > 0;
    int c = __syncthreads_count(p), a = __syncthreads_and(p), o = __syncthreads_or(p);
    if (threadIdx.x == 0) {
        out[blockIdx.x * 3] = c;
        out[blockIdx.x * 3 + 1] = a;
        out[blockIdx.x * 3 + 2] = o;
    }
}

// Threads 32 and up return; the first warp waits at a barrier the others never reach.
extern "C" __global__ void emu_barrier_after_exit(float* out) {
    if (threadIdx.x >= 32) return;
    __syncthreads();
    out[threadIdx.x] = 1;
}

// The two halves of the block wait at two different barriers.
extern "C" __global__ void emu_divergent_barriers(float* out) {
    if (threadIdx.x < 32) {
        out[threadIdx.x] = 1;
        __syncthreads();
    } else {
        __syncthreads();
        out[threadIdx.x] = 2;
    }
}

// Lane 0 waits at the block barrier, lanes 1-31 in a __syncwarp that needs lane 0.
extern "C" __global__ void emu_barrier_vs_syncwarp(float* out) {
    if (threadIdx.x == 0) __syncthreads();
    else __syncwarp();
    out[threadIdx.x] = 1;
}
