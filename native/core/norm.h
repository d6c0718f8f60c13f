// The canonical fp32 squared-norm order of the numeric contract (docs/contract.md). Every backend
// (scalar CPU, SIMD CPU, CUDA) reproduces exactly this sequence of correctly rounded
// operations, which is what makes their norms, and so their selections, bit-identical:
//   1. convert each element exactly to fp32 and square it (one rounding, no FMA);
//   2. split the row into chunks of kChunk = 8 consecutive elements, the last padded with
//      zeros, and sum each chunk left to right;
//   3. combine the chunk sums with a pairwise tree over a power-of-two count:
//      sum[i] += sum[i + half] for half = n/2, n/4, ..., 1;
//   4. norm = sqrtf(sum);
//   5. a NaN norm is returned as the one canonical pattern kCanonicalNaN (0x7FC00000, the
//      positive quiet NaN), whatever NaN payload or sign the inputs and the hardware's NaN
//      propagation produced (x86 keeps the first operand's payload, a GPU gives 0x7FFFFFFF).
// Adding a zero pad never changes a sum of squares (no -0 can occur), so pads are skipped.
// A sum of squares is NaN only when an element is NaN (squares are >= 0, so no Inf - Inf).
#pragma once
#include <cmath>
#include <cstdint>

#include "contract.h"
#include "dtype.h"

namespace kvtrim {

// kChunk, kMaxHeadDim, kMaxChunks, num_chunks, pow2_ceil and kCanonicalNaN: contract.h.

// Step 5: every NaN norm as kCanonicalNaN (CPU SIMD and portable, CUDA, the oracle).
inline float canonical_norm(float n) { return n != n ? bits_to_f32(kCanonicalNaN) : n; }

// Step 3 on an array of chunk sums (any element type with +=): in place, result in sums[0].
template <class T>
inline void pairwise_tree(T* sums, int64_t n) {
  for (int64_t half = pow2_ceil(n) / 2; half >= 1; half /= 2) {
    for (int64_t i = 0; i < half && i + half < n; ++i) sums[i] += sums[i + half];
  }
}

inline float load_f32(DType t, const void* row, int64_t i) {
  switch (t) {
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(row)[i]);
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(row)[i]);
    case DType::F32: return static_cast<const float*>(row)[i];
  }
  return 0.f;
}

// Steps 1-5 for one row, in plain scalar C++: the reference every faster path must equal.
// Built with -ffp-contract=off so that x * x + s is never fused.
inline float row_norm_scalar(DType t, const void* row, int64_t head_dim) {
  float sums[kMaxChunks];
  const int64_t n = num_chunks(head_dim);
  for (int64_t c = 0; c < n; ++c) {
    float s = 0.f;
    const int64_t end = (c + 1) * kChunk < head_dim ? (c + 1) * kChunk : head_dim;
    for (int64_t i = c * kChunk; i < end; ++i) {
      const float x = load_f32(t, row, i);
      const float sq = x * x;
      s = (i == c * kChunk) ? sq : s + sq;
    }
    sums[c] = s;
  }
  pairwise_tree(sums, n);
  return canonical_norm(std::sqrt(n > 0 ? sums[0] : 0.f));
}

}  // namespace kvtrim
