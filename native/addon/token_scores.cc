// tokenScores: every token's score (docs/policies.md) on the CPU path for host tensors and on
// their GPU for device tensors, as one Operation. The same options decoder, tensor reader and
// plan as compress, so a score means the same thing in both.
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

struct ScoresOp : Operation {
  TensorArg keys, values, scores;
  CompressOptions options;
  ScoreJob job;
  Napi::Reference<Napi::Value> result;

  // Every JS property first (options, then the tensors), then the pointers, the checks, the output.
  void prepare(const Napi::CallbackInfo& info, bool async) {
    Napi::Env env = info.Env();
    const Use use = async ? Use::Later : Use::Now;
    decode_compress_options(env, info[2], OptionsFor::Scores, &options);
    CompressParams& p = options.params;  // every token scored: no keep count, no windows
    p.use_ratio = true;
    p.keep_ratio = 1.0;
    p.sink = p.recent = 0;
    p.order = Order::Position;
    read_tensor(env, info[0], "keys", &keys);
    read_tensor(env, info[1], "values", &values);
    const bool given = p.score == Score::Given;
    if (given) read_tensor(env, options.scores, "score.scores", &scores);
    check_args(env, options, &keys, &values, use);
    if (given) {
      check_same_place(env, keys, scores);
      check_fields(env, &scores, use);
    }
    bind_tensor(env, &keys, use);
    bind_tensor(env, &values, use);
    if (given) bind_tensor(env, &scores, use);
    job.job = plan_compress(env, keys, values, options, false, given ? &scores : nullptr);
    const Shape& s = job.job.shape;
    const int64_t n = s.batch * s.heads * s.seq;
    if (keys.on_device) {
      Napi::Object buffer = new_buffer(env, keys.device(), size_t(n) * sizeof(float));
      job.out = static_cast<float*>(DeviceBuffer::From(env, buffer, "out")->data(env, "out"));
      result = Napi::Persistent(Napi::Value(buffer));
      return;
    }
    std::vector<void*> data;
    auto arrays = new_outputs(env, {{DType::F32, n}}, &data, "the scores");
    job.out = static_cast<float*>(data[0]);
    result = Napi::Persistent(Napi::Value(arrays[0]));
  }
  bool tiny() const override { return !keys.on_device && keys.bytes + values.bytes + scores.bytes <= kTinyInputBytes; }
  Status run() override {
    if (job.job.shape.batch * job.job.shape.heads * job.job.shape.seq == 0) return Status::success();
    if (keys.on_device) return cuda::token_scores(keys.device(), job, options.stream_ptr());
    return cpu::token_scores(job);
  }
  Status finish(Napi::Env env, Napi::Value* r) override {
    Status s = check_unchanged(env, keys, "tokenScores");
    if (s.ok()) s = check_unchanged(env, values, "tokenScores");
    if (s.ok() && job.job.params.score == Score::Given) s = check_unchanged(env, scores, "tokenScores");
    if (s.ok()) *r = result.Value();
    return s;
  }
};

}  // namespace

Napi::Value TokenScoresSync(const Napi::CallbackInfo& info) { return start<ScoresOp>(info, false, "kvtrim.tokenScores"); }
Napi::Value TokenScores(const Napi::CallbackInfo& info) { return start<ScoresOp>(info, true, "kvtrim.tokenScores"); }

}  // namespace kvtrim::addon
