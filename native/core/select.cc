#include "select.h"

#include <algorithm>
#include <cstring>

#include "dtype.h"

namespace kvtrim {

// The contract's digit rounds (contract.h: 11, 11 and 10 bits), most significant first. Each
// round histograms the keys that share the prefix found so far and picks the digit holding the
// m-th key.
Threshold radix_threshold(const uint32_t* keys, int64_t n, int64_t m) {
  uint32_t prefix = 0, prefix_mask = 0;
  int64_t below = 0;  // keys known to be smaller than every candidate
  int64_t hist[kRadixBins];
  for (int round = 0; round < kRadixRounds; ++round) {
    const int shift = radix_shift(round);
    const uint32_t digit_mask = (1u << radix_bits(round)) - 1u;
    std::memset(hist, 0, sizeof(int64_t) * (size_t(digit_mask) + 1));
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t key = keys[i];
      if ((key & prefix_mask) == prefix) ++hist[(key >> shift) & digit_mask];
    }
    uint32_t digit = 0;
    for (;; ++digit) {
      if (below + hist[digit] >= m) break;
      below += hist[digit];
    }
    prefix |= digit << shift;
    prefix_mask |= digit_mask << shift;
  }
  return Threshold{prefix, m - below};
}

void select_row(const float* norms, int64_t len, int64_t k, int64_t sink, int64_t recent,
                Score score, Order order, SelectScratch scratch, int32_t* out) {
  for (int64_t i = 0; i < len; ++i) scratch.keys[i] = rank_key(f32_to_bits(norms[i]), score == Score::HighNorm);
  select_keys(scratch.keys, len, k, sink, recent, order, scratch.kept, out);
}

void select_keys(const uint32_t* keys, int64_t len, int64_t k, int64_t sink, int64_t recent,
                 Order order, uint64_t* kept, int32_t* out) {
  const int64_t n_sink = std::min(sink, len);
  const int64_t n_recent = std::min(recent, len - n_sink);
  const int64_t mid_begin = n_sink, mid_end = len - n_recent;
  const int64_t m = k - n_sink - n_recent;  // chosen from the middle by rank

  // Which middle tokens are kept: every key below the threshold, and the first `ties` equal.
  Threshold th{0xFFFFFFFFu, mid_end - mid_begin};
  if (m <= 0) {
    th = Threshold{0, 0};
  } else if (m < mid_end - mid_begin) {
    th = radix_threshold(keys + mid_begin, mid_end - mid_begin, m);
  }
  const bool all_middle = m >= mid_end - mid_begin;

  int64_t w = 0;
  if (order == Order::Position) {
    for (int64_t i = 0; i < n_sink; ++i) out[w++] = int32_t(i);
    if (m > 0) {
      int64_t ties = th.ties;
      for (int64_t i = mid_begin; i < mid_end; ++i) {
        const uint32_t key = keys[i];
        if (all_middle || key < th.key || (key == th.key && ties-- > 0)) out[w++] = int32_t(i);
      }
    }
    for (int64_t i = mid_end; i < len; ++i) out[w++] = int32_t(i);
    return;
  }

  // Order::Norm: collect (key, position) of every kept token, then sort just those k.
  auto push = [&](int64_t i) { kept[w++] = (uint64_t(keys[i]) << 32) | uint64_t(i); };
  for (int64_t i = 0; i < n_sink; ++i) push(i);
  if (m > 0) {
    int64_t ties = th.ties;
    for (int64_t i = mid_begin; i < mid_end; ++i) {
      const uint32_t key = keys[i];
      if (all_middle || key < th.key || (key == th.key && ties-- > 0)) push(i);
    }
  }
  for (int64_t i = mid_end; i < len; ++i) push(i);
  std::sort(kept, kept + w);
  for (int64_t j = 0; j < w; ++j) out[j] = int32_t(kept[j] & 0xFFFFFFFFu);
}

}  // namespace kvtrim
