// Under the CUDA emulator the force-included native/emu/cuda_emu.h already declares what
// <device_launch_parameters.h> would: this header is intentionally empty.
#pragma once
