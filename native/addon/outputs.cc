#include "outputs.h"

#include "../cpu/host_buffers.h"
#include "args.h"
#include "errors.h"

namespace kvtrim::addon {

namespace {

constexpr size_t kMaxOutputs = 8;
constexpr size_t kSharedAlign = 8;
// Small outputs share one buffer while together at most this (beyond, the allocation is
// noise next to the work, and one kept array should not hold its siblings' memory).
constexpr size_t kSharedMaxBytes = size_t(64) << 10;

size_t element_size(const OutputSpec& s) { return s.int32 ? 4 : size_t(dtype_size(s.dtype)); }

Napi::TypedArray view(Napi::Env env, const OutputSpec& s, Napi::ArrayBuffer buf, size_t offset) {
  if (s.int32) return Napi::Int32Array::New(env, size_t(s.count), buf, offset);
  if (s.dtype == DType::F32) return Napi::Float32Array::New(env, size_t(s.count), buf, offset);
  return Napi::Uint16Array::New(env, size_t(s.count), buf, offset);
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
  const size_t n = specs.size();
  if (n > kMaxOutputs) throw_error(env, Code::Internal, "too many outputs");
  size_t bytes[kMaxOutputs], offset[kMaxOutputs], large_bytes[kMaxOutputs];
  int large[kMaxOutputs];
  void* mem[kMaxOutputs] = {};
  size_t n_large = 0, n_small = 0, shared_bytes = 0;
  for (size_t i = 0; i < n; ++i) {
    bytes[i] = size_t(specs[i].count) * element_size(specs[i]);
    if (bytes[i] >= cpu::kPooledMinBytes) {
      large_bytes[n_large] = bytes[i];
      large[n_large++] = int(i);
    } else {
      offset[i] = shared_bytes;
      shared_bytes += (bytes[i] + kSharedAlign - 1) / kSharedAlign * kSharedAlign;
      ++n_small;
    }
  }
  const bool from_pool = n_large > 0 && cpu::acquire_buffers(large_bytes, int(n_large), mem);
  // Several small outputs of one call share one zeroed ArrayBuffer (one allocation, one
  // backing store for the GC to sweep): the typed arrays are views at 8-byte aligned offsets.
  const bool shared = n_small > 1 && shared_bytes <= kSharedMaxBytes;
  std::vector<Napi::TypedArray> out;
  out.reserve(n);
  data->clear();
  data->reserve(n);
  size_t next = 0;
  try {
    Napi::ArrayBuffer small;
    if (shared) small = Napi::ArrayBuffer::New(env, shared_bytes);
    for (size_t i = 0; i < n; ++i) {
      Napi::ArrayBuffer buf;
      size_t at = 0;
      if (next < n_large && large[next] == int(i)) {
        if (from_pool) {
          void* m = mem[next];
          mem[next] = nullptr;  // owned by its ArrayBuffer from here on
          buf = pooled(env, m, bytes[i]);
        } else {
          buf = ordinary(env, bytes[i]);
        }
        ++next;
      } else if (shared) {
        buf = small;
        at = offset[i];
      } else {
        buf = ordinary(env, bytes[i]);
      }
      out.push_back(view(env, specs[i], buf, at));
      data->push_back(static_cast<char*>(buf.Data()) + at);
    }
  } catch (const Napi::Error& e) {
    for (size_t j = 0; j < n_large; ++j) cpu::release_buffer(mem[j], large_bytes[j]);
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
