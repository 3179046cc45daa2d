// Planted kernels for the emulator's own tests (EmuBasicsTest): launch plumbing, barriers, shared
// memory (static and dynamic), atomics. Built only into libhintgrpo_emu_test.so.
#include "common/cuda_compat.cuh"

extern "C" __global__ void emu_empty() {}

// Writes each thread's coordinates: out[linear global thread][0..5] = thread xyz, block xyz.
extern "C" __global__ void emu_coords(int* out) {
    unsigned t = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
    unsigned b = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    int* o = out + (size_t)(b * blockDim.x * blockDim.y * blockDim.z + t) * 6;
    o[0] = threadIdx.x; o[1] = threadIdx.y; o[2] = threadIdx.z;
    o[3] = blockIdx.x; o[4] = blockIdx.y; o[5] = blockIdx.z;
}

// y = a·x + y, grid-stride; also takes a long to check 64-bit slots.
extern "C" __global__ void emu_axpy(float* y, const float* x, float a, int n, long long offset) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        y[i] = a * x[i] + y[i] + (float)offset;
}

// One block per row: out[row] = Σ x[row][:], a shared-memory tree (blockDim.x a power of two).
extern "C" __global__ void emu_row_sum(float* out, const float* x, int c) {
    __shared__ float s[1024];
    float v = 0;
    for (int j = threadIdx.x; j < c; j += blockDim.x) v += x[(size_t)blockIdx.x * c + j];
    s[threadIdx.x] = v;
    __syncthreads();
    for (int h = blockDim.x / 2; h > 0; h >>= 1) {
        if ((int)threadIdx.x < h) s[threadIdx.x] += s[threadIdx.x + h];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = s[0];
}

// Reverses each block's chunk through dynamic shared memory: out[b·n + i] = x[b·n + n−1−i].
extern "C" __global__ void emu_dynamic_reverse(float* out, const float* x, int n) {
    HG_DYNAMIC_SHARED(float, buf);
    for (int i = threadIdx.x; i < n; i += blockDim.x) buf[i] = x[(size_t)blockIdx.x * n + i];
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += blockDim.x) out[(size_t)blockIdx.x * n + i] = buf[n - 1 - i];
}

// Reads shared memory before writing it: every block must see the poison (0xffffffff).
extern "C" __global__ void emu_read_poison(unsigned* out, int n) {
    __shared__ unsigned s[64];
    HG_DYNAMIC_SHARED(unsigned, d);
    unsigned t = threadIdx.x;
    out[(blockIdx.x * blockDim.x + t) * 2] = s[t % 64];
    out[(blockIdx.x * blockDim.x + t) * 2 + 1] = d[t % n];
    __syncthreads();
    s[t % 64] = blockIdx.x; // the next block must not see this
    d[t % n] = blockIdx.x;
}

// counters[0] += 1 per thread (int), sums[0] += x (float), max[0] = max id, cas-increment counters[1],
// exch: last[0] = some thread id.
extern "C" __global__ void emu_atomics(int* counters, float* sums, int* maxes, unsigned* bits, const float* x, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    atomicAdd(&counters[0], 1);
    atomicAdd(&sums[0], x[i]);
    atomicMax(&maxes[0], i);
    atomicMin(&maxes[1], -i);
    int old = counters[1], seen;
    do { seen = old; old = atomicCAS(&counters[1], seen, seen + 2); } while (old != seen);
    atomicExch(&counters[2], i);
    atomicOr(&bits[i / 32], 1u << (i % 32));
    atomicInc((unsigned*)&counters[3], 1000000);
}
