// Row norms with AArch64 Advanced SIMD (NEON), four rows at a time, in exactly the contract's
// order. Same scheme as norms_avx2.cc: the contract sums each 8-element chunk left to right, a
// dependency inside one row, so the vector lanes are four ROWS, not four elements. Load one
// chunk (8 elements) of each of 4 rows as two float32x4 halves, transpose the two 4x4 blocks,
// square, and the left-to-right chunk sum becomes seven vertical adds; the pairwise tree over
// chunk sums is vertical too. Every lane performs the same correctly rounded operations as
// row_norm_scalar (native/core/norm.h), and a NaN norm is stored as the canonical NaN.
//
// Rounding: squares and sums are separate vmulq_f32 / vaddq_f32 (FMUL / FADD). GCC implements
// both intrinsics as plain vector `*` and `+`, so it COULD contract them into FMLA; the project
// builds with -ffp-contract=off, and scripts/test-arm64.sh disassembles this object and fails
// on any fused multiply-add. vfmaq_f32 is never used. vsqrtq_f32 is FSQRT (correctly rounded).
//
// fp16 -> fp32 is FCVTL (vcvt_f32_f16), part of the ARMv8.0 Advanced SIMD baseline: every
// AArch64 CPU has it, so it needs no run-time check beyond ASIMD itself. It is exact for every
// binary16 input, subnormals included, whatever FPCR's flush bits say: conversions unpack their
// input with FZ16 cleared (the ARM ARM's FPUnpackCV), FZ applies to single/double inputs only,
// and every binary16 value is a normal binary32, so the result is never flushed either. Only
// FPCR.AHP (the alternative half-precision format) would change it, and it is 0 in Linux user
// space. A signalling-NaN input comes out quiet instead of with its payload, which changes
// nothing after step 5. FEAT_FP16
// (HWCAP_FPHP / HWCAP_ASIMDHP: half-precision multiply and add) is deliberately NOT used:
// squaring in fp16 would round, the contract squares in fp32. bf16 -> fp32 is a 16-bit shift
// (SHLL). Checked under qemu-aarch64 against the TypeScript oracle (test/arm64/).
//
// The whole file is AArch64-only; elsewhere it compiles to the stub at the bottom, so the
// CMake glob over native/cpu/*.cc needs no change.
#include "norms.h"

#include "../core/norm.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>

namespace kvtrim::cpu {

namespace {

// Elements 0-3 and 4-7 of one chunk as fp32 (exact conversions).
inline void load8(DType t, const void* p, float32x4_t* lo, float32x4_t* hi) {
  switch (t) {
    case DType::F16: {
      const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(static_cast<const uint16_t*>(p)));
      *lo = vcvt_f32_f16(vget_low_f16(h));
      *hi = vcvt_high_f32_f16(h);
      return;
    }
    case DType::BF16: {
      const uint16x8_t h = vld1q_u16(static_cast<const uint16_t*>(p));
      *lo = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16));
      *hi = vreinterpretq_f32_u32(vshll_high_n_u16(h, 16));
      return;
    }
    case DType::F32:
      break;
  }
  const float* f = static_cast<const float*>(p);
  *lo = vld1q_f32(f);
  *hi = vld1q_f32(f + 4);
}

// 4x4 transpose: on return r[j] holds element j of rows 0..3 in lanes 0..3.
inline void transpose4(float32x4_t* r) {
  const float32x4_t t0 = vtrn1q_f32(r[0], r[1]), t1 = vtrn2q_f32(r[0], r[1]);
  const float32x4_t t2 = vtrn1q_f32(r[2], r[3]), t3 = vtrn2q_f32(r[2], r[3]);
  r[0] = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
  r[1] = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
  r[2] = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
  r[3] = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
}

