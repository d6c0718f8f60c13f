// Operations on device tensors: validated with native/core exactly as host ones are, then run
// by the CUDA launchers, synchronously or as an Operation on the libuv pool (the promise
// settles when the GPU is done). Every input buffer is pinned until the operation settles.
#include "device_ops.h"

#include <memory>
#include <vector>

#include "../core/plan.h"
#include "../cuda/cuda_backend.h"
#include "args.h"
#include "async_op.h"
#include "device_buffer.h"
#include "errors.h"

namespace kvtrim::addon {

namespace {

Napi::Value finish(const Napi::CallbackInfo& info, std::unique_ptr<Operation> op, bool async) {
  if (!async) return run_now(info.Env(), *op);
  return run_async(info.Env(), std::move(op), "kvtrim.cuda");
}

// options.stream: a cudaStream_t as a bigint (0n or absent: the default stream).
void* read_stream(Napi::Env env, Napi::Value options) {
  if (!options.IsObject()) return nullptr;
  Napi::Value v = options.As<Napi::Object>().Get("stream");
  if (v.IsUndefined() || v.IsNull()) return nullptr;
  return reinterpret_cast<void*>(uintptr_t(read_u64(env, v, Code::InvalidOption, "options.stream (a cudaStream_t)")));
}

struct NormsOp : Operation {
  DeviceArg keys;
  Napi::ObjectReference out;
  float* out_ptr = nullptr;
  void* stream = nullptr;
  Status run() override {
    const auto& d = keys.view.dims;
    return cuda::key_norms(keys.buffer->device(), keys.view.dtype, keys.view.data, d[0] * d[1] * d[2], d[3],
                           out_ptr, stream);
  }
  Status finish(Napi::Env, Napi::Value* r) override {
    *r = out.Value();
    return Status::success();
  }
};

Napi::Value key_norms(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  auto op = std::make_unique<NormsOp>();
  read_device(env, info[0], "keys", &op->keys);
  op->stream = read_stream(env, info[1]);
  bind_device(env, &op->keys);
  throw_if(env, check_tensor(op->keys.view, "keys"));
  const auto& d = op->keys.view.dims;
  Napi::Object out = new_buffer(env, op->keys.buffer->device(), size_t(d[0] * d[1] * d[2]) * sizeof(float));
  op->out_ptr = static_cast<float*>(DeviceBuffer::From(env, out, "out")->data(env, "out"));
  op->out = Napi::Persistent(out);
  return finish(info, std::move(op), async);
}

// One (keys, values) pair of a compress: its job, its outputs and the result object.
struct Entry {
  DeviceArg keys, values;
  CompressJob job;
  int device = 0;
  Napi::ObjectReference result;
  int32_t* host_idx = nullptr;   // the indices' host copy, in the result
  DeviceBuffer* idx_buf = nullptr;
  Napi::ObjectReference idx_keep;
};

// Reads one pair and its options (every JS property), then binds, validates and plans it,
// allocates its outputs and builds its result object.
std::unique_ptr<Entry> prepare(Napi::Env env, Napi::Value kv, Napi::Value vv, Napi::Value options, bool in_place) {
  auto e = std::make_unique<Entry>();
  read_device(env, kv, "keys", &e->keys);
  read_device(env, vv, "values", &e->values);
  CompressArgs args;
  read_params(env, options, e->keys.view.dims.empty() ? -1 : e->keys.view.dims[0], &args);
  bind_device(env, &e->keys);
  bind_device(env, &e->values);
  if (e->keys.buffer->device() != e->values.buffer->device()) {
    throw_error(env, Code::InvalidArgument, "Expected keys and values on the same device but keys are on cuda:" +
        std::to_string(e->keys.buffer->device()) + " and values on cuda:" + std::to_string(e->values.buffer->device()));
  }
  e->device = e->keys.buffer->device();
  e->job = plan_compress(env, e->keys.view, e->values.view, args, in_place);
  const Shape& shape = e->job.shape;
  const int64_t rows = shape.batch * shape.heads, k = e->job.plan.max_kept;
  const int esz = dtype_size(e->keys.view.dtype);
  Napi::Object r = Napi::Object::New(env);
  e->job.out_keys = const_cast<void*>(e->keys.view.data);
  e->job.out_values = const_cast<void*>(e->values.view.data);
  if (!in_place) {
    Napi::Object kb = new_buffer(env, e->device, size_t(rows * k * shape.key_dim * esz));
    Napi::Object vb = new_buffer(env, e->device, size_t(rows * k * shape.value_dim * esz));
    e->job.out_keys = DeviceBuffer::From(env, kb, "out")->data(env, "out");
    e->job.out_values = DeviceBuffer::From(env, vb, "out")->data(env, "out");
    r.Set("keyBuffer", kb);
    r.Set("valueBuffer", vb);
  }
  Napi::Object ib = new_buffer(env, e->device, size_t(rows * k) * sizeof(int32_t));
  e->idx_buf = DeviceBuffer::From(env, ib, "indices");
  e->idx_keep = Napi::Persistent(ib);
  e->job.out_indices = static_cast<int32_t*>(e->idx_buf->data(env, "indices"));
  Napi::Int32Array indices = Napi::Int32Array::New(env, size_t(rows * k));
  e->host_idx = indices.Data();
  Napi::Int32Array kept = Napi::Int32Array::New(env, size_t(shape.batch));
  for (int64_t i = 0; i < shape.batch; ++i) kept[size_t(i)] = int32_t(e->job.plan.kept[size_t(i)]);
  r.Set("indices", indices);
  r.Set("lengths", kept);
  r.Set("kept", Napi::Number::New(env, double(k)));
  e->result = Napi::Persistent(r);
  return e;
}

// compress (one pair, split rows allowed) or compressLayers (every layer in one launch).
struct CompressOp : Operation {
  std::vector<std::unique_ptr<Entry>> entries;
  bool layers = false;
  void* stream = nullptr;
  Status run() override {
    if (layers) {
      std::vector<CompressJob> jobs;
      for (const auto& e : entries) jobs.push_back(e->job);
      Status s = cuda::compress_layers(entries[0]->device, jobs, stream);
      if (!s.ok()) return s;
    } else {
      Status s = cuda::compress(entries[0]->device, entries[0]->job, stream);
      if (!s.ok()) return s;
    }
    for (const auto& e : entries) {
      const CompressJob& j = e->job;
      const size_t n = size_t(j.shape.batch * j.shape.heads * j.plan.max_kept) * sizeof(int32_t);
      Status s = cuda::copy_to_host(e->device, e->host_idx, j.out_indices, n, stream);
      if (!s.ok()) return s;
    }
    return Status::success();
  }
  Status finish(Napi::Env env, Napi::Value* r) override {
    if (!layers) {
      *r = entries[0]->result.Value();
      return Status::success();
    }
    Napi::Array a = Napi::Array::New(env, entries.size());
    for (size_t i = 0; i < entries.size(); ++i) a.Set(uint32_t(i), entries[i]->result.Value());
    *r = a;
    return Status::success();
  }
  // The indices are on the host now (or the operation failed): their device copy goes at once.
  void settled() override {
    for (const auto& e : entries) e->idx_buf->release();
  }
};

Napi::Value compress(const Napi::CallbackInfo& info, bool in_place, bool async) {
  auto op = std::make_unique<CompressOp>();
  op->stream = read_stream(info.Env(), info[2]);
  op->entries.push_back(prepare(info.Env(), info[0], info[1], info[2], in_place));
  return finish(info, std::move(op), async);
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
  auto op = std::make_unique<CompressOp>();
  op->layers = true;
  op->stream = n > 0 ? read_stream(env, os.Get(0u)) : nullptr;
  for (uint32_t i = 0; i < n; ++i) {
    const std::string name = "layers[" + ids.Get(i).ToString().Utf8Value() + "]: ";
    try {
      op->entries.push_back(prepare(env, ks.Get(i), vs.Get(i), os.Get(i), false));
    } catch (Napi::Error& e) {
      e.Value().Set("message", name + e.Message());
      throw;
    }
    if (op->entries.back()->device != op->entries[0]->device) {
      throw_error(env, Code::InvalidArgument, name + "expected every layer on one device, but this one is on cuda:" +
          std::to_string(op->entries.back()->device) + " and layer 0 on cuda:" + std::to_string(op->entries[0]->device));
    }
  }
  if (op->entries.empty()) throw_error(env, Code::InvalidArgument, "compress_layers: no layers");
  return finish(info, std::move(op), async);
}

}  // namespace

void InitDevice(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DeviceBuffer::Define(env);
  env.GetInstanceData<AddonData>()->device_buffer = new Napi::FunctionReference(Napi::Persistent(ctor));
  exports.Set("DeviceBuffer", ctor);
#if KVTRIM_DEV_HOOKS
  InitDeviceTools(env, exports);
#endif
  exports.Set("cudaKeyNormsSync", guarded(env, "cudaKeyNormsSync", [](const Napi::CallbackInfo& i) { return key_norms(i, false); }));
  exports.Set("cudaKeyNorms", guarded(env, "cudaKeyNorms", [](const Napi::CallbackInfo& i) { return key_norms(i, true); }));
  exports.Set("cudaCompressSync", guarded(env, "cudaCompressSync", [](const Napi::CallbackInfo& i) { return compress(i, false, false); }));
  exports.Set("cudaCompress", guarded(env, "cudaCompress", [](const Napi::CallbackInfo& i) { return compress(i, false, true); }));
  exports.Set("cudaCompressInPlaceSync", guarded(env, "cudaCompressInPlaceSync", [](const Napi::CallbackInfo& i) { return compress(i, true, false); }));
  exports.Set("cudaCompressInPlace", guarded(env, "cudaCompressInPlace", [](const Napi::CallbackInfo& i) { return compress(i, true, true); }));
  exports.Set("cudaCompressLayersSync", guarded(env, "cudaCompressLayersSync", [](const Napi::CallbackInfo& i) { return compress_layers(i, false); }));
  exports.Set("cudaCompressLayers", guarded(env, "cudaCompressLayers", [](const Napi::CallbackInfo& i) { return compress_layers(i, true); }));
}

}  // namespace kvtrim::addon
