// Fragment-layout probe of the tensor-core wrappers (kernels/common/ptx.cuh) on a real GPU.
//
// Each probe loads its fragments from plain row-major matrices by the per-lane layout that
// ptx.cuh documents (the PTX ISA's, which the CUDA emulator implements), runs the wrapper, and
// dumps every lane's registers. scripts/gpu-fragment-probe.py recomputes what those registers must
// hold from the same rule and compares: a wrapper whose hardware layout differs from the rule
// (and so from the emulator) fails there. Inputs are small integers, exact in bf16 and tf32, so
// every product and sum is exact and the comparison is for equality.
//
// Build (gpu-bundle.sh does, and the .py falls back to it): nvcc -std=c++17 -I kernels -o probe this.cu
// Output: one JSON object on stdout.
#include "common/ptx.cuh"

#include <cstdio>
#include <cstdlib>

using hg::pack_bf16x2;

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        cudaError_t e = (x);                                                                       \
        if (e != cudaSuccess) {                                                                    \
            printf("{\"error\": \"%s: %s\"}\n", #x, cudaGetErrorString(e));                        \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

// A 16x16, B 16x8 (B[k][n]), C 16x8 → d[lane][4]
__global__ void probe_mma_bf16(const float* A, const float* B, const float* C, float* out) {
    int lane = threadIdx.x, g = lane >> 2, t = lane & 3;
    uint32_t a[4], b[2];
    float c[4], d[4];
    a[0] = pack_bf16x2(A[g * 16 + 2 * t], A[g * 16 + 2 * t + 1]);
    a[1] = pack_bf16x2(A[(g + 8) * 16 + 2 * t], A[(g + 8) * 16 + 2 * t + 1]);
    a[2] = pack_bf16x2(A[g * 16 + 2 * t + 8], A[g * 16 + 2 * t + 9]);
    a[3] = pack_bf16x2(A[(g + 8) * 16 + 2 * t + 8], A[(g + 8) * 16 + 2 * t + 9]);
    b[0] = pack_bf16x2(B[(2 * t) * 8 + g], B[(2 * t + 1) * 8 + g]);
    b[1] = pack_bf16x2(B[(2 * t + 8) * 8 + g], B[(2 * t + 9) * 8 + g]);
    for (int i = 0; i < 4; i++) c[i] = C[(g + (i >> 1) * 8) * 8 + 2 * t + (i & 1)];
    hg::mma_bf16_16816(d, a, b, c);
    for (int i = 0; i < 4; i++) out[lane * 4 + i] = d[i];
}

// A 16x8, B 8x8, C 16x8 → d[lane][4]
__global__ void probe_mma_tf32(const float* A, const float* B, const float* C, float* out) {
    int lane = threadIdx.x, g = lane >> 2, t = lane & 3;
    uint32_t a[4], b[2];
    float c[4], d[4];
    a[0] = hg::float_to_tf32(A[g * 8 + t]);
    a[1] = hg::float_to_tf32(A[(g + 8) * 8 + t]);
    a[2] = hg::float_to_tf32(A[g * 8 + t + 4]);
    a[3] = hg::float_to_tf32(A[(g + 8) * 8 + t + 4]);
    b[0] = hg::float_to_tf32(B[t * 8 + g]);
    b[1] = hg::float_to_tf32(B[(t + 4) * 8 + g]);
    for (int i = 0; i < 4; i++) c[i] = C[(g + (i >> 1) * 8) * 8 + 2 * t + (i & 1)];
    hg::mma_tf32_1688(d, a, b, c);
    for (int i = 0; i < 4; i++) out[lane * 4 + i] = d[i];
}

// Four 8x8 matrices of 16-bit codes (M_i[r][c] = i*64 + r*8 + c) in shared memory; every ldmatrix
// variant, each lane's registers to out[variant][lane][4] (unused registers stay 0).
__global__ void probe_ldmatrix(uint32_t* out) {
    __shared__ __align__(16) uint16_t M[4][8][8];
    int lane = threadIdx.x;
    for (int e = lane; e < 256; e += 32) M[e / 64][(e / 8) % 8][e % 8] = (uint16_t)e;
    __syncthreads();
    for (int v = 0; v < 6; v++) {
        int n = 1 << (v % 3);  // 1, 2, 4 matrices
        bool trans = v >= 3;
        const void* row = &M[(lane / 8) % n][lane % 8][0];  // lanes past 8n repeat valid rows
        uint32_t r[4] = {0, 0, 0, 0};
        if (n == 1) {
            uint32_t x[1];
            if (trans) hg::ldmatrix_x1_trans(x, row); else hg::ldmatrix_x1(x, row);
            r[0] = x[0];
        } else if (n == 2) {
            uint32_t x[2];
            if (trans) hg::ldmatrix_x2_trans(x, row); else hg::ldmatrix_x2(x, row);
            r[0] = x[0], r[1] = x[1];
        } else {
            uint32_t x[4];
            if (trans) hg::ldmatrix_x4_trans(x, row); else hg::ldmatrix_x4(x, row);
            for (int i = 0; i < 4; i++) r[i] = x[i];
        }
        for (int i = 0; i < 4; i++) out[(v * 32 + lane) * 4 + i] = r[i];
    }
}

// cp.async of 16 (full and zero-filled after 5 bytes), 8 and 4 bytes from src into shared memory
// pre-filled with 0xee, then the 48 shared bytes to out.
__global__ void probe_cp_async(const unsigned char* src, unsigned char* out) {
    __shared__ __align__(16) unsigned char s[48];
    int lane = threadIdx.x;
    for (int i = lane; i < 48; i += 32) s[i] = 0xee;
    __syncthreads();
    if (lane == 0) hg::cp_async_16(s, src);
    if (lane == 1) hg::cp_async_16_zfill(s + 16, src + 16, 5);
    if (lane == 2) hg::cp_async_8(s + 32, src + 32);
    if (lane == 3) hg::cp_async_4(s + 40, src + 40);
    hg::cp_async_commit();
    hg::cp_async_wait<0>();
    __syncthreads();
    for (int i = lane; i < 48; i += 32) out[i] = s[i];
}

template <typename T>
static T* upload(const T* h, size_t n) {
    T* d;
    CHECK(cudaMalloc(&d, n * sizeof(T)));
    CHECK(cudaMemcpy(d, h, n * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}

static void print_floats(const char* name, const float* v, int n, bool last = false) {
    printf("\"%s\": [", name);
    for (int i = 0; i < n; i++) printf("%s%.9g", i ? "," : "", v[i]);
    printf("]%s\n", last ? "" : ",");
}

int main() {
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, 0));
    printf("{\"device\": \"%s\", \"cc\": \"%d.%d\",\n", prop.name, prop.major, prop.minor);

    // small integers: exact in bf16 and tf32, exact products and sums in fp32
    float A16[16 * 16], B16[16 * 8], C[16 * 8], A8[16 * 8], B8[8 * 8];
    for (int i = 0; i < 16; i++)
        for (int k = 0; k < 16; k++) A16[i * 16 + k] = (float)((i * 7 + k * 3) % 11 - 5);
    for (int k = 0; k < 16; k++)
        for (int j = 0; j < 8; j++) B16[k * 8 + j] = (float)((k * 5 + j * 3 + 1) % 9 - 4);
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 8; j++) C[i * 8 + j] = 0.5f * (float)(i * 8 + j);
    for (int i = 0; i < 16; i++)
        for (int k = 0; k < 8; k++) A8[i * 8 + k] = (float)((i * 5 + k * 7 + 2) % 13 - 6);
    for (int k = 0; k < 8; k++)
        for (int j = 0; j < 8; j++) B8[k * 8 + j] = (float)((k * 3 + j * 5) % 7 - 3);
    print_floats("A16", A16, 256);
    print_floats("B16", B16, 128);
    print_floats("C", C, 128);
    print_floats("A8", A8, 128);
    print_floats("B8", B8, 64);

    float* dOut;
    CHECK(cudaMalloc(&dOut, 128 * sizeof(float)));
    float out[128];
    probe_mma_bf16<<<1, 32>>>(upload(A16, 256), upload(B16, 128), upload(C, 128), dOut);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(out, dOut, sizeof out, cudaMemcpyDeviceToHost));
    print_floats("mma_bf16_16816", out, 128);
    probe_mma_tf32<<<1, 32>>>(upload(A8, 128), upload(B8, 64), upload(C, 128), dOut);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(out, dOut, sizeof out, cudaMemcpyDeviceToHost));
    print_floats("mma_tf32_1688", out, 128);

    uint32_t* dL;
    CHECK(cudaMalloc(&dL, 6 * 32 * 4 * sizeof(uint32_t)));
    probe_ldmatrix<<<1, 32>>>(dL);
    CHECK(cudaGetLastError());
    static uint32_t L[6 * 32 * 4];
    CHECK(cudaMemcpy(L, dL, sizeof L, cudaMemcpyDeviceToHost));
    printf("\"ldmatrix\": [");
    for (int i = 0; i < 6 * 32 * 4; i++) printf("%s%u", i ? "," : "", L[i]);
    printf("],\n");

    unsigned char src[48], bytes[48];
    for (int i = 0; i < 48; i++) src[i] = (unsigned char)(i * 5 + 1);
    unsigned char* dB;
    CHECK(cudaMalloc(&dB, 48));
    probe_cp_async<<<1, 32>>>(upload(src, 48), dB);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(bytes, dB, 48, cudaMemcpyDeviceToHost));
    printf("\"cp_async\": [");
    for (int i = 0; i < 48; i++) printf("%s%u", i ? "," : "", bytes[i]);
    printf("]\n}\n");
    CHECK(cudaDeviceSynchronize());
    return 0;
}
