// GRPO passes (Kernels.grpoAdvantages, grpoPolicyLoss), formulas as in DESIGN.md "Trainer".
//
// Launch shapes:
//   grpo_advantages: grid (groups), block (32): one warp per group of G rollouts. Each lane sums
//     its strided rewards in double, a warp reduction gives the mean, a second pass the population
//     variance Σ (r − mean)² / G; then advantages = (r − mean) / (std + eps), or r − mean under
//     Dr.GRPO, and stats[2g], stats[2g + 1] = mean, std. All-equal rewards give std = 0 exactly.
//   grpo_policy_loss: grid (min(ceil(m / 256), 4096)), block (256), grid-stride over m completion
//     tokens. Per token, in double (k3 ≈ x²/2 for small x = ref − logp would lose its digits to
//     cancellation in fp32): ρ = exp(logp − logp_old), the clipped surrogate, k3 = expm1(x) − x,
//     loss = scale · L, weight = −scale · ∂L/∂logp (the signed weight of the cross-entropy
//     backward), clipped = 1 where the clipped term is strictly the min, kl = k3. ref = 0 (null)
//     means β = 0 and no reference: k3 = 0, ref never read.

#include "common/cuda_compat.cuh"
#include "common/reduce.cuh"

extern "C" __global__ void grpo_advantages(float* advantages, float* stats, const float* rewards, int group_size,
                                           int dr_grpo, float eps) {
    const float* r = rewards + (size_t)blockIdx.x * group_size;
    float* a = advantages + (size_t)blockIdx.x * group_size;
    double sum = 0.0;
    for (int i = threadIdx.x; i < group_size; i += 32) sum += r[i];
    double mean = hg::warp_sum(sum) / group_size;
    double sq = 0.0;
    for (int i = threadIdx.x; i < group_size; i += 32) {
        double d = r[i] - mean;
        sq += d * d;
    }
    double std_dev = sqrt(hg::warp_sum(sq) / group_size);
    double inv = dr_grpo ? 1.0 : 1.0 / (std_dev + (double)eps);
    for (int i = threadIdx.x; i < group_size; i += 32) a[i] = (float)((r[i] - mean) * inv);
    if (threadIdx.x == 0) {
        stats[2 * blockIdx.x] = (float)mean;
        stats[2 * blockIdx.x + 1] = (float)std_dev;
    }
}

extern "C" __global__ void grpo_policy_loss(float* loss, float* weight, float* clipped, float* kl, const float* logp,
                                            const float* logp_old, const float* ref, const float* advantage,
                                            const float* scale, int m, float eps_low, float eps_high, float beta) {
    double lower = 1.0 - (double)eps_low, upper = 1.0 + (double)eps_high;
    for (int t = blockIdx.x * blockDim.x + threadIdx.x; t < m; t += gridDim.x * blockDim.x) {
        double l = logp[t], a = advantage[t];
        double rho = exp(l - (double)logp_old[t]);
        double unclipped = rho * a;
        double clipped_term = fmin(fmax(rho, lower), upper) * a;
        bool is_clipped = clipped_term < unclipped; // a tie counts as unclipped: the gradient flows
        double x = ref ? ref[t] - l : 0.0;
        double k3 = ref ? expm1(x) - x : 0.0;
        double dk3 = ref ? -expm1(x) : 0.0; // ∂k3/∂logp = 1 − e^x
        double objective = is_clipped ? clipped_term : unclipped;
        double d_objective = is_clipped ? 0.0 : unclipped; // ∂(ρA)/∂logp = ρA
        double s = scale[t];
        loss[t] = (float)(s * (-objective + (double)beta * k3));
        weight[t] = (float)(-s * (-d_objective + (double)beta * dk3));
        clipped[t] = is_clipped ? 1.0f : 0.0f;
        kl[t] = (float)k3;
    }
}
