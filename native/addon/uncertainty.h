#pragma once
#include <napi.h>

namespace kvtrim::addon {

// lmbaCountsSync(input, { threshold, causal }) -> Int32Array, and its Promise twin lmbaCounts;
// input is { attention } or { queries, keys }.
Napi::Value LmbaCountsSync(const Napi::CallbackInfo& info);
Napi::Value LmbaCounts(const Napi::CallbackInfo& info);

}  // namespace kvtrim::addon
