// The CUDA emulator's device API. native/build.sh force-includes this header (g++ -include) in
// front of kernels/*.cu, so the kernel sources compile unchanged with g++ and run on the CPU:
//
//   - a launch runs its blocks one after another; a block's threads are cooperative fibers
//     (runtime.cpp), so __syncthreads() is a real barrier and warp shuffles, votes, __syncwarp,
//     mma.sync and ldmatrix are warp collectives that wait for every lane of their mask;
//   - threadIdx/blockIdx/blockDim/gridDim are initial-exec thread_locals the scheduler sets before
//     it switches to a fiber; __shared__ variables are statics in the "hg_shared" section, which the
//     runtime poisons (0xff bytes: NaN, -1) at the start of every block;
//   - there is no preemption, so atomics are plain read-modify-writes;
//   - __CUDA_ARCH__ is 800: arch-guarded code takes its portable (sm_80) path.
//
// Anything a kernel may call that the emulator cannot honour fails the launch with a message.
#pragma once

#define HG_EMU 1
#define __CUDA_ARCH__ 800

#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <float.h>
#include <math.h>
#include <cmath>
#include <limits>
#include <type_traits>

// ---- keywords ----------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __align__(n) __attribute__((aligned(n)))
#define __constant__
#define __managed__
#define __grid_constant__
// One copy per kernel function, valid because one block runs at a time. `extern __shared__` does
// not compile here: dynamic shared memory goes through HG_DYNAMIC_SHARED (kernels/common/cuda_compat.cuh).
#define __shared__ static __attribute__((section("hg_shared")))

// ---- vector types --------------------------------------------------------------------------------
#define HG_VEC(T, N, A)                                                        \
    struct __attribute__((aligned(A))) N##1 { T x; };                          \
    struct __attribute__((aligned(2 * A))) N##2 { T x, y; };                   \
    struct N##3 { T x, y, z; };                                                \
    struct __attribute__((aligned(4 * A < 16 ? 4 * A : 16))) N##4 { T x, y, z, w; }; \
    static inline N##1 make_##N##1(T x) { return {x}; }                        \
    static inline N##2 make_##N##2(T x, T y) { return {x, y}; }                \
    static inline N##3 make_##N##3(T x, T y, T z) { return {x, y, z}; }       \
    static inline N##4 make_##N##4(T x, T y, T z, T w) { return {x, y, z, w}; }
HG_VEC(signed char, char, 1)
HG_VEC(unsigned char, uchar, 1)
HG_VEC(short, short, 2)
HG_VEC(unsigned short, ushort, 2)
HG_VEC(int, int, 4)
HG_VEC(unsigned int, uint, 4)
HG_VEC(long long, longlong, 8)
HG_VEC(unsigned long long, ulonglong, 8)
HG_VEC(float, float, 4)
HG_VEC(double, double, 8)
#undef HG_VEC

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x = 1, unsigned y = 1, unsigned z = 1) : x(x), y(y), z(z) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return {x, y, z}; }
};

constexpr int warpSize = 32;

// Set by the scheduler before it switches to a fiber (constinit: no TLS wrapper calls).
extern thread_local constinit uint3 threadIdx __attribute__((tls_model("initial-exec")));
extern thread_local constinit uint3 blockIdx __attribute__((tls_model("initial-exec")));
extern thread_local constinit dim3 blockDim __attribute__((tls_model("initial-exec")));
extern thread_local constinit dim3 gridDim __attribute__((tls_model("initial-exec")));

