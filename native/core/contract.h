// The numeric contract in C++, once (docs/contract.md says it in words). Every backend includes
// this header: native/core (the spec and the CPU path), the CUDA kernels under nvcc, and the same
// kernels compiled by g++ against the emulator. So the rank of a norm, the radix digits, the norm
// chunk and the keep count are each ONE definition, and changing one changes every backend.
//
// Device code is compiled from here too, so it stays lean: bit operations on uint32_t (no
// memcpy bit casts, no float here); a spill in compress_kernel is a build error (-warn-spills).
#pragma once
#include <cmath>
#include <cstdint>

// Qualifier of what runs on the host and the device: `__host__ __device__` under nvcc; empty
// under a plain C++ compiler (the host code, and the kernels built for the emulator).
#if defined(__CUDACC__)
#define KVTRIM_HD __host__ __device__
#else
#define KVTRIM_HD
#endif

namespace kvtrim {

// ---- Ranking: (norm is NaN, norm, position) ascending for low-norm, (NaN, -norm, position) for
// high-norm. rank_key maps a norm's bits to a 32-bit key whose unsigned order is that ranking of
// the norms: NaN is the largest key (NaN rows are the first dropped), +0 and -0 are one key.
// Equal keys are ties; every backend keeps the tied tokens with the lower positions (the CPU
// scans in position order, the kernel counts equal keys before a token with a block scan, and
// order 'norm' sorts (key << 32 | position)).
KVTRIM_HD inline uint32_t rank_key(uint32_t norm_bits, bool high) {
  const uint32_t mag = norm_bits & 0x7FFFFFFFu;
  if (mag > 0x7F800000u) return 0xFFFFFFFFu;  // NaN
  return high ? 0x7F800000u - mag : mag;
}

// ---- Scores (docs/policies.md): every scorer yields an fp32 score per token, the k HIGHEST
// kept (kvpress's convention). score_key maps a score's bits to a key whose unsigned ascending
// order is that ranking: higher scores get smaller keys, +0 and -0 are one key, every NaN is
// the largest key (dropped first). Ties are broken by position as for rank_key. The low-norm
// score -n ranks as rank_key(n, false) and high-norm's n as rank_key(n, true): same order,
// different key values (the kernels keep rank_key on their norm path).
KVTRIM_HD inline uint32_t score_key(uint32_t s) {
  if ((s & 0x7FFFFFFFu) > 0x7F800000u) return 0xFFFFFFFFu;  // NaN
  if (s == 0x80000000u) s = 0;                              // -0 is +0
  // ascending float order is (s < 0 ? ~s : s | 2^31); the key is its complement
  return (s & 0x80000000u) ? s : 0x7FFFFFFFu - s;
}

// KeyDiff's anchor sums unit keys over tokens in chunks of kTokenChunk consecutive tokens, the
// chunk sums combined by the pairwise tree (docs/policies.md).
constexpr int kTokenChunk = 32;

// ---- Radix select of the threshold key: three digit rounds, most significant first, of 11, 11
// and 10 bits (round 0 is bits 31..21, round 1 bits 20..10, round 2 bits 9..0).
constexpr int kRadixRounds = 3;
KVTRIM_HD constexpr int radix_bits(int round) { return round < 2 ? 11 : 10; }
KVTRIM_HD constexpr int radix_shift(int round) {
  int shift = 0;
  for (int r = round + 1; r < kRadixRounds; ++r) shift += radix_bits(r);
  return shift;
}
constexpr int kRadixBins = 1 << radix_bits(0);  // histogram bins of the widest digit
static_assert(radix_shift(0) + radix_bits(0) == 32, "the digits cover the 32-bit key");
static_assert(kRadixRounds == 3 && radix_bits(1) <= radix_bits(0) && radix_bits(2) <= radix_bits(0),
              "three rounds (compress.cuh lists them), round 0 the widest (it sizes the histogram)");

// ---- Norm order: rows are summed in chunks of kChunk consecutive elements (the last padded
// with zeros), chunk sums combined by a pairwise tree over a power-of-two count (native/core/norm.h).
constexpr int kChunk = 8;
constexpr int64_t kMaxHeadDim = 1024;
constexpr int kMaxChunks = int(kMaxHeadDim / kChunk);
// The bits of every NaN norm, on every backend: the positive quiet NaN.
constexpr uint32_t kCanonicalNaN = 0x7FC00000u;

// ---- Special cases of the scores (docs/policies.md), as bit rules: one definition for the host
// (native/core/score.h) and the kernels (kernels/scores.cuh).
// A score's canonical bits (tokenScores returns bits): every NaN is kCanonicalNaN, -0 is +0.
KVTRIM_HD inline uint32_t canonical_score_bits(uint32_t s) {
  if ((s & 0x7FFFFFFFu) > 0x7F800000u) return kCanonicalNaN;
  return s == 0x80000000u ? 0u : s;
}
// KeyDiff by a key's norm n: an infinite or NaN n scores NaN, a zero n scores 0, and neither
// adds to the anchor; any other key scores -(dot / n) and adds k / n.
enum class KeyDiffCase : int { Divide = 0, Zero = 1, NaN = 2 };
KVTRIM_HD inline KeyDiffCase keydiff_case(uint32_t norm_bits) {
  const uint32_t mag = norm_bits & 0x7FFFFFFFu;
  if (mag >= 0x7F800000u) return KeyDiffCase::NaN;
  return mag == 0 ? KeyDiffCase::Zero : KeyDiffCase::Divide;
}

KVTRIM_HD constexpr int64_t num_chunks(int64_t head_dim) { return (head_dim + kChunk - 1) / kChunk; }

// The smallest power of two >= n (1 for n <= 1).
KVTRIM_HD constexpr int64_t pow2_ceil(int64_t n) {
  int64_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

// ---- Element conversion: IEEE binary16 -> binary32 bits, exact for every input (subnormals,
// infinities, NaN payloads). Integer arithmetic only, so the CPU path, the kernels and the
// emulator convert alike; callers turn the bits into a float (memcpy on the host,
// __uint_as_float on the device: a memcpy bit cast in device code cost compress_kernel spills).
KVTRIM_HD inline uint32_t f16_to_f32_bits(uint32_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  if (exp == 0x1Fu) return sign | 0x7F800000u | (mant << 13);
  if (exp != 0) return sign | ((exp + 112u) << 23) | (mant << 13);
  if (mant == 0) return sign;
  uint32_t shifts = 0;  // subnormal: renormalise
  while (!(mant & 0x400u)) { mant <<= 1; ++shifts; }
  return sign | ((113u - shifts) << 23) | ((mant & 0x3FFu) << 13);
}

// ---- Keep count: k for a row of `len` valid tokens is ceil(keep_ratio * len) in double (as
// Python computes it), or `keep`; clamped to [0, len]; then at least min(len, sink + recent).
// Host only (the plan is made on the host; kernels receive k).
inline int64_t keep_count(bool use_ratio, double keep_ratio, int64_t keep, int64_t sink,
                          int64_t recent, int64_t len) {
  int64_t k;
  if (use_ratio) {
    const double c = std::ceil(keep_ratio * double(len));
    k = c <= 0 ? 0 : (c >= double(len) ? len : int64_t(c));
  } else {
    k = keep < 0 ? 0 : (keep > len ? len : keep);
  }
  // sink + recent cannot overflow: both are validated below 2^31.
  const int64_t protect = sink + recent < len ? sink + recent : len;
  return k > protect ? k : protect;
}

}  // namespace kvtrim
