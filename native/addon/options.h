// The one options decoder: every rule on the options of keyNorms, compress, compressInPlace
// and compressCache (what lib/ once checked in TypeScript), for host and device tensors, sync
// and async alike. Each JS property is read once (own or inherited, getters included), before
// any data pointer is taken; messages follow sharp's "Expected <what> for <name> but received
// <value>". Ranges that depend on the tensors (keep <= seqLen, lengths <= capacity, keepRatio
// in (0, 1], sink / recent < 2^31) are native/core's (make_plan), in one place for all backends.
#pragma once
#include <napi.h>

#include <string>
#include <vector>

#include "../core/job.h"
#include "../core/plan.h"
#include "args.h"

namespace kvtrim::addon {

// sharp's description of a received value: null, 'an array of length N', 'a Float32Array',
// "'str' of type string" (40 characters at most, then ...), 'an object', 'a function', or
// '<String(v)> of type <typeof v>'. Never throws (a revoked Proxy: 'a value of type object').
std::string describe(Napi::Env env, Napi::Value v);

// "Expected <expected> for <name> but received <describe(value)>", thrown with `code`.
[[noreturn]] void throw_invalid(Napi::Env env, Code code, const std::string& expected,
                                const std::string& name, Napi::Value value);

// Whose options: compress's, or compressCache's (which also knows pruneAfter, skipLayers and
// budgets, and whose per-layer budgets may stand in for keepRatio / keep).
// tokenScores's options are { score, lengths, stream } (no keep count).
enum class OptionsFor { Compress, Cache, Scores };

struct CompressOptions {
  CompressParams params;  // keep_ratio / keep as given (one of them, except for a cache)
  bool has_ratio = false, has_keep = false;
  std::vector<int64_t> lengths;
  bool has_lengths = false;
  // headKeep: the caller's per-(batch, head) counts (compress only)
  std::vector<int64_t> head_keep;
  bool has_head_keep = false;
  bool has_stream = false;
  uint64_t stream = 0;  // a cudaStream_t
  // score: { project } -- the vectors, copied (compress: one layer's [kvHeads * keyDim]; a
  // cache: one list per layer); { scores } -- the tensor (compress) or the per-layer array
  // (a cache), read by the operation (read_tensor) after the options.
  std::vector<float> project;
  std::vector<std::vector<float>> project_layers;
  Napi::Value scores;
  void* stream_ptr() const { return reinterpret_cast<void*>(uintptr_t(stream)); }
};

void decode_compress_options(Napi::Env env, Napi::Value v, OptionsFor whose, CompressOptions* out);

// keyNorms's options: undefined, or { stream? }.
void decode_stream_options(Napi::Env env, Napi::Value v, CompressOptions* out);

// After read_tensor of keys (and values; null for keyNorms), before any pointer is taken,
// every check in its order: both on the host or both on one device (DEVICE_MISMATCH); no
// stream with host tensors; lengths: [] for a non-empty batch; each tensor's fields
// (check_fields); then lengths with one entry per batch entry.
void check_args(Napi::Env env, const CompressOptions& o, TensorArg* keys, TensorArg* values, Use use);

// Checks a bound (keys, values, options) triple and plans it: the job, without its outputs.
// The same for host and device tensors, so both paths apply one set of rules.
// `scores`: the bound { scores } tensor when options.score is one (else null).
CompressJob plan_compress(Napi::Env env, const TensorArg& keys, const TensorArg& values,
                          const CompressOptions& o, bool in_place, const TensorArg* scores = nullptr);

// binding.decodeOptions(options, budgets): compress's options decoded as the operations see
// them, { order, score, sink, recent, keepRatio?, keep?, lengths?, stream? } (for
// compressCache, whose per-layer planning is TypeScript's).
Napi::Value DecodeOptions(const Napi::CallbackInfo& info);

}  // namespace kvtrim::addon