// Norms of 4 consecutive rows starting at `base` or, with y, their dots with y (products
// instead of squares; a zero pad may turn a -0 chunk sum into +0, which canonical_score undoes).
void four_rows_impl(DType t, const char* base, int64_t row_bytes, int64_t head_dim, const float* y, float* out) {
  const int esz = dtype_size(t);
  const int64_t n = num_chunks(head_dim);
  const int64_t full = head_dim / kChunk;  // chunks that need no padding
  float32x4_t sums[kMaxChunks];
  alignas(16) unsigned char pad[4][32];
  for (int64_t c = 0; c < n; ++c) {
    float32x4_t lo[4], hi[4];
    if (c < full) {
      for (int i = 0; i < 4; ++i) load8(t, base + i * row_bytes + c * kChunk * esz, &lo[i], &hi[i]);
    } else {  // the last, partial chunk: zero-pad a copy so no byte past the row is read
      const int64_t tail = (head_dim - c * kChunk) * esz;
      for (int i = 0; i < 4; ++i) {
        std::memset(pad[i], 0, sizeof pad[i]);
        std::memcpy(pad[i], base + i * row_bytes + c * kChunk * esz, size_t(tail));
        load8(t, pad[i], &lo[i], &hi[i]);
      }
    }
    transpose4(lo);  // lo[j]: element j of the chunk, one row per lane
    transpose4(hi);  // hi[j]: element 4 + j
    // Step 1 and 2: square (one rounding), then the chunk's left-to-right sum. A zero pad adds
    // +0 to a sum of squares, which changes nothing (no -0 can occur).
    if (y != nullptr) {  // the dot's factors: y's chunk, zero past the row (a pad times 0)
      alignas(16) float yc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      const int64_t m = head_dim - c * kChunk < kChunk ? head_dim - c * kChunk : kChunk;
      for (int64_t e = 0; e < m; ++e) yc[e] = y[c * kChunk + e];
      float32x4_t s = vmulq_f32(lo[0], vdupq_n_f32(yc[0]));
      for (int j = 1; j < 4; ++j) s = vaddq_f32(s, vmulq_f32(lo[j], vdupq_n_f32(yc[j])));
      for (int j = 0; j < 4; ++j) s = vaddq_f32(s, vmulq_f32(hi[j], vdupq_n_f32(yc[4 + j])));
      sums[c] = s;
      continue;
    }
    float32x4_t s = vmulq_f32(lo[0], lo[0]);
    for (int j = 1; j < 4; ++j) s = vaddq_f32(s, vmulq_f32(lo[j], lo[j]));
    for (int j = 0; j < 4; ++j) s = vaddq_f32(s, vmulq_f32(hi[j], hi[j]));
    sums[c] = s;
  }
  pairwise_tree(sums, n);  // step 3, vertically (native/core/norm.h; `+=` on float32x4_t is FADD)
  if (y != nullptr) {
    vst1q_f32(out, n > 0 ? sums[0] : vdupq_n_f32(0.f));
    return;
  }
  // Steps 4 and 5: sqrt, NaN lanes become the canonical NaN (one compare and one select).
  const float32x4_t norm = vsqrtq_f32(n > 0 ? sums[0] : vdupq_n_f32(0.f));
  const float32x4_t nan = vreinterpretq_f32_u32(vdupq_n_u32(kCanonicalNaN));
  vst1q_f32(out, vbslq_f32(vceqq_f32(norm, norm), norm, nan));
}

}  // namespace

bool row_norms_neon(DType t, const void* rows, int64_t n_rows, int64_t head_dim, float* out) {
  return rows_in_groups<4>(t, rows, n_rows, head_dim, nullptr, out, four_rows_impl);
}

bool row_dots_neon(DType t, const void* rows, int64_t n_rows, int64_t head_dim, const float* y, float* out) {
  return rows_in_groups<4>(t, rows, n_rows, head_dim, y, out, four_rows_impl);
}

}  // namespace kvtrim::cpu

#else

namespace kvtrim::cpu {
bool row_norms_neon(DType, const void*, int64_t, int64_t, float*) { return false; }
bool row_dots_neon(DType, const void*, int64_t, int64_t, const float*, float*) { return false; }
}  // namespace kvtrim::cpu

#endif
