// DeviceBuffer: GPU memory owned by kvtrim (freed by dispose() or, as a safety net, by the
// finalizer) or wrapped around a pointer another library owns (never freed here). Operations
// on device tensors validate with native/core exactly as host ones do, then run the CUDA
// launchers, synchronously or on the libuv pool (the promise settles when the GPU is done).
#include "device.h"

#include <memory>

#include "../core/plan.h"
#include "../cuda/ops.h"
#include "args.h"
#include "errors.h"

namespace kvtrim::addon {

namespace {

class DeviceBuffer : public Napi::ObjectWrap<DeviceBuffer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "DeviceBuffer", {
        InstanceMethod("upload", &DeviceBuffer::Upload),
        InstanceMethod("download", &DeviceBuffer::Download),
        InstanceMethod("free", &DeviceBuffer::Free),
        InstanceAccessor("ptr", &DeviceBuffer::Ptr, nullptr),
        InstanceAccessor("bytes", &DeviceBuffer::Bytes, nullptr),
        InstanceAccessor("device", &DeviceBuffer::Device, nullptr),
        InstanceAccessor("owned", &DeviceBuffer::Owned, nullptr),
        InstanceAccessor("freed", &DeviceBuffer::Freed, nullptr),
    });
  }

  // new DeviceBuffer(device, bytes) allocates; new DeviceBuffer(device, bytes, ptr) wraps.
  explicit DeviceBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceBuffer>(info) {
    Napi::Env env = info.Env();
    device_ = info[0].As<Napi::Number>().Int32Value();
    bytes_ = size_t(info[1].As<Napi::Number>().DoubleValue());
    if (info.Length() > 2 && info[2].IsBigInt()) {
      bool lossless = true;
      ptr_ = reinterpret_cast<void*>(uintptr_t(info[2].As<Napi::BigInt>().Uint64Value(&lossless)));
      owned_ = false;
      return;
    }
    throw_if(env, cuda::device_alloc(device_, bytes_, &ptr_));
    owned_ = true;
    Napi::MemoryManagement::AdjustExternalMemory(env, int64_t(bytes_ / 64));  // a GC hint, not host memory
  }

  ~DeviceBuffer() override { release(); }

  void* data(Napi::Env env, const char* name) const {
    if (freed_) {
      throw_error(env, Code::InvalidArgument, std::string("Expected ") + name +
          " to be a live device tensor but it was disposed");
    }
    return ptr_;
  }
  int device() const { return device_; }
  size_t bytes() const { return bytes_; }
  void release() {
    if (!freed_ && owned_ && ptr_ != nullptr) cuda::device_free(device_, ptr_);
    freed_ = true;
  }

 private:
  Napi::Value Upload(const Napi::CallbackInfo& info) {
    Napi::TypedArray a = info[0].As<Napi::TypedArray>();
    const size_t n = a.ByteLength();
    if (n != bytes_) throw_error(info.Env(), Code::DataLength, "upload: " + std::to_string(n) +
        " bytes into a device tensor of " + std::to_string(bytes_));
    const char* src = static_cast<const char*>(a.ArrayBuffer().Data()) + a.ByteOffset();
    throw_if(info.Env(), cuda::copy_to_device(device_, data(info.Env(), "tensor"), src, n, nullptr));
    return info.Env().Undefined();
  }

  Napi::Value Download(const Napi::CallbackInfo& info) {
    Napi::TypedArray a = info[0].As<Napi::TypedArray>();
    const size_t n = a.ByteLength();
    if (n != bytes_) throw_error(info.Env(), Code::DataLength, "download: " + std::to_string(bytes_) +
        " bytes into a host array of " + std::to_string(n));
    char* dst = static_cast<char*>(a.ArrayBuffer().Data()) + a.ByteOffset();
    throw_if(info.Env(), cuda::copy_to_host(device_, dst, data(info.Env(), "tensor"), n, nullptr));
    return info.Env().Undefined();
  }

  Napi::Value Free(const Napi::CallbackInfo& info) {
    release();
    return info.Env().Undefined();
  }

  Napi::Value Ptr(const Napi::CallbackInfo& info) {
    return Napi::BigInt::New(info.Env(), uint64_t(uintptr_t(ptr_)));
  }
  Napi::Value Bytes(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(bytes_)); }
  Napi::Value Device(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), device_); }
  Napi::Value Owned(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), owned_); }
  Napi::Value Freed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), freed_); }

  int device_ = 0;
  size_t bytes_ = 0;
  void* ptr_ = nullptr;
  bool owned_ = false, freed_ = false;
};


