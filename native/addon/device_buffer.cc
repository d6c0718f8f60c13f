#include "device_buffer.h"

#include "args.h"
#include "errors.h"

namespace kvtrim::addon {

namespace {

constexpr napi_type_tag kDeviceBufferTag = {0x6b767472696d4442ULL, 0x9f1c2d3e4a5b6c7dULL};

const char* const kDisposedHint = " to be a live device tensor but it was disposed";

}  // namespace

Napi::Function DeviceBuffer::Define(Napi::Env env) {
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

DeviceBuffer::DeviceBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceBuffer>(info) {
  Napi::Env env = info.Env();
  device_ = int(read_int(env, info[0], Code::InvalidArgument, "device", 0, 1 << 20));
  bytes_ = size_t(read_int(env, info[1], Code::InvalidArgument, "bytes", 0));
  napi_type_tag_object(env, info.This(), &kDeviceBufferTag);
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    ptr_ = reinterpret_cast<void*>(uintptr_t(read_u64(env, info[2], Code::InvalidArgument, "ptr")));
    owned_ = false;
    return;
  }
  throw_if(env, cuda::device_alloc(device_, bytes_, &ptr_));
  owned_ = true;
  external_ = int64_t(bytes_ / 64);  // a GC hint, not host memory
  Napi::MemoryManagement::AdjustExternalMemory(env, external_);
}

DeviceBuffer::~DeviceBuffer() {
  // The finalizer: nothing can be pinned then (operations hold the tensor object alive).
  free_now();
  if (external_ != 0) Napi::MemoryManagement::AdjustExternalMemory(Env(), -external_);
}

DeviceBuffer* DeviceBuffer::Of(Napi::Env env, Napi::Value v) {
  bool tagged = false;
  if (v.IsObject()) napi_check_object_type_tag(env, v, &kDeviceBufferTag, &tagged);
  return tagged ? DeviceBuffer::Unwrap(v.As<Napi::Object>()) : nullptr;
}

DeviceBuffer* DeviceBuffer::From(Napi::Env env, Napi::Value v, const std::string& name) {
  DeviceBuffer* b = Of(env, v);
  if (b == nullptr) throw_error(env, Code::InvalidArgument, "Expected " + name + " to be a kvtrim DeviceBuffer");
  return b;
}

void* DeviceBuffer::data(Napi::Env env, const std::string& name) const {
  if (disposed_) throw_error(env, Code::Disposed, "Expected " + name + kDisposedHint);
  return ptr_;
}

void DeviceBuffer::free_now() {
  if (!freed_ && owned_ && ptr_ != nullptr) cuda::device_free(device_, ptr_);
  freed_ = true;
}

void DeviceBuffer::release() {
  disposed_ = true;
  if (pins_ == 0) free_now();
}

void DeviceBuffer::unpin() {
  if (--pins_ == 0 && disposed_) free_now();
}

Napi::Value DeviceBuffer::Upload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TensorArg a;
  bind_array(env, info[0], "upload(data)", "data", &a);
  if (a.bytes != bytes_) throw_error(env, Code::DataLength, "upload: " + std::to_string(a.bytes) +
      " bytes into a device tensor of " + std::to_string(bytes_));
  throw_if(env, cuda::copy_to_device(device_, data(env, "tensor"), a.view.data, a.bytes, nullptr));
  return env.Undefined();
}

Napi::Value DeviceBuffer::Download(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TensorArg a;
  bind_array(env, info[0], "download(into)", "into", &a);
  if (a.bytes != bytes_) throw_error(env, Code::DataLength, "download: " + std::to_string(bytes_) +
      " bytes into a host array of " + std::to_string(a.bytes));
  throw_if(env, cuda::copy_to_host(device_, const_cast<void*>(a.view.data), data(env, "tensor"), a.bytes, nullptr));
  return env.Undefined();
}

Napi::Value DeviceBuffer::Free(const Napi::CallbackInfo& info) {
  if (!disposed_) disposed_in_ = info.Env().GetInstanceData<AddonData>()->calls;
  release();
  return info.Env().Undefined();
}

Napi::Value DeviceBuffer::Ptr(const Napi::CallbackInfo& info) {
  return Napi::BigInt::New(info.Env(), uint64_t(uintptr_t(ptr_)));
}
Napi::Value DeviceBuffer::Bytes(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(bytes_)); }
Napi::Value DeviceBuffer::Device(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), device_); }
Napi::Value DeviceBuffer::Owned(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), owned_); }
Napi::Value DeviceBuffer::Freed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), disposed_); }

Napi::Object new_buffer(Napi::Env env, int device, size_t bytes) {
  Napi::FunctionReference& ctor = *env.GetInstanceData<AddonData>()->device_buffer;
  return ctor.New({Napi::Number::New(env, device), Napi::Number::New(env, double(bytes))});
}

}  // namespace kvtrim::addon
