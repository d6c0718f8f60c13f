// Selection of the kept tokens of one (batch, head) row, as the numeric contract ranks them:
// by (norm is NaN, norm, position) ascending for low-norm, (NaN, -norm, position) for high-norm.
// The first `sink` and last `recent` valid tokens are always kept and count toward k.
#pragma once
#include <cstdint>

namespace kvtrim {

enum class Score { LowNorm = 0, HighNorm = 1 };
enum class Order { Position = 0, Norm = 1 };

// A 32-bit key whose unsigned order is the contract's ranking of norms (ties then go to the
// lower position). NaN maps to the largest key, so NaN rows are the first dropped.
inline uint32_t rank_key(uint32_t norm_bits, Score score) {
  const uint32_t mag = norm_bits & 0x7FFFFFFFu;
  if (mag > 0x7F800000u) return 0xFFFFFFFFu;  // NaN
  return score == Score::LowNorm ? mag : 0x7F800000u - mag;
}

// Reusable per-thread scratch for select_row (sized by the caller to the row's length).
struct SelectScratch {
  uint32_t* keys;      // len entries
  uint64_t* kept;      // k entries, used for order 'norm'
};

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
