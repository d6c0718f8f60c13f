// Selection of the kept tokens of one (batch, head) row, as the numeric contract ranks them:
// by (norm is NaN, norm, position) ascending for low-norm, (NaN, -norm, position) for high-norm.
// The first `sink` and last `recent` valid tokens are always kept and count toward k.
#pragma once
#include <cstdint>

#include "contract.h"

namespace kvtrim {

// The scorers (docs/policies.md). LowNorm and HighNorm keep their values: the kernels' norm
// path tests `score == HighNorm`.
enum class Score { LowNorm = 0, HighNorm = 1, KvNorm = 2, KeyDiff = 3, Project = 4, Given = 5 };
enum class Order { Position = 0, Norm = 1 };
// How many tokens each row keeps (docs/policies.md "Selection modes").
enum class Selection { PerHead = 0, Threshold = 1, Adaptive = 2 };

// The rank of a norm is contract.h's rank_key(norm_bits, score == Score::HighNorm).

// Reusable per-thread scratch for select_row (sized by the caller to the row's length).
struct SelectScratch {
  uint32_t* keys;      // len entries
  uint64_t* kept;      // k entries, used for order 'norm'
};

// Writes the k kept positions of a row of `len` rank keys (rank_key or score_key: smaller is
// kept first, equal keys by position), like select_row below. `kept` has k entries (order
// 'norm' only).
void select_keys(const uint32_t* keys, int64_t len, int64_t k, int64_t sink, int64_t recent,
                 Order order, uint64_t* kept, int32_t* out);

// Writes the k kept positions of a row of `len` norms into `out`, in ascending position
// (Order::Position) or ascending rank (Order::Norm). Linear expected time: a three-pass radix
// select of the threshold key, then one scan; only order 'norm' sorts, and only the k kept.
// Requires min(len, sink + recent) <= k <= len (make_plan guarantees it).
void select_row(const float* norms, int64_t len, int64_t k, int64_t sink, int64_t recent,
                Score score, Order order, SelectScratch scratch, int32_t* out);

// The threshold of a radix select: the m-th smallest key (1-based) is `key`, and `ties` of
// the elements equal to it are kept (the first ones by position).
struct Threshold {
  uint32_t key;
  int64_t ties;
};
Threshold radix_threshold(const uint32_t* keys, int64_t n, int64_t m);

}  // namespace kvtrim
