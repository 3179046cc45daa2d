// Rotary embedding, HF rotate-half (Kernels.rope), in place on the q and k heads of packed qkv
// rows [m, (heads + 2·kvHeads)·headDim]; v is left alone. inverse rotates by −angle (the backward).
//
// Launch shape: grid (m), block (32…256 threads, a power of two sized to the (head, pair) count
// of a row): one block per row. The block first computes the row's
// cos/sin table (headDim/2 entries, headDim ≤ 256) in shared memory, then rotates every
// (head, i) pair of the row with it. The table is computed in double from the fp32 inverse
// frequency and fp32 angle, as the CPU twin does, so the angles agree to the last bit.

#include "common/cuda_compat.cuh"
#include "common/launch.cuh"

namespace hg_rope {
constexpr int MAX_HALF = hg_launch::ROPE_MAX_HALF;
}

extern "C" __global__ void rope_rotate(float* qkv, const int* positions, int heads, int kvHeads, int headDim,
                                       float theta, int inverse) {
    __shared__ float cos_t[hg_rope::MAX_HALF], sin_t[hg_rope::MAX_HALF];
    int half = headDim / 2, width = (heads + 2 * kvHeads) * headDim;
    float pos = (float)positions[blockIdx.x];
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        float inv_freq = (float)(1.0 / pow((double)theta, (double)((float)(2 * i) / headDim)));
        float angle = pos * inv_freq;
        cos_t[i] = (float)cos((double)angle);
        sin_t[i] = inverse ? -(float)sin((double)angle) : (float)sin((double)angle);
    }
    __syncthreads();
    float* row = qkv + (size_t)blockIdx.x * width;
    int pairs = (heads + kvHeads) * half; // q and k heads are adjacent at the start of the row
    for (int e = threadIdx.x; e < pairs; e += blockDim.x) {
        int h = e / half, i = e % half;
        float* x = row + h * headDim;
        float x1 = x[i], x2 = x[i + half];
        x[i] = x1 * cos_t[i] - x2 * sin_t[i];
        x[i + half] = x2 * cos_t[i] + x1 * sin_t[i];
    }
}
