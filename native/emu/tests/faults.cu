// Planted bugs for EmuFaultTest: each must fail its launch with a message naming the kernel, and
// leave the emulator usable.
#include "common/cuda_compat.cuh"
#include <assert.h>
#include <cooperative_groups.h>

// Writes out[0..n]: one element past the end (lands in the allocation's guard bytes).
extern "C" __global__ void emu_store_past_end(float* out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) out[i] = 1.0f;
}

// Writes far past the end (lands on the PROT_NONE page after the allocation).
extern "C" __global__ void emu_store_far_past_end(float* out, int n) {
    if (threadIdx.x == 5) out[n + 2048] = 1.0f;
}

extern "C" __global__ void emu_null_store(float* out) { out[threadIdx.x] = 1.0f; }

extern "C" __global__ void emu_assert_positive(const int* x) {
    assert(x[threadIdx.x] > 0);
}

extern "C" __global__ void emu_trap(int when) {
    if ((int)threadIdx.x == when) __trap();
}

__device__ __noinline__ int deep(int n) {
    volatile char frame[512];
    frame[0] = (char)n;
    return n == 0 ? 0 : deep(n - 1) + frame[0];
}

// Recursion deep enough for any fiber stack below 1 MiB.
extern "C" __global__ void emu_stack_overflow(int* out, int depth) { out[threadIdx.x] = deep(depth); }

// Block 0 spins until block 1 sets the flag: cannot finish when blocks run one after another.
extern "C" __global__ void emu_spin_on_other_block(int* flag) {
    if (blockIdx.x == 1) atomicExch(flag, 1);
    else
        while (atomicAdd(flag, 0) == 0) {
        }
}

// The same with __nanosleep (a yield in the emulator).
extern "C" __global__ void emu_sleepy_spin_on_other_block(int* flag) {
    if (blockIdx.x == 1) atomicExch(flag, 1);
    else
        while (atomicAdd(flag, 0) == 0) __nanosleep(100);
}

// Within one block, thread 0 waits for thread 1's flag: works because __nanosleep yields.
extern "C" __global__ void emu_spin_within_block(int* out) {
    __shared__ volatile int flag;
    if (threadIdx.x == 1) flag = 7;
    if (threadIdx.x == 0) {
        while (flag != 7) __nanosleep(10);
        out[0] = flag;
    }
}

extern "C" __global__ void emu_divide(int* out, int d) { out[threadIdx.x] = 1000 / d; }

// Writes one float past its dynamic shared memory.
extern "C" __global__ void emu_dynamic_shared_overflow(float* out, int n) {
    HG_DYNAMIC_SHARED(float, s);
    s[threadIdx.x + (threadIdx.x == 0 ? n : 0)] = 1.0f;
    __syncthreads();
    out[threadIdx.x] = s[threadIdx.x];
}

extern "C" __global__ void emu_hopper_only(float* out) {
#if HG_HOPPER
    out[threadIdx.x] = 1.0f;
#else
    HG_UNSUPPORTED("emu_hopper_only needs sm_90 (wgmma)");
#endif
}

extern "C" __global__ void emu_grid_sync(float* out) {
    out[blockIdx.x] = 1.0f;
    cooperative_groups::this_grid().sync();
}

// base[offset] = 1: a stray store wherever the offset points.
extern "C" __global__ void emu_store_at(float* base, long long offset) { base[offset] = 1.0f; }
