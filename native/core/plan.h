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
};

struct Plan {
  std::vector<int64_t> lengths;  // valid tokens per batch entry
  std::vector<int64_t> kept;     // tokens kept per batch entry
  int64_t max_kept = 0;          // the output's seqLen
};

// Validates the options against the shape; `lengths` (may be null) are per-batch valid lengths.
Status make_plan(const Shape& shape, const CompressParams& p, const int64_t* lengths,
                 int64_t n_lengths, Plan* plan);

// compressInPlace's extra rules: order 'position' (rows only move toward the front), and keys
// and values in separate memory (moving one must not move the other).
Status check_in_place(const TensorView& keys, const TensorView& values, const CompressParams& p);

}  // namespace kvtrim
