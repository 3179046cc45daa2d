// Launch shapes that the kernels and their Java launchers (CudaKernels) must agree on, written once:
// the build turns every `constexpr int NAME = value;` line of this namespace into
// io.hintgrpo.engine.cuda.LaunchShapes.NAME (native/launch_shapes.sh, generate-sources), with the
// line's comment as its javadoc. Values are plain decimal integers.
#pragma once

namespace hg_launch {
constexpr int GEMM_TILE = 64;               // gemm.cu: rows and columns of out per block (BM = BN), 16 × 16 threads
constexpr int GEMM_BF16_TILE = 128;         // gemm_bf16.cu: rows and columns of out per block (BM = BN)
constexpr int GEMM_BF16_THREADS = 256;      // gemm_bf16.cu: threads per block (8 warps)
constexpr int ATTENTION_MAX_D = 128;        // attention.cu and attention_bf16.cu: the largest head dimension
constexpr int ATTENTION_MAX_WARPS = 8;      // attention.cu: warps per block of forward, dq and decode (rows × heads per block)
constexpr int ATTENTION_DKV_ROWS = 4;       // attention.cu: warps (key rows) per block of attention_backward_dkv
constexpr int ATTENTION_BF16_ROWS = 64;     // attention_bf16.cu: query rows (or keys, for dk/dv) per block
constexpr int ATTENTION_BF16_THREADS = 128; // attention_bf16.cu: threads per block (4 warps × 16 rows)
constexpr int ROPE_MAX_HALF = 128;          // rope.cu: half the largest head dimension rope takes
constexpr int SAMPLE_THREADS = 256;         // sampling.cu: threads per block of sample_tokens (one row per block)
constexpr int SUM_CHUNK = 65536;            // optim.cu: elements per partial sum of sum_squares_partials
}  // namespace hg_launch
