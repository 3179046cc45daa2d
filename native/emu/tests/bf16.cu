// Planted kernels for EmuBf16Test: bf16 conversions, compared bit for bit with a Java reference.
#include "common/cuda_compat.cuh"

// out[4i..4i+3] = bits of __float2bfloat16 (RNE), _rz, _ru, _rd of x[i]; back[i] = the RNE value as float.
extern "C" __global__ void emu_f32_to_bf16(int* out, float* back, const float* x, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    __nv_bfloat16 h = __float2bfloat16(x[i]);
    out[4 * i] = __bfloat16_as_ushort(h);
    out[4 * i + 1] = __bfloat16_as_ushort(__float2bfloat16_rz(x[i]));
    out[4 * i + 2] = __bfloat16_as_ushort(__float2bfloat16_ru(x[i]));
    out[4 * i + 3] = __bfloat16_as_ushort(__float2bfloat16_rd(x[i]));
    back[i] = __bfloat162float(h);
}

// out[i] = bits of __double2bfloat16(hi[i] + lo[i]) (one rounding of the exact double sum), and of
// the pair packed by __floats2bfloat162_rn(hi, lo) in out2[i] (hi in the low half).
extern "C" __global__ void emu_f64_to_bf16(int* out, int* out2, const float* hi, const float* lo, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    out[i] = __bfloat16_as_ushort(__double2bfloat16((double)hi[i] + (double)lo[i]));
    __nv_bfloat162 p = __floats2bfloat162_rn(hi[i], lo[i]);
    out2[i] = (int)((unsigned)__bfloat16_as_ushort(p.y) << 16 | __bfloat16_as_ushort(p.x));
}
