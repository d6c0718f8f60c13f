// DeviceBuffer: GPU memory owned by kvtrim (freed by free() or, as a safety net, by the
// finalizer) or wrapped around a pointer another library owns (never freed here); and the
// unpacking of device tensor arguments shared by the device operations and tools.
#pragma once
#include <napi.h>

#include <string>

#include "../core/tensor.h"
#include "../cuda/ops.h"
#include "errors.h"

namespace kvtrim::addon {

class DeviceBuffer : public Napi::ObjectWrap<DeviceBuffer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "DeviceBuffer", {
        InstanceMethod("upload", &DeviceBuffer::Upload),
        InstanceMethod("download", &DeviceBuffer::Download),
        InstanceMethod("free", &DeviceBuffer::Free),
        InstanceAccessor("ptr", &DeviceBuffer::Ptr, nullptr),
        InstanceAccessor("bytes", &DeviceBuffer::Bytes, nullptr),
        InstanceAccessor("device", &DeviceBuffer::Device, nullptr),
        InstanceAccessor("owned", &DeviceBuffer::Owned, nullptr),
        InstanceAccessor("freed", &DeviceBuffer::Freed, nullptr),
    });
  }

  // new DeviceBuffer(device, bytes) allocates; new DeviceBuffer(device, bytes, ptr) wraps.
  explicit DeviceBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceBuffer>(info) {
    Napi::Env env = info.Env();
    device_ = info[0].As<Napi::Number>().Int32Value();
    bytes_ = size_t(info[1].As<Napi::Number>().DoubleValue());
    if (info.Length() > 2 && info[2].IsBigInt()) {
      bool lossless = true;
      ptr_ = reinterpret_cast<void*>(uintptr_t(info[2].As<Napi::BigInt>().Uint64Value(&lossless)));
      owned_ = false;
      return;
    }
    throw_if(env, cuda::device_alloc(device_, bytes_, &ptr_));
    owned_ = true;
    Napi::MemoryManagement::AdjustExternalMemory(env, int64_t(bytes_ / 64));  // a GC hint, not host memory
  }

  ~DeviceBuffer() override { release(); }

  void* data(Napi::Env env, const char* name) const {
    if (freed_) {
      throw_error(env, Code::InvalidArgument, std::string("Expected ") + name +
          " to be a live device tensor but it was disposed");
    }
    return ptr_;
  }
  int device() const { return device_; }
  size_t bytes() const { return bytes_; }
  void release() {
    if (!freed_ && owned_ && ptr_ != nullptr) cuda::device_free(device_, ptr_);
    freed_ = true;
  }

 private:
  Napi::Value Upload(const Napi::CallbackInfo& info) {
    Napi::TypedArray a = info[0].As<Napi::TypedArray>();
    const size_t n = a.ByteLength();
    if (n != bytes_) throw_error(info.Env(), Code::DataLength, "upload: " + std::to_string(n) +
        " bytes into a device tensor of " + std::to_string(bytes_));
    const char* src = static_cast<const char*>(a.ArrayBuffer().Data()) + a.ByteOffset();
    throw_if(info.Env(), cuda::copy_to_device(device_, data(info.Env(), "tensor"), src, n, nullptr));
    return info.Env().Undefined();
  }

  Napi::Value Download(const Napi::CallbackInfo& info) {
    Napi::TypedArray a = info[0].As<Napi::TypedArray>();
    const size_t n = a.ByteLength();
    if (n != bytes_) throw_error(info.Env(), Code::DataLength, "download: " + std::to_string(bytes_) +
        " bytes into a host array of " + std::to_string(n));
    char* dst = static_cast<char*>(a.ArrayBuffer().Data()) + a.ByteOffset();
    throw_if(info.Env(), cuda::copy_to_host(device_, dst, data(info.Env(), "tensor"), n, nullptr));
    return info.Env().Undefined();
  }

  Napi::Value Free(const Napi::CallbackInfo& info) {
    release();
    return info.Env().Undefined();
  }

  Napi::Value Ptr(const Napi::CallbackInfo& info) {
    return Napi::BigInt::New(info.Env(), uint64_t(uintptr_t(ptr_)));
  }
  Napi::Value Bytes(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(bytes_)); }
  Napi::Value Device(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), device_); }
  Napi::Value Owned(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), owned_); }
  Napi::Value Freed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), freed_); }

  int device_ = 0;
  size_t bytes_ = 0;
  void* ptr_ = nullptr;
  bool owned_ = false, freed_ = false;
};

// A device tensor argument: { type, buffer: DeviceBuffer, dims } as lib/tensor.ts passes it.
struct DeviceArg {
  TensorView view;
  DeviceBuffer* buffer;
  Napi::ObjectReference keep;
};

DeviceArg read_device(Napi::Env env, Napi::Value v, const char* name);
Napi::Object new_buffer(Napi::Env env, int device, size_t bytes);

// Benchmark, geometry and emulator controls (device_tools.cc).
void InitDeviceTools(Napi::Env env, Napi::Object exports);

}  // namespace kvtrim::addon
