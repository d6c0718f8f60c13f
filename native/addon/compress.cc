// compress and compressInPlace for host and device tensors, and compressLayers (every layer of
// a model on one GPU in one launch). One Operation each: arguments are read first (every JS
// property), then data pointers taken, then the outputs allocated, so the work writes straight
// into what the caller receives (host arrays, or device buffers and the indices' host copy).
#include <algorithm>
#include <memory>
#include <vector>

#include "../cpu/compress.h"
#include "../cuda/cuda_backend.h"
#include "args.h"
#include "async_op.h"
#include "bindings.h"
#include "device_buffer.h"
#include "errors.h"
#include "options.h"
#include "outputs.h"

namespace kvtrim::addon {

namespace {

Napi::Array dims_array(Napi::Env env, std::initializer_list<int64_t> dims) {
  Napi::Array a = Napi::Array::New(env, dims.size());
  uint32_t i = 0;
  for (int64_t d : dims) a.Set(i++, Napi::Number::New(env, double(d)));
  return a;
}

Napi::Object tensor_object(Napi::Env env, DType t, Napi::Value data, Napi::Array dims) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", dtype_name(t));
  o.Set("data", data);
  o.Set("dims", dims);
  return o;
}

// A host result in one call: an object literal made by a function compiled once per
// environment (V8 makes literals from a boilerplate; setting the properties one Node-API call
// at a time walked the map transitions for each). Literals define their properties, so no
// setter on Object.prototype runs, as with napi_set_property it could. Null where the
// environment cannot compile it (results are then built property by property).
Napi::Function host_result_fn(Napi::Env env) {
  AddonData* data = env.GetInstanceData<AddonData>();
  if (data->host_result.IsEmpty()) {
    static const char kSource[] =
        "(function (types) {\n"
        "  'use strict'\n"
        "  return function kvtrimHostResult(t, keys, values, indices, lengths, b, h, k, dk, dv, kept, headLengths) {\n"
        "    const type = types[t]\n"
        "    if (keys === undefined) return { indices, lengths, headLengths, kept }\n"
        "    return { keys: { type, data: keys, dims: [b, h, k, dk] }, values: { type, data: values, dims: [b, h, k, dv] }, indices, lengths, headLengths, kept }\n"
        "  }\n"
        "})";
    napi_value script = nullptr, factory = nullptr, fn = nullptr;
    napi_value types[1] = {nullptr};
    bool ok = napi_create_string_utf8(env, kSource, NAPI_AUTO_LENGTH, &script) == napi_ok &&
              napi_run_script(env, script, &factory) == napi_ok;
    if (ok) {
      Napi::Array t = Napi::Array::New(env, 3);
      t.Set(uint32_t(DType::F16), dtype_name(DType::F16));
      t.Set(uint32_t(DType::BF16), dtype_name(DType::BF16));
      t.Set(uint32_t(DType::F32), dtype_name(DType::F32));
      types[0] = t;
      ok = napi_call_function(env, env.Undefined(), factory, 1, types, &fn) == napi_ok;
    }
    if (!ok) {
      bool pending = false;
      if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
        napi_value ignored;
        napi_get_and_clear_last_exception(env, &ignored);
      }
      return Napi::Function();
    }
    data->host_result = Napi::Persistent(Napi::Function(env, fn));
  }
  return data->host_result.Value();
}

// One (keys, values, options) triple: its job, its outputs and its result object.
struct Entry {
  TensorArg keys, values;
  TensorArg scores;  // score: { scores }
  CompressOptions options;
  CompressJob job;
  Napi::ObjectReference result;
  int32_t* host_idx = nullptr;      // device: the indices' host copy, in the result
  DeviceBuffer* idx_buf = nullptr;  // device: the indices on the GPU, freed once settled
  Napi::ObjectReference idx_keep;

  // Reads every argument (options first, then the tensors), binds the data, validates and plans, allocates the outputs (in
  // place: only indices and lengths).
  void prepare(Napi::Env env, Napi::Value kv, Napi::Value vv, Napi::Value ov, bool in_place, Use use) {
    const Use u = in_place && use == Use::Later ? Use::WriteLater : use;
    decode_compress_options(env, ov, OptionsFor::Compress, &options);
    read_tensor(env, kv, "keys", &keys);
    read_tensor(env, vv, "values", &values);
    const bool given = options.params.score == Score::Given;
    if (given) read_tensor(env, options.scores, "score.scores", &scores);
    check_args(env, options, &keys, &values, u);
    if (given) {
      check_same_place(env, keys, scores);
      check_fields(env, &scores, use);  // read only, even in place
    }
    bind_tensor(env, &keys, u);
    bind_tensor(env, &values, u);
    if (given) bind_tensor(env, &scores, use);
    job = plan_compress(env, keys, values, options, in_place, given ? &scores : nullptr);
    job.out_keys = const_cast<void*>(keys.view.data);
    job.out_values = const_cast<void*>(values.view.data);
    result = Napi::Persistent(keys.on_device ? outputs_on_device(env, in_place) : outputs_on_host(env, in_place));
  }

