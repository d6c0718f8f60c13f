// keyNorms and compress for host tensors, each as a sync call and as a Promise whose work
// runs on the libuv pool (sharp's "baton" shape: everything Execute needs is gathered on the
// main thread first; Execute touches no JS). Outputs are allocated in JS before the work
// starts, so the worker writes straight into the arrays the caller receives.
#include "ops.h"

#include <memory>

#include "../cpu/compress.h"
#include "../cpu/host_buffers.h"
#include "args.h"
#include "errors.h"

namespace kvtrim::addon {

namespace {

// Typed array of n elements for dtype t; allocation failure becomes OUT_OF_MEMORY. Large
// arrays live in recycled, huge-page memory (cpu/host_buffers.h) owned by their ArrayBuffer.
Napi::TypedArray new_array(Napi::Env env, DType t, int64_t n, void** data) {
  const size_t bytes = size_t(n) * size_t(dtype_size(t));
  try {
    Napi::ArrayBuffer buf;
    void* mem = bytes >= cpu::kPooledMinBytes ? cpu::acquire_buffer(bytes) : nullptr;
    if (mem != nullptr) {
      buf = Napi::ArrayBuffer::New(env, mem, bytes, [](Napi::Env e, void* p, size_t* size) {
        Napi::MemoryManagement::AdjustExternalMemory(e, -int64_t(*size));
        cpu::release_buffer(p, *size);
        delete size;
      }, new size_t(bytes));
      Napi::MemoryManagement::AdjustExternalMemory(env, int64_t(bytes));
    } else {
      buf = Napi::ArrayBuffer::New(env, bytes);
    }
    *data = buf.Data();
    if (t == DType::F32) return Napi::Float32Array::New(env, size_t(n), buf, 0);
    return Napi::Uint16Array::New(env, size_t(n), buf, 0);
  } catch (const Napi::Error& e) {
    throw_error(env, Code::OutOfMemory, "could not allocate an output of " + std::to_string(n) +
                " elements: " + e.Message());
  }
}

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

struct NormsBaton {
  TensorView keys;
  int64_t rows = 0;
  float* out = nullptr;
  Napi::Reference<Napi::Value> keep_in, keep_out;
};

Napi::Float32Array prepare_norms(const Napi::CallbackInfo& info, NormsBaton* b) {
  Napi::Env env = info.Env();
  Napi::Value keep;
  b->keys = read_tensor(env, info[0], "keys", &keep);
  throw_if(env, check_tensor(b->keys, "keys"));
  b->rows = b->keys.dims[0] * b->keys.dims[1] * b->keys.dims[2];
  void* out = nullptr;
  Napi::Float32Array norms = new_array(env, DType::F32, b->rows, &out).As<Napi::Float32Array>();
  b->out = static_cast<float*>(out);
  b->keep_in = Napi::Persistent(keep);
  b->keep_out = Napi::Persistent(Napi::Value(norms));
  return norms;
}

void run_norms(const NormsBaton& b) {
  cpu::key_norms(b.keys.dtype, b.keys.data, b.rows, b.keys.dims[3], b.out);
}

class NormsWorker : public Napi::AsyncWorker {
 public:
  NormsWorker(Napi::Env env, std::unique_ptr<NormsBaton> b)
      : Napi::AsyncWorker(env, "kvtrim.keyNorms"), deferred_(env), b_(std::move(b)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { run_norms(*b_); }
  void OnOK() override { deferred_.Resolve(b_->keep_out.Value()); }
  void OnError(const Napi::Error& e) override {
    deferred_.Reject(make_error(Env(), Code::Internal, e.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::unique_ptr<NormsBaton> b_;
};

// ---- compress ---------------------------------------------------------------------------

struct CompressBaton {
  CompressJob job;
  Status status;
  Napi::Reference<Napi::Value> keep_keys, keep_values;
  Napi::ObjectReference result;  // holds the output arrays alive, resolved as is
};

// Validates, plans and allocates the outputs (for in place: only indices and lengths).
void prepare_compress(const Napi::CallbackInfo& info, CompressBaton* b, bool in_place) {
  Napi::Env env = info.Env();
  Napi::Value kk, kv;
  TensorView keys = read_tensor(env, info[0], "keys", &kk);
  TensorView values = read_tensor(env, info[1], "values", &kv);
  b->job = plan_compress(env, keys, values, info[2], in_place);
  const Shape& shape = b->job.shape;
  const int64_t rows = shape.batch * shape.heads, k = b->job.plan.max_kept;
  Napi::Int32Array out_i;
  try {
    out_i = Napi::Int32Array::New(env, size_t(rows * k));
  } catch (const Napi::Error& e) {
    throw_error(env, Code::OutOfMemory, "could not allocate indices: " + e.Message());
  }
  Napi::Int32Array kept = Napi::Int32Array::New(env, size_t(shape.batch));
  for (int64_t i = 0; i < shape.batch; ++i) kept[size_t(i)] = int32_t(b->job.plan.kept[size_t(i)]);

  Napi::Object r = Napi::Object::New(env);
  b->job.out_keys = const_cast<void*>(keys.data);
  b->job.out_values = const_cast<void*>(values.data);
  if (!in_place) {
    Napi::TypedArray out_k = new_array(env, keys.dtype, rows * k * shape.key_dim, &b->job.out_keys);
    Napi::TypedArray out_v = new_array(env, keys.dtype, rows * k * shape.value_dim, &b->job.out_values);
    r.Set("keys", tensor_object(env, keys.dtype, out_k,
                                dims_array(env, {shape.batch, shape.heads, k, shape.key_dim})));
    r.Set("values", tensor_object(env, keys.dtype, out_v,
                                  dims_array(env, {shape.batch, shape.heads, k, shape.value_dim})));
  }
  r.Set("indices", out_i);
  r.Set("lengths", kept);
  r.Set("kept", Napi::Number::New(env, double(k)));
  b->job.out_indices = out_i.Data();
  b->keep_keys = Napi::Persistent(kk);
  b->keep_values = Napi::Persistent(kv);
  b->result = Napi::Persistent(r);
}

class CompressWorker : public Napi::AsyncWorker {
 public:
  CompressWorker(Napi::Env env, std::unique_ptr<CompressBaton> b)
      : Napi::AsyncWorker(env, "kvtrim.compress"), deferred_(env), b_(std::move(b)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    b_->status = cpu::compress(b_->job);
    if (!b_->status.ok()) SetError(b_->status.message);
  }
  void OnOK() override { deferred_.Resolve(b_->result.Value()); }
  void OnError(const Napi::Error& e) override {
    const Code code = b_->status.ok() ? Code::Internal : b_->status.code;
    deferred_.Reject(make_error(Env(), code, e.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::unique_ptr<CompressBaton> b_;
};

}  // namespace

Napi::Value KeyNormsSync(const Napi::CallbackInfo& info) {
  NormsBaton b;
  Napi::Float32Array norms = prepare_norms(info, &b);
  run_norms(b);
  return norms;
}

Napi::Value KeyNorms(const Napi::CallbackInfo& info) {
  auto b = std::make_unique<NormsBaton>();
  prepare_norms(info, b.get());
  auto* w = new NormsWorker(info.Env(), std::move(b));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

namespace {

Napi::Value compress_sync(const Napi::CallbackInfo& info, bool in_place) {
  CompressBaton b;
  prepare_compress(info, &b, in_place);
  throw_if(info.Env(), cpu::compress(b.job));
  return b.result.Value();
}

Napi::Value compress_async(const Napi::CallbackInfo& info, bool in_place) {
  auto b = std::make_unique<CompressBaton>();
  prepare_compress(info, b.get(), in_place);
  auto* w = new CompressWorker(info.Env(), std::move(b));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace

Napi::Value CompressSync(const Napi::CallbackInfo& info) { return compress_sync(info, false); }
Napi::Value Compress(const Napi::CallbackInfo& info) { return compress_async(info, false); }
Napi::Value CompressInPlaceSync(const Napi::CallbackInfo& info) { return compress_sync(info, true); }
Napi::Value CompressInPlace(const Napi::CallbackInfo& info) { return compress_async(info, true); }

}  // namespace kvtrim::addon
