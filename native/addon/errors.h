// Turns a core Status into the KvtrimError class the facade registered (better-sqlite3's way:
// JS defines the class, hands it over once, and native code throws that very class), and the
// per-environment state every binding function shares (one per main thread or worker).
#pragma once
#include <napi.h>

#include "../core/status.h"

namespace kvtrim::addon {

struct AddonData {
  Napi::FunctionReference error_class;
  Napi::FunctionReference* device_buffer = nullptr;  // DeviceBuffer's constructor (device_buffer.cc)
  Napi::FunctionReference resizable_getter;          // ArrayBuffer.prototype.resizable's own getter
  Napi::FunctionReference mark_untransferable;       // worker_threads.markAsUntransferable
  Napi::FunctionReference promise_class;             // the intrinsic Promise, as loaded
  Napi::FunctionReference array_is_array;            // the intrinsic Array.isArray
  Napi::FunctionReference string_fn;                 // the intrinsic String (String(value))
  Napi::FunctionReference host_result;               // compress.cc: builds a host result object
  Napi::FunctionReference executor;                  // async_op.cc: every Promise's executor
  void* executor_task = nullptr;                     // async_op.cc: the task it is called for
  uint64_t calls = 0;  // binding calls begun (guarded): tells "disposed during this call"
  ~AddonData() { delete device_buffer; }
};

Napi::Error make_error(Napi::Env env, Code code, const std::string& message);
[[noreturn]] void throw_error(Napi::Env env, Code code, const std::string& message);
inline void throw_if(Napi::Env env, const Status& s) {
  if (!s.ok()) throw_error(env, s.code, s.message);
}

// binding.setErrorClass(KvtrimError)
Napi::Value SetErrorClass(const Napi::CallbackInfo& info);

// A binding function whose C++ exceptions all become KvtrimErrors (node-addon-api turns only
// Napi::Error into a JS exception; anything else escaping a callback would abort the process).
using Callback = Napi::Value (*)(const Napi::CallbackInfo&);
Napi::Function guarded(Napi::Env env, const char* name, Callback fn);

// Whether a typed array is on a resizable ArrayBuffer (runs the intrinsic getter captured at
// load time, so a patched prototype cannot lie). SharedArrayBuffers only grow: never.
bool is_resizable(Napi::Env env, Napi::TypedArray arr);

// Array.isArray(v), the intrinsic captured at load: true for a Proxy of an array too (napi's
// IsArray is not); a revoked Proxy throws the caller's TypeError, as Array.isArray does.
bool is_array(Napi::Env env, Napi::Value v);

// Marks the ArrayBuffer under a typed array untransferable; false where Node cannot (before
// 20.16, no process.getBuiltinModule) or the buffer is shared (nothing to do: true).
bool mark_untransferable(Napi::Env env, Napi::TypedArray arr);

// Captures what the functions above need from this environment (called by Init).
void init_errors(Napi::Env env, AddonData* data);

}  // namespace kvtrim::addon
