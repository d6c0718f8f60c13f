#include "selection.h"

#include <cmath>
#include <vector>

#include "dtype.h"
#include "select.h"

namespace kvtrim {

namespace {

// Threshold: the protected tokens, and the middle tokens scoring at or above t (fp32 compare:
// NaN is never at or above anything).
void threshold_counts(const Shape& s, const CompressParams& p, const Plan& plan, const float* scores, int32_t* out) {
  for (int64_t b = 0; b < s.batch; ++b) {
    int64_t mb = 0, me = 0;
    const int64_t prot = protected_span(plan.lengths[size_t(b)], p.sink, p.recent, &mb, &me);
    for (int64_t h = 0; h < s.heads; ++h) {
      const int64_t row = b * s.heads + h;
      const float* r = scores + row * s.seq;
      int64_t n = 0;
      for (int64_t t = mb; t < me; ++t) n += r[t] >= p.threshold ? 1 : 0;
      out[row] = int32_t(prot + n);
    }
  }
}

// Adaptive (AdaKV): each head's floor f of its own best middle tokens, then the best H * (m - f)
// of every head's other middle tokens, ranked by (score_key, head, position): the walk below
// goes head by head and position by position, so the first `ties` equal keys are the lowest
// (head, position) ones.
void adaptive_counts(const Shape& s, const CompressParams& p, const Plan& plan, const float* scores, int32_t* out) {
  const int64_t H = s.heads;
  std::vector<uint32_t> keys, rest;
  std::vector<int64_t> rest_end(static_cast<size_t>(H));  // where each head's part of `rest` ends
  for (int64_t b = 0; b < s.batch; ++b) {
    int64_t mb = 0, me = 0;
    const int64_t prot = protected_span(plan.lengths[size_t(b)], p.sink, p.recent, &mb, &me);
    const int64_t mid = me - mb;
    const int64_t m = plan.batch_kept[size_t(b)] - prot;  // the 'per-head' count, shared by every row of b
    const int64_t f = std::min(m, int64_t(std::floor(p.alpha * double(m))));
    const int64_t pick = H * (m - f);
    int32_t* o = out + b * H;
    if (m <= 0 || pick == 0 || pick >= H * (mid - f)) {
      // nothing to share (or everything): every head keeps prot + f, or all of its tokens
      const int64_t k = m <= 0 ? prot : pick == 0 ? prot + f : prot + mid;
      for (int64_t h = 0; h < H; ++h) o[h] = int32_t(k);
      continue;
    }
    keys.resize(size_t(mid));
    rest.clear();
    for (int64_t h = 0; h < H; ++h) {
      const float* r = scores + (b * H + h) * s.seq + mb;
      for (int64_t i = 0; i < mid; ++i) keys[size_t(i)] = score_key(f32_to_bits(r[i]));
      // the head's floor: every key below the f-th smallest, and the first `ties` equal to it
      Threshold th{0, 0};
      if (f > 0) th = radix_threshold(keys.data(), mid, f);
      int64_t ties = th.ties;
      for (int64_t i = 0; i < mid; ++i) {
        const uint32_t key = keys[size_t(i)];
        const bool floor = f > 0 && (key < th.key || (key == th.key && ties-- > 0));
        if (!floor) rest.push_back(key);
      }
      rest_end[size_t(h)] = int64_t(rest.size());
    }
    const Threshold th = radix_threshold(rest.data(), int64_t(rest.size()), pick);
    int64_t ties = th.ties, i = 0;
    for (int64_t h = 0; h < H; ++h) {
      int64_t n = 0;
      for (; i < rest_end[size_t(h)]; ++i) {
        const uint32_t key = rest[size_t(i)];
        n += key < th.key || (key == th.key && ties-- > 0) ? 1 : 0;
      }
      o[h] = int32_t(prot + f + n);
    }
  }
}

}  // namespace

void selection_counts(const Shape& shape, const CompressParams& params, const Plan& plan, const float* scores,
                      int32_t* out) {
  if (params.selection == Selection::Threshold) {
    threshold_counts(shape, params, plan, scores, out);
  } else if (params.selection == Selection::Adaptive) {
    adaptive_counts(shape, params, plan, scores, out);
  } else {
    for (int64_t row = 0; row < shape.batch * shape.heads; ++row) out[row] = int32_t(plan.kept_of(row));
  }
}

}  // namespace kvtrim
