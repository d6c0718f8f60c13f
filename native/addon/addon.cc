// Module registration: the binding that binding.d.ts types. Safe to load in any number of
// environments (main thread and workers): all state is per environment (AddonData) or in
// thread-safe process-wide pools, and every function's C++ exceptions become KvtrimErrors.
// The shipped binary exports the public API only; a build with KVTRIM_DEV_HOOKS adds the
// test and benchmark tools as one object, `dev` (dev_hooks.cc).
#include <napi.h>

#include "bindings.h"
#include "device_buffer.h"
#include "errors.h"
#include "options.h"
#include "outputs.h"

namespace kvtrim::addon {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData(data);  // freed by node-addon-api's cleanup hook
  init_errors(env, data);
  const std::pair<const char*, Callback> functions[] = {
      {"setErrorClass", SetErrorClass},
      {"backend", Backend},
      {"decodeOptions", DecodeOptions},
      {"keyNormsSync", KeyNormsSync},
      {"keyNorms", KeyNorms},
      {"tokenScoresSync", TokenScoresSync},
      {"tokenScores", TokenScores},
      {"selectionCountsSync", SelectionCountsSync},
      {"selectionCounts", SelectionCounts},
      {"compressSync", CompressSync},
      {"compress", Compress},
      {"compressInPlaceSync", CompressInPlaceSync},
      {"compressInPlace", CompressInPlace},
      {"cudaCompressLayersSync", CompressLayersSync},
      {"cudaCompressLayers", CompressLayers},
      {"uncertaintyCountsSync", UncertaintyCountsSync},
      {"uncertaintyCounts", UncertaintyCounts},
      {"memoryStats", MemoryStats},
      {"releaseMemory", ReleaseMemory},
      {"setPoolLimit", SetPoolLimit},
  };
  for (const auto& [name, fn] : functions) exports.Set(name, guarded(env, name, fn));
  Napi::Function ctor = DeviceBuffer::Define(env);
  data->device_buffer = new Napi::FunctionReference(Napi::Persistent(ctor));
  exports.Set("DeviceBuffer", ctor);
#ifdef KVTRIM_DEV_HOOKS
  exports.Set("dev", DevHooks(env));
#endif
  return exports;
}

}  // namespace kvtrim::addon

static Napi::Object InitKvtrim(Napi::Env env, Napi::Object exports) {
  return kvtrim::addon::Init(env, exports);
}

NODE_API_MODULE(kvtrim, InitKvtrim)
