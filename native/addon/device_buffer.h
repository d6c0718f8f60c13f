// DeviceBuffer: GPU memory owned by kvtrim (freed by free() or, as a safety net, by the
// finalizer) or wrapped around a pointer another library owns (never freed here); and the
// unpacking of device tensor arguments shared by the device operations and tools.
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

  void* data(Napi::Env env, const std::string& name) const;
  int device() const { return device_; }
  size_t bytes() const { return bytes_; }
  bool disposed() const { return disposed_; }
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
  int64_t external_ = 0;   // reported to V8
};

// A device tensor argument: { type, buffer: DeviceBuffer, dims } as lib/tensor.ts passes it.
// read_device reads every JS property; bind_device takes the pointer and pins the buffer,
// which stays pinned until the DeviceArg goes (on the main thread, once its operation settles).
struct DeviceArg {
  std::string name;
  TensorView view;
  DeviceBuffer* buffer = nullptr;
  Napi::ObjectReference keep;  // the tensor object, holding the buffer alive
  bool pinned = false;

  DeviceArg() = default;
  DeviceArg(DeviceArg&& o) noexcept
      : name(std::move(o.name)), view(std::move(o.view)), buffer(o.buffer), keep(std::move(o.keep)),
        pinned(o.pinned) {
    o.pinned = false;
  }
  DeviceArg& operator=(DeviceArg&&) = delete;
  ~DeviceArg() {
    if (pinned) buffer->unpin();
  }
};

void read_device(Napi::Env env, Napi::Value v, const char* name, DeviceArg* out);
void bind_device(Napi::Env env, DeviceArg* a);
Napi::Object new_buffer(Napi::Env env, int device, size_t bytes);

// Benchmark, geometry and emulator controls (dev_hooks.cc).
void InitDeviceTools(Napi::Env env, Napi::Object exports);

}  // namespace kvtrim::addon
