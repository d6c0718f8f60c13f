// The scores of docs/policies.md in plain scalar C++: the reference every faster path (the CPU
// scoring phase, the kernels) must equal bit for bit. Built with -ffp-contract=off, so no
// product is fused into a sum. Scores follow kvpress's convention: the highest are kept.
#pragma once
#include <cmath>
#include <cstdint>

#include "contract.h"
#include "dtype.h"
#include "norm.h"

namespace kvtrim {

// x . y over D elements (x of element type t, y float32): the norm's order with products
// instead of squares (chunks of kChunk summed left to right from the first product, then the
// pairwise tree). Not canonicalised: callers canonicalise the score they derive from it.
inline float row_dot_scalar(DType t, const void* x, const float* y, int64_t head_dim) {
  float sums[kMaxChunks];
  const int64_t n = num_chunks(head_dim);
  for (int64_t c = 0; c < n; ++c) {
    const int64_t end = (c + 1) * kChunk < head_dim ? (c + 1) * kChunk : head_dim;
    float s = 0.f;
    for (int64_t i = c * kChunk; i < end; ++i) {
      const float p = load_f32(t, x, i) * y[i];
      s = (i == c * kChunk) ? p : s + p;
    }
    sums[c] = s;
  }
  pairwise_tree(sums, n);
  return n > 0 ? sums[0] : 0.f;
}

// A score with canonical bits (contract.h's canonical_score_bits). The sign of a zero dot
// depends on whether a zero pad was added, which SIMD paths do; it never changes a rank, since
// score_key takes -0 as +0, but tokenScores returns bits.
inline float canonical_score(float s) { return bits_to_f32(canonical_score_bits(f32_to_bits(s))); }

// KeyDiff's unit-key factor: a key adds k[d] / n to the anchor only when its norm n is finite
// and non-zero (contract.h's keydiff_case).
inline bool keydiff_counts(float n) { return keydiff_case(f32_to_bits(n)) == KeyDiffCase::Divide; }

// KeyDiff's score from a key's dot with the anchor and its norm (contract.h's keydiff_case).
inline float keydiff_score(float dot, float n) {
  switch (keydiff_case(f32_to_bits(n))) {
    case KeyDiffCase::NaN: return bits_to_f32(kCanonicalNaN);
    case KeyDiffCase::Zero: return 0.f;
    default: return canonical_score(-(dot / n));
  }
}

// The anchor of one row: a[d] = the pairwise tree over chunks of kTokenChunk tokens of the
// unit keys k_j[d] / n_j (keys: len rows of D elements; norms: their norms). `chunks` is
// scratch of num_token_chunks(len) * D floats. Writes D floats to `anchor`.
inline int64_t num_token_chunks(int64_t len) { return (len + kTokenChunk - 1) / kTokenChunk; }
inline void keydiff_anchor_scalar(DType t, const void* keys, const float* norms, int64_t len,
                                  int64_t head_dim, float* chunks, float* anchor) {
  const int64_t n = num_token_chunks(len), row_bytes = head_dim * dtype_size(t);
  for (int64_t c = 0; c < n; ++c) {
    float* s = chunks + c * head_dim;
    for (int64_t d = 0; d < head_dim; ++d) s[d] = 0.f;
    const int64_t end = (c + 1) * kTokenChunk < len ? (c + 1) * kTokenChunk : len;
    for (int64_t j = c * kTokenChunk; j < end; ++j) {
      if (!keydiff_counts(norms[j])) continue;  // adds +0: a chunk sum is never -0
      const char* row = static_cast<const char*>(keys) + j * row_bytes;
      for (int64_t d = 0; d < head_dim; ++d) s[d] = s[d] + load_f32(t, row, d) / norms[j];
    }
  }
  // the pairwise tree over the chunk sums, one dimension at a time
  for (int64_t half = pow2_ceil(n) / 2; half >= 1; half /= 2) {
    for (int64_t i = 0; i < half && i + half < n; ++i) {
      for (int64_t d = 0; d < head_dim; ++d) chunks[i * head_dim + d] += chunks[(i + half) * head_dim + d];
    }
  }
  for (int64_t d = 0; d < head_dim; ++d) anchor[d] = n > 0 ? chunks[d] : 0.f;
}

}  // namespace kvtrim
