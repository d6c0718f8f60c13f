#include "norms.h"

#include <cstdlib>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "../core/norm.h"

namespace kvtrim::cpu {

namespace {

#if defined(__x86_64__) || defined(__i386__)
bool cpu_has_f16c() {
  unsigned a, b, c, d;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
}
#endif

// KVTRIM_ISA=portable pins the portable path (tests compare both on one machine).
// F16C through CPUID: clang before 16 rejects __builtin_cpu_supports("f16c").
bool has_avx2_f16c() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool yes = !(std::getenv("KVTRIM_ISA") && std::string(std::getenv("KVTRIM_ISA")) == "portable") &&
                          __builtin_cpu_supports("avx2") && cpu_has_f16c();
  return yes;
#else
  return false;
#endif
}

}  // namespace

const char* norm_isa() { return has_avx2_f16c() ? "avx2+f16c" : "portable"; }

void row_norms_portable(DType t, const void* rows, int64_t n_rows, int64_t head_dim, float* out) {
  const int64_t row_bytes = head_dim * dtype_size(t);
  const char* p = static_cast<const char*>(rows);
  for (int64_t r = 0; r < n_rows; ++r) out[r] = row_norm_scalar(t, p + r * row_bytes, head_dim);
}

void row_norms(DType t, const void* rows, int64_t n_rows, int64_t head_dim, float* out) {
  if (has_avx2_f16c() && row_norms_avx2(t, rows, n_rows, head_dim, out)) return;
  row_norms_portable(t, rows, n_rows, head_dim, out);
}

}  // namespace kvtrim::cpu
