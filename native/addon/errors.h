// Turns a core Status into the KvtrimError class the facade registered (better-sqlite3's way:
// JS defines the class, hands it over once, and native code throws that very class).
#pragma once
#include <napi.h>

#include "../core/status.h"

namespace kvtrim::addon {

struct AddonData {
  Napi::FunctionReference error_class;
  Napi::FunctionReference* device_buffer = nullptr;  // DeviceBuffer's constructor (device.cc)
  ~AddonData() { delete device_buffer; }
};

Napi::Error make_error(Napi::Env env, Code code, const std::string& message);
[[noreturn]] void throw_error(Napi::Env env, Code code, const std::string& message);
inline void throw_if(Napi::Env env, const Status& s) {
  if (!s.ok()) throw_error(env, s.code, s.message);
}

// binding.setErrorClass(KvtrimError)
Napi::Value SetErrorClass(const Napi::CallbackInfo& info);

}  // namespace kvtrim::addon
