// Softmax cross-entropy over a chunk of LM-head logits (Kernels.crossEntropy,
// Kernels.crossEntropyBackward), at temperature 1/invT: per row the log-prob of the target, the
// entropy and the log-partition log_z = log Σ e^(z·invT); the gradient of L = −Σ weight·logprob,
// ∂L/∂logits = weight · (p − onehot(target)) · invT with p = e^(z·invT − log_z) rounded to float,
// written over the logits in place, either in the same pass (weights known up front: SFT) or in a
// pass of its own after the caller has computed the weights from the log-probs (GRPO). Both give
// the same bits.
//
// Launch shape: grid (m), block (32…256 threads, a multiple of 32): one block per row; block
// reductions for the max and (in double) for Σ e^(z−max) and Σ e^(z−max)·z, then each thread
// rewrites the logits it read. The target's logit is read before the first barrier, so no thread
// has overwritten it yet. A target ≥ v cannot throw on a device: its log-prob is NaN and its
// gradient row zero.

#include "common/cuda_compat.cuh"
#include "common/reduce.cuh"

namespace hg_loss {
// Row z of v logits ← scale · (p − onehot(target)), p = e^(z·invT − log_z); zeros without a target.
__device__ __forceinline__ void softmax_gradient(float* z, int target, bool has_target, float scale, float log_z, int v,
                                                 float invT) {
    for (int j = threadIdx.x; j < v; j += blockDim.x) {
        float p = expf(z[j] * invT - log_z);
        z[j] = has_target ? scale * (j == target ? p - 1.0f : p) : 0.0f;
    }
}
}  // namespace hg_loss

extern "C" __global__ void cross_entropy(float* logits, float* logprob, float* entropy, float* log_z_out, const int* targets,
                                         const float* weights, int v, float invT, int backward) {
    __shared__ float scratch[32];
    __shared__ double dscratch[32];
    float* z = logits + (size_t)blockIdx.x * v;
    int target = targets[blockIdx.x];
    bool has_target = target >= 0 && target < v;
    float z_target = has_target ? z[target] * invT : 0.0f;

    float max = -INFINITY;
    for (int j = threadIdx.x; j < v; j += blockDim.x) max = fmaxf(max, z[j] * invT);
    max = hg::block_max(max, scratch);
    // sums in double, as the CPU twin: a near-certain target has log-prob ≈ −Σ(others), which a
    // float sum of ≈ 1 would round away
    double sum = 0.0, sum_pz = 0.0;
    for (int j = threadIdx.x; j < v; j += blockDim.x) {
        float zj = z[j] * invT;
        float e = expf(zj - max);
        sum += e;
        sum_pz += (double)e * zj;
    }
    sum = hg::block_sum(sum, dscratch);
    sum_pz = hg::block_sum(sum_pz, dscratch);
    double log_z = max + log(sum);
    if (threadIdx.x == 0) {
        entropy[blockIdx.x] = (float)(log_z - sum_pz / sum);
        logprob[blockIdx.x] = target < 0 ? 0.0f : has_target ? (float)(z_target - log_z) : NAN;
        if (log_z_out != nullptr) log_z_out[blockIdx.x] = (float)log_z;
    }
    if (!backward) return;
    hg_loss::softmax_gradient(z, target, has_target, weights[blockIdx.x] * invT, (float)log_z, v, invT);
}

extern "C" __global__ void cross_entropy_backward(float* logits, const float* log_z, const int* targets, const float* weights,
                                                  int v, float invT) {
    float* z = logits + (size_t)blockIdx.x * v;
    int target = targets[blockIdx.x];
    hg_loss::softmax_gradient(z, target, target >= 0 && target < v, weights[blockIdx.x] * invT, log_z[blockIdx.x], v, invT);
}
