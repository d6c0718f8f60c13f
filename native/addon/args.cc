#include "args.h"

#include <cmath>
#include <cstring>
#include <new>

#include "device_buffer.h"
#include "errors.h"

namespace kvtrim::addon {

TensorArg::~TensorArg() {
  if (pinned) buffer->unpin();
}

int TensorArg::device() const { return buffer == nullptr ? -1 : buffer->device(); }

int64_t read_int(Napi::Env env, Napi::Value v, Code code, const std::string& name, int64_t lo,
                 int64_t hi) {
  if (!v.IsNumber()) throw_error(env, code, "Expected " + name + " to be an integer");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || d < double(lo) || d > double(hi)) {
    throw_error(env, code, "Expected " + name + " to be an integer in [" + std::to_string(lo) + ", " +
                               std::to_string(hi) + "] but received " + std::to_string(d));
  }
  return int64_t(d);
}

uint64_t read_u64(Napi::Env env, Napi::Value v, Code code, const std::string& name) {
  if (!v.IsBigInt()) throw_error(env, code, "Expected " + name + " to be a bigint");
  int sign = 0;
  size_t words = 2;
  uint64_t w[2] = {0, 0};
  if (napi_get_value_bigint_words(env, v, &sign, &words, w) != napi_ok || sign != 0 || words > 1) {
    throw_error(env, code, "Expected " + name + " to be a bigint in [0, 2n ** 64n)");
  }
  return words == 0 ? 0 : w[0];
}

namespace {

// The typed array of a host tensor's data: its width must match the dtype.
void check_data(Napi::Env env, Napi::Value data, TensorArg* out, Use use) {
  const std::string& n = out->name;
  TensorView& t = out->view;
  if (!data.IsTypedArray()) {
    throw_error(env, Code::InvalidArgument, "Expected " + n + ".data to be a typed array");
  }
  Napi::TypedArray arr = data.As<Napi::TypedArray>();
  const bool is_f32 = arr.TypedArrayType() == napi_float32_array;
  if ((t.dtype == DType::F32) != is_f32 || (!is_f32 && arr.ElementSize() != 2)) {
    throw_error(env, Code::InvalidArgument, "Expected " + n + ".data to be " +
        (t.dtype == DType::F32 ? "a Float32Array" : "a Uint16Array (or Float16Array) of raw bits") +
        " for type '" + dtype_name(t.dtype) + "'");
  }
  out->array = Napi::Persistent(data);
  if (use == Use::Now) return;  // read before the call returns: nothing can take it meanwhile
  out->resizable = is_resizable(env, arr);
  if (!out->resizable) out->must_copy = !mark_untransferable(env, arr);
}

// dims' length: a whole number of entries, or -1.
double rank_of(Napi::Value len) {
  const double rank = len.IsNumber() ? len.As<Napi::Number>().DoubleValue() : -1;
  return rank >= 0 && rank <= 4294967295.0 && std::floor(rank) == rank ? rank : -1;
}

}  // namespace

void read_tensor(Napi::Env env, Napi::Value v, const char* name, TensorArg* out) {
  out->name = name;
  if (!v.IsObject()) return;
  out->is_object = true;
  Napi::Object o = v.As<Napi::Object>();
  out->raw_type = o.Get("type");
  out->raw_data = o.Get("data");
  // No data: a device tensor, when its buffer is one of kvtrim's DeviceBuffers.
  DeviceBuffer* buffer = out->raw_data.IsUndefined() ? DeviceBuffer::Of(env, o.Get("buffer")) : nullptr;
  if (buffer != nullptr) {
    out->on_device = true;
    out->buffer = buffer;
    out->keep = Napi::Persistent(o);
  }
  out->raw_dims = o.Get("dims");
  // dims: an array (a Proxy of one too, as Array.isArray says); a long one is not walked
  if (!is_array(env, out->raw_dims)) return;
  Napi::Object a = out->raw_dims.As<Napi::Object>();
  out->raw_rank = rank_of(a.Get("length"));
  if (out->raw_rank > 8) return;  // refused by check_fields
  out->raw_dim_values.reserve(size_t(out->raw_rank));
  for (uint32_t i = 0; i < uint32_t(out->raw_rank); ++i) out->raw_dim_values.push_back(a.Get(i));
}

void check_fields(Napi::Env env, TensorArg* out, Use use) {
  const std::string& n = out->name;
  if (!out->is_object) {
    throw_error(env, Code::InvalidArgument, "Expected " + n + " to be a tensor { type, data, dims }");
  }
  TensorView& t = out->view;
  Napi::Value type = out->raw_type;
  if (!type.IsString() || !parse_dtype(type.As<Napi::String>().Utf8Value(), &t.dtype)) {
    throw_error(env, Code::InvalidDType, "Expected " + n +
        ".type to be 'float16', 'bfloat16' or 'float32' but received " +
        (type.IsString() ? "'" + type.As<Napi::String>().Utf8Value() + "'" : "a non-string"));
  }
  if (!out->on_device) check_data(env, out->raw_data, out, use);
  const double rank = out->raw_rank;
  if (rank < 0) throw_error(env, Code::InvalidDims, "Expected " + n + ".dims to be an array of integers");
  if (rank > 8) {
    throw_error(env, Code::InvalidRank, "Expected " + n + ".dims to be [batch, kvHeads, seqLen, headDim] but it has " +
                                            std::to_string(int64_t(rank)) + " entries");
  }
  t.dims.clear();
  t.dims.reserve(out->raw_dim_values.size());
  for (size_t i = 0; i < out->raw_dim_values.size(); ++i) {
    t.dims.push_back(read_int(env, out->raw_dim_values[i], Code::InvalidDims, n + ".dims[" + std::to_string(i) + "]"));
  }
}

