#pragma once
#include <napi.h>

namespace kvtrim::addon {

Napi::Value KeyNormsSync(const Napi::CallbackInfo& info);
Napi::Value KeyNorms(const Napi::CallbackInfo& info);
Napi::Value CompressSync(const Napi::CallbackInfo& info);
Napi::Value Compress(const Napi::CallbackInfo& info);
Napi::Value CompressInPlaceSync(const Napi::CallbackInfo& info);
Napi::Value CompressInPlace(const Napi::CallbackInfo& info);
Napi::Value Backend(const Napi::CallbackInfo& info);

}  // namespace kvtrim::addon
