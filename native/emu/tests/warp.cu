// Planted kernels for EmuWarpTest: shuffles with every mode and width, votes, match, reduce, a
// partial mask in divergent code, and shuffles that break the PTX shfl.sync rules.
#include "common/cuda_compat.cuh"

#define FULL 0xffffffffu

// out[t·16 + k]: result k of thread t (blockDim.x threads, several warps); x[t]: its input.
extern "C" __global__ void emu_shuffles(int* out, const int* x) {
    int t = threadIdx.x, lane = t & 31;
    int v = x[t];
    int* o = out + t * 16;
    o[0] = __shfl_sync(FULL, v, 5);
    o[1] = __shfl_sync(FULL, v, lane + 3, 8);
    o[2] = __shfl_up_sync(FULL, v, 3);
    o[3] = __shfl_up_sync(FULL, v, 2, 16);
    o[4] = __shfl_down_sync(FULL, v, 4);
    o[5] = __shfl_down_sync(FULL, v, 1, 4);
    o[6] = __shfl_xor_sync(FULL, v, 1);
    o[7] = __shfl_xor_sync(FULL, v, 12, 8);
    o[8] = (int)__ballot_sync(FULL, v & 1);
    o[9] = __any_sync(FULL, v == 7);
    o[10] = __all_sync(FULL, v > 0);
    o[11] = (int)__reduce_add_sync(FULL, (unsigned)v);
    o[12] = (int)__match_any_sync(FULL, v % 3);
    if (lane < 16) o[13] = __shfl_down_sync(0x0000ffffu, v, 2, 16); // divergent halves, each its own mask
    else o[13] = __shfl_xor_sync(0xffff0000u, v, 1);
    o[14] = (int)(__shfl_sync(FULL, 0.5f * (float)v, 31 - lane) * 2.0f);
    o[15] = (int)(__shfl_xor_sync(FULL, (long long)v << 33, 3) >> 33);
}

// Lanes 0-15 read lanes 16-31 with a mask that only names lanes 0-15.
extern "C" __global__ void emu_shfl_outside_mask(int* out) {
    int lane = threadIdx.x & 31, v = lane;
    if (lane < 16) v = __shfl_sync(0x0000ffffu, v, lane + 16);
    out[threadIdx.x] = v;
}

// Lane 3 calls with a mask without itself.
extern "C" __global__ void emu_shfl_not_in_own_mask(int* out) {
    int lane = threadIdx.x & 31, v = lane;
    if (lane == 3) v = __shfl_sync(0x1u, v, 0);
    out[threadIdx.x] = v;
}

// Lanes 16-31 exit; the others then read them through a full mask.
extern "C" __global__ void emu_shfl_from_exited(int* out) {
    int lane = threadIdx.x & 31;
    if (lane >= 16) return;
    out[threadIdx.x] = __shfl_sync(FULL, lane, lane + 16);
}

// Lanes 16-31 exit first; a full-mask reduction over the rest still completes (PTX: exited lanes
// named in the mask do not take part).
extern "C" __global__ void emu_shfl_with_exited(int* out) {
    int lane = threadIdx.x & 31;
    if (lane >= 16) return;
    int v = lane;
    for (int o = 8; o > 0; o >>= 1) v += __shfl_xor_sync(FULL, v, o);
    out[threadIdx.x] = v;
}
