// Host-side helpers shared by the CUDA launchers (compress.cu, norms.cu, memory.cu, uncertainty.cu,
// bench.cu, dev_tools.cu): CUDA errors as Status (with the emulator's diagnosis when emulated),
// device scoping, scratch alignment. Powers of two: contract.h's pow2_ceil.
#pragma once
#include <cstdint>
#include <string>

#include "../core/contract.h"
#include "../core/status.h"
#include "cuda_api.h"

namespace kvtrim::cuda {

inline Status cuda_status(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return Status::success();
  std::string msg = std::string(what) + " failed: " + cudaGetErrorString(e) + " (" + cudaGetErrorName(e) + ")";
#if KVTRIM_EMULATED
  const std::string emu = ::kvtrim::emu::last_error_message();
  if (!emu.empty()) msg += ": " + emu;
#endif
  cudaGetLastError();  // clear a sticky launch error
  return Status::error(e == cudaErrorMemoryAllocation ? Code::OutOfMemory : Code::CudaError, msg);
}

#define KVTRIM_CUDA_TRY(call)                           \
  do {                                                  \
    const Status s_ = cuda_status((call), #call);       \
    if (!s_.ok()) return s_;                            \
  } while (0)

inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

inline size_t align_up(size_t n) { return (n + 255) & ~size_t(255); }

// Runs f with `device` current, restoring the previous device after.
template <class F>
Status with_device(int device, F&& f) {
  int prev = 0;
  KVTRIM_CUDA_TRY(cudaGetDevice(&prev));
  if (prev != device) KVTRIM_CUDA_TRY(cudaSetDevice(device));
  Status s = f();
  if (prev != device) cudaSetDevice(prev);
  return s;
}

}  // namespace kvtrim::cuda