namespace {

size_t element_bytes(napi_typedarray_type type) {
  switch (type) {
    case napi_int8_array: case napi_uint8_array: case napi_uint8_clamped_array: return 1;
    case napi_int16_array: case napi_uint16_array: return 2;
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: return 4;
    default: return 8;  // Float64Array, BigInt64Array, BigUint64Array
  }
}

// A typed array's data, byte length and buffer. napi_get_typedarray_info runs no JS and works
// for SharedArrayBuffers too.
struct ArrayInfo {
  void* data = nullptr;
  size_t length = 0, bytes = 0;
  napi_value buffer = nullptr;
};

bool array_info(Napi::Env env, napi_value arr, ArrayInfo* out) {
  napi_typedarray_type type;
  size_t offset = 0;
  if (napi_get_typedarray_info(env, arr, &type, &out->length, &out->data, &out->buffer, &offset) != napi_ok) {
    return false;
  }
  out->bytes = out->length * element_bytes(type);
  return true;
}

void bind_device(Napi::Env env, TensorArg* a) {
  if (a->buffer->disposed_during(env.GetInstanceData<AddonData>()->calls)) {
    // live when the call began: a getter or Proxy trap of its own arguments disposed it
    throw_error(env, Code::InvalidArgument, "Expected " + a->name +
        " to stay a live device tensor while its call's arguments were read, but it was disposed meanwhile");
  }
  if (a->buffer->disposed()) {
    throw_error(env, Code::Disposed, "Expected " + a->name + " to be a live device tensor but it was disposed");
  }
  a->view.data = a->buffer->data(env, a->name);
  a->view.length = int64_t(a->buffer->bytes() / size_t(dtype_size(a->view.dtype)));
  a->buffer->pin();
  a->pinned = true;
}

}  // namespace

void bind_tensor(Napi::Env env, TensorArg* a, Use use) {
  if (a->on_device) return bind_device(env, a);
  ArrayInfo info;
  if (!array_info(env, a->array.Value(), &info)) {
    throw_error(env, Code::InvalidArgument, "Expected " + a->name + ".data to be a typed array");
  }
  const napi_value buffer = info.buffer;
  void* const data = info.data;
  bool is_ab = false, detached = false;
  napi_is_arraybuffer(env, buffer, &is_ab);  // false for a SharedArrayBuffer, never detached
  if (is_ab) napi_is_detached_arraybuffer(env, buffer, &detached);
  if (detached) {
    throw_error(env, Code::DetachedBuffer, "Expected " + a->name +
        ".data to be readable but its ArrayBuffer is detached (transferred or structuredClone'd "
        "with transfer); pass a live copy");
  }
  a->bytes = info.bytes;
  a->view.length = int64_t(info.length);
  a->view.data = data;
  if (use == Use::Now || !(a->resizable || a->must_copy)) return;
  if (use == Use::WriteLater) {
    throw_error(env, Code::InvalidArgument, "Expected " + a->name +
        ".data not to be on a resizable ArrayBuffer for compressInPlace(): a resize while the "
        "Promise is pending would take the memory it writes; use compressInPlaceSync() or a "
        "fixed-length buffer");
  }
  // A resize while the work runs could unmap what it reads: it reads this copy instead.
  try {
    a->snapshot.reset(new char[a->bytes > 0 ? a->bytes : 1]);
  } catch (const std::bad_alloc&) {
    throw_error(env, Code::OutOfMemory, "could not copy " + a->name + ".data (" + std::to_string(a->bytes) +
                                            " bytes, on a resizable ArrayBuffer)");
  }
  if (a->bytes > 0) std::memcpy(a->snapshot.get(), data, a->bytes);
  a->view.data = a->snapshot.get();
}

void bind_array(Napi::Env env, Napi::Value v, const char* call, const char* name, TensorArg* a) {
  if (!v.IsTypedArray()) throw_error(env, Code::InvalidArgument, std::string("Expected ") + call + " to get a typed array");
  a->name = name;
  a->array = Napi::Persistent(v);
  bind_tensor(env, a, Use::Now);
}

void check_same_place(Napi::Env env, const TensorArg& a, const TensorArg& b) {
  if (a.on_device != b.on_device) {
    auto where = [](const TensorArg& t) { return t.on_device ? "a device tensor" : "on the host"; };
    throw_error(env, Code::DeviceMismatch, "Expected " + a.name + " and " + b.name +
        " both on the host or both on a GPU, but " + a.name + " are " + where(a) + " and " + b.name + " " +
        where(b) + "; move one with tensor(...) or .download()");
  }
  if (a.on_device && a.device() != b.device()) {
    throw_error(env, Code::DeviceMismatch, "Expected " + a.name + " and " + b.name + " on the same device but " +
        a.name + " are on cuda:" + std::to_string(a.device()) + " and " + b.name + " on cuda:" +
        std::to_string(b.device()));
  }
}

Status check_unchanged(Napi::Env env, const TensorArg& a, const char* op) {
  if (a.on_device || a.snapshot || a.array.IsEmpty()) return Status::success();
  ArrayInfo info;
  if (!array_info(env, a.array.Value(), &info)) {
    return Status::error(Code::Internal, "could not inspect " + a.name + ".data");
  }
  if (info.data == a.view.data && info.bytes == a.bytes) return Status::success();
  return Status::error(Code::InputChanged, a.name + ".data was detached or resized while " + op +
      "() was pending, so its result cannot be trusted and was dropped. Keep an input's buffer "
      "alive and unchanged until the Promise settles (transfer or resize it afterwards)");
}

}  // namespace kvtrim::addon