// ---- the runtime's entry points (runtime.cpp) -------------------------------------------------------
namespace hg_emu {

// One lane's part in a warp collective: its input, where its result goes, two integer operands.
struct LaneCall {
    const void* in;
    void* out;
    int b, c;
};
// Computes the results of a warp collective once every participating lane has arrived. lanes is
// indexed by lane id; participants = the mask minus lanes that have exited. Returns -1, or
// (lane << 8 | source) when a lane reads a lane that does not take part (reported by the runtime).
using Collective = int (*)(LaneCall* lanes, unsigned participants, unsigned mask);

void warp_collective(Collective op, const char* what, unsigned mask, const void* in, void* out, int b, int c,
                     const char* file, int line);
int block_barrier(const char* what, int op, int value, const char* file, int line);
[[noreturn]] void fail(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
[[noreturn]] void device_assert(const char* expr, const char* file, int line, const char* func);
void* dynamic_shared();
bool is_shared(const void* p, size_t bytes); // inside static or dynamic shared memory
unsigned active_lanes();
void yield();
void cp_async(void* dst, const void* src, int bytes, int src_bytes);
void cp_async_commit();
void cp_async_wait(int pending);

inline unsigned lane_id() {
    return ((threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x) & 31;
}

} // namespace hg_emu

// ---- barriers, warp collectives --------------------------------------------------------------------
// Call sites come in through __builtin_FILE/__builtin_LINE so deadlock reports can name them and
// threads at two different barriers are caught.
inline void __syncthreads(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    hg_emu::block_barrier("__syncthreads", 0, 0, file, line);
}
inline int __syncthreads_count(int p, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return hg_emu::block_barrier("__syncthreads_count", 1, p != 0, file, line);
}
inline int __syncthreads_and(int p, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return hg_emu::block_barrier("__syncthreads_and", 2, p != 0, file, line);
}
inline int __syncthreads_or(int p, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return hg_emu::block_barrier("__syncthreads_or", 3, p != 0, file, line);
}

namespace hg_emu {
enum ShflMode { SHFL_UP, SHFL_DOWN, SHFL_BFLY, SHFL_IDX };

// shfl.sync per the PTX ISA: b = source lane or offset, c = clamp value | segment mask << 8.
// Returns the lane that lane l reads (l itself when the computed source is out of range).
template <int MODE>
inline int shfl_source(int l, const LaneCall& call) {
    int b = call.b & 31, clamp = call.c & 31, seg = (call.c >> 8) & 31;
    int maxLane = (l & seg) | (clamp & ~seg), minLane = l & seg, j;
    bool inRange;
    switch (MODE) {
    case SHFL_UP: j = l - b; inRange = j >= maxLane; break;
    case SHFL_DOWN: j = l + b; inRange = j <= maxLane; break;
    case SHFL_BFLY: j = l ^ b; inRange = j <= maxLane; break;
    default: j = minLane | (b & ~seg); inRange = j <= maxLane; break;
    }
    return inRange ? j : l;
}

template <class T, int MODE>
int shfl_op(LaneCall* L, unsigned part, unsigned) {
    for (int l = 0; l < 32; l++)
        if ((part >> l & 1) && !(part >> shfl_source<MODE>(l, L[l]) & 1)) return l << 8 | shfl_source<MODE>(l, L[l]);
    for (int l = 0; l < 32; l++)
        if (part >> l & 1) *static_cast<T*>(L[l].out) = *static_cast<const T*>(L[shfl_source<MODE>(l, L[l])].in);
    return -1;
}

inline int syncwarp_op(LaneCall*, unsigned, unsigned) { return -1; }

enum VoteMode { VOTE_ALL, VOTE_ANY, VOTE_UNI, VOTE_BALLOT };
template <int MODE>
int vote_op(LaneCall* L, unsigned part, unsigned) {
    unsigned ballot = 0;
    for (int l = 0; l < 32; l++)
        if ((part >> l & 1) && *static_cast<const int*>(L[l].in)) ballot |= 1u << l;
    unsigned r = MODE == VOTE_ALL ? ballot == part : MODE == VOTE_ANY ? ballot != 0
               : MODE == VOTE_UNI ? (ballot == part || ballot == 0) : ballot;
    for (int l = 0; l < 32; l++)
        if (part >> l & 1) *static_cast<unsigned*>(L[l].out) = r;
    return -1;
}

// __match_any_sync (b = 0) / __match_all_sync (b = 1): out = {mask, pred}.
template <class T>
int match_op(LaneCall* L, unsigned part, unsigned) {
    bool all = true;
    for (int l = 0; l < 32; l++)
        if ((part >> l & 1) && memcmp(L[l].in, L[__builtin_ctz(part)].in, sizeof(T)) != 0) all = false;
    for (int l = 0; l < 32; l++) {
        if (!(part >> l & 1)) continue;
        unsigned m = 0;
        for (int k = 0; k < 32; k++)
            if ((part >> k & 1) && memcmp(L[l].in, L[k].in, sizeof(T)) == 0) m |= 1u << k;
        unsigned* out = static_cast<unsigned*>(L[l].out);
        if (L[l].b) { out[0] = all ? part : 0; out[1] = all; }
        else out[0] = m;
    }
    return -1;
}

enum ReduceMode { RED_ADD, RED_MIN, RED_MAX, RED_AND, RED_OR, RED_XOR };
template <class T, int MODE>
int reduce_op(LaneCall* L, unsigned part, unsigned) {
    T r = *static_cast<const T*>(L[__builtin_ctz(part)].in);
    for (int l = __builtin_ctz(part) + 1; l < 32; l++) {
        if (!(part >> l & 1)) continue;
        T v = *static_cast<const T*>(L[l].in);
        switch (MODE) {
        case RED_ADD: r += v; break;
        case RED_MIN: r = v < r ? v : r; break;
        case RED_MAX: r = v > r ? v : r; break;
        case RED_AND: r &= v; break;
        case RED_OR: r |= v; break;
        default: r ^= v; break;
        }
    }
    for (int l = 0; l < 32; l++)
        if (part >> l & 1) *static_cast<T*>(L[l].out) = r;
    return -1;
}

template <int MODE, class T>
inline T shfl(const char* what, unsigned mask, T var, int b, int width, const char* file, int line) {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 16, "shuffle of a type the emulator does not move");
    if (width < 1 || width > 32 || (width & (width - 1)))
        fail("%s at %s:%d: width %d is not a power of two in [1, 32]", what, file, line, width);
    int c = ((32 - width) << 8) | (MODE == SHFL_UP ? 0 : 31);
    T out;
    warp_collective(&shfl_op<T, MODE>, what, mask, &var, &out, b, c, file, line);
    return out;
}
} // namespace hg_emu

#define HG_SITE const char* file = __builtin_FILE(), int line = __builtin_LINE()
template <class T> inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = 32, HG_SITE) {
    return hg_emu::shfl<hg_emu::SHFL_IDX>("__shfl_sync", mask, var, srcLane, width, file, line);
}
template <class T> inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32, HG_SITE) {
    return hg_emu::shfl<hg_emu::SHFL_UP>("__shfl_up_sync", mask, var, (int)delta, width, file, line);
}
template <class T> inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32, HG_SITE) {
    return hg_emu::shfl<hg_emu::SHFL_DOWN>("__shfl_down_sync", mask, var, (int)delta, width, file, line);
}
template <class T> inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = 32, HG_SITE) {
    return hg_emu::shfl<hg_emu::SHFL_BFLY>("__shfl_xor_sync", mask, var, laneMask, width, file, line);
}
inline void __syncwarp(unsigned mask = 0xffffffffu, HG_SITE) {
    hg_emu::warp_collective(&hg_emu::syncwarp_op, "__syncwarp", mask, nullptr, nullptr, 0, 0, file, line);
}
#define HG_VOTE(NAME, MODE, R)                                                                        \
    inline R NAME(unsigned mask, int pred, HG_SITE) {                                                  \
        int p = pred != 0;                                                                             \
        unsigned r;                                                                                    \
        hg_emu::warp_collective(&hg_emu::vote_op<hg_emu::MODE>, #NAME, mask, &p, &r, 0, 0, file, line); \
        return (R)r;                                                                                   \
    }
HG_VOTE(__all_sync, VOTE_ALL, int)
HG_VOTE(__any_sync, VOTE_ANY, int)
HG_VOTE(__uni_sync, VOTE_UNI, int)
HG_VOTE(__ballot_sync, VOTE_BALLOT, unsigned)
#undef HG_VOTE
template <class T> inline unsigned __match_any_sync(unsigned mask, T value, HG_SITE) {
    unsigned r[2];
    hg_emu::warp_collective(&hg_emu::match_op<T>, "__match_any_sync", mask, &value, r, 0, 0, file, line);
    return r[0];
}
template <class T> inline unsigned __match_all_sync(unsigned mask, T value, int* pred, HG_SITE) {
    unsigned r[2];
    hg_emu::warp_collective(&hg_emu::match_op<T>, "__match_all_sync", mask, &value, r, 1, 0, file, line);
    *pred = (int)r[1];
    return r[0];
}
#define HG_REDUCE(NAME, T, MODE)                                                                       \
    inline T NAME(unsigned mask, T value, HG_SITE) {                                                   \
        T r;                                                                                           \
        hg_emu::warp_collective(&hg_emu::reduce_op<T, hg_emu::MODE>, #NAME, mask, &value, &r, 0, 0, file, line); \
        return r;                                                                                      \
    }
HG_REDUCE(__reduce_add_sync, unsigned, RED_ADD)
HG_REDUCE(__reduce_add_sync, int, RED_ADD)
HG_REDUCE(__reduce_min_sync, unsigned, RED_MIN)
HG_REDUCE(__reduce_min_sync, int, RED_MIN)
HG_REDUCE(__reduce_max_sync, unsigned, RED_MAX)
HG_REDUCE(__reduce_max_sync, int, RED_MAX)
HG_REDUCE(__reduce_and_sync, unsigned, RED_AND)
HG_REDUCE(__reduce_or_sync, unsigned, RED_OR)
HG_REDUCE(__reduce_xor_sync, unsigned, RED_XOR)
#undef HG_REDUCE
#undef HG_SITE
// Lanes of this warp that have not exited (the emulator has no divergence to report).
inline unsigned __activemask() { return hg_emu::active_lanes(); }

// ---- memory ordering, timing, traps ---------------------------------------------------------------
inline void __threadfence() { __atomic_signal_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_signal_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_system() { __atomic_signal_fence(__ATOMIC_SEQ_CST); }
// A sleeping thread lets the others of its block run: spin-waits inside a block make progress.
inline void __nanosleep(unsigned) { hg_emu::yield(); }
inline long long clock64() { return (long long)__builtin_ia32_rdtsc(); }
[[noreturn]] inline void __trap() { hg_emu::fail("__trap()"); }
[[noreturn]] inline void __brkpt() { hg_emu::fail("__brkpt()"); }

template <class T> inline T __ldg(const T* p) { return *p; }
template <class T> inline T __ldcg(const T* p) { return *p; }
template <class T> inline T __ldca(const T* p) { return *p; }
template <class T> inline T __ldcs(const T* p) { return *p; }
template <class T> inline T __ldlu(const T* p) { return *p; }
template <class T> inline T __ldcv(const T* p) { return *p; }
template <class T> inline void __stcg(T* p, T v) { *p = v; }
template <class T> inline void __stcs(T* p, T v) { *p = v; }
template <class T> inline void __stwb(T* p, T v) { *p = v; }
template <class T> inline void __stwt(T* p, T v) { *p = v; }
inline size_t __cvta_generic_to_shared(const void* p) { return (size_t)p; }

// ---- atomics: no preemption between fibers, so a read-modify-write is atomic. Volatile accesses
// keep the compiler from removing them: a spin on an atomic must stay a loop (the watchdog stops it).
#define HG_ATOMIC(NAME, T, EXPR) \
    inline T NAME(T* p, T v) { volatile T* q = p; T old = *q; *q = (EXPR); return old; }
#define HG_ATOMIC_ALL_SCOPES(NAME, T, EXPR) \
    HG_ATOMIC(NAME, T, EXPR) HG_ATOMIC(NAME##_block, T, EXPR) HG_ATOMIC(NAME##_system, T, EXPR)
HG_ATOMIC_ALL_SCOPES(atomicAdd, int, old + v)
HG_ATOMIC_ALL_SCOPES(atomicAdd, unsigned, old + v)
HG_ATOMIC_ALL_SCOPES(atomicAdd, unsigned long long, old + v)
HG_ATOMIC_ALL_SCOPES(atomicAdd, float, old + v)
HG_ATOMIC_ALL_SCOPES(atomicAdd, double, old + v)
HG_ATOMIC_ALL_SCOPES(atomicSub, int, old - v)
HG_ATOMIC_ALL_SCOPES(atomicSub, unsigned, old - v)
HG_ATOMIC_ALL_SCOPES(atomicExch, int, v)
HG_ATOMIC_ALL_SCOPES(atomicExch, unsigned, v)
HG_ATOMIC_ALL_SCOPES(atomicExch, unsigned long long, v)
HG_ATOMIC_ALL_SCOPES(atomicExch, float, v)
HG_ATOMIC_ALL_SCOPES(atomicMin, int, v < old ? v : old)
HG_ATOMIC_ALL_SCOPES(atomicMin, unsigned, v < old ? v : old)
HG_ATOMIC_ALL_SCOPES(atomicMin, long long, v < old ? v : old)
HG_ATOMIC_ALL_SCOPES(atomicMin, unsigned long long, v < old ? v : old)
HG_ATOMIC_ALL_SCOPES(atomicMax, int, v > old ? v : old)
HG_ATOMIC_ALL_SCOPES(atomicMax, unsigned, v > old ? v : old)
HG_ATOMIC_ALL_SCOPES(atomicMax, long long, v > old ? v : old)
HG_ATOMIC_ALL_SCOPES(atomicMax, unsigned long long, v > old ? v : old)
HG_ATOMIC_ALL_SCOPES(atomicAnd, int, old & v)
HG_ATOMIC_ALL_SCOPES(atomicAnd, unsigned, old & v)
HG_ATOMIC_ALL_SCOPES(atomicAnd, unsigned long long, old & v)
HG_ATOMIC_ALL_SCOPES(atomicOr, int, old | v)
HG_ATOMIC_ALL_SCOPES(atomicOr, unsigned, old | v)
HG_ATOMIC_ALL_SCOPES(atomicOr, unsigned long long, old | v)
HG_ATOMIC_ALL_SCOPES(atomicXor, int, old ^ v)
HG_ATOMIC_ALL_SCOPES(atomicXor, unsigned, old ^ v)
HG_ATOMIC_ALL_SCOPES(atomicXor, unsigned long long, old ^ v)
HG_ATOMIC_ALL_SCOPES(atomicInc, unsigned, old >= v ? 0u : old + 1)
HG_ATOMIC_ALL_SCOPES(atomicDec, unsigned, (old == 0 || old > v) ? v : old - 1)
#undef HG_ATOMIC_ALL_SCOPES
#undef HG_ATOMIC
#define HG_CAS(NAME, T) \
    inline T NAME(T* p, T compare, T v) { volatile T* q = p; T old = *q; if (old == compare) *q = v; return old; }
HG_CAS(atomicCAS, int) HG_CAS(atomicCAS_block, int) HG_CAS(atomicCAS_system, int)
HG_CAS(atomicCAS, unsigned) HG_CAS(atomicCAS_block, unsigned) HG_CAS(atomicCAS_system, unsigned)
HG_CAS(atomicCAS, unsigned long long) HG_CAS(atomicCAS_block, unsigned long long)
HG_CAS(atomicCAS_system, unsigned long long)
HG_CAS(atomicCAS, unsigned short)
#undef HG_CAS

// ---- integer and float intrinsics --------------------------------------------------------------------
// CUDA's overloaded min/max for the common type pairs (unqualified calls in kernels).
#define HG_MINMAX(T)                                                  \
    inline T min(T a, T b) { return b < a ? b : a; }                  \
    inline T max(T a, T b) { return a < b ? b : a; }
HG_MINMAX(int) HG_MINMAX(unsigned) HG_MINMAX(long) HG_MINMAX(unsigned long)
HG_MINMAX(long long) HG_MINMAX(unsigned long long)
#undef HG_MINMAX
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
// mixed signedness: the unsigned type, as CUDA's overloads do
#define HG_MINMAX_MIXED(S, U)                                            \
    inline U min(S a, U b) { return min((U)a, b); }                      \
    inline U min(U a, S b) { return min(a, (U)b); }                      \
    inline U max(S a, U b) { return max((U)a, b); }                      \
    inline U max(U a, S b) { return max(a, (U)b); }
HG_MINMAX_MIXED(int, unsigned) HG_MINMAX_MIXED(long, unsigned long) HG_MINMAX_MIXED(long long, unsigned long long)
#undef HG_MINMAX_MIXED
inline double min(float a, double b) { return fmin(a, b); }
inline double min(double a, float b) { return fmin(a, b); }
inline double max(float a, double b) { return fmax(a, b); }
inline double max(double a, float b) { return fmax(a, b); }
inline unsigned umin(unsigned a, unsigned b) { return min(a, b); }
inline unsigned umax(unsigned a, unsigned b) { return max(a, b); }
inline long long llmin(long long a, long long b) { return min(a, b); }
inline long long llmax(long long a, long long b) { return max(a, b); }
inline unsigned long long ullmin(unsigned long long a, unsigned long long b) { return min(a, b); }
inline unsigned long long ullmax(unsigned long long a, unsigned long long b) { return max(a, b); }

inline int __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }
inline unsigned __float_as_uint(float f) { unsigned i; memcpy(&i, &f, 4); return i; }
inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
inline float __uint_as_float(unsigned i) { float f; memcpy(&f, &i, 4); return f; }
inline long long __double_as_longlong(double d) { long long i; memcpy(&i, &d, 8); return i; }
inline double __longlong_as_double(long long i) { double d; memcpy(&d, &i, 8); return d; }
inline int __double2hiint(double d) { return (int)(__double_as_longlong(d) >> 32); }
inline int __double2loint(double d) { return (int)__double_as_longlong(d); }
inline double __hiloint2double(int hi, int lo) {
    return __longlong_as_double((long long)((unsigned long long)(unsigned)hi << 32 | (unsigned)lo));
}

inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
    unsigned r = 0;
    for (int i = 0; i < 32; i++) r |= ((x >> i) & 1u) << (31 - i);
    return r;
}
inline unsigned long long __brevll(unsigned long long x) {
    return (unsigned long long)__brev((unsigned)x) << 32 | __brev((unsigned)(x >> 32));
}
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
    unsigned long long v = (unsigned long long)y << 32 | x;
    unsigned r = 0;
    for (int i = 0; i < 4; i++) r |= (unsigned)((v >> (((s >> (4 * i)) & 7) * 8)) & 0xff) << (8 * i);
    return r;
}
inline unsigned __funnelshift_l(unsigned lo, unsigned hi, unsigned s) {
    return (unsigned)((((unsigned long long)hi << 32 | lo) << (s & 31)) >> 32);
}
inline unsigned __funnelshift_lc(unsigned lo, unsigned hi, unsigned s) {
    return (unsigned)((((unsigned long long)hi << 32 | lo) << (s > 32 ? 32 : s)) >> 32);
}
inline unsigned __funnelshift_r(unsigned lo, unsigned hi, unsigned s) {
    return (unsigned)(((unsigned long long)hi << 32 | lo) >> (s & 31));
}
inline unsigned __funnelshift_rc(unsigned lo, unsigned hi, unsigned s) {
    return (unsigned)(((unsigned long long)hi << 32 | lo) >> (s > 32 ? 32 : s));
}
inline int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
inline long long __mul64hi(long long a, long long b) { return (long long)(((__int128)a * b) >> 64); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
inline int __mul24(int a, int b) { return (int)(((a << 8) >> 8) * ((b << 8) >> 8)); }
inline unsigned __umul24(unsigned a, unsigned b) { return (a & 0xffffff) * (b & 0xffffff); }
inline unsigned __sad(int a, int b, unsigned c) { return c + (unsigned)(a > b ? a - b : b - a); }
inline unsigned __usad(unsigned a, unsigned b, unsigned c) { return c + (a > b ? a - b : b - a); }

// Float → integer conversions saturate and map NaN to 0, like cvt.*i.s32.f32.
template <class I>
inline I hg_cvt_sat(double r) {
    if (r != r) return 0;
    if (r <= (double)std::numeric_limits<I>::min()) return std::numeric_limits<I>::min();
    if (r >= (double)std::numeric_limits<I>::max()) return std::numeric_limits<I>::max();
    return (I)r;
}
inline int __float2int_rn(float x) { return hg_cvt_sat<int>(nearbyint((double)x)); }
inline int __float2int_rz(float x) { return hg_cvt_sat<int>(trunc((double)x)); }
inline int __float2int_rd(float x) { return hg_cvt_sat<int>(floor((double)x)); }
inline int __float2int_ru(float x) { return hg_cvt_sat<int>(ceil((double)x)); }
inline unsigned __float2uint_rn(float x) { return hg_cvt_sat<unsigned>(nearbyint((double)x)); }
inline unsigned __float2uint_rz(float x) { return hg_cvt_sat<unsigned>(trunc((double)x)); }
inline long long __float2ll_rn(float x) { return hg_cvt_sat<long long>(nearbyint((double)x)); }
inline long long __float2ll_rz(float x) { return hg_cvt_sat<long long>(trunc((double)x)); }
inline int __double2int_rn(double x) { return hg_cvt_sat<int>(nearbyint(x)); }
inline int __double2int_rz(double x) { return hg_cvt_sat<int>(trunc(x)); }
inline float __int2float_rn(int x) { return (float)x; }
inline float __uint2float_rn(unsigned x) { return (float)x; }
inline float __ll2float_rn(long long x) { return (float)x; }
inline double __int2double_rn(int x) { return (double)x; }
inline float __double2float_rn(double x) { return (float)x; }

// Fast-math intrinsics compute the accurate function here: results differ from the GPU's
// approximations by a few ulps, inside the parity tolerances.
inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return exp10f(x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __log10f(float x) { return log10f(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline void __sincosf(float x, float* s, float* c) { sincosf(x, s, c); }
inline float __tanhf(float x) { return tanhf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __frsqrt_rn(float x) { return 1.0f / sqrtf(x); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float rcbrtf(float x) { return 1.0f / cbrtf(x); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
inline float __saturatef(float x) { return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f; }
inline float sinpif(float x) { return (float)sin(M_PI * (double)x); }
inline float cospif(float x) { return (float)cos(M_PI * (double)x); }
inline void sincospif(float x, float* s, float* c) { *s = sinpif(x); *c = cospif(x); }
inline float normcdff(float x) { return 0.5f * erfcf(-x * (float)M_SQRT1_2); }
inline double normcdf(double x) { return 0.5 * erfc(-x * M_SQRT1_2); }
// erf⁻¹ by Newton's method on erf, in double from a rough start: exact to float precision.
inline double erfinv(double y) {
    if (!(y > -1.0 && y < 1.0)) return y == 1.0 ? INFINITY : y == -1.0 ? -INFINITY : NAN;
    double w = -log((1.0 - y) * (1.0 + y)), x = copysign(sqrt(fmax(w - log(w > 0 ? w : 1.0), 0.0) * 0.5 + w * 0.25), y);
    for (int i = 0; i < 60; i++) {
        double step = (erf(x) - y) / (2.0 / sqrt(M_PI) * exp(-x * x));
        x -= step;
        if (fabs(step) <= 1e-17 * fabs(x)) break;
    }
    return x;
}
inline float erfinvf(float y) { return (float)erfinv((double)y); }
inline float erfcinvf(float y) { return (float)erfinv(1.0 - (double)y); }
inline float normcdfinvf(float p) { return (float)(-M_SQRT2 * erfinv(1.0 - 2.0 * (double)p)); }

// ---- bf16 and fp16 ---------------------------------------------------------------------------------
namespace hg_emu {
inline unsigned short f32_to_bf16_rn(float f) {
    unsigned x = __float_as_uint(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return 0x7fff; // NaN → the canonical NaN, as CUDA does
    return (unsigned short)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
inline unsigned short f32_to_bf16_rz(float f) {
    unsigned x = __float_as_uint(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return 0x7fff;
    return (unsigned short)(x >> 16);
}
inline unsigned short f32_to_bf16_dir(float f, bool up) { // toward +inf (up) or -inf
    unsigned x = __float_as_uint(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return 0x7fff;
    unsigned short r = (unsigned short)(x >> 16);
    bool neg = x >> 31, inexact = (x & 0xffffu) != 0;
    if (inexact && (up != neg) && (x & 0x7fffffffu) != 0x7f800000u) r++;
    return r;
}
// double → bf16 with one rounding: round to float by rounding to odd (2+ spare bits), then RNE.
inline unsigned short f64_to_bf16_rn(double d) {
    float f = (float)d;
    if (f == f && (double)f != d) {
        unsigned u = __float_as_uint(f);
        if (fabs((double)f) > fabs(d)) u--; // truncate toward zero
        f = __uint_as_float(u | 1u);
    }
    return f32_to_bf16_rn(f);
}
inline float bf16_to_f32(unsigned short h) { return __uint_as_float((unsigned)h << 16); }
} // namespace hg_emu

struct __nv_bfloat16_raw { unsigned short x; };
struct __attribute__((aligned(2))) __nv_bfloat16 {
    unsigned short __x;
    __nv_bfloat16() = default;
    constexpr __nv_bfloat16(__nv_bfloat16_raw r) : __x(r.x) {}
    __nv_bfloat16(float f) : __x(hg_emu::f32_to_bf16_rn(f)) {}
    __nv_bfloat16(double d) : __x(hg_emu::f64_to_bf16_rn(d)) {}
    __nv_bfloat16(int i) : __x(hg_emu::f64_to_bf16_rn((double)i)) {}
    __nv_bfloat16(unsigned i) : __x(hg_emu::f64_to_bf16_rn((double)i)) {}
    operator float() const { return hg_emu::bf16_to_f32(__x); }
    operator __nv_bfloat16_raw() const { return {__x}; }
};
struct __attribute__((aligned(4))) __nv_bfloat162 {
    __nv_bfloat16 x, y;
};
typedef __nv_bfloat16 nv_bfloat16;
typedef __nv_bfloat162 nv_bfloat162;

inline __nv_bfloat16 hg_bf16_bits(unsigned short b) { __nv_bfloat16 h; h.__x = b; return h; }
inline __nv_bfloat16 __float2bfloat16(float f) { return hg_bf16_bits(hg_emu::f32_to_bf16_rn(f)); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return hg_bf16_bits(hg_emu::f32_to_bf16_rn(f)); }
inline __nv_bfloat16 __float2bfloat16_rz(float f) { return hg_bf16_bits(hg_emu::f32_to_bf16_rz(f)); }
inline __nv_bfloat16 __float2bfloat16_ru(float f) { return hg_bf16_bits(hg_emu::f32_to_bf16_dir(f, true)); }
inline __nv_bfloat16 __float2bfloat16_rd(float f) { return hg_bf16_bits(hg_emu::f32_to_bf16_dir(f, false)); }
inline __nv_bfloat16 __double2bfloat16(double d) { return hg_bf16_bits(hg_emu::f64_to_bf16_rn(d)); }
inline float __bfloat162float(__nv_bfloat16 h) { return hg_emu::bf16_to_f32(h.__x); }
inline __nv_bfloat16 __int2bfloat16_rn(int i) { return hg_bf16_bits(hg_emu::f64_to_bf16_rn((double)i)); }
inline int __bfloat162int_rn(__nv_bfloat16 h) { return __float2int_rn(__bfloat162float(h)); }
inline int __bfloat162int_rz(__nv_bfloat16 h) { return __float2int_rz(__bfloat162float(h)); }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.__x; }
inline short __bfloat16_as_short(__nv_bfloat16 h) { return (short)h.__x; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short b) { return hg_bf16_bits(b); }
inline __nv_bfloat16 __short_as_bfloat16(short b) { return hg_bf16_bits((unsigned short)b); }
inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) { return {__float2bfloat16(a), __float2bfloat16(b)}; }
inline __nv_bfloat162 __float2bfloat162_rn(float a) { return {__float2bfloat16(a), __float2bfloat16(a)}; }
inline __nv_bfloat162 __float22bfloat162_rn(float2 f) { return {__float2bfloat16(f.x), __float2bfloat16(f.y)}; }
inline float2 __bfloat1622float2(__nv_bfloat162 h) { return {__bfloat162float(h.x), __bfloat162float(h.y)}; }
inline __nv_bfloat16 __low2bfloat16(__nv_bfloat162 h) { return h.x; }
inline __nv_bfloat16 __high2bfloat16(__nv_bfloat162 h) { return h.y; }
inline float __low2float(__nv_bfloat162 h) { return __bfloat162float(h.x); }
inline float __high2float(__nv_bfloat162 h) { return __bfloat162float(h.y); }
inline __nv_bfloat162 __halves2bfloat162(__nv_bfloat16 a, __nv_bfloat16 b) { return {a, b}; }
inline __nv_bfloat162 __bfloat162bfloat162(__nv_bfloat16 a) { return {a, a}; }
inline __nv_bfloat162 __lows2bfloat162(__nv_bfloat162 a, __nv_bfloat162 b) { return {a.x, b.x}; }
inline __nv_bfloat162 __highs2bfloat162(__nv_bfloat162 a, __nv_bfloat162 b) { return {a.y, b.y}; }
// bf16 arithmetic rounds the exact result once (as fma.rn.bf16 does): exact in double, then RNE.
inline __nv_bfloat16 __hadd(__nv_bfloat16 a, __nv_bfloat16 b) { return __double2bfloat16((double)(float)a + (float)b); }
inline __nv_bfloat16 __hsub(__nv_bfloat16 a, __nv_bfloat16 b) { return __double2bfloat16((double)(float)a - (float)b); }
inline __nv_bfloat16 __hmul(__nv_bfloat16 a, __nv_bfloat16 b) { return __double2bfloat16((double)(float)a * (float)b); }
inline __nv_bfloat16 __hdiv(__nv_bfloat16 a, __nv_bfloat16 b) { return __double2bfloat16((double)(float)a / (float)b); }
inline __nv_bfloat16 __hfma(__nv_bfloat16 a, __nv_bfloat16 b, __nv_bfloat16 c) {
    return __double2bfloat16((double)(float)a * (float)b + (float)c);
}
inline __nv_bfloat16 __hneg(__nv_bfloat16 a) { return hg_bf16_bits(a.__x ^ 0x8000); }
inline __nv_bfloat16 __habs(__nv_bfloat16 a) { return hg_bf16_bits(a.__x & 0x7fff); }
inline __nv_bfloat16 __hmax(__nv_bfloat16 a, __nv_bfloat16 b) { return __float2bfloat16(fmaxf(a, b)); }
inline __nv_bfloat16 __hmin(__nv_bfloat16 a, __nv_bfloat16 b) { return __float2bfloat16(fminf(a, b)); }
inline bool __hisnan(__nv_bfloat16 a) { return (a.__x & 0x7fff) > 0x7f80; }
inline bool __heq(__nv_bfloat16 a, __nv_bfloat16 b) { return (float)a == (float)b; }
inline bool __hlt(__nv_bfloat16 a, __nv_bfloat16 b) { return (float)a < (float)b; }
inline bool __hgt(__nv_bfloat16 a, __nv_bfloat16 b) { return (float)a > (float)b; }
inline __nv_bfloat162 __hadd2(__nv_bfloat162 a, __nv_bfloat162 b) { return {__hadd(a.x, b.x), __hadd(a.y, b.y)}; }
inline __nv_bfloat162 __hmul2(__nv_bfloat162 a, __nv_bfloat162 b) { return {__hmul(a.x, b.x), __hmul(a.y, b.y)}; }
inline __nv_bfloat162 __hfma2(__nv_bfloat162 a, __nv_bfloat162 b, __nv_bfloat162 c) {
    return {__hfma(a.x, b.x, c.x), __hfma(a.y, b.y, c.y)};
}
inline __nv_bfloat16 operator+(__nv_bfloat16 a, __nv_bfloat16 b) { return __hadd(a, b); }
inline __nv_bfloat16 operator-(__nv_bfloat16 a, __nv_bfloat16 b) { return __hsub(a, b); }
inline __nv_bfloat16 operator*(__nv_bfloat16 a, __nv_bfloat16 b) { return __hmul(a, b); }
inline __nv_bfloat16 operator/(__nv_bfloat16 a, __nv_bfloat16 b) { return __hdiv(a, b); }
inline __nv_bfloat16 operator-(__nv_bfloat16 a) { return __hneg(a); }
inline __nv_bfloat16& operator+=(__nv_bfloat16& a, __nv_bfloat16 b) { return a = __hadd(a, b); }
inline __nv_bfloat16& operator*=(__nv_bfloat16& a, __nv_bfloat16 b) { return a = __hmul(a, b); }
inline __nv_bfloat162 operator+(__nv_bfloat162 a, __nv_bfloat162 b) { return __hadd2(a, b); }
inline __nv_bfloat162 operator*(__nv_bfloat162 a, __nv_bfloat162 b) { return __hmul2(a, b); }
inline __nv_bfloat16 atomicAdd(__nv_bfloat16* p, __nv_bfloat16 v) {
    volatile unsigned short* q = &p->__x;
    __nv_bfloat16 old = hg_bf16_bits(*q);
    *q = __hadd(old, v).__x;
    return old;
}

// fp16 through the compiler's _Float16 (IEEE binary16, round to nearest even).
struct __attribute__((aligned(2))) __half {
    unsigned short __x;
    __half() = default;
    __half(float f) { _Float16 h = (_Float16)f; memcpy(&__x, &h, 2); }
    __half(double d) { _Float16 h = (_Float16)d; memcpy(&__x, &h, 2); }
    operator float() const { _Float16 h; memcpy(&h, &__x, 2); return (float)h; }
};
struct __attribute__((aligned(4))) __half2 { __half x, y; };
typedef __half half;
typedef __half2 half2;
inline __half __float2half(float f) { return __half(f); }
inline __half __float2half_rn(float f) { return __half(f); }
inline float __half2float(__half h) { return (float)h; }
inline unsigned short __half_as_ushort(__half h) { return h.__x; }
inline __half __ushort_as_half(unsigned short b) { __half h; h.__x = b; return h; }
inline __half2 __floats2half2_rn(float a, float b) { return {__half(a), __half(b)}; }
inline __half2 __float22half2_rn(float2 f) { return {__half(f.x), __half(f.y)}; }
inline float2 __half22float2(__half2 h) { return {(float)h.x, (float)h.y}; }
inline __half __hadd(__half a, __half b) { return __half((double)(float)a + (float)b); }
inline __half __hmul(__half a, __half b) { return __half((double)(float)a * (float)b); }
inline __half __hfma(__half a, __half b, __half c) { return __half((double)(float)a * (float)b + (float)c); }

// ---- assert, unsupported features ------------------------------------------------------------------
// A failed device assert fails the launch (the Java side gets an exception naming the kernel).
// native/emu/include/assert.h keeps this definition when a kernel includes <assert.h> again.
#undef assert
#ifdef NDEBUG
#define assert(e) ((void)0)
#else
#define assert(e) ((e) ? (void)0 : hg_emu::device_assert(#e, __FILE__, __LINE__, __func__))
#endif
