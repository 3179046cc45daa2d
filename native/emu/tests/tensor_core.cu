// Planted kernels for EmuTensorCoreTest: the mma.sync / ldmatrix / cp.async wrappers of
// kernels/common/ptx.cuh. The probes build fragments straight from global memory by the layouts
// documented there, so a layout mismatch between the documentation and the emulator shows.
#include "common/ptx.cuh"

// One warp: D = A·B + C with A 16x16, B 16x8 (row-major k×n), C 16x8, all bf16 bits / float.
extern "C" __global__ void emu_mma_bf16_probe(float* D, const unsigned short* A, const unsigned short* B, const float* C) {
    int lane = threadIdx.x, g = lane >> 2, t = lane & 3;
    auto a2 = [&](int r, int c) { return (uint32_t)A[r * 16 + c + 1] << 16 | A[r * 16 + c]; };
    auto b2 = [&](int k, int n) { return (uint32_t)B[(k + 1) * 8 + n] << 16 | B[k * 8 + n]; };
    uint32_t a[4] = {a2(g, 2 * t), a2(g + 8, 2 * t), a2(g, 2 * t + 8), a2(g + 8, 2 * t + 8)};
    uint32_t b[2] = {b2(2 * t, g), b2(2 * t + 8, g)};
    float c[4] = {C[g * 8 + 2 * t], C[g * 8 + 2 * t + 1], C[(g + 8) * 8 + 2 * t], C[(g + 8) * 8 + 2 * t + 1]};
    float d[4];
    hg::mma_bf16_16816(d, a, b, c);
    D[g * 8 + 2 * t] = d[0];
    D[g * 8 + 2 * t + 1] = d[1];
    D[(g + 8) * 8 + 2 * t] = d[2];
    D[(g + 8) * 8 + 2 * t + 1] = d[3];
}

// One warp: D = A·B + C with A 16x8, B 8x8 (row-major k×n) as fp32 rounded to tf32, C 16x8.
extern "C" __global__ void emu_mma_tf32_probe(float* D, const float* A, const float* B, const float* C) {
    int lane = threadIdx.x, g = lane >> 2, t = lane & 3;
    uint32_t a[4] = {hg::float_to_tf32(A[g * 8 + t]), hg::float_to_tf32(A[(g + 8) * 8 + t]),
                     hg::float_to_tf32(A[g * 8 + t + 4]), hg::float_to_tf32(A[(g + 8) * 8 + t + 4])};
    uint32_t b[2] = {hg::float_to_tf32(B[t * 8 + g]), hg::float_to_tf32(B[(t + 4) * 8 + g])};
    float c[4] = {C[g * 8 + 2 * t], C[g * 8 + 2 * t + 1], C[(g + 8) * 8 + 2 * t], C[(g + 8) * 8 + 2 * t + 1]};
    hg::mma_tf32_1688(c, a, b, c); // d aliasing c, as kernels accumulate
    D[g * 8 + 2 * t] = c[0];
    D[g * 8 + 2 * t + 1] = c[1];
    D[(g + 8) * 8 + 2 * t] = c[2];
    D[(g + 8) * 8 + 2 * t + 1] = c[3];
}

