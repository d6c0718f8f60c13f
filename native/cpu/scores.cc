// Scores on the CPU, in parallel tasks of blocks of tokens (no locks, no shared writes).
// Bytes moved per scorer: low/high-norm read the keys once; kv-norm the keys and values once;
// project the keys once; keydiff the keys three times (norms, anchor, dots); given scores 4
// bytes per token.
#include "scores.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

#include "../core/score.h"
#include "compress.h"
#include "norms.h"
#include "parallel.h"

namespace kvtrim::cpu {

namespace {

constexpr int64_t kBlock = 1024;  // tokens per task

// Runs fn(row, t0, t1) over blocks [t0, t1) of each row's valid tokens, in parallel.
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

// One key row as fp32 (exact): fp16 through a table of all 65,536 patterns (built once, by the
// contract's conversion), bf16 a shift, fp32 a copy.
void row_to_f32(DType t, const char* row, int64_t D, float* x) {
  static const std::vector<float> f16 = [] {
    std::vector<float> v(65536);
    for (uint32_t h = 0; h < 65536; ++h) v[h] = f16_to_f32(uint16_t(h));
    return v;
  }();
  const uint16_t* h = reinterpret_cast<const uint16_t*>(row);
  switch (t) {
    case DType::F16: for (int64_t d = 0; d < D; ++d) x[d] = f16[h[d]]; return;
    case DType::BF16: for (int64_t d = 0; d < D; ++d) x[d] = bf16_to_f32(h[d]); return;
    case DType::F32: std::memcpy(x, row, size_t(D) * 4); return;
  }
}

// keydiff_anchor_scalar's exact operations (native/core/score.h), in an order the compiler can
// vectorise: per token, one pass over its D dimensions (each dimension's sum is independent,
// so running them side by side changes no rounding; the division is IEEE in vector form too).
void keydiff_anchor(DType t, const char* keys, const float* norms, int64_t len, int64_t D,
                    float* chunks, float* x, float* anchor) {
  const int64_t n = num_token_chunks(len), row_bytes = D * dtype_size(t);
  for (int64_t c = 0; c < n; ++c) {
    float* s = chunks + c * D;
    std::fill(s, s + D, 0.f);
    const int64_t end = std::min(len, (c + 1) * kTokenChunk);
    for (int64_t j = c * kTokenChunk; j < end; ++j) {
      const float nj = norms[j];
      if (!keydiff_counts(nj)) continue;
      row_to_f32(t, keys + j * row_bytes, D, x);
      for (int64_t d = 0; d < D; ++d) s[d] = s[d] + x[d] / nj;
    }
  }
  for (int64_t half = pow2_ceil(n) / 2; half >= 1; half /= 2) {
    for (int64_t i = 0; i < half && i + half < n; ++i) {
      float* a = chunks + i * D;
      const float* b = chunks + (i + half) * D;
      for (int64_t d = 0; d < D; ++d) a[d] = a[d] + b[d];
    }
  }
  for (int64_t d = 0; d < D; ++d) anchor[d] = n > 0 ? chunks[d] : 0.f;
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
    thread_local std::vector<float> chunks, x;
    const int64_t len = j.plan.lengths[size_t(row / s.heads)];
    try {
      const size_t need = size_t(std::max<int64_t>(1, num_token_chunks(len)) * D);
      if (chunks.size() < need) chunks.resize(need);
      if (x.size() < size_t(D)) x.resize(size_t(D));
    } catch (const std::bad_alloc&) {
      oom = true;  // benign race: every writer stores true
      return;
    }
    keydiff_anchor(j.dtype, key_row(j, row, 0), scores + row * s.seq, len, D, chunks.data(), x.data(),
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