  // lengths: per batch entry, the most any of its heads keeps; headLengths: per row.
  void write_lengths(int32_t* lengths, int32_t* head_lengths) const {
    const Shape& s = job.shape;
    for (int64_t b = 0; b < s.batch; ++b) lengths[b] = int32_t(job.plan.batch_kept[size_t(b)]);
    for (int64_t r = 0; r < s.batch * s.heads; ++r) head_lengths[r] = int32_t(job.plan.kept_of(r));
  }

  Napi::Object outputs_on_host(Napi::Env env, bool in_place) {
    const Shape& shape = job.shape;
    const int64_t rows = shape.batch * shape.heads, k = job.plan.max_kept;
    std::vector<OutputSpec> specs = {{DType::F32, rows * k, true}, {DType::F32, shape.batch, true}, {DType::F32, rows, true}};
    if (!in_place) {
      specs.push_back({job.dtype, rows * k * shape.key_dim});
      specs.push_back({job.dtype, rows * k * shape.value_dim});
    }
    std::vector<void*> data;
    auto arrays = new_outputs(env, specs, &data, "the compressed cache");
    job.out_indices = static_cast<int32_t*>(data[0]);
    write_lengths(static_cast<int32_t*>(data[1]), static_cast<int32_t*>(data[2]));
    if (!in_place) {
      job.out_keys = data[3];
      job.out_values = data[4];
    }
    Napi::Function make = host_result_fn(env);
    if (!make.IsEmpty()) {
      auto num = [&](int64_t v) { return Napi::Number::New(env, double(v)); };
      Napi::Value undefined = env.Undefined();
      const napi_value argv[] = {
          num(int64_t(job.dtype)), in_place ? undefined : arrays[3], in_place ? undefined : arrays[4], arrays[0],
          arrays[1], num(shape.batch), num(shape.heads), num(k), num(shape.key_dim), num(shape.value_dim),
          num(job.plan.max_kept), arrays[2]};
      napi_value r = nullptr;
      if (napi_call_function(env, undefined, make, sizeof(argv) / sizeof(argv[0]), argv, &r) != napi_ok) {
        throw Napi::Error::New(env);
      }
      return Napi::Object(env, r);
    }
    Napi::Object r = Napi::Object::New(env);
    if (!in_place) {
      r.Set("keys", tensor_object(env, job.dtype, arrays[3], dims_array(env, {shape.batch, shape.heads, k, shape.key_dim})));
      r.Set("values", tensor_object(env, job.dtype, arrays[4], dims_array(env, {shape.batch, shape.heads, k, shape.value_dim})));
    }
    r.Set("indices", arrays[0]);
    r.Set("lengths", arrays[1]);
    r.Set("headLengths", arrays[2]);
    r.Set("kept", Napi::Number::New(env, double(job.plan.max_kept)));
    return r;
  }

  Napi::Object outputs_on_device(Napi::Env env, bool in_place) {
    Napi::Object r = Napi::Object::New(env);
    const Shape& shape = job.shape;
    const int64_t rows = shape.batch * shape.heads, k = job.plan.max_kept;
    const int device = keys.device();
    const size_t esz = size_t(dtype_size(job.dtype));
    auto buffer = [&](size_t bytes, void** ptr) {
      Napi::Object b = new_buffer(env, device, bytes);
      *ptr = DeviceBuffer::From(env, b, "out")->data(env, "out");
      return b;
    };
    if (!in_place) {
      r.Set("keyBuffer", buffer(size_t(rows * k * shape.key_dim) * esz, &job.out_keys));
      r.Set("valueBuffer", buffer(size_t(rows * k * shape.value_dim) * esz, &job.out_values));
    }
    void* idx = nullptr;
    Napi::Object ib = buffer(size_t(rows * k) * sizeof(int32_t), &idx);
    idx_buf = DeviceBuffer::From(env, ib, "indices");
    idx_keep = Napi::Persistent(ib);
    job.out_indices = static_cast<int32_t*>(idx);
    Napi::Int32Array indices = Napi::Int32Array::New(env, size_t(rows * k));
    host_idx = indices.Data();
    Napi::Int32Array kept = Napi::Int32Array::New(env, size_t(shape.batch));
    Napi::Int32Array head_kept = Napi::Int32Array::New(env, size_t(rows));
    write_lengths(kept.Data(), head_kept.Data());
    r.Set("indices", indices);
    r.Set("lengths", kept);
    r.Set("headLengths", head_kept);
    r.Set("kept", Napi::Number::New(env, double(job.plan.max_kept)));
    return r;
  }
};

// compress or compressInPlace (one entry), or compressLayers (every layer in one launch).
struct CompressOp : Operation {
  std::vector<std::unique_ptr<Entry>> entries;
  bool layers = false;
  const char* name = "compress";

  bool on_device() const { return entries[0]->keys.on_device; }
  bool tiny() const override {
    return !layers && !on_device() && entries[0]->keys.bytes + entries[0]->values.bytes <= kTinyInputBytes;
  }

