// Elementwise ops (Kernels.add, addBlock, swiglu, swigluBackward, gelu, geluBackward, fill of F32, I32, BF16).
//
// Launch shapes: grid (min(ceil(n / 256), 4096)), block (256), grid-stride loops over n
// elements (n is 64-bit; for the SwiGLU kernels n = m · inter, for add_block n = m · cols).

#include "common/cuda_compat.cuh"

namespace hg_elementwise {
constexpr float GELU_K = 0.7978845608028654f; // sqrt(2/pi)
}

#define GRID_STRIDE(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (long long)gridDim.x * blockDim.x)

extern "C" __global__ void add_f32(float* out, const float* a, const float* b, long long n) {
    GRID_STRIDE(i, n) out[i] = a[i] + b[i];
}

// dst[r, j] += alpha · src[r, j] over an m × cols block, each matrix row-major with its own row
// stride: a LoRA delta into its column block of a packed GEMM output (q|k|v, gate|up), or a column
// block of a packed gradient gathered out (into zeros)
extern "C" __global__ void add_block(float* dst, int ldDst, const float* src, int ldSrc, int cols, float alpha, long long n) {
    GRID_STRIDE(i, n) {
        long long r = i / cols, j = i % cols;
        dst[r * ldDst + j] += alpha * src[r * ldSrc + j];
    }
}

extern "C" __global__ void fill_f32(float* dst, float value, long long n) {
    GRID_STRIDE(i, n) dst[i] = value;
}

extern "C" __global__ void fill_i32(int* dst, int value, long long n) {
    GRID_STRIDE(i, n) dst[i] = value;
}

// 16-bit elements (bf16 bit patterns, converted on the host); value's low 16 bits
extern "C" __global__ void fill_u16(unsigned short* dst, int value, long long n) {
    GRID_STRIDE(i, n) dst[i] = (unsigned short)value;
}

// out[r, j] = silu(gate) · up, with gate = gateUp[r, j] and up = gateUp[r, inter + j]
extern "C" __global__ void swiglu_forward(float* out, const float* gateUp, int inter, long long n) {
    GRID_STRIDE(i, n) {
        long long r = i / inter, j = i % inter;
        float g = gateUp[r * 2 * inter + j], u = gateUp[r * 2 * inter + inter + j];
        out[i] = g / (1.0f + expf(-g)) * u;
    }
}

// dgate = dy · u · σ(g) · (1 + g · (1 − σ(g))), dup = dy · silu(g)
extern "C" __global__ void swiglu_backward(float* dgateUp, const float* dout, const float* gateUp, int inter, long long n) {
    GRID_STRIDE(i, n) {
        long long r = i / inter, j = i % inter;
        long long gi = r * 2 * inter + j;
        float g = gateUp[gi], u = gateUp[gi + inter], dy = dout[i];
        float sig = 1.0f / (1.0f + expf(-g));
        dgateUp[gi] = dy * u * sig * (1.0f + g * (1.0f - sig));
        dgateUp[gi + inter] = dy * g * sig;
    }
}

// PyTorch's gelu(approximate='tanh')
extern "C" __global__ void gelu_forward(float* out, const float* x, long long n) {
    GRID_STRIDE(i, n) {
        float v = x[i];
        float t = tanhf(hg_elementwise::GELU_K * (v + 0.044715f * v * v * v));
        out[i] = 0.5f * v * (1.0f + t);
    }
}

extern "C" __global__ void gelu_backward(float* dx, const float* dout, const float* x, long long n) {
    GRID_STRIDE(i, n) {
        float v = x[i];
        float t = tanhf(hg_elementwise::GELU_K * (v + 0.044715f * v * v * v));
        float dt = hg_elementwise::GELU_K * (1.0f + 3.0f * 0.044715f * v * v);
        dx[i] = dout[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * dt);
    }
}

#undef GRID_STRIDE
