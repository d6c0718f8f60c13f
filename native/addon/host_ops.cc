// keyNorms and compress for host tensors. Each is one Operation (async_op.h) run now by the
// ...Sync form or on the libuv pool by the Promise form: arguments are read first, then data
// pointers taken, then outputs allocated in JS, so the work writes straight into the arrays
// the caller receives.
#include "host_ops.h"

#include <memory>

#include "../cpu/compress.h"
#include "args.h"
#include "async_op.h"
#include "errors.h"
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

// ---- keyNorms -------------------------------------------------------------------------

struct NormsOp : Operation {
  HostArg keys;
  int64_t rows = 0;
  float* out = nullptr;
  Napi::Reference<Napi::Value> result;

  void prepare(const Napi::CallbackInfo& info, Use use) {
    Napi::Env env = info.Env();
    read_host(env, info[0], "keys", &keys, use);
    bind_host(env, &keys, use);
    throw_if(env, check_tensor(keys.view, "keys"));
    const auto& d = keys.view.dims;
    rows = d[0] * d[1] * d[2];
    std::vector<void*> data;
    auto arrays = new_outputs(env, {{DType::F32, rows}}, &data, "the norms");
    out = static_cast<float*>(data[0]);
    result = Napi::Persistent(Napi::Value(arrays[0]));
  }
  Status run() override {
    cpu::key_norms(keys.view.dtype, keys.view.data, rows, keys.view.dims[3], out);
    return Status::success();
  }
  Status finish(Napi::Env env, Napi::Value* r) override {
    Status s = check_unchanged(env, keys, "keyNorms");
    if (s.ok()) *r = result.Value();
    return s;
  }
};

// ---- compress -------------------------------------------------------------------------

struct CompressOp : Operation {
  HostArg keys, values;
  CompressJob job;
  bool in_place = false;
  const char* name = "compress";
  Napi::ObjectReference result;  // holds the output arrays alive, resolved as is

  // Reads every argument, binds the data, validates and plans, allocates the outputs (for in
  // place: only indices and lengths).
  void prepare(const Napi::CallbackInfo& info, bool place, Use use) {
    Napi::Env env = info.Env();
    in_place = place;
    name = place ? "compressInPlace" : "compress";
    const Use u = place && use == Use::Later ? Use::WriteLater : use;
    read_host(env, info[0], "keys", &keys, u);
    read_host(env, info[1], "values", &values, u);
    CompressArgs args;
    read_params(env, info[2], keys.view.dims.empty() ? -1 : keys.view.dims[0], &args);
    bind_host(env, &keys, u);
    bind_host(env, &values, u);
    job = plan_compress(env, keys.view, values.view, args, in_place);
    const Shape& shape = job.shape;
    const int64_t rows = shape.batch * shape.heads, k = job.plan.max_kept;
    std::vector<OutputSpec> specs = {{DType::F32, rows * k, true}, {DType::F32, shape.batch, true}};
    if (!in_place) {
      specs.push_back({keys.view.dtype, rows * k * shape.key_dim});
      specs.push_back({keys.view.dtype, rows * k * shape.value_dim});
    }
    std::vector<void*> data;
    auto arrays = new_outputs(env, specs, &data, "the compressed cache");
    job.out_indices = static_cast<int32_t*>(data[0]);
    int32_t* kept = static_cast<int32_t*>(data[1]);
    for (int64_t i = 0; i < shape.batch; ++i) kept[i] = int32_t(job.plan.kept[size_t(i)]);
    Napi::Object r = Napi::Object::New(env);
    job.out_keys = const_cast<void*>(keys.view.data);
    job.out_values = const_cast<void*>(values.view.data);
    if (!in_place) {
      job.out_keys = data[2];
      job.out_values = data[3];
      r.Set("keys", tensor_object(env, keys.view.dtype, arrays[2],
                                  dims_array(env, {shape.batch, shape.heads, k, shape.key_dim})));
      r.Set("values", tensor_object(env, keys.view.dtype, arrays[3],
                                    dims_array(env, {shape.batch, shape.heads, k, shape.value_dim})));
    }
    r.Set("indices", arrays[0]);
    r.Set("lengths", arrays[1]);
    r.Set("kept", Napi::Number::New(env, double(k)));
    result = Napi::Persistent(r);
  }
  Status run() override { return cpu::compress(job); }
  Status finish(Napi::Env env, Napi::Value* r) override {
    Status s = check_unchanged(env, keys, name);
    if (s.ok()) s = check_unchanged(env, values, name);
    if (s.ok()) *r = result.Value();
    return s;
  }
};

Napi::Value compress(const Napi::CallbackInfo& info, bool in_place, bool async) {
  auto op = std::make_unique<CompressOp>();
  op->prepare(info, in_place, async ? Use::Later : Use::Now);
  if (!async) return run_now(info.Env(), *op);
  return run_async(info.Env(), std::move(op), in_place ? "kvtrim.compressInPlace" : "kvtrim.compress");
}

}  // namespace

Napi::Value KeyNormsSync(const Napi::CallbackInfo& info) {
  NormsOp op;
  op.prepare(info, Use::Now);
  return run_now(info.Env(), op);
}

Napi::Value KeyNorms(const Napi::CallbackInfo& info) {
  auto op = std::make_unique<NormsOp>();
  op->prepare(info, Use::Later);
  return run_async(info.Env(), std::move(op), "kvtrim.keyNorms");
}

Napi::Value CompressSync(const Napi::CallbackInfo& info) { return compress(info, false, false); }
Napi::Value Compress(const Napi::CallbackInfo& info) { return compress(info, false, true); }
Napi::Value CompressInPlaceSync(const Napi::CallbackInfo& info) { return compress(info, true, false); }
Napi::Value CompressInPlace(const Napi::CallbackInfo& info) { return compress(info, true, true); }

}  // namespace kvtrim::addon