// One warp loads the 16x16 matrix M (16-bit values) into shared memory and reads it back with
// ldmatrix: mode 0-2: x1/x2/x4, 3-5: the same .trans. Lane l passes row (l % 16) of column block
// (l / 16): matrices in the order top-left, bottom-left, top-right, bottom-right.
// out[lane·4 + i] = register i of the lane (unused ones 0).
extern "C" __global__ void emu_ldmatrix_probe(unsigned* out, const unsigned short* M, int mode) {
    __shared__ __align__(16) unsigned short s[16][16];
    int lane = threadIdx.x;
    for (int i = lane; i < 256; i += 32) s[i / 16][i % 16] = M[i];
    __syncwarp();
    uint32_t r[4] = {0, 0, 0, 0};
    const void* row = &s[lane % 16][(lane / 16) * 8];
    switch (mode) {
    case 0: hg::ldmatrix_x1(reinterpret_cast<uint32_t(&)[1]>(r), row); break;
    case 1: hg::ldmatrix_x2(reinterpret_cast<uint32_t(&)[2]>(r), row); break;
    case 2: hg::ldmatrix_x4(r, row); break;
    case 3: hg::ldmatrix_x1_trans(reinterpret_cast<uint32_t(&)[1]>(r), row); break;
    case 4: hg::ldmatrix_x2_trans(reinterpret_cast<uint32_t(&)[2]>(r), row); break;
    default: hg::ldmatrix_x4_trans(r, row); break;
    }
    for (int i = 0; i < 4; i++) out[lane * 4 + i] = r[i];
}

// C (M×N, fp32) = A (M×K, bf16, row-major) · B (K×N, bf16, row-major): a block of 4 warps computes a
// 32×32 tile; K in steps of 32 through a two-stage cp.async pipeline; fragments by ldmatrix (A
// plain, B .trans); each warp a 16×16 quarter as two m16n8k16 mmas. M, N, K multiples of 32.
extern "C" __global__ void emu_gemm_bf16(float* C, const unsigned short* A, const unsigned short* B, int M, int N, int K) {
    constexpr int T = 32;
    __shared__ __align__(16) unsigned short As[2][T][T + 8]; // +8: rows stay 16-byte aligned, banks spread
    __shared__ __align__(16) unsigned short Bs[2][T][T + 8];
    int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    int m0 = blockIdx.y * T, n0 = blockIdx.x * T;
    int wm = (warp / 2) * 16, wn = (warp % 2) * 16;
    auto load = [&](int stage, int k0) { // 128 threads, 2 × 16-byte chunks each per matrix
        for (int c = tid; c < T * T / 8; c += blockDim.x) {
            int r = c / (T / 8), col = (c % (T / 8)) * 8;
            hg::cp_async_16(&As[stage][r][col], A + (size_t)(m0 + r) * K + k0 + col);
            hg::cp_async_16(&Bs[stage][r][col], B + (size_t)(k0 + r) * N + n0 + col);
        }
        hg::cp_async_commit();
    };
    float acc[2][4] = {};
    load(0, 0);
    for (int k0 = 0, stage = 0; k0 < K; k0 += T, stage ^= 1) {
        if (k0 + T < K) {
            load(stage ^ 1, k0 + T);
            hg::cp_async_wait<1>();
        } else {
            hg::cp_async_wait<0>();
        }
        __syncthreads();
        for (int kk = 0; kk < T; kk += 16) {
            uint32_t a[4], b[4];
            hg::ldmatrix_x4(a, &As[stage][wm + lane % 16][kk + (lane / 16) * 8]);
            hg::ldmatrix_x4_trans(b, &Bs[stage][kk + lane % 16][wn + (lane / 16) * 8]);
            uint32_t b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
            hg::mma_bf16_16816(acc[0], a, b0, acc[0]);
            hg::mma_bf16_16816(acc[1], a, b1, acc[1]);
        }
        __syncthreads();
    }
    int g = lane >> 2, t = lane & 3;
    for (int h = 0; h < 2; h++)
        for (int i = 0; i < 4; i++)
            C[(size_t)(m0 + wm + g + (i >> 1) * 8) * N + n0 + wn + h * 8 + 2 * t + (i & 1)] = acc[h][i];
}

// Bug: reads the shared tile right after cp.async, without waiting: sees the poison, as a GPU can.
extern "C" __global__ void emu_cp_async_without_wait(float* out, const float* x) {
    __shared__ __align__(16) float s[128];
    int t = threadIdx.x;
    hg::cp_async_16(&s[4 * t], x + 4 * t);
    hg::cp_async_commit();
    out[t] = s[4 * t];
    hg::cp_async_wait<0>();
    out[32 + t] = s[4 * t];
}