  Status run() override {
    if (!on_device()) return cpu::compress(entries[0]->job);
    const int device = entries[0]->keys.device();
    void* stream = entries[0]->options.stream_ptr();
    if (layers) {
      std::vector<CompressJob> jobs;
      for (const auto& e : entries) jobs.push_back(e->job);
      Status s = cuda::compress_layers(device, jobs, stream);
      if (!s.ok()) return s;
    } else {
      Status s = cuda::compress(device, entries[0]->job, stream);
      if (!s.ok()) return s;
    }
    for (const auto& e : entries) {
      const CompressJob& j = e->job;
      const size_t n = size_t(j.shape.batch * j.shape.heads * j.plan.max_kept) * sizeof(int32_t);
      Status s = cuda::copy_to_host(device, e->host_idx, j.out_indices, n, stream);
      if (!s.ok()) return s;
    }
    return Status::success();
  }
  Status finish(Napi::Env env, Napi::Value* r) override {
    if (!layers) {
      const Entry& e = *entries[0];
      Status s = check_unchanged(env, e.keys, name);
      if (s.ok()) s = check_unchanged(env, e.values, name);
      if (s.ok() && e.job.params.score == Score::Given) s = check_unchanged(env, e.scores, name);
      if (s.ok()) *r = e.result.Value();
      return s;
    }
    Napi::Array a = Napi::Array::New(env, entries.size());
    for (size_t i = 0; i < entries.size(); ++i) a.Set(uint32_t(i), entries[i]->result.Value());
    *r = a;
    return Status::success();
  }
  // The indices are on the host now (or the operation failed): their device copy goes at once.
  void settled() override {
    for (const auto& e : entries) {
      if (e->idx_buf != nullptr) e->idx_buf->release();
    }
  }
};

Napi::Value launch(Napi::Env env, std::unique_ptr<CompressOp> op, bool async) {
  if (!async) return run_now(env, *op);
  const char* name = op->layers ? "kvtrim.compressLayers" : op->entries[0]->job.in_place ? "kvtrim.compressInPlace" : "kvtrim.compress";
  return run_async(env, std::move(op), name);
}

Napi::Value compress(const Napi::CallbackInfo& info, bool in_place, bool async) {
  auto op = std::make_unique<CompressOp>();
  op->name = in_place ? "compressInPlace" : "compress";
  op->entries.push_back(std::make_unique<Entry>());
  op->entries[0]->prepare(info.Env(), info[0], info[1], info[2], in_place, async ? Use::Later : Use::Now);
  return launch(info.Env(), std::move(op), async);
}

// (keys[], values[], options[], layerIndices[]): every layer, one device, one launch where
// shapes allow. A bad layer's error names it: "layers[i]: ...".
Napi::Value compress_layers(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  for (int i = 0; i < 4; ++i) {
    if (!info[i].IsArray()) throw_error(env, Code::InvalidArgument, "Expected compressLayers(keys[], values[], options[], layerIndices[])");
  }
  Napi::Array ks = info[0].As<Napi::Array>(), vs = info[1].As<Napi::Array>(), os = info[2].As<Napi::Array>();
  Napi::Array ids = info[3].As<Napi::Array>();
  const uint32_t n = ks.Length();
  if (vs.Length() != n || os.Length() != n || ids.Length() != n) {
    throw_error(env, Code::InvalidArgument, "Expected as many values, options and layer indices as keys");
  }
  if (n == 0) throw_error(env, Code::InvalidArgument, "compressLayers: no layers");
  auto op = std::make_unique<CompressOp>();
  op->layers = true;
  for (uint32_t i = 0; i < n; ++i) {
    const std::string name = "layers[" + ids.Get(i).ToString().Utf8Value() + "]: ";
    op->entries.push_back(std::make_unique<Entry>());
    Entry& e = *op->entries.back();
    try {
      e.prepare(env, ks.Get(i), vs.Get(i), os.Get(i), false, Use::Now);
    } catch (Napi::Error& err) {
      err.Value().Set("message", name + err.Message());
      throw;
    }
    if (!e.keys.on_device) {
      throw_error(env, Code::InvalidArgument, name + "expected device tensors (compressLayers runs every layer on one GPU)");
    }
    if (e.keys.device() != op->entries[0]->keys.device()) {
      throw_error(env, Code::DeviceMismatch, name + "expected every layer on one device, but this one is on cuda:" +
          std::to_string(e.keys.device()) + " and layer 0 on cuda:" + std::to_string(op->entries[0]->keys.device()));
    }
  }
  return launch(env, std::move(op), async);
}

}  // namespace

Napi::Value CompressSync(const Napi::CallbackInfo& info) { return compress(info, false, false); }
Napi::Value Compress(const Napi::CallbackInfo& info) { return compress(info, false, true); }
Napi::Value CompressInPlaceSync(const Napi::CallbackInfo& info) { return compress(info, true, false); }
Napi::Value CompressInPlace(const Napi::CallbackInfo& info) { return compress(info, true, true); }
Napi::Value CompressLayersSync(const Napi::CallbackInfo& info) { return compress_layers(info, false); }
Napi::Value CompressLayers(const Napi::CallbackInfo& info) { return compress_layers(info, true); }

}  // namespace kvtrim::addon