// A device tensor argument: { type, buffer: DeviceBuffer, dims } as lib/tensor.ts passes it.
struct DeviceArg {
  TensorView view;
  DeviceBuffer* buffer;
  Napi::ObjectReference keep;
};

DeviceArg read_device(Napi::Env env, Napi::Value v, const char* name) {
  Napi::Object o = v.As<Napi::Object>();
  DeviceArg d;
  Napi::Value type = o.Get("type");
  if (!type.IsString() || !parse_dtype(type.As<Napi::String>().Utf8Value(), &d.view.dtype)) {
    throw_error(env, Code::InvalidDType, std::string("Expected ") + name + ".type to be 'float16', 'bfloat16' or 'float32'");
  }
  d.buffer = DeviceBuffer::Unwrap(o.Get("buffer").As<Napi::Object>());
  d.view.data = d.buffer->data(env, name);
  d.view.length = int64_t(d.buffer->bytes() / size_t(dtype_size(d.view.dtype)));
  Napi::Array dims = o.Get("dims").As<Napi::Array>();
  for (uint32_t i = 0; i < dims.Length(); ++i) d.view.dims.push_back(int64_t(dims.Get(i).As<Napi::Number>().DoubleValue()));
  d.keep = Napi::Persistent(o);
  return d;
}

