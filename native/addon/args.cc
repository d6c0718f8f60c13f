#include "args.h"

#include <cmath>
#include <cstring>
#include <new>

#include "errors.h"

namespace kvtrim::addon {

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

void read_host(Napi::Env env, Napi::Value v, const char* name, HostArg* out, Use use) {
  out->name = name;
  const std::string& n = out->name;
  if (!v.IsObject()) {
    throw_error(env, Code::InvalidArgument, "Expected " + n + " to be a tensor { type, data, dims }");
  }
  Napi::Object o = v.As<Napi::Object>();
  TensorView& t = out->view;
  Napi::Value type = o.Get("type");
  if (!type.IsString() || !parse_dtype(type.As<Napi::String>().Utf8Value(), &t.dtype)) {
    throw_error(env, Code::InvalidDType, "Expected " + n +
        ".type to be 'float16', 'bfloat16' or 'float32' but received " +
        (type.IsString() ? "'" + type.As<Napi::String>().Utf8Value() + "'" : "a non-string"));
  }
  Napi::Value data = o.Get("data");
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
  out->resizable = is_resizable(env, arr);
  if (use != Use::Now && !out->resizable) out->must_copy = !mark_untransferable(env, arr);
  Napi::Value dims = o.Get("dims");
  if (!dims.IsArray()) {
    throw_error(env, Code::InvalidDims, "Expected " + n + ".dims to be an array of integers");
  }
  Napi::Array a = dims.As<Napi::Array>();
  const uint32_t rank = a.Length();
  if (rank > 8) {
    throw_error(env, Code::InvalidRank, "Expected " + n + ".dims to be [batch, kvHeads, seqLen, headDim] but it has " +
                                            std::to_string(rank) + " entries");
  }
  for (uint32_t i = 0; i < rank; ++i) {
    t.dims.push_back(read_int(env, a.Get(i), Code::InvalidDims, n + ".dims[" + std::to_string(i) + "]"));
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

}  // namespace

void bind_host(Napi::Env env, HostArg* a, Use use) {
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

Status check_unchanged(Napi::Env env, const HostArg& a, const char* op) {
  if (a.snapshot) return Status::success();
  ArrayInfo info;
  if (!array_info(env, a.array.Value(), &info)) {
    return Status::error(Code::Internal, "could not inspect " + a.name + ".data");
  }
  if (info.data == a.view.data && info.bytes == a.bytes) return Status::success();
  return Status::error(Code::InputChanged, a.name + ".data was detached or resized while " + op +
      "() was pending, so its result cannot be trusted and was dropped. Keep an input's buffer "
      "alive and unchanged until the Promise settles (transfer or resize it afterwards)");
}

void read_params(Napi::Env env, Napi::Value v, int64_t batch, CompressArgs* out) {
  if (!v.IsObject()) throw_error(env, Code::InvalidArgument, "Expected options to be an object");
  Napi::Object o = v.As<Napi::Object>();
  CompressParams& p = out->params;
  Napi::Value ratio = o.Get("keepRatio"), keep = o.Get("keep");
  if (!ratio.IsUndefined()) {
    if (!ratio.IsNumber()) throw_error(env, Code::InvalidKeepRatio, "Expected keepRatio to be a number");
    p.use_ratio = true;
    p.keep_ratio = ratio.As<Napi::Number>().DoubleValue();
  } else if (!keep.IsUndefined()) {
    p.use_ratio = false;
    p.keep = read_int(env, keep, Code::InvalidKeep, "keep");
  } else {
    throw_error(env, Code::InvalidOption, "Expected one of keepRatio or keep");
  }
  Napi::Value order = o.Get("order"), score = o.Get("score");
  const std::string os = order.IsString() ? order.As<Napi::String>().Utf8Value() : "";
  const std::string ss = score.IsString() ? score.As<Napi::String>().Utf8Value() : "";
  if (os != "position" && os != "norm") {
    throw_error(env, Code::InvalidOption, "Expected order to be 'position' or 'norm'");
  }
  if (ss != "low-norm" && ss != "high-norm") {
    throw_error(env, Code::InvalidOption, "Expected score to be 'low-norm' or 'high-norm'");
  }
  p.order = os == "norm" ? Order::Norm : Order::Position;
  p.score = ss == "high-norm" ? Score::HighNorm : Score::LowNorm;
  Napi::Value sink = o.Get("sink"), recent = o.Get("recent");
  p.sink = sink.IsUndefined() ? 0 : read_int(env, sink, Code::InvalidSink, "sink");
  p.recent = recent.IsUndefined() ? 0 : read_int(env, recent, Code::InvalidRecent, "recent");
  Napi::Value lens = o.Get("lengths");
  out->has_lengths = !lens.IsUndefined() && !lens.IsNull();
  if (!out->has_lengths) return;
  if (!lens.IsObject()) throw_error(env, Code::InvalidLengths, "Expected lengths to be an array of integers");
  Napi::Object lo = lens.As<Napi::Object>();
  const int64_t n = read_int(env, lo.Get("length"), Code::InvalidLengths, "lengths.length", 0);
  if (batch >= 0 && n != batch) {
    throw_error(env, Code::InvalidLengths, "Expected lengths to have one entry per batch entry (" +
                                               std::to_string(batch) + ") but it has " + std::to_string(n));
  }
  for (int64_t i = 0; i < n; ++i) {
    out->lengths.push_back(read_int(env, lo.Get(uint32_t(i)), Code::InvalidLengths,
                                    "lengths[" + std::to_string(i) + "]"));
  }
}

CompressJob plan_compress(Napi::Env env, const TensorView& keys, const TensorView& values,
                          const CompressArgs& args, bool in_place) {
  Shape shape;
  throw_if(env, check_pair(keys, values, &shape));
  if (in_place) throw_if(env, check_in_place(keys, values, args.params));
  Plan plan;
  throw_if(env, make_plan(shape, args.params, args.has_lengths ? args.lengths.data() : nullptr,
                          int64_t(args.lengths.size()), &plan));
  return CompressJob{keys.dtype, shape, keys.data, values.data, args.params, std::move(plan),
                     nullptr, nullptr, nullptr, in_place};
}

}  // namespace kvtrim::addon
