// Module registration: the binding that binding.d.ts types. Safe to load in any number of
// environments (main thread and workers): all state is per environment (AddonData) or in
// thread-safe process-wide pools, and every function's C++ exceptions become KvtrimErrors.
#include <napi.h>

#include "device_ops.h"
#include "errors.h"
#include "host_ops.h"
#include "outputs.h"
#include "uncertainty.h"

namespace kvtrim::addon {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData(data);  // freed by node-addon-api's cleanup hook
  init_errors(env, data);
  exports.Set("setErrorClass", guarded(env, "setErrorClass", SetErrorClass));
  exports.Set("backend", guarded(env, "backend", Backend));
  exports.Set("uncertaintyCountsSync", guarded(env, "uncertaintyCountsSync", UncertaintyCountsSync));
  exports.Set("uncertaintyCounts", guarded(env, "uncertaintyCounts", UncertaintyCounts));
  exports.Set("keyNormsSync", guarded(env, "keyNormsSync", KeyNormsSync));
  exports.Set("keyNorms", guarded(env, "keyNorms", KeyNorms));
  exports.Set("compressSync", guarded(env, "compressSync", CompressSync));
  exports.Set("compress", guarded(env, "compress", Compress));
  exports.Set("compressInPlaceSync", guarded(env, "compressInPlaceSync", CompressInPlaceSync));
  exports.Set("compressInPlace", guarded(env, "compressInPlace", CompressInPlace));
  exports.Set("memoryStats", guarded(env, "memoryStats", MemoryStats));
  exports.Set("releaseMemory", guarded(env, "releaseMemory", ReleaseMemory));
  exports.Set("setPoolLimit", guarded(env, "setPoolLimit", SetPoolLimit));
  InitDevice(env, exports);
  return exports;
}

}  // namespace kvtrim::addon

static Napi::Object InitKvtrim(Napi::Env env, Napi::Object exports) {
  return kvtrim::addon::Init(env, exports);
}

NODE_API_MODULE(kvtrim, InitKvtrim)