Napi::Object new_buffer(Napi::Env env, Napi::FunctionReference& ctor, int device, size_t bytes) {
  return ctor.New({Napi::Number::New(env, device), Napi::Number::New(env, double(bytes))});
}

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
  Napi::FunctionReference& ctor = *env.GetInstanceData<AddonData>()->device_buffer;
  Napi::Object out = new_buffer(env, ctor, op->keys.buffer->device(), size_t(d[0] * d[1] * d[2]) * sizeof(float));
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
  Napi::FunctionReference& ctor = *env.GetInstanceData<AddonData>()->device_buffer;
  Napi::Object r = Napi::Object::New(env);
  void* ok = const_cast<void*>(op->keys.view.data);
  void* ov = const_cast<void*>(op->values.view.data);
  if (!in_place) {
    Napi::Object kb = new_buffer(env, ctor, op->device, size_t(rows * k * shape.key_dim * esz));
    Napi::Object vb = new_buffer(env, ctor, op->device, size_t(rows * k * shape.value_dim * esz));
    ok = DeviceBuffer::Unwrap(kb)->data(env, "out");
    ov = DeviceBuffer::Unwrap(vb)->data(env, "out");
    r.Set("keyBuffer", kb);
    r.Set("valueBuffer", vb);
  }
  Napi::Object ib = new_buffer(env, ctor, op->device, size_t(rows * k) * sizeof(int32_t));
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
  exports.Set("cudaKeyNormsSync", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return key_norms(i, false); }));
  exports.Set("cudaKeyNorms", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return key_norms(i, true); }));
  exports.Set("cudaCompressSync", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return compress(i, false, false); }));
  exports.Set("cudaCompress", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return compress(i, false, true); }));
  exports.Set("cudaCompressInPlaceSync", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return compress(i, true, false); }));
  exports.Set("cudaEmulator", Napi::Function::New(env, [](const Napi::CallbackInfo& i) {
    Napi::Object o = i[0].As<Napi::Object>();
    const std::string sch = o.Get("schedule").ToString().Utf8Value();
    const uint64_t seed = uint64_t(o.Get("seed").ToNumber().DoubleValue());
    const int sms = o.Get("sms").IsNumber() ? o.Get("sms").ToNumber().Int32Value() : 0;
    const uint64_t spins = o.Get("spinLimit").IsNumber() ? uint64_t(o.Get("spinLimit").ToNumber().DoubleValue()) : 0;
    throw_if(i.Env(), cuda::configure_emulator(sch, seed, sms, spins));
    return i.Env().Undefined();
  }));
  exports.Set("cudaGeometry", Napi::Function::New(env, [](const Napi::CallbackInfo& i) {
    // Launch geometry compress would use for a device pair: for tests and the benchmark.
    Napi::Env e = i.Env();
    DeviceArg k = read_device(e, i[0], "keys"), v = read_device(e, i[1], "values");
    const CompressJob job = plan_compress(e, k.view, v.view, i[2], false);
    cuda::Geometry g{};
    throw_if(e, cuda::compress_geometry(k.buffer->device(), job, &g));
    Napi::Object r = Napi::Object::New(e);
    r.Set("threads", g.threads);
    r.Set("blocksPerRow", g.blocks_per_row);
    r.Set("blocks", g.blocks);
    r.Set("residentBlocks", g.resident_blocks);
    r.Set("multiprocessors", g.sms);
    r.Set("cooperative", g.cooperative);
    return Napi::Value(r);
  }));
  exports.Set("cudaBenchCompress", Napi::Function::New(env, [](const Napi::CallbackInfo& i) {
    // (keysList, valuesList, options, outKeysList, outValuesList, indicesList, warmup, reps)
    Napi::Env e = i.Env();
    Napi::Array ks = i[0].As<Napi::Array>(), vs = i[1].As<Napi::Array>();
    Napi::Array oks = i[3].As<Napi::Array>(), ovs = i[4].As<Napi::Array>(), ois = i[5].As<Napi::Array>();
    std::vector<CompressJob> jobs;
    std::vector<DeviceArg> keep;
    int device = 0;
    for (uint32_t j = 0; j < ks.Length(); ++j) {
      DeviceArg k = read_device(e, ks.Get(j), "keys"), v = read_device(e, vs.Get(j), "values");
      device = k.buffer->device();
      CompressJob job = plan_compress(e, k.view, v.view, i[2], false);
      auto out = [&](Napi::Array a) { return DeviceBuffer::Unwrap(a.Get(j).As<Napi::Object>())->data(e, "out"); };
      job.out_keys = out(oks);
      job.out_values = out(ovs);
      job.out_indices = static_cast<int32_t*>(out(ois));
      jobs.push_back(std::move(job));
      keep.push_back(std::move(k));
      keep.push_back(std::move(v));
    }
    std::vector<float> ms;
    throw_if(e, cuda::time_compress(device, jobs, i[6].As<Napi::Number>().Int32Value(), i[7].As<Napi::Number>().Int32Value(), &ms));
    Napi::Float32Array r = Napi::Float32Array::New(e, ms.size());
    for (size_t j = 0; j < ms.size(); ++j) r[j] = ms[j];
    return Napi::Value(r);
  }));
  exports.Set("cudaCopyBandwidth", Napi::Function::New(env, [](const Napi::CallbackInfo& i) {
    double bw = 0;
    throw_if(i.Env(), cuda::copy_bandwidth(i[0].As<Napi::Number>().Int32Value(), size_t(i[1].As<Napi::Number>().DoubleValue()),
                                           i[2].As<Napi::Number>().Int32Value(), &bw));
    return Napi::Value(Napi::Number::New(i.Env(), bw));
  }));
  exports.Set("cudaCompressInPlace", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return compress(i, true, true); }));
}

}  // namespace kvtrim::addon
