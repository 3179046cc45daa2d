// The only inline PTX of the kernels: tensor-core mma.sync, ldmatrix and cp.async wrappers. Under
// nvcc each is one PTX instruction; under the CUDA emulator (HG_EMU) its twin is a warp collective
// that reproduces the instruction's per-lane fragment layout from the PTX ISA, so a kernel that
// gets a layout wrong gets wrong numbers in the emulator too.
//
// Fragments, per lane: g = lane >> 2, t = lane & 3. A 32-bit register holding two 16-bit
// elements keeps the first (lower column or row index) in its low half.
//
//   mma_bf16_16816: D(16x8 f32) = A(16x16 bf16, row-major) · B(16x8 bf16, "col") + C
//     a[0] = A[g][2t..2t+1]     a[1] = A[g+8][2t..2t+1]
//     a[2] = A[g][2t+8..2t+9]   a[3] = A[g+8][2t+8..2t+9]
//     b[0] = B[2t..2t+1][g]     b[1] = B[2t+8..2t+9][g]
//     c[0], c[1] = C[g][2t], C[g][2t+1]      c[2], c[3] = C[g+8][2t], C[g+8][2t+1]   (d alike)
//   mma_tf32_1688: D(16x8 f32) = A(16x8 tf32) · B(8x8 tf32) + C
//     a[0] = A[g][t]  a[1] = A[g+8][t]  a[2] = A[g][t+4]  a[3] = A[g+8][t+4]
//     b[0] = B[t][g]  b[1] = B[t+4][g]                    c, d as above
//   ldmatrix_xN(r, row): N 8x8 matrices of 16-bit elements from shared memory; lane 8i + j passes
//     the address of row j of matrix i (16-byte aligned; lanes past 8N pass anything). Lane gets
//     r[i] = M_i[g][2t..2t+1], or with _trans r[i] = {M_i[2t][g], M_i[2t+1][g]}.
//   cp_async_*(smem, gmem): copies global → shared asynchronously; cp_async_commit() closes a group,
//     cp_async_wait<N>() waits until at most N committed groups are pending. The emulator copies at
//     the wait (or when the thread exits), so reading the data before the wait gets stale bytes,
//     as it can on the GPU.
#pragma once

#include "cuda_compat.cuh"

namespace hg {

// Two floats as one bf16x2 register: lo in the low half (round to nearest even).
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    uint32_t r;
    memcpy(&r, &v, 4);
    return r;
}

#ifndef HG_EMU

__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                               const float (&c)[4]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%10,%11,%12,%13};\n"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
                   "f"(c[3]));
}

__device__ __forceinline__ void mma_tf32_1688(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                              const float (&c)[4]) {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%10,%11,%12,%13};\n"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
                   "f"(c[3]));
}

// fp32 → tf32 (round to nearest, ties away from zero), as the mma expects its .tf32 operands.
__device__ __forceinline__ uint32_t float_to_tf32(float x) {
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
    return r;
}

__device__ __forceinline__ unsigned smem_address(const void* p) { return (unsigned)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void ldmatrix_x1(uint32_t (&r)[1], const void* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(smem_address(row)));
}
__device__ __forceinline__ void ldmatrix_x2(uint32_t (&r)[2], const void* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1]) : "r"(smem_address(row)));
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_address(row)));
}
__device__ __forceinline__ void ldmatrix_x1_trans(uint32_t (&r)[1], const void* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(smem_address(row)));
}
__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t (&r)[2], const void* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1]) : "r"(smem_address(row)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_address(row)));
}

__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_address(smem)), "l"(gmem));
}
// Copies src_bytes (0..16) and zero-fills the rest of the 16 bytes: loads at a tile's ragged edge.
__device__ __forceinline__ void cp_async_16_zfill(void* smem, const void* gmem, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_address(smem)), "l"(gmem),
                 "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_8(void* smem, const void* gmem) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(smem_address(smem)), "l"(gmem));
}
__device__ __forceinline__ void cp_async_4(void* smem, const void* gmem) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(smem_address(smem)), "l"(gmem));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::); }

