// Cooperative groups under the CUDA emulator: the thread block and warp tiles of at most 32
// threads. A grid-wide sync cannot run (blocks run one after another) and fails the launch.
#pragma once

namespace cooperative_groups {

struct thread_block {
    void sync() const { __syncthreads(); }
    unsigned size() const { return blockDim.x * blockDim.y * blockDim.z; }
    unsigned thread_rank() const { return (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x; }
    dim3 group_dim() const { return blockDim; }
    uint3 thread_index() const { return threadIdx; }
    uint3 group_index() const { return blockIdx; }
};
inline thread_block this_thread_block() { return {}; }

struct grid_group {
    void sync() const {
        hg_emu::fail("grid-wide sync (cooperative_groups::grid_group::sync) cannot be emulated: blocks run one after another");
    }
    bool is_valid() const { return false; }
};
inline grid_group this_grid() { return {}; }

// N consecutive threads of a warp (N a power of two, at most 32).
template <unsigned N>
struct thread_block_tile {
    static_assert(N >= 1 && N <= 32 && (N & (N - 1)) == 0, "the emulator has tiles of 1 to 32 threads");
    unsigned mask() const { return N == 32 ? 0xffffffffu : ((1u << N) - 1) << (hg_emu::lane_id() / N * N); }
    unsigned size() const { return N; }
    unsigned num_threads() const { return N; }
    unsigned thread_rank() const { return hg_emu::lane_id() % N; }
    unsigned meta_group_rank() const { return thread_block().thread_rank() / N; }
    void sync() const { __syncwarp(mask()); }
    template <class T> T shfl(T v, int src) const { return __shfl_sync(mask(), v, src, N); }
    template <class T> T shfl_up(T v, unsigned d) const { return __shfl_up_sync(mask(), v, d, N); }
    template <class T> T shfl_down(T v, unsigned d) const { return __shfl_down_sync(mask(), v, d, N); }
    template <class T> T shfl_xor(T v, int m) const { return __shfl_xor_sync(mask(), v, m, N); }
    int any(int p) const { return __any_sync(mask(), p); }
    int all(int p) const { return __all_sync(mask(), p); }
    unsigned ballot(int p) const { return __ballot_sync(mask(), p) >> (hg_emu::lane_id() / N * N); }
};
template <unsigned N>
thread_block_tile<N> tiled_partition(const thread_block&) { return {}; }

} // namespace cooperative_groups
