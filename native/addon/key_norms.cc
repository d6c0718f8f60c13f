// keyNorms: the L2 norm of every key row, on the CPU path for host keys and on their GPU for
// device keys, as one Operation.
#include <memory>

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

struct NormsOp : Operation {
  TensorArg keys;
  CompressOptions options;  // the stream only
  int64_t rows = 0;
  float* out = nullptr;
  Napi::Reference<Napi::Value> result;

  // Every JS property first (options, then keys), then the pointer, the checks, the output.
  void prepare(const Napi::CallbackInfo& info, bool async) {
    Napi::Env env = info.Env();
    const Use use = async ? Use::Later : Use::Now;
    decode_stream_options(env, info[1], &options);
    read_tensor(env, info[0], "keys", &keys);
    check_args(env, options, &keys, nullptr, use);
    bind_tensor(env, &keys, use);
    throw_if(env, check_tensor(keys.view, "keys"));
    const auto& d = keys.view.dims;
    rows = d[0] * d[1] * d[2];
    if (keys.on_device) {
      Napi::Object buffer = new_buffer(env, keys.device(), size_t(rows) * sizeof(float));
      out = static_cast<float*>(DeviceBuffer::From(env, buffer, "out")->data(env, "out"));
      result = Napi::Persistent(Napi::Value(buffer));
      return;
    }
    std::vector<void*> data;
    auto arrays = new_outputs(env, {{DType::F32, rows}}, &data, "the norms");
    out = static_cast<float*>(data[0]);
    result = Napi::Persistent(Napi::Value(arrays[0]));
  }
  bool tiny() const override { return !keys.on_device && keys.bytes <= kTinyInputBytes; }
  Status run() override {
    const TensorView& k = keys.view;
    if (keys.on_device) return cuda::key_norms(keys.device(), k.dtype, k.data, rows, k.dims[3], out, options.stream_ptr());
    cpu::key_norms(k.dtype, k.data, rows, k.dims[3], out);
    return Status::success();
  }
  Status finish(Napi::Env env, Napi::Value* r) override {
    Status s = check_unchanged(env, keys, "keyNorms");
    if (s.ok()) *r = result.Value();
    return s;
  }
};

}  // namespace

Napi::Value KeyNormsSync(const Napi::CallbackInfo& info) { return start<NormsOp>(info, false, "kvtrim.keyNorms"); }
Napi::Value KeyNorms(const Napi::CallbackInfo& info) { return start<NormsOp>(info, true, "kvtrim.keyNorms"); }

}  // namespace kvtrim::addon
