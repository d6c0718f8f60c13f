// The one way kernels are launched (never <<<>>>): through cudaLaunchKernel /
// cudaLaunchCooperativeKernel on the GPU, through the emulator's launch under g++.
#pragma once
#include "cuda_api.h"

namespace kvtrim::cuda {

template <class T>
struct Same {
  using type = T;
};

template <class... P>
cudaError_t launch_kernel(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                          bool cooperative, typename Same<P>::type... args) {
#if KVTRIM_EMULATED
  return ::kvtrim::emu::launch(kernel, grid, block, smem, stream, cooperative, args...);
#else
  void* argv[] = {static_cast<void*>(&args)...};
  const void* fn = reinterpret_cast<const void*>(kernel);
  return cooperative ? cudaLaunchCooperativeKernel(fn, grid, block, argv, smem, stream)
                     : cudaLaunchKernel(fn, grid, block, argv, smem, stream);
#endif
}

}  // namespace kvtrim::cuda
