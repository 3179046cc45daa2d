// What kernels/*.cu need to compile both with nvcc (the fatbin) and with g++ under the CUDA
// emulator (native/emu, which force-includes native/emu/cuda_emu.h and defines HG_EMU).
// Owned by the emulator; kernels include it (directly or through another common header).
//
// Rules for kernel sources:
//  - A launch name is declared `extern "C" __global__ void name(...)` (native/build.sh finds them
//    with a grep, so keep `extern "C" __global__` together, and no `extern "C" { ... }` blocks).
//    Every such kernel must exist under both compilers: put arch guards inside the body.
//  - Parameters are pointers and scalars Java can pass: int/unsigned (Integer), float (Float),
//    long long/size_t/pointers (Long). No structs or doubles by value.
//  - Dynamic shared memory only through HG_DYNAMIC_SHARED, never `extern __shared__`:
//        HG_DYNAMIC_SHARED(float, smem);   // declares `float* smem` (16-byte aligned)
//    One use per kernel; its size is the launch's sharedBytes. It can be used in a device function
//    too (each use yields the same block-wide buffer).
//  - Headers in kernels/common/ are self-contained (include what they use, guarded): the emulator
//    includes each of them once ahead of the kernel files.
//  - Inline PTX only through kernels/common/ptx.cuh (g++ cannot compile it; each wrapper there
//    has an emulated twin).
//  - Hopper-only code (wgmma, TMA, clusters) sits under `#if HG_HOPPER`; its portable path is what
//    the emulator runs. A kernel with no portable path calls HG_UNSUPPORTED("why") on it, which
//    traps on the GPU and fails the launch with that message in the emulator.
//  - Under the emulator, __CUDA_ARCH__ is 800; `assert` works (a failed one fails the launch);
//    __shared__ memory holds 0xff bytes (NaN) at the start of every block.
#pragma once

#ifdef HG_EMU

#define HG_DYNAMIC_SHARED(type, name) type* name = reinterpret_cast<type*>(hg_emu::dynamic_shared())
#define HG_UNSUPPORTED(why) hg_emu::fail("not supported by the CUDA emulator: %s", why)
#define HG_HOPPER 0

#else

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#define HG_DYNAMIC_SHARED(type, name)                                   \
    extern __shared__ __align__(16) unsigned char hg_dynamic_shared_[]; \
    type* name = reinterpret_cast<type*>(hg_dynamic_shared_)
#define HG_UNSUPPORTED(why) __trap()
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define HG_HOPPER 1
#else
#define HG_HOPPER 0
#endif

#endif
