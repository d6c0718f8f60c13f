#include "device_buffer.h"

#include "errors.h"

namespace kvtrim::addon {

DeviceArg read_device(Napi::Env env, Napi::Value v, const char* name) {
  Napi::Object o = v.As<Napi::Object>();
  DeviceArg d;
  Napi::Value type = o.Get("type");
  if (!type.IsString() || !parse_dtype(type.As<Napi::String>().Utf8Value(), &d.view.dtype)) {
    throw_error(env, Code::InvalidDType, std::string("Expected ") + name + ".type to be 'float16', 'bfloat16' or 'float32'");
  }
  d.buffer = DeviceBuffer::Unwrap(o.Get("buffer").As<Napi::Object>());
  d.view.data = d.buffer->data(env, name);
  d.view.length = int64_t(d.buffer->bytes() / size_t(dtype_size(d.view.dtype)));
  Napi::Array dims = o.Get("dims").As<Napi::Array>();
  for (uint32_t i = 0; i < dims.Length(); ++i) d.view.dims.push_back(int64_t(dims.Get(i).As<Napi::Number>().DoubleValue()));
  d.keep = Napi::Persistent(o);
  return d;
}

Napi::Object new_buffer(Napi::Env env, int device, size_t bytes) {
  Napi::FunctionReference& ctor = *env.GetInstanceData<AddonData>()->device_buffer;
  return ctor.New({Napi::Number::New(env, device), Napi::Number::New(env, double(bytes))});
}

}  // namespace kvtrim::addon
