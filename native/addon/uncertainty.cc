// layerUncertainty glue: unpack { attention } or { queries, keys } and the options on the main
// thread, allocate the counts, then run the CPU kernel inline or on the libuv pool.
#include "uncertainty.h"

#include <memory>

#include "../cpu/uncertainty.h"
#include "../cuda/ops.h"
#include "args.h"
#include "device_buffer.h"
#include "errors.h"

namespace kvtrim::addon {

namespace {

struct LmbaBaton {
  bool window = false;
  bool on_device = false;  // device tensors: the CUDA kernel, counts copied back to the host
  int device = 0;
  DeviceArg da, dq, dk;
  TensorView a, q, k;
  AttentionShape as;
  WindowShape ws;
  LmbaParams params;
  int32_t* out = nullptr;
  Status status;
  Napi::Reference<Napi::Value> keep_a, keep_q, keep_k, keep_out;
};

Napi::Int32Array prepare(const Napi::CallbackInfo& info, LmbaBaton* b) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) {
    throw_error(env, Code::InvalidArgument, "Expected { attention } or { queries, keys }");
  }
  if (!info[1].IsObject()) throw_error(env, Code::InvalidArgument, "Expected options to be an object");
  Napi::Object in = info[0].As<Napi::Object>(), o = info[1].As<Napi::Object>();
  Napi::Value th = o.Get("threshold");
  if (!th.IsNumber()) throw_error(env, Code::InvalidOption, "Expected threshold to be a number");
  b->params.threshold = th.As<Napi::Number>().DoubleValue();
  b->params.causal = o.Get("causal").ToBoolean().Value();
  throw_if(env, check_lmba_params(b->params));
  Napi::Value keep;
  int64_t rows = 0;
  b->window = !in.Has("attention") || in.Get("attention").IsUndefined();
  auto is_device = [](Napi::Value v) { return v.IsObject() && v.As<Napi::Object>().Has("buffer"); };
  b->on_device = is_device(b->window ? in.Get("queries") : in.Get("attention"));
  if (!b->window) {
    if (b->on_device) {
      b->da = read_device(env, in.Get("attention"), "attention");
      b->a = b->da.view;
      b->device = b->da.buffer->device();
    } else {
      b->a = read_tensor(env, in.Get("attention"), "attention", &keep);
      b->keep_a = Napi::Persistent(keep);
    }
    throw_if(env, check_attention(b->a, &b->as));
    rows = b->as.rows();
  } else {
    if (b->on_device) {
      if (!is_device(in.Get("keys"))) throw_error(env, Code::InvalidArgument, "Expected queries and keys both on a GPU or both on the host");
      b->dq = read_device(env, in.Get("queries"), "queries");
      b->dk = read_device(env, in.Get("keys"), "keys");
      b->q = b->dq.view;
      b->k = b->dk.view;
      b->device = b->dq.buffer->device();
      if (b->dk.buffer->device() != b->device) throw_error(env, Code::InvalidArgument, "Expected queries and keys on the same device");
    } else {
      b->q = read_tensor(env, in.Get("queries"), "queries", &keep);
      b->keep_q = Napi::Persistent(keep);
      b->k = read_tensor(env, in.Get("keys"), "keys", &keep);
      b->keep_k = Napi::Persistent(keep);
    }
    throw_if(env, check_window(b->q, b->k, b->params, &b->ws));
    rows = b->ws.rows();
  }
  Napi::Int32Array out;
  try {
    out = Napi::Int32Array::New(env, size_t(rows));
  } catch (const Napi::Error& e) {
    throw_error(env, Code::OutOfMemory, "could not allocate counts: " + e.Message());
  }
  b->out = out.Data();
  b->keep_out = Napi::Persistent(Napi::Value(out));
  return out;
}

Status run(const LmbaBaton& b) {
  if (b.on_device) {
    if (!b.window) return cuda::lmba_attention(b.device, b.a.dtype, b.a.data, b.as, b.params, b.out, nullptr);
    return cuda::lmba_window(b.device, b.q.dtype, b.q.data, b.k.dtype, b.k.data, b.ws, b.params, b.out, nullptr);
  }
  if (!b.window) return cpu::lmba_attention(b.a.dtype, b.a.data, b.as, b.params, b.out);
  return cpu::lmba_window(b.q.dtype, b.q.data, b.k.dtype, b.k.data, b.ws, b.params, b.out);
}

class LmbaWorker : public Napi::AsyncWorker {
 public:
  LmbaWorker(Napi::Env env, std::unique_ptr<LmbaBaton> b)
      : Napi::AsyncWorker(env, "kvtrim.layerUncertainty"), deferred_(env), b_(std::move(b)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    b_->status = run(*b_);
    if (!b_->status.ok()) SetError(b_->status.message);
  }
  void OnOK() override { deferred_.Resolve(b_->keep_out.Value()); }
  void OnError(const Napi::Error& e) override {
    const Code code = b_->status.ok() ? Code::Internal : b_->status.code;
    deferred_.Reject(make_error(Env(), code, e.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::unique_ptr<LmbaBaton> b_;
};

}  // namespace

Napi::Value LmbaCountsSync(const Napi::CallbackInfo& info) {
  LmbaBaton b;
  Napi::Int32Array out = prepare(info, &b);
  throw_if(info.Env(), run(b));
  return out;
}

Napi::Value LmbaCounts(const Napi::CallbackInfo& info) {
  auto b = std::make_unique<LmbaBaton>();
  prepare(info, b.get());
  auto* w = new LmbaWorker(info.Env(), std::move(b));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace kvtrim::addon
