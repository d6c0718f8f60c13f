#include "options.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "errors.h"

namespace kvtrim::addon {

namespace {

const char* type_of(napi_valuetype t) {
  switch (t) {
    case napi_undefined: return "undefined";
    case napi_null: return "object";
    case napi_boolean: return "boolean";
    case napi_number: return "number";
    case napi_string: return "string";
    case napi_symbol: return "symbol";
    case napi_function: return "function";
    case napi_bigint: return "bigint";
    default: return "object";
  }
}

// String(v), by the intrinsic String captured at load (a Symbol too, unlike ToString).
std::string js_string(Napi::Env env, Napi::Value v) {
  return env.GetInstanceData<AddonData>()->string_fn.Call({v}).As<Napi::String>().Utf8Value();
}

// Number.isSafeInteger(d), and the value.
bool safe_int(double d, int64_t* out) {
  if (!std::isfinite(d) || std::trunc(d) != d || std::fabs(d) > 9007199254740991.0) return false;
  if (out != nullptr) *out = int64_t(d);
  return true;
}

// Math.fround(d): d rounded to float32, to nearest even, without the undefined behaviour of
// float(d) for |d| beyond float's range (those round to +-FLT_MAX below the midpoint to 2^128,
// else to +-Infinity).
float fround(double d) {
  const double a = std::fabs(d);
  if (!(a > double(FLT_MAX))) return float(d);  // in range, or NaN
  const float r = a < 0x1.ffffffp127 ? FLT_MAX : INFINITY;
  return d < 0 ? -r : r;
}

// Number.isSafeInteger(v)
bool is_int(Napi::Value v, int64_t* out = nullptr) {
  return v.IsNumber() && safe_int(v.As<Napi::Number>().DoubleValue(), out);
}

// An element of a typed array as a safe integer, or false (a fraction, a bigint, ...).
bool typed_int(napi_typedarray_type type, const void* data, size_t i, int64_t* out) {
  double d = 0;
  switch (type) {
    case napi_int8_array: *out = static_cast<const int8_t*>(data)[i]; return true;
    case napi_uint8_array: case napi_uint8_clamped_array: *out = static_cast<const uint8_t*>(data)[i]; return true;
    case napi_int16_array: *out = static_cast<const int16_t*>(data)[i]; return true;
    case napi_uint16_array: *out = static_cast<const uint16_t*>(data)[i]; return true;
    case napi_int32_array: *out = static_cast<const int32_t*>(data)[i]; return true;
    case napi_uint32_array: *out = static_cast<const uint32_t*>(data)[i]; return true;
    case napi_float32_array: d = static_cast<const float*>(data)[i]; break;
    case napi_float64_array: d = static_cast<const double*>(data)[i]; break;
    default: return false;  // BigInt64Array, BigUint64Array: bigints are not numbers
  }
  return safe_int(d, out);
}

// each(element) for the elements of an array (a Proxy of one too), in order, until one is
// refused; false when `v` is not an array or an element was refused. Holes are undefined.
template <class Each>
bool each_element(Napi::Env env, Napi::Value v, Each each) {
  if (!is_array(env, v)) return false;
  Napi::Object a = v.As<Napi::Object>();
  Napi::Value len = a.Get("length");
  const double n = len.IsNumber() ? len.As<Napi::Number>().DoubleValue() : 0;
  for (double i = 0; i < n; ++i) {
    if (!each(a.Get(Napi::Number::New(env, i)))) return false;
  }
  return true;
}

// A list of safe integers, copied: an array (a Proxy of one too) or a typed array (not a
// DataView); false when `v` is not one. Holes fail, and a huge sparse array fails at its first
// hole instead of being walked.
bool int_list(Napi::Env env, Napi::Value v, std::vector<int64_t>* out) {
  if (v.IsTypedArray()) {
    napi_typedarray_type type;
    size_t n = 0;
    void* data = nullptr;
    if (napi_get_typedarray_info(env, v, &type, &n, &data, nullptr, nullptr) != napi_ok) return false;
    for (size_t i = 0; i < n; ++i) {
      int64_t x = 0;
      if (!typed_int(type, data, i, &x)) return false;
      out->push_back(x);
    }
    return true;
  }
  return each_element(env, v, [&](Napi::Value e) {
    int64_t x = 0;
    if (!is_int(e, &x)) return false;
    out->push_back(x);
    return true;
  });
}

// A list of finite numbers as float32 (each rounded as Math.fround does): a Float32Array or
// Float64Array, or an array of numbers; false when `v` is not one or an entry is not finite.
bool float_list(Napi::Env env, Napi::Value v, std::vector<float>* out) {
  out->clear();
  if (v.IsTypedArray()) {
    napi_typedarray_type type;
    size_t n = 0;
    void* data = nullptr;
    if (napi_get_typedarray_info(env, v, &type, &n, &data, nullptr, nullptr) != napi_ok) return false;
    if (type != napi_float32_array && type != napi_float64_array) return false;
    for (size_t i = 0; i < n; ++i) {
      const double d = type == napi_float32_array ? static_cast<const float*>(data)[i] : static_cast<const double*>(data)[i];
      if (!std::isfinite(fround(d))) return false;
      out->push_back(fround(d));
    }
    return true;
  }
  return each_element(env, v, [&](Napi::Value e) {
    const float f = e.IsNumber() ? fround(e.As<Napi::Number>().DoubleValue()) : NAN;
    if (!std::isfinite(f)) return false;
    out->push_back(f);
    return true;
  });
}

bool is_options_object(Napi::Env env, Napi::Value v) {
  return v.Type() == napi_object && !is_array(env, v);
}

// Object.keys(options): own enumerable string keys, each known or an INVALID_OPTION naming it.
void check_known(Napi::Env env, Napi::Object o, const std::vector<const char*>& known, bool hint,
                 const std::string& prefix = "") {
  napi_value names = nullptr;
  if (napi_get_all_property_names(env, o, napi_key_own_only,
                                  napi_key_filter(napi_key_enumerable | napi_key_skip_symbols),
                                  napi_key_numbers_to_strings, &names) != napi_ok) {
    throw Napi::Error::New(env);
  }
  Napi::Array keys(env, names);
  const uint32_t n = keys.Length();
  auto lower = [](std::string s) {
    for (char& c : s) c = char(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return s;
  };
  for (uint32_t i = 0; i < n; ++i) {
    const std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
    bool found = false;
    for (const char* k : known) found = found || key == k;
    if (found) continue;
    const char* near = nullptr;
    for (const char* k : known) {
      if (near == nullptr && lower(key) == lower(k)) near = k;
    }
    std::string list;
    for (const char* k : known) list += (list.empty() ? "" : ", ") + prefix + k;
    throw_error(env, Code::InvalidOption, "Unknown option '" + prefix + key + "'" +
        (hint && near != nullptr ? "; did you mean '" + prefix + std::string(near) + "'?" : "; known options: " + list));
  }
}

// A cudaStream_t: a bigint in [0, 2^64), losslessly.
void read_stream(Napi::Env env, Napi::Value v, const char* name, CompressOptions* out) {
  if (v.IsUndefined()) return;
  int sign = 0;
  size_t words = 2;
  uint64_t w[2] = {0, 0};
  if (!v.IsBigInt() || napi_get_value_bigint_words(env, v, &sign, &words, w) != napi_ok || sign != 0 || words > 1) {
    throw_invalid(env, Code::InvalidOption, "a cudaStream_t as a bigint in [0, 2^64)", name, v);
  }
  out->has_stream = true;
  out->stream = words == 0 ? 0 : w[0];
}

const std::vector<const char*> kCompressKeys = {"keepRatio", "keep", "order", "score", "selection", "headKeep",
                                                 "sink", "recent", "lengths", "stream"};
const std::vector<const char*> kScoresKeys = {"score", "lengths", "stream"};
// compressCache's: compress's but headKeep (its counts are per layer), and its own (budgets
// stand in for keepRatio / keep)
const std::vector<const char*> kCacheKeys = {"keepRatio", "keep", "order", "score", "selection", "sink", "recent",
                                             "lengths", "stream", "pruneAfter", "skipLayers", "budgets"};

}  // namespace

std::string describe(Napi::Env env, Napi::Value v) {
  const napi_valuetype t = v.Type();
  try {
    if (t == napi_null) return "null";
    if (is_array(env, v)) return "an array of length " + js_string(env, v.As<Napi::Object>().Get("length"));
    if (v.IsTypedArray() || v.IsDataView()) {
      Napi::Value ctor = v.As<Napi::Object>().Get("constructor");
      if (ctor.IsUndefined() || ctor.IsNull()) throw std::runtime_error("no constructor");
      return "a " + js_string(env, ctor.ToObject().Get("name"));
    }
    if (t == napi_string) {
      std::u16string s = v.As<Napi::String>().Utf16Value();
      const bool cut = s.size() > 40;
      if (cut) s.resize(40);
      return "'" + Napi::String::New(env, s).Utf8Value() + (cut ? "..." : "") + "' of type string";
    }
    if (t == napi_object || t == napi_external) return "an object";
    if (t == napi_function) return "a function";
    return js_string(env, v) + " of type " + type_of(t);
  } catch (const std::exception&) {
    // a revoked Proxy, a throwing constructor getter: describing must not replace the error
    return std::string("a value of type ") + type_of(t);
  }
}

void throw_invalid(Napi::Env env, Code code, const std::string& expected, const std::string& name,
                   Napi::Value value) {
  throw_error(env, code, "Expected " + expected + " for " + name + " but received " + describe(env, value));
}

namespace {

const char* const kScoreExpected =
    "'low-norm', 'high-norm', 'kv-norm', 'keydiff', { project: vectors } or { scores: tensor }";

// score: a scorer's name, { project }, or { scores } (docs/policies.md). For a cache, project
// and scores hold one entry per layer.
void read_score(Napi::Env env, Napi::Value w, bool cache, CompressOptions* out) {
  CompressParams& p = out->params;
  p.score = Score::LowNorm;
  if (w.IsUndefined() || w.IsNull()) return;
  if (w.IsString()) {
    const std::string s = w.As<Napi::String>().Utf8Value();
    if (s == "low-norm") p.score = Score::LowNorm;
    else if (s == "high-norm") p.score = Score::HighNorm;
    else if (s == "kv-norm") p.score = Score::KvNorm;
    else if (s == "keydiff") p.score = Score::KeyDiff;
    else throw_invalid(env, Code::InvalidOption, kScoreExpected, "score", w);
    return;
  }
  if (!is_options_object(env, w)) throw_invalid(env, Code::InvalidOption, kScoreExpected, "score", w);
  Napi::Object o = w.As<Napi::Object>();
  check_known(env, o, {"project", "scores"}, true, "score.");
  Napi::Value project = o.Get("project"), scores = o.Get("scores");
  if (project.IsUndefined() == scores.IsUndefined()) {
    throw_invalid(env, Code::InvalidOption, "an object with one of project or scores", "score", w);
  }
  if (!project.IsUndefined()) {
    p.score = Score::Project;
    if (!cache) {
      if (!float_list(env, project, &out->project)) {
        throw_invalid(env, Code::InvalidOption, "a Float32Array (or an array) of finite numbers, kvHeads * keyDim of them",
                      "score.project", project);
      }
      return;
    }
    if (!is_array(env, project)) {
      throw_invalid(env, Code::InvalidOption, "an array with one Float32Array of kvHeads * keyDim finite numbers per layer",
                    "score.project", project);
    }
    each_element(env, project, [&](Napi::Value v) {
      out->project_layers.emplace_back();
      if (!float_list(env, v, &out->project_layers.back())) {
        throw_invalid(env, Code::InvalidOption, "a Float32Array (or an array) of finite numbers, kvHeads * keyDim of them",
                      "score.project[" + std::to_string(out->project_layers.size() - 1) + "]", v);
      }
      return true;
    });
    return;
  }
  p.score = Score::Given;
  if (cache && !is_array(env, scores)) {
    throw_invalid(env, Code::InvalidOption, "an array with one float32 tensor [batch, kvHeads, seqLen] per layer",
                  "score.scores", scores);
  }
  out->scores = scores;  // the tensor's fields are read with the other tensors
}

const char* const kSelectionExpected =
    "'per-head', 'adaptive', { adaptive: { alpha } } or { threshold: number }";

// selection (docs/policies.md "Selection modes"): 'per-head' (default), 'adaptive',
// { adaptive: { alpha? } } or { threshold }.
void read_selection(Napi::Env env, Napi::Value w, CompressParams* p) {
  p->selection = Selection::PerHead;
  p->alpha = 0.2;
  p->threshold = 0.0f;
  if (w.IsUndefined() || w.IsNull()) return;
  if (w.IsString()) {
    const std::string s = w.As<Napi::String>().Utf8Value();
    if (s == "adaptive") p->selection = Selection::Adaptive;
    else if (s != "per-head") throw_invalid(env, Code::InvalidOption, kSelectionExpected, "selection", w);
    return;
  }
  if (!is_options_object(env, w)) throw_invalid(env, Code::InvalidOption, kSelectionExpected, "selection", w);
  Napi::Object o = w.As<Napi::Object>();
  check_known(env, o, {"adaptive", "threshold"}, true, "selection.");
  Napi::Value adaptive = o.Get("adaptive"), threshold = o.Get("threshold");
  if (adaptive.IsUndefined() == threshold.IsUndefined()) {
    throw_invalid(env, Code::InvalidOption, "an object with one of adaptive or threshold", "selection", w);
  }
  if (!threshold.IsUndefined()) {
    if (!threshold.IsNumber() || std::isnan(threshold.As<Napi::Number>().DoubleValue())) {
      throw_invalid(env, Code::InvalidOption, "a number (a score: tokens scoring at or above it are kept)",
                    "selection.threshold", threshold);
    }
    p->selection = Selection::Threshold;
    p->threshold = fround(threshold.As<Napi::Number>().DoubleValue());
    return;
  }
  if (!is_options_object(env, adaptive)) {
    throw_invalid(env, Code::InvalidOption, "an object { alpha? }", "selection.adaptive", adaptive);
  }
  Napi::Object a = adaptive.As<Napi::Object>();
  check_known(env, a, {"alpha"}, true, "selection.adaptive.");
  Napi::Value alpha = a.Get("alpha");
  p->selection = Selection::Adaptive;
  if (alpha.IsUndefined()) return;
  const double x = alpha.IsNumber() ? alpha.As<Napi::Number>().DoubleValue() : NAN;
  if (!(x >= 0.0 && x <= 1.0)) {
    throw_invalid(env, Code::InvalidOption, "a number in [0, 1] (each head's floor, as a fraction of its budget)",
                  "selection.adaptive.alpha", alpha);
  }
  p->alpha = x;
}

}  // namespace

void decode_compress_options(Napi::Env env, Napi::Value v, OptionsFor whose, CompressOptions* out) {
  const bool cache = whose == OptionsFor::Cache;
  if (!is_options_object(env, v)) throw_invalid(env, Code::InvalidArgument, "an options object", "options", v);
  Napi::Object o = v.As<Napi::Object>();
  const bool scores_only = whose == OptionsFor::Scores;
  check_known(env, o, cache ? kCacheKeys : scores_only ? kScoresKeys : kCompressKeys, true);
  CompressParams& p = out->params;
  Napi::Value ratio = o.Get("keepRatio"), keep = o.Get("keep");
  out->has_ratio = !ratio.IsUndefined();
  out->has_keep = !keep.IsUndefined();
  if (out->has_ratio && (!ratio.IsNumber() || std::isnan(ratio.As<Napi::Number>().DoubleValue()))) {
    throw_invalid(env, Code::InvalidKeepRatio, "a number in (0, 1]", "keepRatio", ratio);
  }
  if (out->has_keep && !is_int(keep, &p.keep)) throw_invalid(env, Code::InvalidKeep, "an integer in [0, seqLen]", "keep", keep);
  if (out->has_ratio && out->has_keep) throw_error(env, Code::InvalidOption, "Expected one of keepRatio or keep, not both");
  // selection and headKeep first: a threshold or given counts stand in for keepRatio / keep
  if (!scores_only) read_selection(env, o.Get("selection"), &p);
  Napi::Value head_keep = cache || scores_only ? Napi::Value(env.Undefined()) : o.Get("headKeep");
  out->has_head_keep = !head_keep.IsUndefined();
  if (out->has_head_keep && !int_list(env, head_keep, &out->head_keep)) {
    throw_invalid(env, Code::InvalidKeep, "an array of integers (one kept count per (batch entry, KV head) row)", "headKeep",
                  head_keep);
  }
  const bool counted = p.selection == Selection::Threshold || out->has_head_keep;
  if (out->has_head_keep && p.selection != Selection::PerHead) {
    throw_error(env, Code::InvalidOption, "Expected headKeep or a selection other than 'per-head', not both (headKeep gives the counts)");
  }
  if (counted && (out->has_ratio || out->has_keep)) {
    throw_error(env, Code::InvalidOption, std::string("Expected no keepRatio or keep with ") +
        (out->has_head_keep ? "headKeep (it gives each row's count)" : "selection { threshold } (the scores give each row's count)"));
  }
  if (!out->has_ratio && !out->has_keep && !counted && !cache && !scores_only) {
    throw_error(env, Code::InvalidOption, "Expected keepRatio (in (0, 1]) or keep (a token count) in options");
  }
  p.use_ratio = out->has_ratio;
  if (out->has_ratio) p.keep_ratio = ratio.As<Napi::Number>().DoubleValue();
  // order, score, sink and recent: undefined or null is the default
  auto word = [&](const char* name, const char* a, const char* b, const std::string& expected) {
    Napi::Value w = o.Get(name);
    if (w.IsUndefined() || w.IsNull()) return false;
    const std::string s = w.IsString() ? w.As<Napi::String>().Utf8Value() : "";
    if (!w.IsString() || (s != a && s != b)) throw_invalid(env, Code::InvalidOption, expected, name, w);
    return s == b;
  };
  p.order = word("order", "position", "norm", "'position' or 'norm'") ? Order::Norm : Order::Position;
  read_score(env, o.Get("score"), cache, out);
  auto count = [&](const char* name, Code code, int64_t* to) {
    Napi::Value c = o.Get(name);
    *to = 0;
    if (!c.IsUndefined() && !c.IsNull() && (!is_int(c, to) || *to < 0)) throw_invalid(env, code, "a non-negative integer", name, c);
  };
  count("sink", Code::InvalidSink, &p.sink);
  count("recent", Code::InvalidRecent, &p.recent);
  Napi::Value lengths = o.Get("lengths");
  out->has_lengths = !lengths.IsUndefined();
  if (out->has_lengths && !int_list(env, lengths, &out->lengths)) {
    throw_invalid(env, Code::InvalidLengths, "an array of integers (one valid length per batch entry)", "lengths", lengths);
  }
  read_stream(env, o.Get("stream"), "stream", out);
}

void decode_stream_options(Napi::Env env, Napi::Value v, CompressOptions* out) {
  if (v.IsUndefined()) return;
  if (!is_options_object(env, v)) throw_invalid(env, Code::InvalidArgument, "an options object { stream? }", "options", v);
  Napi::Object o = v.As<Napi::Object>();
  check_known(env, o, {"stream"}, false);
  read_stream(env, o.Get("stream"), "options.stream", out);
}

void check_args(Napi::Env env, const CompressOptions& o, TensorArg* keys, TensorArg* values, Use use) {
  if (values != nullptr) check_same_place(env, *keys, *values);
  if (o.has_stream && !keys->on_device) {
    throw_error(env, Code::InvalidOption, "Expected no stream option for host tensors: a stream applies to device tensors");
  }
  const int64_t n = int64_t(o.lengths.size());
  auto count = [&](int64_t batch) {
    if (o.has_lengths && batch >= 0 && n != batch) {
      throw_error(env, Code::InvalidLengths, "Expected lengths to have one entry per batch entry (" +
                                                 std::to_string(batch) + ") but it has " + std::to_string(n));
    }
  };
  // lengths: [] is refused as soon as the batch can be told (it once meant "every entry full")
  int64_t batch = -1;
  if (n == 0 && !keys->raw_dim_values.empty() && is_int(keys->raw_dim_values[0], &batch) && batch > 0) count(batch);
  check_fields(env, keys, use);
  if (values != nullptr) check_fields(env, values, use);
  count(keys->view.dims.empty() ? -1 : keys->view.dims[0]);
}

CompressJob plan_compress(Napi::Env env, const TensorArg& keys, const TensorArg& values,
                          const CompressOptions& o, bool in_place, const TensorArg* scores) {
  Shape shape;
  throw_if(env, check_pair(keys.view, values.view, &shape));
  if (in_place) throw_if(env, check_in_place(keys.view, values.view, o.params));
  if (o.params.selection != Selection::PerHead) {
    // the counts come from the scores before the outputs can be sized: lib/selection.ts runs
    // selectionCounts, then this with headKeep (docs/policies.md "Two passes")
    throw_error(env, Code::InvalidOption, "Expected selection 'per-head' in a native compress call: kvtrim's compress reads "
        "options.selection first and runs a ragged one as selectionCounts, then compress with headKeep (did a getter on "
        "options.selection answer 'per-head' first?)");
  }
  CompressJob j;
  throw_if(env, make_plan(shape, o.params, o.has_lengths ? o.lengths.data() : nullptr,
                          int64_t(o.lengths.size()), &j.plan, o.has_head_keep ? &o.head_keep : nullptr));
  j.dtype = keys.view.dtype;
  j.shape = shape;
  j.keys = keys.view.data;
  j.values = values.view.data;
  j.params = o.params;
  j.in_place = in_place;
  const std::string bhs = "[" + std::to_string(shape.batch) + ", " + std::to_string(shape.heads) + ", " +
                          std::to_string(shape.seq) + "]";
  if (o.params.score == Score::Project) {
    const int64_t want = shape.heads * shape.key_dim;
    if (int64_t(o.project.size()) != want) {
      throw_error(env, Code::InvalidOption, "Expected score.project to have kvHeads * keyDim = " + std::to_string(want) +
          " numbers (one vector per KV head) but it has " + std::to_string(o.project.size()));
    }
    j.vectors = o.project.data();
  }
  if (o.params.score == Score::Given) {
    const TensorView& v = scores->view;
    const bool dims_ok = v.dims.size() == 3 && v.dims[0] == shape.batch && v.dims[1] == shape.heads && v.dims[2] == shape.seq;
    if (v.dtype != DType::F32 || !dims_ok) {
      std::string got = std::string(dtype_name(v.dtype)) + " [";
      for (size_t i = 0; i < v.dims.size(); ++i) got += (i ? ", " : "") + std::to_string(v.dims[i]);
      throw_error(env, Code::InvalidOption, "Expected score.scores to be a float32 tensor of dims [batch, kvHeads, seqLen] = " +
          bhs + " but received " + got + "]");
    }
    // the data must hold what the dims say: the scorers read batch * kvHeads * seqLen floats
    if (v.length != shape.batch * shape.heads * shape.seq) {
      throw_error(env, Code::DataLength, "Expected score.scores.data to hold " +
          std::to_string(shape.batch * shape.heads * shape.seq) + " elements (the product of dims " + bhs +
          ") but it holds " + std::to_string(v.length));
    }
    j.scores = static_cast<const float*>(v.data);
  }
  return j;
}

Napi::Value DecodeOptions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CompressOptions d;
  const bool cache = info[1].ToBoolean().Value();
  decode_compress_options(env, info[0], cache ? OptionsFor::Cache : OptionsFor::Compress, &d);
  Napi::Object r = Napi::Object::New(env);
  r.Set("order", d.params.order == Order::Norm ? "norm" : "position");
  switch (d.params.score) {
    case Score::LowNorm: r.Set("score", "low-norm"); break;
    case Score::HighNorm: r.Set("score", "high-norm"); break;
    case Score::KvNorm: r.Set("score", "kv-norm"); break;
    case Score::KeyDiff: r.Set("score", "keydiff"); break;
    case Score::Project: {
      Napi::Object sc = Napi::Object::New(env);
      auto f32 = [&](const std::vector<float>& v) {
        Napi::Float32Array a = Napi::Float32Array::New(env, v.size());
        std::copy(v.begin(), v.end(), a.Data());
        return a;
      };
      if (!cache) {
        sc.Set("project", f32(d.project));
      } else {
        Napi::Array layers = Napi::Array::New(env, d.project_layers.size());
        for (size_t l = 0; l < d.project_layers.size(); ++l) layers.Set(uint32_t(l), f32(d.project_layers[l]));
        sc.Set("project", layers);
      }
      r.Set("score", sc);
      break;
    }
    case Score::Given: {
      Napi::Object sc = Napi::Object::New(env);
      sc.Set("scores", d.scores);
      r.Set("score", sc);
      break;
    }
  }
  if (d.params.selection == Selection::Threshold) {
    Napi::Object sel = Napi::Object::New(env);
    sel.Set("threshold", Napi::Number::New(env, double(d.params.threshold)));
    r.Set("selection", sel);
  } else if (d.params.selection == Selection::Adaptive) {
    Napi::Object sel = Napi::Object::New(env), a = Napi::Object::New(env);
    a.Set("alpha", Napi::Number::New(env, d.params.alpha));
    sel.Set("adaptive", a);
    r.Set("selection", sel);
  }
  if (d.has_head_keep) {
    Napi::Array a = Napi::Array::New(env, d.head_keep.size());
    for (size_t i = 0; i < d.head_keep.size(); ++i) a.Set(uint32_t(i), Napi::Number::New(env, double(d.head_keep[i])));
    r.Set("headKeep", a);
  }
  r.Set("sink", Napi::Number::New(env, double(d.params.sink)));
  r.Set("recent", Napi::Number::New(env, double(d.params.recent)));
  if (d.has_ratio) r.Set("keepRatio", Napi::Number::New(env, d.params.keep_ratio));
  if (d.has_keep) r.Set("keep", Napi::Number::New(env, double(d.params.keep)));
  if (d.has_lengths) {
    Napi::Array a = Napi::Array::New(env, d.lengths.size());
    for (size_t i = 0; i < d.lengths.size(); ++i) a.Set(uint32_t(i), Napi::Number::New(env, double(d.lengths[i])));
    r.Set("lengths", a);
  }
  if (d.has_stream) r.Set("stream", Napi::BigInt::New(env, d.stream));
  return r;
}

}  // namespace kvtrim::addon
