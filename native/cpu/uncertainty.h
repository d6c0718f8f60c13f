// The CPU backend of layerUncertainty (ZigZagKV's LMBA): per-row mass counts of
// core/uncertainty.h, rows spread over threads. No N-API.
#pragma once
#include <cstdint>

#include "../core/uncertainty.h"

namespace kvtrim::cpu {

// counts[r] for every row r of attention weights [B, H, q, S] (validated by check_attention).
// Returns InvalidArgument, naming the element, for a negative or non-finite weight.
Status uncertainty_attention(DType t, const void* attention, const AttentionShape& s, const UncertaintyParams& p,
                      int32_t* counts);

// counts[(b * Hq + h) * w + i] for every window query (validated by check_window).
// Returns InvalidArgument when a logit is not finite (a NaN or infinity in queries or keys).
Status uncertainty_window(DType qt, const void* queries, DType kt, const void* keys, const WindowShape& s,
                   const UncertaintyParams& p, int32_t* counts);

}  // namespace kvtrim::cpu
