// Module registration: the binding that binding.d.ts types.
#include <napi.h>

#include "device.h"
#include "errors.h"
#include "ops.h"
#include "uncertainty.h"

namespace kvtrim::addon {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());  // freed by node-addon-api's cleanup hook
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  exports.Set("backend", Napi::Function::New(env, Backend, "backend"));
  exports.Set("lmbaCountsSync", Napi::Function::New(env, LmbaCountsSync, "lmbaCountsSync"));
  exports.Set("lmbaCounts", Napi::Function::New(env, LmbaCounts, "lmbaCounts"));
  exports.Set("keyNormsSync", Napi::Function::New(env, KeyNormsSync, "keyNormsSync"));
  exports.Set("keyNorms", Napi::Function::New(env, KeyNorms, "keyNorms"));
  exports.Set("compressSync", Napi::Function::New(env, CompressSync, "compressSync"));
  exports.Set("compress", Napi::Function::New(env, Compress, "compress"));
  exports.Set("compressInPlaceSync", Napi::Function::New(env, CompressInPlaceSync, "compressInPlaceSync"));
  exports.Set("compressInPlace", Napi::Function::New(env, CompressInPlace, "compressInPlace"));
  InitDevice(env, exports);
  return exports;
}

}  // namespace kvtrim::addon

static Napi::Object InitKvtrim(Napi::Env env, Napi::Object exports) {
  return kvtrim::addon::Init(env, exports);
}

NODE_API_MODULE(kvtrim, InitKvtrim)
