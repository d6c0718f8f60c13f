// Row norms with AVX2 + F16C, eight rows at a time, in exactly the contract's order.
// The contract sums each 8-element chunk left to right, which is a horizontal dependency
// inside one row; so the vector lanes here are eight ROWS, not eight elements: load one
// chunk of each of 8 rows, square, transpose 8x8, and then the left-to-right sum of a chunk
// is seven vertical adds. The pairwise tree over chunk sums is vertical too. Every lane
// therefore performs the same correctly rounded operations as row_norm_scalar, and a NaN
// norm is stored as the contract's canonical NaN as there.
// Compiled with per-function target attributes (not -mavx2 on the file) so no shared inline
// function is ever emitted with AVX2 instructions; row_norms calls this only after a CPUID check.
#include "norms.h"

#include "../core/norm.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <cstring>

#define KVTRIM_AVX2 __attribute__((target("avx2,f16c")))

namespace kvtrim::cpu {

namespace {

KVTRIM_AVX2 inline __m256 load8(DType t, const void* p) {
  switch (t) {
    case DType::F16:
      return _mm256_cvtph_ps(_mm_loadu_si128(static_cast<const __m128i*>(p)));
    case DType::BF16:
      return _mm256_castsi256_ps(_mm256_slli_epi32(
          _mm256_cvtepu16_epi32(_mm_loadu_si128(static_cast<const __m128i*>(p))), 16));
    case DType::F32:
      break;
  }
  return _mm256_loadu_ps(static_cast<const float*>(p));
}

KVTRIM_AVX2 inline void transpose8(__m256* r) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// Norms of 8 consecutive rows starting at `base` or, with y, their dots with y (products
// instead of squares; a zero pad may turn a -0 chunk sum into +0, which canonical_score undoes).
KVTRIM_AVX2 void eight_rows_impl(DType t, const char* base, int64_t row_bytes, int64_t head_dim,
                                 const float* y, float* out) {
  const int esz = dtype_size(t);
  const int64_t n = num_chunks(head_dim);
  const int64_t full = head_dim / kChunk;  // chunks that need no padding
  __m256 sums[kMaxChunks];
  alignas(32) unsigned char pad[8][32];
  for (int64_t c = 0; c < n; ++c) {
    __m256 r[8];
    if (c < full) {
      for (int i = 0; i < 8; ++i) r[i] = load8(t, base + i * row_bytes + c * kChunk * esz);
    } else {  // the last, partial chunk: zero-pad a copy so no byte past the row is read
      const int64_t tail = (head_dim - c * kChunk) * esz;
      for (int i = 0; i < 8; ++i) {
        std::memset(pad[i], 0, sizeof pad[i]);
        std::memcpy(pad[i], base + i * row_bytes + c * kChunk * esz, size_t(tail));
        r[i] = load8(t, pad[i]);
      }
    }
    if (y == nullptr) {
      for (int i = 0; i < 8; ++i) r[i] = _mm256_mul_ps(r[i], r[i]);
    } else {
      alignas(32) float ypad[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      const int64_t m = head_dim - c * kChunk < kChunk ? head_dim - c * kChunk : kChunk;
      for (int64_t e = 0; e < m; ++e) ypad[e] = y[c * kChunk + e];
      const __m256 yc = _mm256_load_ps(ypad);
      for (int i = 0; i < 8; ++i) r[i] = _mm256_mul_ps(r[i], yc);
    }
    transpose8(r);
    __m256 s = r[0];
    for (int j = 1; j < 8; ++j) s = _mm256_add_ps(s, r[j]);
    sums[c] = s;
  }
  pairwise_tree(sums, n);  // step 3, vertically (native/core/norm.h; `+=` on __m256 is vaddps)
  if (y != nullptr) {
    _mm256_storeu_ps(out, sums[0]);
    return;
  }
  // Step 5: NaN lanes become the canonical NaN (one compare and one blend per 8 rows).
  const __m256 norm = _mm256_sqrt_ps(sums[0]);
  const __m256 nan = _mm256_castsi256_ps(_mm256_set1_epi32(int(kCanonicalNaN)));
  _mm256_storeu_ps(out, _mm256_blendv_ps(norm, nan, _mm256_cmp_ps(norm, norm, _CMP_UNORD_Q)));
}

}  // namespace

bool row_norms_avx2(DType t, const void* rows, int64_t n_rows, int64_t head_dim, float* out) {
  return rows_in_groups<8>(t, rows, n_rows, head_dim, nullptr, out, eight_rows_impl);
}

bool row_dots_avx2(DType t, const void* rows, int64_t n_rows, int64_t head_dim, const float* y, float* out) {
  return rows_in_groups<8>(t, rows, n_rows, head_dim, y, out, eight_rows_impl);
}

}  // namespace kvtrim::cpu

#else

namespace kvtrim::cpu {
bool row_norms_avx2(DType, const void*, int64_t, int64_t, float*) { return false; }
bool row_dots_avx2(DType, const void*, int64_t, int64_t, const float*, float*) { return false; }
}  // namespace kvtrim::cpu

#endif
