// fp32 ↔ bf16 casts (Kernels.castF32ToBf16, castBf16ToF32), bit for bit io.hintgrpo.engine.Bf16.
//
// Launch shapes: grid (min(ceil(n / 256), 4096)), block (256), grid-stride loops over n
// elements (n is 64-bit).

#include "common/cuda_compat.cuh"

namespace hg_cast {
// Round to nearest even as __float2bfloat16_rn, except NaN: the intrinsic returns the canonical
// 0x7fff, the engine keeps the NaN's sign and high payload bits with the quiet bit set.
static __device__ inline __nv_bfloat16 f32_to_bf16(float x) {
    unsigned bits = __float_as_uint(x);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return __ushort_as_bfloat16((unsigned short)((bits >> 16) | 0x0040u));
    return __float2bfloat16_rn(x);
}
} // namespace hg_cast

#define GRID_STRIDE(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (long long)gridDim.x * blockDim.x)

extern "C" __global__ void cast_f32_to_bf16(__nv_bfloat16* dst, const float* src, long long n) {
    GRID_STRIDE(i, n) dst[i] = hg_cast::f32_to_bf16(src[i]);
}

extern "C" __global__ void cast_bf16_to_f32(float* dst, const __nv_bfloat16* src, long long n) {
    GRID_STRIDE(i, n) dst[i] = __bfloat162float(src[i]);
}

#undef GRID_STRIDE
