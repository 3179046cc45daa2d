#ifndef HINTGRPO_REDUCE_CUH
#define HINTGRPO_REDUCE_CUH
// Warp and block reductions shared by the kernels. Rules for the block_* functions: blockDim.x
// is a multiple of 32 and at most 1024, blockDim.y = blockDim.z = 1, every thread of the block
// calls them (they contain barriers), and every thread gets the result. The reduction order is
// fixed by blockDim alone, so results are deterministic run to run.

namespace hg {

constexpr unsigned FULL_MASK = 0xffffffffu;

template <typename T>
static __device__ inline T warp_sum(T v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(FULL_MASK, v, offset);
    return v;
}

static __device__ inline float warp_max(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, offset));
    return v;
}

// scratch: a __shared__ T[32] of the calling kernel
template <typename T>
static __device__ inline T block_sum(T v, T* scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads(); // a previous call may still be reading scratch
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    return warp_sum(lane < warps ? scratch[lane] : T(0));
}

static __device__ inline float block_max(float v, float* scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    return warp_max(lane < warps ? scratch[lane] : -INFINITY);
}

} // namespace hg

#endif