#else // the emulated twins

namespace emu {

inline float bf16_lo(uint32_t r) { return __uint_as_float(r << 16); }
inline float bf16_hi(uint32_t r) { return __uint_as_float(r & 0xffff0000u); }
inline float tf32(uint32_t r) { return __uint_as_float(r & 0xffffe000u); } // the mma reads 19 bits

struct MmaIn {
    const uint32_t* a;
    const uint32_t* b;
    const float* c;
};

// D = A·B + C from the fragments of all 32 lanes; each dot product summed exactly (double) and
// rounded once. tf32 selects the m16n8k8 tf32 layout, else m16n8k16 bf16.
template <bool TF32>
int mma_op(hg_emu::LaneCall* L, unsigned part, unsigned) {
    constexpr int K = TF32 ? 8 : 16;
    if (part != 0xffffffffu) return -2;
    float A[16][K], B[K][8], C[16][8];
    for (int lane = 0; lane < 32; lane++) {
        const MmaIn& in = *static_cast<const MmaIn*>(L[lane].in);
        int g = lane >> 2, t = lane & 3;
        if (TF32) {
            A[g][t] = tf32(in.a[0]);
            A[g + 8][t] = tf32(in.a[1]);
            A[g][t + 4] = tf32(in.a[2]);
            A[g + 8][t + 4] = tf32(in.a[3]);
            B[t][g] = tf32(in.b[0]);
            B[t + 4][g] = tf32(in.b[1]);
        } else {
            for (int h = 0; h < 2; h++) { // h: columns 0-7 or 8-15 of A, rows 0-7 or 8-15 of B
                A[g][2 * t + 8 * h] = bf16_lo(in.a[2 * h]);
                A[g][2 * t + 8 * h + 1] = bf16_hi(in.a[2 * h]);
                A[g + 8][2 * t + 8 * h] = bf16_lo(in.a[2 * h + 1]);
                A[g + 8][2 * t + 8 * h + 1] = bf16_hi(in.a[2 * h + 1]);
                B[2 * t + 8 * h][g] = bf16_lo(in.b[h]);
                B[2 * t + 8 * h + 1][g] = bf16_hi(in.b[h]);
            }
        }
        C[g][2 * t] = in.c[0];
        C[g][2 * t + 1] = in.c[1];
        C[g + 8][2 * t] = in.c[2];
        C[g + 8][2 * t + 1] = in.c[3];
    }
    for (int lane = 0; lane < 32; lane++) { // all inputs are read: d may alias c
        float* d = static_cast<float*>(L[lane].out);
        int g = lane >> 2, t = lane & 3;
        for (int i = 0; i < 4; i++) {
            int row = g + (i >> 1) * 8, col = 2 * t + (i & 1);
            double s = C[row][col];
            for (int k = 0; k < K; k++) s += (double)A[row][k] * B[k][col];
            d[i] = (float)s;
        }
    }
    return -1;
}

// b = number of matrices, c = 1 for .trans.
inline int ldmatrix_op(hg_emu::LaneCall* L, unsigned part, unsigned) {
    if (part != 0xffffffffu) return -2;
    int n = L[0].b;
    bool trans = L[0].c;
    uint16_t M[4][8][8];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < 8; j++) {
            const void* row = *static_cast<const void* const*>(L[8 * i + j].in);
            if ((uintptr_t)row % 16)
                hg_emu::fail("ldmatrix: lane %d passes row address %p, which is not 16-byte aligned", 8 * i + j, row);
            if (!hg_emu::is_shared(row, 16))
                hg_emu::fail("ldmatrix: lane %d passes row address %p, which is not in shared memory", 8 * i + j, row);
            memcpy(M[i][j], row, 16);
        }
    for (int lane = 0; lane < 32; lane++) {
        uint32_t* r = static_cast<uint32_t*>(L[lane].out);
        int g = lane >> 2, t = lane & 3;
        for (int i = 0; i < n; i++) {
            uint16_t lo = trans ? M[i][2 * t][g] : M[i][g][2 * t];
            uint16_t hi = trans ? M[i][2 * t + 1][g] : M[i][g][2 * t + 1];
            r[i] = (uint32_t)hi << 16 | lo;
        }
    }
    return -1;
}

