#include "outputs.h"

#include "../cpu/host_buffers.h"
#include "args.h"
#include "errors.h"

namespace kvtrim::addon {

namespace {

size_t element_size(const OutputSpec& s) { return s.int32 ? 4 : size_t(dtype_size(s.dtype)); }

Napi::TypedArray view(Napi::Env env, const OutputSpec& s, Napi::ArrayBuffer buf) {
  if (s.int32) return Napi::Int32Array::New(env, size_t(s.count), buf, 0);
  if (s.dtype == DType::F32) return Napi::Float32Array::New(env, size_t(s.count), buf, 0);
  return Napi::Uint16Array::New(env, size_t(s.count), buf, 0);
}

Napi::ArrayBuffer pooled(Napi::Env env, void* mem, size_t bytes) {
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, mem, bytes, [](Napi::Env e, void* p, size_t* size) {
    Napi::MemoryManagement::AdjustExternalMemory(e, -int64_t(*size));
    cpu::release_buffer(p, *size);
    delete size;
  }, new size_t(bytes));
  Napi::MemoryManagement::AdjustExternalMemory(env, int64_t(bytes));
  return buf;
}

// V8-owned and uninitialized (napi_create_buffer skips the zero fill): every output element
// is written by the operation.
Napi::ArrayBuffer ordinary(Napi::Env env, size_t bytes) {
  if (bytes < cpu::kPooledMinBytes) return Napi::ArrayBuffer::New(env, bytes);
  napi_value b = nullptr;
  void* data = nullptr;
  if (napi_create_buffer(env, bytes, &data, &b) != napi_ok) throw Napi::Error::New(env);
  cpu::advise_huge_pages(data, bytes);
  return Napi::Buffer<uint8_t>(env, b).ArrayBuffer();
}

}  // namespace

std::vector<Napi::TypedArray> new_outputs(Napi::Env env, const std::vector<OutputSpec>& specs,
                                          std::vector<void*>* data, const char* what) {
  std::vector<size_t> bytes;
  std::vector<int> large;
  for (size_t i = 0; i < specs.size(); ++i) {
    bytes.push_back(size_t(specs[i].count) * element_size(specs[i]));
    if (bytes.back() >= cpu::kPooledMinBytes) large.push_back(int(i));
  }
  std::vector<size_t> large_bytes;
  for (int i : large) large_bytes.push_back(bytes[size_t(i)]);
  std::vector<void*> mem(large.size(), nullptr);
  const bool from_pool = !large.empty() && cpu::acquire_buffers(large_bytes.data(), int(large.size()), mem.data());
  std::vector<Napi::TypedArray> out;
  data->clear();
  size_t next = 0;
  try {
    for (size_t i = 0; i < specs.size(); ++i) {
      Napi::ArrayBuffer buf;
      if (from_pool && next < large.size() && large[next] == int(i)) {
        void* m = mem[next];
        mem[next++] = nullptr;  // owned by its ArrayBuffer from here on
        buf = pooled(env, m, bytes[i]);
      } else {
        buf = ordinary(env, bytes[i]);
      }
      out.push_back(view(env, specs[i], buf));
      data->push_back(buf.Data());
    }
  } catch (const Napi::Error& e) {
    for (size_t j = 0; j < mem.size(); ++j) cpu::release_buffer(mem[j], large_bytes[j]);
    throw_error(env, Code::OutOfMemory, std::string("could not allocate ") + what + ": " + e.Message());
  }
  return out;
}

Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
  const cpu::PoolStats s = cpu::pool_stats();
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("poolLimit", double(s.cap));
  o.Set("pooledInUse", double(s.in_use));
  o.Set("pooledIdle", double(s.idle));
  o.Set("reused", double(s.reused));
  o.Set("mapped", double(s.mapped));
  o.Set("declined", double(s.declined));
  return o;
}

Napi::Value ReleaseMemory(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(cpu::release_idle_buffers()));
}

Napi::Value SetPoolLimit(const Napi::CallbackInfo& info) {
  const int64_t bytes = read_int(info.Env(), info[0], Code::InvalidArgument, "bytes", 0, int64_t(1) << 50);
  cpu::set_pool_cap(size_t(bytes));
  return info.Env().Undefined();
}

}  // namespace kvtrim::addon
