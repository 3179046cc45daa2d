#ifndef HINTGRPO_REDUCE_CUH
#define HINTGRPO_REDUCE_CUH
// Warp and block reductions shared by the kernels. Rules for the block_* functions: blockDim.x
// is a multiple of 32 (the *_tree ones: a power of two) and at most 1024, blockDim.y = 1, every
// thread of the block calls them (they contain barriers), and every thread gets the result.
// The reduction order is fixed by blockDim alone, so results are deterministic run to run.

namespace hg {

constexpr unsigned FULL_MASK = 0xffffffffu;

static __device__ inline float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(FULL_MASK, v, offset);
    return v;
}

static __device__ inline float warp_max(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, offset));
    return v;
}

// scratch: __shared__ float[32] of the calling kernel
static __device__ inline float block_sum(float v, float* scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads(); // a previous call may still be reading scratch
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    return warp_sum(lane < warps ? scratch[lane] : 0.0f);
}

static __device__ inline float block_max(float v, float* scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    return warp_max(lane < warps ? scratch[lane] : -INFINITY);
}

// Tree reductions through shared memory (no shuffles of 64-bit values). scratch: blockDim.x entries.
static __device__ inline double block_sum_tree(double v, double* scratch) {
    __syncthreads();
    scratch[threadIdx.x] = v;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half >>= 1) {
        if ((int)threadIdx.x < half) scratch[threadIdx.x] += scratch[threadIdx.x + half];
        __syncthreads();
    }
    return scratch[0];
}

static __device__ inline int block_sum_tree(int v, int* scratch) {
    __syncthreads();
    scratch[threadIdx.x] = v;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half >>= 1) {
        if ((int)threadIdx.x < half) scratch[threadIdx.x] += scratch[threadIdx.x + half];
        __syncthreads();
    }
    return scratch[0];
}

} // namespace hg

#endif
