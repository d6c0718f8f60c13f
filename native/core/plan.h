// How many tokens each batch entry keeps, from the options, by contract.h's keep_count.
#pragma once
#include <cstdint>
#include <vector>

#include "select.h"
#include "status.h"
#include "tensor.h"

namespace kvtrim {

struct CompressParams {
  bool use_ratio = true;     // keepRatio given; otherwise keep
  double keep_ratio = 1.0;   // in (0, 1]
  int64_t keep = 0;          // in [0, seqLen]
  Order order = Order::Position;
  Score score = Score::LowNorm;
  int64_t sink = 0, recent = 0;
  // docs/policies.md "Selection modes": PerHead keeps keep_count tokens in every row; Threshold
  // and Adaptive give each row its own count (selection.h computes them from the scores, and
  // the compress that follows takes them as head_keep). alpha: Adaptive's floor fraction.
  Selection selection = Selection::PerHead;
  float threshold = 0.0f;
  double alpha = 0.2;
};

struct Plan {
  std::vector<int64_t> lengths;  // valid tokens per batch entry
  std::vector<int64_t> kept;     // tokens kept per (batch entry, head) row: [batch * heads]
  std::vector<int64_t> batch_kept;  // per batch entry: the most any of its rows keeps (the
                                    // keep count itself when there are no heads)
  int64_t max_kept = 0;          // the output's seqLen: the largest entry of batch_kept
  int64_t kept_of(int64_t row) const { return kept[size_t(row)]; }
};

// Validates the options against the shape; `lengths` (may be null) are per-batch valid lengths.
// `head_keep` (may be null: none; an empty vector is a count list of length 0): the caller's
// per-row counts [batch * heads] (compress's headKeep), each in [min(len, sink + recent), len];
// otherwise every row of entry b keeps keep_count.
Status make_plan(const Shape& shape, const CompressParams& p, const int64_t* lengths,
                 int64_t n_lengths, Plan* plan, const std::vector<int64_t>* head_keep = nullptr);

// compressInPlace's extra rules: order 'position' (rows only move toward the front), and keys
// and values in separate memory (moving one must not move the other).
Status check_in_place(const TensorView& keys, const TensorView& values, const CompressParams& p);

}  // namespace kvtrim
