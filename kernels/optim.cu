// Optimizer ops (Kernels.adamw, sumSquares).
//
// Launch shapes:
//   adamw: grid (min(ceil(n / 256), 4096)), block (256), grid-stride over n parameters. The bias
//     corrections c1 = 1 − β1ᵗ and c2 = 1 − β2ᵗ come from the host (fp32, as the CPU twin rounds them).
//   sum_squares_partials: grid (ceil(n / 65536)), block (256): block b sums x² over elements
//     [b·65536, (b+1)·65536) in double and writes partials[b] (a double); the host adds the
//     partials in index order, so the result depends on n alone (deterministic).

#include "common/cuda_compat.cuh"
#include "common/launch.cuh"
#include "common/reduce.cuh"

namespace hg_optim {
constexpr long long SUM_CHUNK = hg_launch::SUM_CHUNK;
}

extern "C" __global__ void adamw(float* params, const float* grads, float* m, float* v, long long n, float lr,
                                 float beta1, float beta2, float eps, float weightDecay, float gradScale,
                                 float c1, float c2) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float g = grads[i] * gradScale;
        float mi = beta1 * m[i] + (1.0f - beta1) * g;
        float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        float update = (mi / c1) / (sqrtf(vi / c2) + eps);
        params[i] -= lr * (update + weightDecay * params[i]);
    }
}

extern "C" __global__ void sum_squares_partials(double* partials, const float* x, long long n) {
    __shared__ double scratch[32];
    long long start = blockIdx.x * hg_optim::SUM_CHUNK;
    long long end = start + hg_optim::SUM_CHUNK < n ? start + hg_optim::SUM_CHUNK : n;
    double acc = 0.0;
    for (long long i = start + threadIdx.x; i < end; i += blockDim.x) acc += (double)x[i] * x[i];
    acc = hg::block_sum(acc, scratch);
    if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}
