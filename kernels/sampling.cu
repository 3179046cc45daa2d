// Token sampling (Kernels.sample): greedy argmax, or temperature with top-k / top-p survivors
// and an inverse-CDF draw with the counter-based uniform of Kernels.uniform, so a seed gives the
// same tokens as the CPU twin.
//
// Launch shape: grid (b), block (256) (exactly: the shared scratch is sized for it): one block
// per row of logits [b, v].
//
// The step of the uniform is stepAt[0] when stepAt is non-null (Kernels.sample with a device step:
// a captured CUDA graph bakes its scalar arguments in, so a per-token step must come from memory),
// else the scalar step. With rowKeys (Kernels.sampleRows) each row has its own stream: the uniform
// of (key = rowKeys[2·row] | rowKeys[2·row + 1] << 32, 0, stepAt[row]).
//
// Semantics, as CpuKernels.sampleRow (banned tokens count as z = −inf throughout):
//   greedy: argmax of the logits, lowest index on ties.
//   otherwise z = logits · invT;
//   top-k (0 < k < v): a token survives when fewer than k tokens have a strictly larger z, i.e.
//     z ≥ the k-th largest z. Found by bisection over an order-preserving 32-bit key of z: the
//     largest key K with count(key ≥ K) ≥ k is the k-th largest's key; a probe with exactly k
//     tokens at or above it selects the same set and ends the search early.
//   top-p (p < 1): a survivor of top-k stays when the probability mass (among top-k survivors)
//     of tokens strictly more likely than it is < p; ties stay or go together. The mass above a
//     key falls as the key grows, so survivors are key ≥ the smallest K whose mass above is < p:
//     a second bisection, masses in double as the CPU twin computes them.
//   draw: u · Σ survivors' e^(z−max), then the first survivor in index order whose running sum
//     exceeds it (the last survivor if rounding leaves none). Thread t owns a contiguous index
//     range: range sums, a sequential exclusive scan over them, then each thread walks its range.
// First correct form: up to ~64 passes over the row, no sorting, no atomics.

#include "common/cuda_compat.cuh"
#include "common/launch.cuh"
#include "common/reduce.cuh"

