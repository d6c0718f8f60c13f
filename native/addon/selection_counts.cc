// selectionCounts: a ragged selection's per-row kept counts (docs/policies.md "Selection
// modes") from the rows' scores, host or device. The counts are native/core's selection_counts
// on the host for both: device scores are copied to the host first (4 bytes a token, a stream
// synchronisation). lib/selection.ts then compresses with { scores, headKeep: counts }.
#include <memory>
#include <vector>

#include "../core/selection.h"
#include "../cuda/cuda_backend.h"
#include "args.h"
#include "async_op.h"
#include "bindings.h"
#include "errors.h"
#include "options.h"
#include "outputs.h"

namespace kvtrim::addon {

namespace {

struct CountsOp : Operation {
  TensorArg scores;
  CompressOptions options;
  Shape shape;
  Plan plan;
  std::vector<float> copy;  // device scores, on the host
  int32_t* out = nullptr;
  Napi::Reference<Napi::Value> result;

  void prepare(const Napi::CallbackInfo& info, bool async) {
    Napi::Env env = info.Env();
    const Use use = async ? Use::Later : Use::Now;
    decode_compress_options(env, info[1], OptionsFor::Compress, &options);
    if (options.params.selection == Selection::PerHead) {
      throw_error(env, Code::InvalidOption, "Expected selection 'adaptive', { adaptive } or { threshold } for selectionCounts");
    }
    read_tensor(env, info[0], "scores", &scores);
    if (options.has_stream && !scores.on_device) {
      throw_error(env, Code::InvalidOption, "Expected no stream option for host tensors: a stream applies to device tensors");
    }
    check_fields(env, &scores, use);
    bind_tensor(env, &scores, use);
    const TensorView& v = scores.view;
    bool dims_ok = v.dtype == DType::F32 && v.dims.size() == 3;
    for (size_t i = 0; dims_ok && i < 3; ++i) dims_ok = v.dims[i] >= 0 && v.dims[i] <= kMaxRows;
    if (!dims_ok) {
      throw_error(env, Code::InvalidOption, "Expected scores to be a float32 tensor of dims [batch, kvHeads, seqLen] but received " +
          std::string(dtype_name(v.dtype)) + " " + dims_string(v.dims));
    }
    // in double: three dims below 2^31 can overflow an int64 product
    if (double(v.dims[0]) * double(v.dims[1]) * double(v.dims[2]) > double(kMaxRows) || v.dims[0] > kMaxBatch) {
      throw_error(env, Code::InvalidDims, "Expected scores' batch * kvHeads * seqLen below 2^31 but received " + dims_string(v.dims));
    }
    shape.batch = v.dims[0];
    shape.heads = v.dims[1];
    shape.seq = v.dims[2];
    if (v.length != shape.rows()) {
      throw_error(env, Code::DataLength, "Expected scores.data to hold " + std::to_string(shape.rows()) +
          " elements (the product of dims " + dims_string(v.dims) + ") but it holds " + std::to_string(v.length));
    }
    throw_if(env, make_plan(shape, options.params, options.has_lengths ? options.lengths.data() : nullptr,
                            int64_t(options.lengths.size()), &plan));
    std::vector<void*> data;
    auto arrays = new_outputs(env, {{DType::F32, shape.batch * shape.heads, true}}, &data, "the counts");
    out = static_cast<int32_t*>(data[0]);
    result = Napi::Persistent(Napi::Value(arrays[0]));
  }
  bool tiny() const override { return !scores.on_device && scores.bytes <= kTinyInputBytes; }
  Status run() override {
    const float* s = static_cast<const float*>(scores.view.data);
    if (scores.on_device && shape.rows() > 0) {
      try {
        copy.resize(size_t(shape.rows()));
      } catch (const std::bad_alloc&) {
        return Status::error(Code::OutOfMemory, "out of host memory for " + std::to_string(shape.rows() * 4) +
            " bytes of scores");
      }
      Status st = cuda::copy_to_host(scores.device(), copy.data(), s, copy.size() * sizeof(float), options.stream_ptr());
      if (!st.ok()) return st;
      s = copy.data();
    }
    selection_counts(shape, options.params, plan, s, out);
    return Status::success();
  }
  Status finish(Napi::Env env, Napi::Value* r) override {
    Status s = check_unchanged(env, scores, "selectionCounts");
    if (s.ok()) *r = result.Value();
    return s;
  }
};

}  // namespace

Napi::Value SelectionCountsSync(const Napi::CallbackInfo& info) { return start<CountsOp>(info, false, "kvtrim.selectionCounts"); }
Napi::Value SelectionCounts(const Napi::CallbackInfo& info) { return start<CountsOp>(info, true, "kvtrim.selectionCounts"); }

}  // namespace kvtrim::addon
