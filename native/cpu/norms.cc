#include "norms.h"

#include <cstdlib>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1UL << 1)
#endif
#endif

#include "../core/norm.h"
#include "../core/score.h"

namespace kvtrim::cpu {

namespace {

#if defined(__x86_64__) || defined(__i386__)
bool cpu_has_f16c() {
  unsigned a, b, c, d;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
}
#endif

// KVTRIM_ISA=portable pins the portable path (tests compare both on one machine).
bool isa_pinned_portable() {
  const char* isa = std::getenv("KVTRIM_ISA");
  return isa && std::string(isa) == "portable";
}

// F16C through CPUID: clang before 16 rejects __builtin_cpu_supports("f16c").
bool has_avx2_f16c() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool yes = !isa_pinned_portable() && __builtin_cpu_supports("avx2") && cpu_has_f16c();
  return yes;
#else
  return false;
#endif
}

// Advanced SIMD is architecturally mandatory on AArch64 Linux, but the kernel says so in
// AT_HWCAP (HWCAP_ASIMD), so it is checked like AVX2 on x86. The fp16 -> fp32 conversion the
// NEON path uses (FCVTL) is ARMv8.0 baseline ASIMD; FEAT_FP16 (HWCAP_FPHP / HWCAP_ASIMDHP,
// half-precision arithmetic) is not used, see norms_neon.cc.
bool has_neon() {
#if defined(__aarch64__) && defined(__linux__)
  static const bool yes = !isa_pinned_portable() && (getauxval(AT_HWCAP) & HWCAP_ASIMD) != 0;
  return yes;
#elif defined(__aarch64__)
  static const bool yes = !isa_pinned_portable();
  return yes;
#else
  return false;
#endif
}

}  // namespace

const char* norm_isa() {
  if (has_avx2_f16c()) return "avx2+f16c";
  if (has_neon()) return "neon";
  return "portable";
}

void row_norms_portable(DType t, const void* rows, int64_t n_rows, int64_t head_dim, float* out) {
  const int64_t row_bytes = head_dim * dtype_size(t);
  const char* p = static_cast<const char*>(rows);
  for (int64_t r = 0; r < n_rows; ++r) out[r] = row_norm_scalar(t, p + r * row_bytes, head_dim);
}

void row_norms(DType t, const void* rows, int64_t n_rows, int64_t head_dim, float* out) {
  if (has_avx2_f16c() && row_norms_avx2(t, rows, n_rows, head_dim, out)) return;
  if (has_neon() && row_norms_neon(t, rows, n_rows, head_dim, out)) return;
  row_norms_portable(t, rows, n_rows, head_dim, out);
}

void row_dots_portable(DType t, const void* rows, int64_t n_rows, int64_t head_dim, const float* y, float* out) {
  const int64_t row_bytes = head_dim * dtype_size(t);
  const char* p = static_cast<const char*>(rows);
  for (int64_t r = 0; r < n_rows; ++r) out[r] = row_dot_scalar(t, p + r * row_bytes, y, head_dim);
}

void row_dots(DType t, const void* rows, int64_t n_rows, int64_t head_dim, const float* y, float* out) {
  if (has_avx2_f16c() && row_dots_avx2(t, rows, n_rows, head_dim, y, out)) return;
  if (has_neon() && row_dots_neon(t, rows, n_rows, head_dim, y, out)) return;
  row_dots_portable(t, rows, n_rows, head_dim, y, out);
}

}  // namespace kvtrim::cpu
