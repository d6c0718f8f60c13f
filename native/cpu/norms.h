// Key norms of many consecutive rows on the CPU, in the contract's canonical order.
#pragma once
#include <cstdint>

#include "../core/dtype.h"

namespace kvtrim::cpu {

// Which row-norm implementation this CPU runs: "avx2+f16c" or "portable".
const char* norm_isa();

// out[r] = norm of row r, for r in [0, n_rows); rows are head_dim elements apart.
void row_norms(DType t, const void* rows, int64_t n_rows, int64_t head_dim, float* out);

// The two implementations behind row_norms, exposed so tests and benchmarks can pin one.
void row_norms_portable(DType t, const void* rows, int64_t n_rows, int64_t head_dim, float* out);
bool row_norms_avx2(DType t, const void* rows, int64_t n_rows, int64_t head_dim, float* out);

}  // namespace kvtrim::cpu
