// Operations on device tensors: validated with native/core exactly as host ones are, then run
// by the CUDA launchers, synchronously or on the libuv pool (the promise settles when the GPU
// is done).
#include "device.h"

#include <memory>

#include "../core/plan.h"
#include "../cuda/ops.h"
#include "args.h"
#include "device_buffer.h"
#include "errors.h"

namespace kvtrim::addon {

namespace {

// ---- one operation = a baton + a run function, used by the sync and the async form --------

struct Op {
  virtual ~Op() = default;
  virtual Status run() = 0;                   // off the main thread in the async form
  virtual Napi::Value result(Napi::Env env) = 0;
};

class OpWorker : public Napi::AsyncWorker {
 public:
  OpWorker(Napi::Env env, std::unique_ptr<Op> op)
      : Napi::AsyncWorker(env, "kvtrim.cuda"), deferred_(env), op_(std::move(op)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    status_ = op_->run();
    if (!status_.ok()) SetError(status_.message);
  }
  void OnOK() override { deferred_.Resolve(op_->result(Env())); }
  void OnError(const Napi::Error& e) override {
    deferred_.Reject(make_error(Env(), status_.ok() ? Code::Internal : status_.code, e.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::unique_ptr<Op> op_;
  Status status_;
};

Napi::Value finish(const Napi::CallbackInfo& info, std::unique_ptr<Op> op, bool async) {
  if (!async) {
    throw_if(info.Env(), op->run());
    return op->result(info.Env());
  }
  auto* w = new OpWorker(info.Env(), std::move(op));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

struct NormsOp : Op {
  DeviceArg keys;
  Napi::ObjectReference out;
  float* out_ptr = nullptr;
  Status run() override {
    const auto& d = keys.view.dims;
    return cuda::key_norms(keys.buffer->device(), keys.view.dtype, keys.view.data, d[0] * d[1] * d[2], d[3],
                           out_ptr, nullptr);
  }
  Napi::Value result(Napi::Env) override { return out.Value(); }
};

Napi::Value key_norms(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  auto op = std::make_unique<NormsOp>();
  op->keys = read_device(env, info[0], "keys");
  throw_if(env, check_tensor(op->keys.view, "keys"));
  const auto& d = op->keys.view.dims;
  Napi::Object out = new_buffer(env, op->keys.buffer->device(), size_t(d[0] * d[1] * d[2]) * sizeof(float));
  op->out_ptr = static_cast<float*>(DeviceBuffer::Unwrap(out)->data(env, "out"));
  op->out = Napi::Persistent(out);
  return finish(info, std::move(op), async);
}

struct CompressOp : Op {
  DeviceArg keys, values;
  CompressJob job;
  int device = 0;
  Napi::ObjectReference result_obj;
  Napi::Reference<Napi::Int32Array> host_indices;
  int32_t* host_idx = nullptr;
  DeviceBuffer* idx_buf = nullptr;
  Napi::ObjectReference idx_keep;
  Status run() override {
    Status s = cuda::compress(device, job, nullptr);
    if (!s.ok()) return s;
    const size_t n = size_t(job.shape.batch * job.shape.heads * job.plan.max_kept) * sizeof(int32_t);
    return cuda::copy_to_host(device, host_idx, job.out_indices, n, nullptr);
  }
  Napi::Value result(Napi::Env) override {
    idx_buf->release();  // the indices went to the host; free their device copy now, not at GC
    return result_obj.Value();
  }
};

Napi::Value compress(const Napi::CallbackInfo& info, bool in_place, bool async) {
  Napi::Env env = info.Env();
  auto op = std::make_unique<CompressOp>();
  op->keys = read_device(env, info[0], "keys");
  op->values = read_device(env, info[1], "values");
  if (op->keys.buffer->device() != op->values.buffer->device()) {
    throw_error(env, Code::InvalidArgument, "Expected keys and values on the same device but keys are on cuda:" +
        std::to_string(op->keys.buffer->device()) + " and values on cuda:" + std::to_string(op->values.buffer->device()));
  }
  op->device = op->keys.buffer->device();
  op->job = plan_compress(env, op->keys.view, op->values.view, info[2], in_place);
  const Shape& shape = op->job.shape;
  const int64_t rows = shape.batch * shape.heads, k = op->job.plan.max_kept;
  const int esz = dtype_size(op->keys.view.dtype);
  Napi::Object r = Napi::Object::New(env);
  void* ok = const_cast<void*>(op->keys.view.data);
  void* ov = const_cast<void*>(op->values.view.data);
  if (!in_place) {
    Napi::Object kb = new_buffer(env, op->device, size_t(rows * k * shape.key_dim * esz));
    Napi::Object vb = new_buffer(env, op->device, size_t(rows * k * shape.value_dim * esz));
    ok = DeviceBuffer::Unwrap(kb)->data(env, "out");
    ov = DeviceBuffer::Unwrap(vb)->data(env, "out");
    r.Set("keyBuffer", kb);
    r.Set("valueBuffer", vb);
  }
  Napi::Object ib = new_buffer(env, op->device, size_t(rows * k) * sizeof(int32_t));
  op->idx_buf = DeviceBuffer::Unwrap(ib);
  op->idx_keep = Napi::Persistent(ib);
  Napi::Int32Array indices = Napi::Int32Array::New(env, size_t(rows * k));
  op->host_idx = indices.Data();
  Napi::Int32Array kept = Napi::Int32Array::New(env, size_t(shape.batch));
  for (int64_t i = 0; i < shape.batch; ++i) kept[size_t(i)] = int32_t(op->job.plan.kept[size_t(i)]);
  r.Set("indices", indices);
  r.Set("lengths", kept);
  r.Set("kept", Napi::Number::New(env, double(k)));
  op->job.out_keys = ok;
  op->job.out_values = ov;
  op->job.out_indices = static_cast<int32_t*>(op->idx_buf->data(env, "indices"));
  op->result_obj = Napi::Persistent(r);
  return finish(info, std::move(op), async);
}

}  // namespace

void InitDevice(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DeviceBuffer::Define(env);
  env.GetInstanceData<AddonData>()->device_buffer = new Napi::FunctionReference(Napi::Persistent(ctor));
  exports.Set("DeviceBuffer", ctor);
  InitDeviceTools(env, exports);
  exports.Set("cudaKeyNormsSync", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return key_norms(i, false); }));
  exports.Set("cudaKeyNorms", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return key_norms(i, true); }));
  exports.Set("cudaCompressSync", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return compress(i, false, false); }));
  exports.Set("cudaCompress", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return compress(i, false, true); }));
  exports.Set("cudaCompressInPlaceSync", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return compress(i, true, false); }));
  exports.Set("cudaCompressInPlace", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return compress(i, true, true); }));
}

}  // namespace kvtrim::addon