inline void ldmatrix(const char* what, uint32_t* r, int n, bool trans, const void* row, const char* file, int line) {
    hg_emu::warp_collective(&ldmatrix_op, what, 0xffffffffu, &row, r, n, trans, file, line);
}

inline void cp_async(void* smem, const void* gmem, int bytes, int src_bytes) {
    if (!hg_emu::is_shared(smem, bytes)) hg_emu::fail("cp.async: destination %p is not in shared memory", smem);
    hg_emu::cp_async(smem, gmem, bytes, src_bytes);
}

} // namespace emu

#define HG_SITE const char* file = __builtin_FILE(), int line = __builtin_LINE()
inline void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4],
                           HG_SITE) {
    emu::MmaIn in{a, b, c};
    float out[4];
    hg_emu::warp_collective(&emu::mma_op<false>, "mma.sync.m16n8k16.bf16", 0xffffffffu, &in, out, 0, 0, file, line);
    for (int i = 0; i < 4; i++) d[i] = out[i];
}
inline void mma_tf32_1688(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4],
                          HG_SITE) {
    emu::MmaIn in{a, b, c};
    float out[4];
    hg_emu::warp_collective(&emu::mma_op<true>, "mma.sync.m16n8k8.tf32", 0xffffffffu, &in, out, 0, 0, file, line);
    for (int i = 0; i < 4; i++) d[i] = out[i];
}
// Round to nearest, ties away from zero, to 10 mantissa bits (cvt.rna.tf32.f32).
inline uint32_t float_to_tf32(float x) {
    uint32_t u = __float_as_uint(x);
    if ((u & 0x7f800000u) == 0x7f800000u) return u; // inf, NaN
    return (u + 0x1000u) & 0xffffe000u;
}
inline void ldmatrix_x1(uint32_t (&r)[1], const void* row, HG_SITE) { emu::ldmatrix("ldmatrix.x1", r, 1, false, row, file, line); }
inline void ldmatrix_x2(uint32_t (&r)[2], const void* row, HG_SITE) { emu::ldmatrix("ldmatrix.x2", r, 2, false, row, file, line); }
inline void ldmatrix_x4(uint32_t (&r)[4], const void* row, HG_SITE) { emu::ldmatrix("ldmatrix.x4", r, 4, false, row, file, line); }
inline void ldmatrix_x1_trans(uint32_t (&r)[1], const void* row, HG_SITE) {
    emu::ldmatrix("ldmatrix.x1.trans", r, 1, true, row, file, line);
}
inline void ldmatrix_x2_trans(uint32_t (&r)[2], const void* row, HG_SITE) {
    emu::ldmatrix("ldmatrix.x2.trans", r, 2, true, row, file, line);
}
inline void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row, HG_SITE) {
    emu::ldmatrix("ldmatrix.x4.trans", r, 4, true, row, file, line);
}
#undef HG_SITE
inline void cp_async_16(void* smem, const void* gmem) { emu::cp_async(smem, gmem, 16, 16); }
inline void cp_async_16_zfill(void* smem, const void* gmem, int src_bytes) { emu::cp_async(smem, gmem, 16, src_bytes); }
inline void cp_async_8(void* smem, const void* gmem) { emu::cp_async(smem, gmem, 8, 8); }
inline void cp_async_4(void* smem, const void* gmem) { emu::cp_async(smem, gmem, 4, 4); }
inline void cp_async_commit() { hg_emu::cp_async_commit(); }
template <int N>
inline void cp_async_wait() {
    hg_emu::cp_async_wait(N);
}
inline void cp_async_wait_all() {
    hg_emu::cp_async_commit();
    hg_emu::cp_async_wait(0);
}

#endif

} // namespace hg
