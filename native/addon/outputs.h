// Host output arrays. One call's large outputs come from kvtrim's recycled buffer pool when
// it can take them (cpu/host_buffers.h), all or none; otherwise, and for small ones, they are
// ordinary V8 memory that the GC frees by itself. Pooled memory is reported to V8 as external
// memory while a JS array owns it, so the GC and process.memoryUsage() see it. Several small
// outputs of one call (64 KiB together at most) are views of one ArrayBuffer.
#pragma once
#include <napi.h>

#include <vector>

#include "../core/dtype.h"

namespace kvtrim::addon {

struct OutputSpec {
  DType dtype;      // element type: F32 for Float32Array, else Uint16Array; see int32 below
  int64_t count;    // elements
  bool int32 = false;  // an Int32Array instead
};

// The typed arrays, in order; data[i] points at array i's elements. A failed allocation
// throws OUT_OF_MEMORY naming `what`.
std::vector<Napi::TypedArray> new_outputs(Napi::Env env, const std::vector<OutputSpec>& specs,
                                          std::vector<void*>* data, const char* what);

// binding.memoryStats() and binding.releaseMemory(): the pool's figures, and its idle
// buffers unmapped.
Napi::Value MemoryStats(const Napi::CallbackInfo& info);
Napi::Value ReleaseMemory(const Napi::CallbackInfo& info);
Napi::Value SetPoolLimit(const Napi::CallbackInfo& info);

}  // namespace kvtrim::addon
