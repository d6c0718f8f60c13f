// Two parallel loops over independent rows (no shared writes): weights are widened to double,
// sorted and summed per row (core/uncertainty.cc's mass_count). The window path widens one kv
// head's keys to fp32 per task (exact), then per query forms the logits in double.
#include "uncertainty.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <new>
#include <string>
#include <vector>

#include "../core/norm.h"
#include "parallel.h"

namespace kvtrim::cpu {

namespace {

constexpr int64_t kRowsPerTask = 16;

}  // namespace

Status uncertainty_attention(DType t, const void* att, const AttentionShape& s, const UncertaintyParams& p,
                      int32_t* counts) {
  const int64_t rows = s.rows(), n = s.seq;
  // Checked first, on the calling thread: the first bad weight in memory order is reported.
  for (int64_t i = 0; i < rows * n; ++i) {
    const float x = load_f32(t, att, i);
    if (!(x >= 0.0f) || std::isinf(x)) {
      const int64_t r = i / n, b = r / (s.heads * s.queries), h = (r / s.queries) % s.heads;
      return Status::error(Code::InvalidArgument, "Expected attention weights to be finite and "
          "non-negative but attention[" + std::to_string(b) + ", " + std::to_string(h) + ", " +
          std::to_string(r % s.queries) + ", " + std::to_string(i % n) + "] is " + std::to_string(x));
    }
  }
  const int64_t tasks = (rows + kRowsPerTask - 1) / kRowsPerTask;
  std::atomic<bool> oom{false};
  parallel_for(tasks, rows * n * 8, [&](int64_t task) {
    std::vector<double> w;
    try {
      w.resize(size_t(n));
    } catch (const std::bad_alloc&) {
      oom = true;
      return;
    }
    const int64_t r1 = std::min(rows, (task + 1) * kRowsPerTask);
    for (int64_t r = task * kRowsPerTask; r < r1; ++r) {
      for (int64_t j = 0; j < n; ++j) w[size_t(j)] = double(load_f32(t, att, r * n + j));
      counts[r] = int32_t(mass_count(w.data(), n, p.threshold));
    }
  });
  if (oom) return Status::error(Code::OutOfMemory, "could not allocate scratch for layerUncertainty");
  return Status::success();
}

Status uncertainty_window(DType qt, const void* queries, DType kt, const void* keys, const WindowShape& s,
                   const UncertaintyParams& p, int32_t* counts) {
  const int64_t S = s.seq, D = s.head_dim, W = s.window;
  const int64_t group = s.kv_heads == 0 ? 1 : s.q_heads / s.kv_heads;
  const double scale = std::sqrt(double(D));
  std::atomic<bool> oom{false}, bad{false};
  parallel_for(s.batch * s.q_heads, s.rows() * S * D, [&](int64_t task) {
    const int64_t b = task / s.q_heads, h = task % s.q_heads, kvh = h / group;
    std::vector<float> k;
    std::vector<double> q, e;
    try {
      k.resize(size_t(S * D));
      q.resize(size_t(D));
      e.resize(size_t(S));
    } catch (const std::bad_alloc&) {
      oom = true;
      return;
    }
    const int64_t k0 = (b * s.kv_heads + kvh) * S * D;
    for (int64_t i = 0; i < S * D; ++i) k[size_t(i)] = load_f32(kt, keys, k0 + i);
    for (int64_t i = 0; i < W; ++i) {
      const int64_t row = task * W + i;
      const int64_t q0 = row * D;
      for (int64_t d = 0; d < D; ++d) q[size_t(d)] = double(load_f32(qt, queries, q0 + d));
      const int64_t visible = p.causal ? S - W + i + 1 : S;
      double m = -INFINITY;
      for (int64_t j = 0; j < visible; ++j) {
        const float* kj = k.data() + j * D;
        double dot = 0.0;
        for (int64_t d = 0; d < D; ++d) dot += q[size_t(d)] * double(kj[d]);
        const double logit = dot / scale;
        if (!std::isfinite(logit)) bad = true;
        e[size_t(j)] = logit;
        m = std::max(m, logit);
      }
      if (bad) return;
      for (int64_t j = 0; j < visible; ++j) e[size_t(j)] = std::exp(e[size_t(j)] - m);
      counts[row] = int32_t(mass_count(e.data(), visible, p.threshold));
    }
  });
  if (oom) return Status::error(Code::OutOfMemory, "could not allocate scratch for layerUncertainty");
  if (bad) {
    return Status::error(Code::InvalidArgument, "Expected finite queries and keys for "
        "layerUncertainty but a logit q . k / sqrt(D) is not finite (a NaN or infinity in the inputs)");
  }
  return Status::success();
}

}  // namespace kvtrim::cpu
