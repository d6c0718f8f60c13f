// Scores on the CPU, in parallel tasks of blocks of tokens (no locks, no shared writes).
// Bytes moved per scorer: low/high-norm read the keys once; kv-norm the keys and values once;
// project the keys once; keydiff the keys three times (norms, anchor, dots); given scores 4
// bytes per token.
#include "scores.h"

#include <algorithm>
#include <new>
#include <vector>

#include "../core/score.h"
#include "compress.h"
#include "norms.h"
#include "parallel.h"

namespace kvtrim::cpu {

namespace {

constexpr int64_t kBlock = 1024;  // tokens per task

// Runs fn(row, t0, t1, base) over blocks of each row's valid tokens; base: the row's first key.
template <class Fn>
void for_blocks(const CompressJob& j, int64_t bytes_per_token, Fn fn) {
  const Shape& s = j.shape;
  const int64_t rows = s.batch * s.heads, nblk = (s.seq + kBlock - 1) / kBlock;
  parallel_for(rows * nblk, rows * s.seq * bytes_per_token, [&](int64_t task) {
    const int64_t row = task / nblk, t0 = (task % nblk) * kBlock;
    const int64_t t1 = std::min(j.plan.lengths[size_t(row / s.heads)], t0 + kBlock);
    if (t0 < t1) fn(row, t0, t1);
  });
}

const char* key_row(const CompressJob& j, int64_t row, int64_t t) {
  return static_cast<const char*>(j.keys) + (row * j.shape.seq + t) * j.shape.key_dim * dtype_size(j.dtype);
}
const char* value_row(const CompressJob& j, int64_t row, int64_t t) {
  return static_cast<const char*>(j.values) + (row * j.shape.seq + t) * j.shape.value_dim * dtype_size(j.dtype);
}

// KeyDiff: norms, then one anchor per row, then s = keydiff_score(k . a, n).
Status keydiff(const CompressJob& j, float* scores) {
  const Shape& s = j.shape;
  const int64_t rows = s.batch * s.heads, D = s.key_dim, krow = D * dtype_size(j.dtype);
  for_blocks(j, krow, [&](int64_t row, int64_t t0, int64_t t1) {
    row_norms(j.dtype, key_row(j, row, t0), t1 - t0, D, scores + row * s.seq + t0);
  });
  std::vector<float> anchors;
  try {
    anchors.resize(size_t(rows * D));
  } catch (const std::bad_alloc&) {
    return Status::error(Code::OutOfMemory, "out of host memory for the keydiff anchors");
  }
  bool oom = false;
  parallel_for(rows, rows * s.seq * krow, [&](int64_t row) {
    thread_local std::vector<float> chunks;
    const int64_t len = j.plan.lengths[size_t(row / s.heads)];
    try {
      const size_t need = size_t(std::max<int64_t>(1, num_token_chunks(len)) * D);
      if (chunks.size() < need) chunks.resize(need);
    } catch (const std::bad_alloc&) {
      oom = true;  // benign race: every writer stores true
      return;
    }
    keydiff_anchor_scalar(j.dtype, key_row(j, row, 0), scores + row * s.seq, len, D, chunks.data(),
                          anchors.data() + row * D);
  });
  if (oom) return Status::error(Code::OutOfMemory, "out of host memory for keydiff scratch");
  for_blocks(j, krow, [&](int64_t row, int64_t t0, int64_t t1) {
    float dots[kBlock];
    row_dots(j.dtype, key_row(j, row, t0), t1 - t0, D, anchors.data() + row * D, dots);
    float* out = scores + row * s.seq + t0;
    for (int64_t i = 0; i < t1 - t0; ++i) out[i] = keydiff_score(dots[i], out[i]);
  });
  return Status::success();
}

}  // namespace

Status score_tokens(const CompressJob& j, float* scores, bool pad_nan) {
  const Shape& s = j.shape;
  const int64_t D = s.key_dim, krow = D * dtype_size(j.dtype), vrow = s.value_dim * dtype_size(j.dtype);
  const Score sc = j.params.score;
  if (sc == Score::KeyDiff) {
    Status st = keydiff(j, scores);
    if (!st.ok()) return st;
  } else {
    for_blocks(j, sc == Score::KvNorm ? krow + vrow : (sc == Score::Given ? 4 : krow),
               [&](int64_t row, int64_t t0, int64_t t1) {
      float* out = scores + row * s.seq + t0;
      const int64_t n = t1 - t0;
      switch (sc) {
        case Score::LowNorm:
        case Score::HighNorm:
          row_norms(j.dtype, key_row(j, row, t0), n, D, out);
          if (sc == Score::LowNorm) {
            for (int64_t i = 0; i < n; ++i) out[i] = canonical_score(-out[i]);
          }
          break;
        case Score::KvNorm: {
          float vn[kBlock];
          row_norms(j.dtype, key_row(j, row, t0), n, D, out);
          row_norms(j.dtype, value_row(j, row, t0), n, s.value_dim, vn);
          for (int64_t i = 0; i < n; ++i) out[i] = canonical_score(out[i] * vn[i]);
          break;
        }
        case Score::Project:
          row_dots(j.dtype, key_row(j, row, t0), n, D, j.vectors + (row % s.heads) * D, out);
          for (int64_t i = 0; i < n; ++i) out[i] = canonical_score(-out[i]);
          break;
        case Score::Given: {
          const float* in = j.scores + row * s.seq + t0;
          for (int64_t i = 0; i < n; ++i) out[i] = canonical_score(in[i]);
          break;
        }
        case Score::KeyDiff:
          break;  // above
      }
    });
  }
  if (pad_nan) {
    const float nan = bits_to_f32(kCanonicalNaN);
    for (int64_t row = 0; row < s.batch * s.heads; ++row) {
      const int64_t len = j.plan.lengths[size_t(row / s.heads)];
      std::fill(scores + row * s.seq + len, scores + (row + 1) * s.seq, nan);
    }
  }
  return Status::success();
}

Status token_scores(const ScoreJob& job) { return score_tokens(job.job, job.out, true); }

}  // namespace kvtrim::cpu
