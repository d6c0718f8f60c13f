#pragma once
#include <napi.h>

namespace kvtrim::addon {

// uncertaintyCountsSync(input, { threshold, causal }) -> Int32Array, and its Promise twin uncertaintyCounts;
// input is { attention } or { queries, keys }.
Napi::Value UncertaintyCountsSync(const Napi::CallbackInfo& info);
Napi::Value UncertaintyCounts(const Napi::CallbackInfo& info);

}  // namespace kvtrim::addon
