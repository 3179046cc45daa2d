// Embedding rows and modality rows (Kernels.embedding, embeddingBackward, scatterRows, gatherRows).
//
// Launch shapes:
//   embedding_forward, embedding_forward_bf16, scatter_rows, gather_rows: grid (rows), block (32…256 threads, a power of
//     two sized to the row): one block copies one row.
//   embedding_backward: grid (ceil(c / threads)), block (threads as above): one thread owns one
//     column of the table gradient and walks the rows in order, so repeated ids add up without
//     atomics and in the same order as the CPU twin.
// Ids out of range cannot throw on a device: an id ≥ vocabRows yields a NaN row (forward) or is
// skipped (backward), a row index outside the destination is skipped, one outside the source
// yields NaN, so the error is visible and nothing is written out of bounds.

#include "common/cuda_compat.cuh"

extern "C" __global__ void embedding_forward(float* out, const int* ids, const float* table, int c, int vocabRows) {
    int row = blockIdx.x;
    int id = ids[row];
    float* o = out + (size_t)row * c;
    if (id < 0) { // a modality placeholder: its projector output is scattered in later
        for (int j = threadIdx.x; j < c; j += blockDim.x) o[j] = 0.0f;
    } else if (id >= vocabRows) {
        for (int j = threadIdx.x; j < c; j += blockDim.x) o[j] = NAN;
    } else {
        const float* t = table + (size_t)id * c;
        for (int j = threadIdx.x; j < c; j += blockDim.x) o[j] = t[j];
    }
}

// The same gather from a bf16 table (a frozen bf16 base), each element widened exactly to fp32.
extern "C" __global__ void embedding_forward_bf16(float* out, const int* ids, const __nv_bfloat16* table, int c, int vocabRows) {
    int row = blockIdx.x;
    int id = ids[row];
    float* o = out + (size_t)row * c;
    if (id < 0) {
        for (int j = threadIdx.x; j < c; j += blockDim.x) o[j] = 0.0f;
    } else if (id >= vocabRows) {
        for (int j = threadIdx.x; j < c; j += blockDim.x) o[j] = NAN;
    } else {
        const __nv_bfloat16* t = table + (size_t)id * c;
        for (int j = threadIdx.x; j < c; j += blockDim.x) o[j] = __bfloat162float(t[j]);
    }
}

extern "C" __global__ void embedding_backward(float* dtable, const float* dout, const int* ids, int m, int c, int vocabRows) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= c) return;
    for (int row = 0; row < m; row++) {
        int id = ids[row];
        if (id < 0 || id >= vocabRows) continue;
        dtable[(size_t)id * c + j] += dout[(size_t)row * c + j];
    }
}

// out[rows[i], :] = src[i, :]
extern "C" __global__ void scatter_rows(float* out, const float* src, const int* rows, int c, int outRows) {
    int i = blockIdx.x;
    int r = rows[i];
    if (r < 0 || r >= outRows) return;
    for (int j = threadIdx.x; j < c; j += blockDim.x) out[(size_t)r * c + j] = src[(size_t)i * c + j];
}

// out[i, :] = src[rows[i], :]
extern "C" __global__ void gather_rows(float* out, const float* src, const int* rows, int c, int srcRows) {
    int i = blockIdx.x;
    int r = rows[i];
    bool ok = r >= 0 && r < srcRows;
    for (int j = threadIdx.x; j < c; j += blockDim.x) out[(size_t)i * c + j] = ok ? src[(size_t)r * c + j] : NAN;
}