namespace hg_sample {

constexpr int THREADS = hg_launch::SAMPLE_THREADS;
constexpr int NONE = 0x7fffffff; // no crossing in a thread's range

static __device__ inline bool is_banned(int j, const int* banned, int nBanned) {
    for (int b = 0; b < nBanned; b++)
        if (banned[b] == j) return true;
    return false;
}

// Order-preserving map of a float to an unsigned key; −0 and +0 compare equal, so they share a key.
static __device__ inline unsigned key_of(float z) {
    if (z == 0.0f) z = 0.0f;
    unsigned u = __float_as_uint(z);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Kernels.uniform: splitmix64 of (seed, row, step), top 24 bits
static __device__ inline float uniform(unsigned long long seed, unsigned long long row, unsigned long long step) {
    unsigned long long x = seed + 0x9E3779B97F4A7C15ull * (row + 1) + 0xD1B54A32D192ED03ull * (step + 1);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    x ^= x >> 31;
    return (float)(x >> 40) * (1.0f / 16777216.0f);
}

// Shared-memory tree reductions over exactly THREADS values.
static __device__ inline int block_min(int v, int* scratch) {
    __syncthreads();
    scratch[threadIdx.x] = v;
    __syncthreads();
    for (int half = THREADS / 2; half > 0; half >>= 1) {
        if ((int)threadIdx.x < half) scratch[threadIdx.x] = min(scratch[threadIdx.x], scratch[threadIdx.x + half]);
        __syncthreads();
    }
    return scratch[0];
}

static __device__ inline int block_max(int v, int* scratch) {
    __syncthreads();
    scratch[threadIdx.x] = v;
    __syncthreads();
    for (int half = THREADS / 2; half > 0; half >>= 1) {
        if ((int)threadIdx.x < half) scratch[threadIdx.x] = max(scratch[threadIdx.x], scratch[threadIdx.x + half]);
        __syncthreads();
    }
    return scratch[0];
}

} // namespace hg_sample

extern "C" __global__ void sample_tokens(int* tokens, const float* logits, int v, int greedy, float invT, int topK,
                                         float topP, long long seed, long long step, const int* stepAt,
                                         const int* rowKeys, const int* banned, int nBanned) {
    using namespace hg_sample;
    __shared__ float fscratch[THREADS];
    __shared__ int iscratch[THREADS];
    __shared__ double dscratch[THREADS];
    __shared__ double total_mass;
    int row = blockIdx.x, tid = threadIdx.x;
    const float* x = logits + (size_t)row * v;

    if (greedy) {
        float best = 0.0f;
        int at = -1; // this thread's first maximum; −1: none yet
        for (int j = tid; j < v; j += THREADS)
            if (!is_banned(j, banned, nBanned) && (at < 0 || x[j] > best)) { best = x[j]; at = j; }
        fscratch[tid] = best;
        iscratch[tid] = at;
        __syncthreads();
        for (int half = THREADS / 2; half > 0; half >>= 1) { // keep the larger value, the lower index on ties
            if (tid < half) {
                float ov = fscratch[tid + half];
                int oi = iscratch[tid + half], mi = iscratch[tid];
                if (oi >= 0 && (mi < 0 || ov > fscratch[tid] || (ov == fscratch[tid] && oi < mi))) {
                    fscratch[tid] = ov;
                    iscratch[tid] = oi;
                }
            }
            __syncthreads();
        }
        if (tid == 0) tokens[row] = iscratch[0];
        return;
    }

    // z of token j (banned: −inf); survivors are the unbanned tokens with key(z) ≥ threshold
    unsigned threshold = 0;
    auto z_of = [&](int j) { return is_banned(j, banned, nBanned) ? -INFINITY : x[j] * invT; };
    auto survives = [&](int j, float z) { return !is_banned(j, banned, nBanned) && key_of(z) >= threshold; };

    float max = -INFINITY;
    for (int j = tid; j < v; j += THREADS) max = fmaxf(max, z_of(j));
    max = hg::block_max(max, fscratch);

    if (topK > 0 && topK < v) {
        long long lo = 0, hi = 1LL << 32; // count(key ≥ lo) ≥ k holds, count(key ≥ hi) ≥ k does not
        while (hi - lo > 1) {
            long long mid = (lo + hi) / 2;
            int count = 0;
            for (int j = tid; j < v; j += THREADS) count += key_of(z_of(j)) >= (unsigned long long)mid;
            count = hg::block_sum(count, iscratch);
            if (count == topK) { lo = mid; break; } // exactly the top k: the same set as the k-th key's
            if (count > topK) lo = mid; else hi = mid;
        }
        threshold = (unsigned)lo;
    }

    if (topP < 1.0f) {
        double total = 0.0;
        for (int j = tid; j < v; j += THREADS) {
            float z = z_of(j);
            if (survives(j, z)) total += exp((double)(z - max));
        }
        total = hg::block_sum(total, dscratch);
        // the answer is in (lo, hi]: nothing is above the top key, so its mass above is 0 < p
        long long lo = (long long)threshold - 1, hi = key_of(max);
        while (hi - lo > 1) {
            long long mid = (lo + hi) / 2;
            double mass = 0.0;
            for (int j = tid; j < v; j += THREADS) {
                float z = z_of(j);
                if (survives(j, z) && key_of(z) > (unsigned long long)mid) mass += exp((double)(z - max));
            }
            mass = hg::block_sum(mass, dscratch);
            if (mass / total < (double)topP) hi = mid; else lo = mid;
        }
        threshold = (unsigned)hi;
    }

    // inverse CDF in index order over contiguous per-thread ranges
    int chunk = (v + THREADS - 1) / THREADS;
    int begin = min(v, tid * chunk), end = min(v, begin + chunk);
    double local = 0.0;
    for (int j = begin; j < end; j++) {
        float z = z_of(j);
        if (survives(j, z)) local += exp((double)(z - max));
    }
    __syncthreads(); // dscratch's first entries were last read by a reduction
    dscratch[tid] = local;
    __syncthreads();
    if (tid == 0) { // exclusive scan of the range sums, in thread order
        double run = 0.0;
        for (int t = 0; t < THREADS; t++) {
            double s = dscratch[t];
            dscratch[t] = run;
            run += s;
        }
        total_mass = run;
    }
    __syncthreads();
    unsigned long long stream = (unsigned long long)row;
    if (rowKeys != nullptr) {
        seed = (long long)((unsigned long long)(unsigned)rowKeys[2 * row] | ((unsigned long long)(unsigned)rowKeys[2 * row + 1] << 32));
        stream = 0;
        step = stepAt[row];
    } else if (stepAt != nullptr) {
        step = stepAt[0];
    }
    double target = (double)uniform((unsigned long long)seed, stream, (unsigned long long)step) * total_mass;
    int found = NONE, last = -1;
    double cum = dscratch[tid];
    for (int j = begin; j < end; j++) {
        float z = z_of(j);
        if (!survives(j, z)) continue;
        cum += exp((double)(z - max));
        last = j;
        if (cum > target) { found = j; break; }
    }
    // the lowest crossing index, or else the highest survivor (−1: nothing survived)
    found = block_min(found, iscratch);
    if (found == NONE) found = block_max(last, iscratch);
    if (tid == 0) tokens[row] = found;
}
