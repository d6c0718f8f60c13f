// layerUncertainty glue: read { attention } or { queries, keys } and the options (every JS
// property first), bind the data, allocate the counts, then run the CPU or CUDA kernel as an
// Operation, now or on the libuv pool.
#include "uncertainty.h"

#include <memory>

#include "../cpu/uncertainty.h"
#include "../cuda/cuda_backend.h"
#include "args.h"
#include "async_op.h"
#include "device_buffer.h"
#include "errors.h"

namespace kvtrim::addon {

namespace {

struct UncertaintyOp : Operation {
  bool window = false;
  bool on_device = false;  // device tensors: the CUDA kernel, counts copied back to the host
  int device = 0;
  DeviceArg da, dq, dk;
  HostArg ha, hq, hk;
  TensorView a, q, k;
  AttentionShape as;
  WindowShape ws;
  UncertaintyParams params;
  int32_t* out = nullptr;
  Napi::Reference<Napi::Value> result;

  void prepare(const Napi::CallbackInfo& info, Use use) {
    Napi::Env env = info.Env();
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
    Napi::Value queries = window ? in.Get("queries") : Napi::Value();
    Napi::Value keys = window ? in.Get("keys") : Napi::Value();
    auto is_device = [](Napi::Value v) { return v.IsObject() && v.As<Napi::Object>().Has("buffer"); };
    on_device = is_device(window ? queries : attention);
    // Every JS property first ...
    if (!window) {
      if (on_device) read_device(env, attention, "attention", &da);
      else read_host(env, attention, "attention", &ha, use);
    } else if (on_device) {
      if (!is_device(keys)) throw_error(env, Code::InvalidArgument, "Expected queries and keys both on a GPU or both on the host");
      read_device(env, queries, "queries", &dq);
      read_device(env, keys, "keys", &dk);
    } else {
      read_host(env, queries, "queries", &hq, use);
      read_host(env, keys, "keys", &hk, use);
    }
    // ... then the data pointers.
    int64_t rows = 0;
    if (!window) {
      if (on_device) {
        bind_device(env, &da);
        a = da.view;
        device = da.buffer->device();
      } else {
        bind_host(env, &ha, use);
        a = ha.view;
      }
      throw_if(env, check_attention(a, &as));
      rows = as.rows();
    } else {
      if (on_device) {
        bind_device(env, &dq);
        bind_device(env, &dk);
        q = dq.view;
        k = dk.view;
        device = dq.buffer->device();
        if (dk.buffer->device() != device) throw_error(env, Code::InvalidArgument, "Expected queries and keys on the same device");
      } else {
        bind_host(env, &hq, use);
        bind_host(env, &hk, use);
        q = hq.view;
        k = hk.view;
      }
      throw_if(env, check_window(q, k, params, &ws));
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

  Status run() override {
    if (on_device) {
      if (!window) return cuda::uncertainty_attention(device, a.dtype, a.data, as, params, out, nullptr);
      return cuda::uncertainty_window(device, q.dtype, q.data, k.dtype, k.data, ws, params, out, nullptr);
    }
    if (!window) return cpu::uncertainty_attention(a.dtype, a.data, as, params, out);
    return cpu::uncertainty_window(q.dtype, q.data, k.dtype, k.data, ws, params, out);
  }

  Status finish(Napi::Env env, Napi::Value* r) override {
    Status s;
    if (!on_device) {
      for (const HostArg* h : {&ha, &hq, &hk}) {
        if (s.ok() && !h->name.empty()) s = check_unchanged(env, *h, "layerUncertainty");
      }
    }
    if (s.ok()) *r = result.Value();
    return s;
  }
};

}  // namespace

Napi::Value UncertaintyCountsSync(const Napi::CallbackInfo& info) {
  UncertaintyOp op;
  op.prepare(info, Use::Now);
  return run_now(info.Env(), op);
}

Napi::Value UncertaintyCounts(const Napi::CallbackInfo& info) {
  auto op = std::make_unique<UncertaintyOp>();
  op->prepare(info, Use::Later);
  return run_async(info.Env(), std::move(op), "kvtrim.layerUncertainty");
}

}  // namespace kvtrim::addon
