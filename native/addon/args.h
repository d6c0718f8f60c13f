// Unpacking of JS arguments into core types. Only what JS types demand is checked here
// (is it an object, a typed array of the dtype's width, not detached); shapes and values
// are checked by native/core so every backend applies the same rules.
#pragma once
#include <napi.h>

#include "../core/job.h"
#include "../core/plan.h"
#include "../core/tensor.h"

namespace kvtrim::addon {

// A host tensor `{ type, data, dims }`; `keep` receives its data array, to hold it alive
// while an async operation reads it.
TensorView read_tensor(Napi::Env env, Napi::Value v, const char* name, Napi::Value* keep);

// Compress options, already typed by the facade: { keepRatio?, keep?, order, score, sink,
// recent, lengths? (array of integers) }.
CompressParams read_params(Napi::Env env, Napi::Value v, std::vector<int64_t>* lengths,
                           bool* has_lengths);

// Checks a (keys, values, options) triple and plans it: the job, without its output pointers.
// The same for host and device tensors, so both paths apply one set of rules.
CompressJob plan_compress(Napi::Env env, const TensorView& keys, const TensorView& values,
                          Napi::Value options, bool in_place);

}  // namespace kvtrim::addon
