// Key norms of many consecutive rows on the CPU, in the contract's canonical order.
#pragma once
#include <cstdint>

#include "../core/dtype.h"

namespace kvtrim::cpu {

// Which row-norm implementation this CPU runs: "avx2+f16c" (x86-64), "neon" (AArch64) or
// "portable"; KVTRIM_ISA=portable pins "portable".
const char* norm_isa();

// out[r] = norm of row r, for r in [0, n_rows); rows are head_dim elements apart.
void row_norms(DType t, const void* rows, int64_t n_rows, int64_t head_dim, float* out);

// out[r] = rows[r] . y (y: head_dim floats), in the contract's dot order (docs/policies.md),
// not canonicalised (the scorers canonicalise what they derive from it).
void row_dots(DType t, const void* rows, int64_t n_rows, int64_t head_dim, const float* y, float* out);
void row_dots_portable(DType t, const void* rows, int64_t n_rows, int64_t head_dim, const float* y, float* out);
bool row_dots_avx2(DType t, const void* rows, int64_t n_rows, int64_t head_dim, const float* y, float* out);
bool row_dots_neon(DType t, const void* rows, int64_t n_rows, int64_t head_dim, const float* y, float* out);

// The implementations behind row_norms, exposed so tests and benchmarks can pin one. The SIMD
// ones return false (and do nothing) where they are not compiled in (other architecture).
void row_norms_portable(DType t, const void* rows, int64_t n_rows, int64_t head_dim, float* out);
bool row_norms_avx2(DType t, const void* rows, int64_t n_rows, int64_t head_dim, float* out);
bool row_norms_neon(DType t, const void* rows, int64_t n_rows, int64_t head_dim, float* out);

// The SIMD paths' driver: rows in groups of G through `group` (G rows at once, a vector lane
// per row: their norms, or with y their dots with y), the remainder through the portable path.
// Returns true (the path is compiled in).
template <int G, class Group>
inline bool rows_in_groups(DType t, const void* rows, int64_t n_rows, int64_t head_dim, const float* y, float* out,
                           Group group) {
  const int64_t row_bytes = head_dim * dtype_size(t);
  const char* p = static_cast<const char*>(rows);
  int64_t r = 0;
  for (; r + G <= n_rows; r += G) group(t, p + r * row_bytes, row_bytes, head_dim, y, out + r);
  if (r < n_rows && y != nullptr) row_dots_portable(t, p + r * row_bytes, n_rows - r, head_dim, y, out + r);
  if (r < n_rows && y == nullptr) row_norms_portable(t, p + r * row_bytes, n_rows - r, head_dim, out + r);
  return true;
}

}  // namespace kvtrim::cpu
