// Selection modes (docs/policies.md "Selection modes"): how many tokens each (batch entry, KV
// head) row keeps when the count may differ per head. The counts are computed here, once, on the
// host, from the rows' scores (keep-highest, float32 [batch, heads, seq]); which tokens a row
// keeps is then the shared selection (select_keys) with the row's own count, on every backend.
#pragma once
#include <cstdint>

#include "plan.h"
#include "tensor.h"

namespace kvtrim {

// Per-row kept counts of `params.selection` (Threshold or Adaptive) into `out` [batch * heads].
// `plan` is make_plan's for the same params and shape: its lengths, and (Adaptive) its per-row
// kept counts, which are the 'per-head' counts the adaptive budget redistributes. `scores` are
// read for t < the entry's length only. Linear expected time (radix selects).
void selection_counts(const Shape& shape, const CompressParams& params, const Plan& plan, const float* scores,
                      int32_t* out);

// The protected (sink + recent) tokens of a row of `len` valid tokens, and where its middle
// tokens begin and end: [*mid_begin, *mid_end).
inline int64_t protected_span(int64_t len, int64_t sink, int64_t recent, int64_t* mid_begin, int64_t* mid_end) {
  const int64_t n_sink = sink < len ? sink : len;
  const int64_t n_recent = recent < len - n_sink ? recent : len - n_sink;
  *mid_begin = n_sink;
  *mid_end = len - n_recent;
  return n_sink + n_recent;
}

}  // namespace kvtrim
