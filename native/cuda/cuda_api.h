// The one header every kernel file includes first. Under nvcc it is real CUDA; under g++ it
// is kvtrim's emulator (emu/), which runs the very same kernel source with every GPU thread
// as a fiber. Kernels follow the rules in README.md so both compile from one source.
#pragma once
#include <cstdint>
#include <type_traits>

#if defined(__CUDACC__)
#include <cuda_runtime.h>

#include <cstdint>

#if defined(__CUDA_ARCH__)
#define KVTRIM_ARCH __CUDA_ARCH__
#else
#define KVTRIM_ARCH 0
#endif
#define KVTRIM_EMULATED 0

// The block's dynamic shared memory: one buffer, carved up by the kernel.
__device__ __forceinline__ unsigned char* kvtrim_dynamic_smem() {
  extern __shared__ uint4 kvtrim_dynamic_smem_[];
  return reinterpret_cast<unsigned char*>(kvtrim_dynamic_smem_);
}
#define KVTRIM_DYNAMIC_SMEM() kvtrim_dynamic_smem()
// Body of every spin-wait loop: a short sleep on the GPU, a yield under the emulator.
#define KVTRIM_SPIN_WAIT() __nanosleep(64)

#else  // g++: the emulator

#include "emu/emu.h"

#ifndef __grid_constant__
#define __grid_constant__  // kernel arguments are plain C++ values under the emulator
#endif

#endif

#define KVTRIM_DEV __device__ __forceinline__
// A device function kept out of line on the GPU, so that ptxas allocates its registers apart
// (kernels/scores.cuh: keydiff_anchor); an ordinary inline function under the emulator.
#if defined(__CUDACC__)
#define KVTRIM_DEV_NOINLINE __device__ __noinline__
#else
#define KVTRIM_DEV_NOINLINE inline
#endif
// KVTRIM_HD (host and device) comes with the contract: native/core/contract.h.
