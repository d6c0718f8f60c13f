// layerUncertainty glue: read { attention } or { queries, keys } and the options (every JS
// property first), bind the data, allocate the counts, then run the CPU kernel (host tensors)
// or the CUDA one (device tensors) as an Operation, now or on the libuv pool.

#include <memory>

#include "../cpu/uncertainty.h"
#include "../cuda/cuda_backend.h"
#include "args.h"
#include "async_op.h"
#include "bindings.h"
#include "device_buffer.h"
#include "errors.h"

namespace kvtrim::addon {

namespace {

struct UncertaintyOp : Operation {
  bool window = false;
  bool on_device = false;  // device tensors: the CUDA kernel, counts copied back to the host
  int device = 0;
  TensorArg a, q, k;       // attention, or queries and keys
  AttentionShape as;
  WindowShape ws;
  UncertaintyParams params;
  int32_t* out = nullptr;
  Napi::Reference<Napi::Value> result;

  void prepare(const Napi::CallbackInfo& info, bool async) {
    Napi::Env env = info.Env();
    const Use use = async ? Use::Later : Use::Now;
    if (!info[0].IsObject()) {
      throw_error(env, Code::InvalidArgument, "Expected { attention } or { queries, keys }");
    }
    if (!info[1].IsObject()) throw_error(env, Code::InvalidArgument, "Expected options to be an object");
    Napi::Object in = info[0].As<Napi::Object>(), o = info[1].As<Napi::Object>();
    Napi::Value th = o.Get("threshold");
    if (!th.IsNumber()) throw_error(env, Code::InvalidOption, "Expected threshold to be a number");
    params.threshold = th.As<Napi::Number>().DoubleValue();
    params.causal = o.Get("causal").ToBoolean().Value();
    throw_if(env, check_uncertainty_params(params));
    Napi::Value attention = in.Get("attention");
    window = attention.IsUndefined();
    // Every JS property first (host and device tensors alike) ...
    if (!window) {
      read_tensor(env, attention, "attention", &a);
      check_fields(env, &a, use);
    } else {
      read_tensor(env, in.Get("queries"), "queries", &q);
      read_tensor(env, in.Get("keys"), "keys", &k);
      check_same_place(env, q, k);
      check_fields(env, &q, use);
      check_fields(env, &k, use);
    }
    // ... then the data pointers.
    int64_t rows = 0;
    if (!window) {
      bind_tensor(env, &a, use);
      on_device = a.on_device;
      device = a.device();
      throw_if(env, check_attention(a.view, &as));
      rows = as.rows();
    } else {
      bind_tensor(env, &q, use);
      bind_tensor(env, &k, use);
      on_device = q.on_device;
      device = q.device();
      throw_if(env, check_window(q.view, k.view, params, &ws));
      rows = ws.rows();
    }
    Napi::Int32Array counts;
    try {
      counts = Napi::Int32Array::New(env, size_t(rows));
    } catch (const Napi::Error& e) {
      throw_error(env, Code::OutOfMemory, "could not allocate counts: " + e.Message());
    }
    out = counts.Data();
    result = Napi::Persistent(Napi::Value(counts));
  }

  // The attention form is linear in its input (a count per row), so a small host one runs at
  // once like a small compress; the window form does q x k dot products (quadratic): always queued.
  bool tiny() const override { return !on_device && !window && a.bytes <= kTinyInputBytes; }

  Status run() override {
    const TensorView &av = a.view, &qv = q.view, &kv = k.view;
    if (on_device) {
      if (!window) return cuda::uncertainty_attention(device, av.dtype, av.data, as, params, out, nullptr);
      return cuda::uncertainty_window(device, qv.dtype, qv.data, kv.dtype, kv.data, ws, params, out, nullptr);
    }
    if (!window) return cpu::uncertainty_attention(av.dtype, av.data, as, params, out);
    return cpu::uncertainty_window(qv.dtype, qv.data, kv.dtype, kv.data, ws, params, out);
  }

  Status finish(Napi::Env env, Napi::Value* r) override {
    Status s;
    for (const TensorArg* t : {&a, &q, &k}) {
      if (s.ok()) s = check_unchanged(env, *t, "layerUncertainty");
    }
    if (s.ok()) *r = result.Value();
    return s;
  }
};

}  // namespace

Napi::Value UncertaintyCountsSync(const Napi::CallbackInfo& info) {
  return start<UncertaintyOp>(info, false, "kvtrim.layerUncertainty");
}
Napi::Value UncertaintyCounts(const Napi::CallbackInfo& info) {
  return start<UncertaintyOp>(info, true, "kvtrim.layerUncertainty");
}

}  // namespace kvtrim::addon
