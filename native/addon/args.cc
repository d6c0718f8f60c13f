#include "args.h"

#include <cmath>
#include <string>

#include "errors.h"

namespace kvtrim::addon {

namespace {

int64_t read_int(Napi::Env env, Napi::Value v, Code code, const std::string& name) {
  if (!v.IsNumber()) throw_error(env, code, "Expected " + name + " to be an integer");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || std::fabs(d) > 9007199254740991.0) {
    throw_error(env, code, "Expected " + name + " to be an integer but received " + std::to_string(d));
  }
  return int64_t(d);
}

}  // namespace

TensorView read_tensor(Napi::Env env, Napi::Value v, const char* name, Napi::Value* keep) {
  const std::string n = name;
  if (!v.IsObject()) {
    throw_error(env, Code::InvalidArgument, "Expected " + n + " to be a tensor { type, data, dims }");
  }
  Napi::Object o = v.As<Napi::Object>();
  TensorView t;
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
  if (arr.ArrayBuffer().IsDetached()) {
    throw_error(env, Code::DetachedBuffer, "Expected " + n +
        ".data to be readable but its ArrayBuffer is detached (transferred or structuredClone'd "
        "with transfer); pass a live copy");
  }
  const bool is_f32 = arr.TypedArrayType() == napi_float32_array;
  if ((t.dtype == DType::F32) != is_f32 || (!is_f32 && arr.ElementSize() != 2)) {
    throw_error(env, Code::InvalidArgument, "Expected " + n + ".data to be " +
        (t.dtype == DType::F32 ? "a Float32Array" : "a Uint16Array (or Float16Array) of raw bits") +
        " for type '" + dtype_name(t.dtype) + "'");
  }
  t.data = static_cast<const char*>(arr.ArrayBuffer().Data()) + arr.ByteOffset();
  t.length = int64_t(arr.ElementLength());
  *keep = data;
  Napi::Value dims = o.Get("dims");
  if (!dims.IsArray()) {
    throw_error(env, Code::InvalidDims, "Expected " + n + ".dims to be an array of integers");
  }
  Napi::Array a = dims.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    t.dims.push_back(read_int(env, a.Get(i), Code::InvalidDims, n + ".dims[" + std::to_string(i) + "]"));
  }
  return t;
}

CompressParams read_params(Napi::Env env, Napi::Value v, std::vector<int64_t>* lengths,
                           bool* has_lengths) {
  if (!v.IsObject()) throw_error(env, Code::InvalidArgument, "Expected options to be an object");
  Napi::Object o = v.As<Napi::Object>();
  CompressParams p;
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
  const std::string order = o.Get("order").ToString().Utf8Value();
  const std::string score = o.Get("score").ToString().Utf8Value();
  if (order != "position" && order != "norm") {
    throw_error(env, Code::InvalidOption, "Expected order to be 'position' or 'norm'");
  }
  if (score != "low-norm" && score != "high-norm") {
    throw_error(env, Code::InvalidOption, "Expected score to be 'low-norm' or 'high-norm'");
  }
  p.order = order == "norm" ? Order::Norm : Order::Position;
  p.score = score == "high-norm" ? Score::HighNorm : Score::LowNorm;
  p.sink = o.Get("sink").IsUndefined() ? 0 : read_int(env, o.Get("sink"), Code::InvalidSink, "sink");
  p.recent = o.Get("recent").IsUndefined() ? 0
                                           : read_int(env, o.Get("recent"), Code::InvalidRecent, "recent");
  Napi::Value lens = o.Get("lengths");
  *has_lengths = !lens.IsUndefined() && !lens.IsNull();
  if (*has_lengths) {
    if (!lens.IsObject()) throw_error(env, Code::InvalidLengths, "Expected lengths to be an array of integers");
    Napi::Object lo = lens.As<Napi::Object>();
    const int64_t n = read_int(env, lo.Get("length"), Code::InvalidLengths, "lengths.length");
    for (int64_t i = 0; i < n; ++i) {
      lengths->push_back(read_int(env, lo.Get(uint32_t(i)), Code::InvalidLengths,
                                  "lengths[" + std::to_string(i) + "]"));
    }
  }
  return p;
}

CompressJob plan_compress(Napi::Env env, const TensorView& keys, const TensorView& values,
                          Napi::Value options, bool in_place) {
  Shape shape;
  throw_if(env, check_pair(keys, values, &shape));
  std::vector<int64_t> lengths;
  bool has_lengths = false;
  CompressParams params = read_params(env, options, &lengths, &has_lengths);
  if (in_place) throw_if(env, check_in_place(keys, values, params));
  Plan plan;
  throw_if(env, make_plan(shape, params, has_lengths ? lengths.data() : nullptr,
                          int64_t(lengths.size()), &plan));
  return CompressJob{keys.dtype, shape, keys.data, values.data, params, std::move(plan),
                     nullptr, nullptr, nullptr, in_place};
}

}  // namespace kvtrim::addon
