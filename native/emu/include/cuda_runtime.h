// Under the CUDA emulator the force-included native/emu/cuda_emu.h already declares what
// <cuda_runtime.h> would: this header is intentionally empty.
#pragma once
