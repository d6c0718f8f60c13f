// DeviceBuffer: GPU memory owned by kvtrim (freed by free() or, as a safety net, by the
// finalizer) or wrapped around a pointer another library owns (never freed here). Device tensor
// arguments are read by args.h with host ones.
//
// Operations pin the buffers they use: free() while an operation is pending makes the buffer
// unusable for new work at once, but the memory goes back only when the last one settles.
#pragma once
#include <napi.h>

#include <string>

#include "../core/tensor.h"
#include "../cuda/cuda_backend.h"
#include "errors.h"

namespace kvtrim::addon {

class DeviceBuffer : public Napi::ObjectWrap<DeviceBuffer> {
 public:
  static Napi::Function Define(Napi::Env env);

  // new DeviceBuffer(device, bytes) allocates; new DeviceBuffer(device, bytes, ptr) wraps.
  explicit DeviceBuffer(const Napi::CallbackInfo& info);
  ~DeviceBuffer() override;

  // The DeviceBuffer behind a JS value, or a KvtrimError naming `name` (checked by type tag,
  // so no other object, wrapped by this addon or another, is mistaken for one).
  static DeviceBuffer* From(Napi::Env env, Napi::Value v, const std::string& name);
  // The DeviceBuffer behind a JS value, or null when it is none (runs no JS).
  static DeviceBuffer* Of(Napi::Env env, Napi::Value v);

  // The device pointer; DISPOSED after free().
  void* data(Napi::Env env, const std::string& name) const;
  int device() const { return device_; }
  size_t bytes() const { return bytes_; }
  bool disposed() const { return disposed_; }
  // free() was called while the binding call `call` (AddonData::calls) ran, e.g. by a getter
  // of its arguments: that call saw it live when it began.
  bool disposed_during(uint64_t call) const { return disposed_ && disposed_in_ == call; }
  // Frees now, or when the last pin goes if operations are pending.
  void release();
  void pin() { ++pins_; }
  void unpin();

 private:
  Napi::Value Upload(const Napi::CallbackInfo& info);
  Napi::Value Download(const Napi::CallbackInfo& info);
  Napi::Value Free(const Napi::CallbackInfo& info);
  Napi::Value Ptr(const Napi::CallbackInfo& info);
  Napi::Value Bytes(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Owned(const Napi::CallbackInfo& info);
  Napi::Value Freed(const Napi::CallbackInfo& info);
  void free_now();

  int device_ = 0;
  size_t bytes_ = 0;
  void* ptr_ = nullptr;
  bool owned_ = false;
  bool disposed_ = false;  // free() called (or the memory is gone)
  bool freed_ = false;     // the memory went back
  int pins_ = 0;
  uint64_t disposed_in_ = 0;  // AddonData::calls when free() was called
  int64_t external_ = 0;   // reported to V8
};

// A new owned DeviceBuffer of `bytes` on `device` (outputs of device operations).
Napi::Object new_buffer(Napi::Env env, int device, size_t bytes);

}  // namespace kvtrim::addon
