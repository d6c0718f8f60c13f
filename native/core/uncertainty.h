// ZigZagKV's layer uncertainty (LMBA, "layer minimum budget for attention"), the spec: for one
// row of attention weights, the number of top-attended tokens whose cumulative weight reaches a
// fraction `threshold` of the row's total. No N-API, no threads: native/cpu runs it per row.
//
// The count of one row of n weights w (finite, >= 0), computed in double:
//   sort w descending; total = w[0] + w[1] + ... + w[n-1] summed left to right in that order;
//   count = the smallest c in [0, n] with w[0] + ... + w[c-1] >= threshold * total.
// So a row of zeros (or an empty row) counts 0; otherwise, for threshold in (0, 1], 1 <= c <= n.
// Equal weights are interchangeable, so the order of ties does not change the count.
//
// From an observation window of queries [B, Hq, w, D] against keys [B, Hkv, S, D] (GQA: query
// head h reads kv head h / (Hq / Hkv)), the row of query i is, in double:
//   logit_j = (sum over d, left to right, of double(q_d) * double(k_jd)) / sqrt(D),
//   e_j = exp(logit_j - max_j logit_j) over the visible keys j,
// and its count is the count of e (the softmax's normalisation does not change it). With
// `causal`, query i of the window sits at position S - w + i and sees keys [0, S - w + i].
#pragma once
#include <cstdint>

#include "status.h"
#include "tensor.h"

namespace kvtrim {

struct UncertaintyParams {
  double threshold = 0.9;  // in (0, 1]
  bool causal = true;      // window queries see only keys up to their own position
};

// Attention weights [batch, heads, queries, seqLen]: `rows` = batch * heads * queries.
struct AttentionShape {
  int64_t batch = 0, heads = 0, queries = 0, seq = 0;
  int64_t rows() const { return batch * heads * queries; }
};

// Queries [batch, qHeads, window, headDim] and keys [batch, kvHeads, seqLen, headDim].
struct WindowShape {
  int64_t batch = 0, q_heads = 0, kv_heads = 0, window = 0, seq = 0, head_dim = 0;
  int64_t rows() const { return batch * q_heads * window; }
};

Status check_uncertainty_params(const UncertaintyParams& p);

// Rank 4, non-negative dims, at most 2^31 - 1 rows, data length the product of dims.
Status check_attention(const TensorView& attention, AttentionShape* shape);

// Both tensors, their agreement (batch, headDim, qHeads a multiple of kvHeads) and, with
// `causal`, a window no longer than the keys.
Status check_window(const TensorView& queries, const TensorView& keys, const UncertaintyParams& p,
                    WindowShape* shape);

// The count of one row of n weights (each finite and >= 0); reorders w (sorts it descending).
int64_t mass_count(double* w, int64_t n, double threshold);

}  // namespace kvtrim
