// libFuzzer target over native/core and native/cpu: input bytes -> a (keys, values, options)
// case, valid or not; the core validates and plans it exactly as the addon does
// (native/addon/args.cc plan_compress: check_pair, check_in_place for compressInPlace, make_plan),
// then the CPU path runs (key_norms, compress, compress in place) and the result is checked
// against the numeric contract (docs/contract.md) by code written here, independently:
//   - validation: a case is rejected iff it breaks a documented rule, with that rule's code;
//   - norms: the contract's order in double arithmetic rounded to float (exact: double has more
//     than 2 * 24 + 2 bits), bit-identical to key_norms, to the AVX2 and to the portable path;
//     every NaN norm is the canonical 0x7FC00000;
//   - scores (docs/policies.md): every scorer's score in the same double-rounded-to-float style
//     (norms, kv-norm products, project and keydiff dots, keydiff's anchor, given scores);
//   - selection modes (docs/policies.md "Selection modes"): head_keep plans, valid or not, are
//     validated by make_plan with the documented rule; selection_counts for threshold and
//     adaptive equal the counts of an independent reference (a sort, not a radix select) and
//     hold the documented invariants (threshold: p + #{middle scores >= t}; adaptive:
//     Σ_h k_h = H * k per entry, each k_h in [p + floor(alpha * m), len]); then the compress of
//     a plan with those per-row counts is checked as below, row by row with each row's own k;
//   - per (batch, head) row: k = the plan's count (recomputed here, or the per-row count), indices = sink, recent and
//     the best (isNaN, -score, position) of the middle, in position or rank order, -1 past k; gathered key and value rows equal the source rows,
//     zero past k; in place: rows 0..k-1 hold the kept rows, later rows are untouched.
// Any mismatch aborts (a crash for libFuzzer); ASan and UBSan watch every access.
// Build and run: scripts/fuzz.sh.
#include <fuzzer/FuzzedDataProvider.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "../native/core/job.h"
#include "../native/core/plan.h"
#include "../native/core/selection.h"
#include "../native/core/status.h"
#include "../native/core/tensor.h"
#include "../native/cpu/compress.h"
#include "../native/cpu/norms.h"

using namespace kvtrim;

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "kvtrim fuzz: contract violated: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

#define CHECK(cond, msg)                        \
  do {                                          \
    if (!(cond)) fail(std::string(msg) + " [" #cond "]"); \
  } while (0)

constexpr int64_t kMaxRowsContract = 2147483647;
constexpr int64_t kMaxHeadDimContract = 1024;
constexpr uint32_t kNaNBits = 0x7FC00000u;
constexpr int64_t kBudget = 1 << 15;

// KVTRIM_FUZZ_STATS=1: how many valid cases of each selection mode ran, and how many head_keep
// plans were refused as they should be, printed at exit (to see that the modes are reached).
struct Stats {
  long long per_head = 0, head_keep = 0, head_keep_refused = 0, threshold = 0, adaptive = 0, ragged = 0;
  ~Stats() {
    if (std::getenv("KVTRIM_FUZZ_STATS"))
      std::fprintf(stderr, "kvtrim fuzz stats: per-head %lld, headKeep %lld (refused %lld), threshold %lld, adaptive %lld, "
                   "of them with unequal counts in an entry %lld\n", per_head, head_keep, head_keep_refused, threshold,
                   adaptive, ragged);
  }
} stats;  // elements of keys + values per case, for speed

// ---- random fill ------------------------------------------------------------------------

struct SplitMix {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint32_t below(uint32_t n) { return n ? uint32_t(next() % n) : 0; }
};

// A special value of the dtype, as raw bits: NaN (random sign and payload), +-Inf, +-0,
// subnormals, the largest finite value, values whose square over- or underflows.
uint32_t special_bits(DType t, SplitMix& r) {
  const uint32_t sign16 = r.below(2) ? 0x8000u : 0u, sign32 = sign16 << 16;
  const uint32_t pick = r.below(8);
  if (t == DType::F16) {
    switch (pick) {
      case 0: case 1: return sign16 | 0x7C00u | (1 + r.below(0x3FF));  // NaN
      case 2: return sign16 | 0x7C00u;                                  // Inf
      case 3: return sign16;                                            // +-0
      case 4: return sign16 | (1 + r.below(0x3FF));                     // subnormal
      case 5: return sign16 | 0x7BFFu;                                  // 65504
      case 6: return sign16 | 0x0400u;                                  // smallest normal
      default: return sign16 | 0x0001u;
    }
  }
  // bfloat16 and float32 share fp32's exponent: only the mantissa width differs.
  const bool bf = t == DType::BF16;
  const int mant = bf ? 7 : 23;
  const uint32_t sign = bf ? sign16 : sign32, inf = 0xFFu << mant, mmask = (1u << mant) - 1;
  switch (pick) {
    case 0: case 1: return sign | inf | (1 + r.below(mmask));                               // NaN
    case 2: return sign | inf;                                                               // Inf
    case 3: return sign;                                                                     // +-0
    case 4: return sign | (1 + r.below(mmask));                                              // subnormal
    case 5: return sign | (inf - 1);                                                         // largest finite
    case 6: return sign | (uint32_t(1 + r.below(60)) << mant) | r.below(mmask + 1);          // square underflows (< 1e-20)
    default: return sign | (uint32_t(190 + r.below(64)) << mant) | r.below(mmask + 1);       // square -> Inf
  }
}

// A finite value around 1 (exponent within +-spread of the bias), as raw bits.
uint32_t normal_bits(DType t, SplitMix& r, int spread) {
  const uint32_t sign = r.below(2);
  const int e = int(r.below(uint32_t(2 * spread + 1))) - spread;
  if (t == DType::F16) return (sign << 15) | (uint32_t(std::clamp(15 + e, 1, 30)) << 10) | r.below(0x400);
  if (t == DType::BF16) return (sign << 15) | (uint32_t(127 + e) << 7) | r.below(0x80);
  return (sign << 31) | (uint32_t(127 + e) << 23) | r.below(0x800000);
}

uint32_t small_set_bits(DType t, SplitMix& r) {  // 0, -0, +-0.5, +-1, +-2: many exact ties
  static const uint16_t f16[] = {0x0000, 0x8000, 0x3800, 0xB800, 0x3C00, 0xBC00, 0x4000, 0xC000};
  static const uint16_t bf16[] = {0x0000, 0x8000, 0x3F00, 0xBF00, 0x3F80, 0xBF80, 0x4000, 0xC000};
  const uint32_t i = r.below(8);
  if (t == DType::F16) return f16[i];
  return t == DType::BF16 ? bf16[i] : uint32_t(bf16[i]) << 16;
}

void put(DType t, void* data, int64_t i, uint32_t bits) {
  if (t == DType::F32) static_cast<uint32_t*>(data)[i] = bits;
  else static_cast<uint16_t*>(data)[i] = uint16_t(bits);
}

// Fills rows of `d` elements. mode 0: every bit pattern; 1: values around 1 with specials at
// `rate`/256; 2: a tiny set of values (ties); 3: like 1, half the rows copies of earlier rows.
void fill(DType t, void* data, int64_t rows, int64_t d, int mode, int rate, int spread, SplitMix& r) {
  for (int64_t row = 0; row < rows; ++row) {
    if (mode == 3 && row > 0 && r.below(2)) {
      const int64_t from = int64_t(r.below(uint32_t(row)));
      const int esz = dtype_size(t);
      std::memcpy(static_cast<char*>(data) + row * d * esz, static_cast<char*>(data) + from * d * esz,
                  size_t(d * esz));
      continue;
    }
    for (int64_t i = 0; i < d; ++i) {
      uint32_t b;
      if (mode == 0) b = uint32_t(r.next());
      else if (mode == 2) b = small_set_bits(t, r);
      else b = int(r.below(256)) < rate ? special_bits(t, r) : normal_bits(t, r, spread);
      put(t, data, row * d + i, b);
    }
  }
}

// ---- the contract, written independently of native/ -------------------------------------

// Exact value of element i (arithmetic decoding, not bit surgery).
double element(DType t, const void* row, int64_t i) {
  if (t == DType::F32) {
    float f;
    std::memcpy(&f, static_cast<const char*>(row) + 4 * i, 4);
    return double(f);
  }
  const uint16_t h = static_cast<const uint16_t*>(row)[i];
  const double sign = (h & 0x8000u) ? -1.0 : 1.0;
  if (t == DType::F16) {
    const int e = (h >> 10) & 0x1F, m = h & 0x3FF;
    if (e == 0x1F) return m ? std::nan("") : sign * INFINITY;
    if (e == 0) return sign * std::ldexp(double(m), -24);
    return sign * std::ldexp(double(1024 + m), e - 25);
  }
  const int e = (h >> 7) & 0xFF, m = h & 0x7F;
  if (e == 0xFF) return m ? std::nan("") : sign * INFINITY;
  if (e == 0) return sign * std::ldexp(double(m), -133);
  return sign * std::ldexp(double(128 + m), e - 134);
}

float add_f(float a, float b) { return float(double(a) + double(b)); }

// The contract's order over a row of d terms: chunks of 8 summed left to right, then the
// pairwise tree over a power-of-two count of chunk sums.
template <class Term>
float chunk_tree(int64_t d, Term term) {
  const int64_t chunks = (d + 7) / 8;
  int64_t n = 1;
  while (n < chunks) n *= 2;
  float sums[kMaxHeadDimContract / 8] = {};
  for (int64_t c = 0; c < chunks; ++c) {
    float s = 0.f;
    for (int64_t i = c * 8; i < std::min(d, c * 8 + 8); ++i) s = add_f(s, term(i));
    sums[c] = s;
  }
  for (int64_t half = n / 2; half >= 1; half /= 2) {
    for (int64_t i = 0; i < half; ++i) sums[i] = add_f(sums[i], sums[i + half]);
  }
  return sums[0];
}

// Squares in the contract's order, sqrt; NaN canonical.
uint32_t ref_norm_bits(DType t, const void* row, int64_t d) {
  const float sum = chunk_tree(d, [&](int64_t i) {
    const double x = element(t, row, i);
    return float(x * x);
  });
  const float norm = float(std::sqrt(double(sum)));
  if (std::isnan(norm)) return kNaNBits;
  uint32_t b;
  std::memcpy(&b, &norm, 4);
  return b;
}

float as_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

int64_t ref_keep(const CompressParams& p, int64_t len) {
  int64_t k;
  if (p.use_ratio) {
    const double c = std::ceil(p.keep_ratio * double(len));
    k = c >= double(len) ? len : (c <= 0 ? 0 : int64_t(c));
  } else {
    k = std::clamp<int64_t>(p.keep, 0, len);
  }
  return std::max(k, std::min(len, p.sink + p.recent));
}

// The codes a tensor may be rejected with (empty: valid). Rows are int32-indexed: batch, kvHeads,
// seqLen and their product must each be at most 2^31 - 1 (a zero dim does not excuse a huge one),
// batch at most 2^24 and batch * kvHeads at most 2^31 - 1.
std::set<Code> tensor_errors(const TensorView& v) {
  if (v.dims.size() != 4) return {Code::InvalidRank};
  for (int64_t d : v.dims) if (d < 0) return {Code::InvalidDims};
  if (v.dims[3] < 1 || v.dims[3] > kMaxHeadDimContract) return {Code::InvalidDims};
  for (int i = 0; i < 3; ++i) if (v.dims[size_t(i)] > kMaxRowsContract) return {Code::TooManyRows};
  const __int128 rows = __int128(v.dims[0]) * v.dims[1] * v.dims[2];
  if (rows > kMaxRowsContract) return {Code::TooManyRows};
  // Empty tensors too: at most 2^24 batch entries and 2^31 - 1 (batch, head) rows.
  if (v.dims[0] > (int64_t(1) << 24) || __int128(v.dims[0]) * v.dims[1] > kMaxRowsContract) return {Code::TooManyRows};
  if (__int128(v.length) != rows * v.dims[3]) return {Code::DataLength};
  return {};
}

struct Case {
  TensorView keys, values;
  CompressParams params;
  std::vector<float> vectors;  // Score::Project: [H * Dk]
  std::vector<float> given;    // Score::Given: [B * H * S]
  std::vector<int64_t> lengths;
  bool has_lengths = false;
  // Selection modes: 0 'per-head'; 1 head_keep (valid or not); 2 threshold; 3 adaptive.
  int heads_mode = 0;
  std::vector<int64_t> head_keep;
  float threshold = 0.f;
  bool threshold_from_scores = false;  // t: the score of a random valid token (ties at t)
  uint64_t threshold_seed = 0;
  double alpha = 0.2;
  // As the addon passes it: the vector when given (even empty: make_plan checks its count), else null.
  const std::vector<int64_t>* head_keep_ptr() const { return heads_mode == 1 ? &head_keep : nullptr; }
  // As the addon passes them: null when none (an empty vector's data() may be null too: the
  // core cannot tell an empty array from none, so the addon checks the count first).
  const int64_t* lengths_ptr() const { return has_lengths ? lengths.data() : nullptr; }
};

// The codes the addon's sequence (check_pair, check_in_place, make_plan) may reject with, in
// the sequence's stages: the first stage with a violation decides; empty: the case is valid.
std::set<Code> expected_errors(const Case& c, bool in_place) {
  std::set<Code> e = tensor_errors(c.keys);
  if (!e.empty()) return e;
  e = tensor_errors(c.values);
  if (!e.empty()) return e;
  if (c.keys.dtype != c.values.dtype) return {Code::InvalidDType};
  for (int i = 0; i < 3; ++i) if (c.keys.dims[size_t(i)] != c.values.dims[size_t(i)]) return {Code::DimsMismatch};
  if (in_place) {
    if (c.params.order != Order::Position) return {Code::InvalidOption};
    const char* k0 = static_cast<const char*>(c.keys.data);
    const char* v0 = static_cast<const char*>(c.values.data);
    const char* k1 = k0 + c.keys.length * dtype_size(c.keys.dtype);
    const char* v1 = v0 + c.values.length * dtype_size(c.values.dtype);
    if (std::max(k0, v0) < std::min(k1, v1)) return {Code::InvalidArgument};
  }
  const CompressParams& p = c.params;
  const int64_t seq = c.keys.dims[2], batch = c.keys.dims[0];
  if (p.use_ratio && !(p.keep_ratio > 0.0 && p.keep_ratio <= 1.0)) return {Code::InvalidKeepRatio};
  if (!p.use_ratio && (p.keep < 0 || p.keep > seq)) return {Code::InvalidKeep};
  if (p.sink < 0 || p.sink > kMaxRowsContract) return {Code::InvalidSink};
  if (p.recent < 0 || p.recent > kMaxRowsContract) return {Code::InvalidRecent};
  if (c.lengths_ptr() != nullptr) {
    if (int64_t(c.lengths.size()) != batch) return {Code::InvalidLengths};
    for (int64_t l : c.lengths) if (l < 0 || l > seq) return {Code::InvalidLengths};
  }
  if (c.heads_mode == 1) {  // headKeep: one count per (batch entry, head) row, in [min(len, sink + recent), len]
    const int64_t rows = batch * c.keys.dims[1];
    if (int64_t(c.head_keep.size()) != rows) return {Code::InvalidKeep};
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t len = c.lengths_ptr() ? c.lengths[size_t(row / c.keys.dims[1])] : seq;
      const int64_t k = c.head_keep[size_t(row)];
      if (k < std::min(len, p.sink + p.recent) || k > len) return {Code::InvalidKeep};
    }
  }
  return {};
}

void check_status(const Status& s, const std::set<Code>& want, const char* what) {
  if (want.empty()) {
    if (!s.ok()) fail(std::string(what) + ": a valid case was rejected: " + code_name(s.code) + ": " + s.message);
    return;
  }
  if (s.ok()) fail(std::string(what) + ": an invalid case was accepted (expected " + code_name(*want.begin()) + ")");
  if (!want.count(s.code)) {
    fail(std::string(what) + ": rejected with " + code_name(s.code) + " (" + s.message + "), expected " +
         code_name(*want.begin()));
  }
  CHECK(!s.message.empty(), "an error without a message");
}

// The addon's sequence (native/addon/args.cc plan_compress).
Status plan_like_addon(const Case& c, bool in_place, CompressJob* job) {
  Shape shape;
  Status s = check_pair(c.keys, c.values, &shape);
  if (!s.ok()) return s;
  if (in_place) {
    s = check_in_place(c.keys, c.values, c.params);
    if (!s.ok()) return s;
  }
  Plan plan;
  s = make_plan(shape, c.params, c.lengths_ptr(), int64_t(c.lengths.size()), &plan, c.head_keep_ptr());
  if (!s.ok()) return s;
  *job = CompressJob{};
  job->dtype = c.keys.dtype;
  job->shape = shape;
  job->keys = c.keys.data;
  job->values = c.values.data;
  job->params = c.params;
  job->plan = std::move(plan);
  job->in_place = in_place;
  // the addon checks these sizes (options.cc plan_compress); a valid case has them right
  if (c.params.score == Score::Project) {
    CHECK(int64_t(c.vectors.size()) == shape.heads * shape.key_dim, "project vectors sized for the shape");
    job->vectors = c.vectors.data();
  }
  if (c.params.score == Score::Given) {
    CHECK(int64_t(c.given.size()) == shape.rows(), "given scores sized for the shape");
    job->scores = c.given.data();
  }
  return Status::success();
}

float mul_f(float a, float b) { return float(double(a) * double(b)); }
float div_f(float a, float b) { return float(double(a) / double(b)); }
// A score's canonical value: every NaN the canonical NaN, every zero +0.
float canon(float x) { return std::isnan(x) ? as_float(kNaNBits) : (x == 0.f ? 0.f : x); }

// x . y: the norm's order with products, uncanonicalised.
float ref_dot(DType t, const void* row, const float* y, int64_t d) {
  return chunk_tree(d, [&](int64_t i) { return mul_f(float(element(t, row, i)), y[i]); });
}

// Every valid token's score (keep-highest), [rows * seq]; `norms`: the key norms' bits.
std::vector<float> ref_scores(const Case& c, const Shape& s, const std::vector<int64_t>& lengths,
                              const std::vector<uint32_t>& norms) {
  const int esz = dtype_size(c.keys.dtype);
  const DType t = c.keys.dtype;
  std::vector<float> out(size_t(s.rows()), as_float(kNaNBits));
  auto key = [&](int64_t row, int64_t tok) { return static_cast<const char*>(c.keys.data) + (row * s.seq + tok) * s.key_dim * esz; };
  for (int64_t row = 0; row < s.batch * s.heads; ++row) {
    const int64_t len = lengths[size_t(row / s.heads)];
    std::vector<float> nk(static_cast<size_t>(len));
    for (int64_t tok = 0; tok < len; ++tok) nk[size_t(tok)] = as_float(norms[size_t(row * s.seq + tok)]);
    std::vector<float> anchor;
    if (c.params.score == Score::KeyDiff) {  // per dimension: 32-token chunk sums, then the tree
      const int64_t chunks = (len + 31) / 32;
      int64_t n = 1;
      while (n < chunks) n *= 2;
      anchor.assign(size_t(s.key_dim), 0.f);
      std::vector<float> sums(static_cast<size_t>(n));
      for (int64_t d = 0; d < s.key_dim; ++d) {
        std::fill(sums.begin(), sums.end(), 0.f);
        for (int64_t ch = 0; ch < chunks; ++ch) {
          float acc = 0.f;
          for (int64_t j = ch * 32; j < std::min(len, ch * 32 + 32); ++j) {
            const float nj = nk[size_t(j)];
            if (std::isfinite(nj) && nj != 0.f) acc = add_f(acc, div_f(float(element(t, key(row, j), d)), nj));
          }
          sums[size_t(ch)] = acc;
        }
        for (int64_t half = n / 2; half >= 1; half /= 2) {
          for (int64_t i = 0; i < half; ++i) sums[size_t(i)] = add_f(sums[size_t(i)], sums[size_t(i + half)]);
        }
        anchor[size_t(d)] = chunks > 0 ? sums[0] : 0.f;
      }
    }
    for (int64_t tok = 0; tok < len; ++tok) {
      const float n = nk[size_t(tok)];
      float sc = 0.f;
      switch (c.params.score) {
        case Score::LowNorm: sc = -n; break;
        case Score::HighNorm: sc = n; break;
        case Score::KvNorm: {
          const char* v = static_cast<const char*>(c.values.data) + (row * s.seq + tok) * s.value_dim * esz;
          sc = mul_f(n, as_float(ref_norm_bits(t, v, s.value_dim)));
          break;
        }
        case Score::Project: sc = -ref_dot(t, key(row, tok), c.vectors.data() + (row % s.heads) * s.key_dim, s.key_dim); break;
        case Score::KeyDiff:
          sc = !std::isfinite(n) ? as_float(kNaNBits) : n == 0.f ? 0.f : -div_f(ref_dot(t, key(row, tok), anchor.data(), s.key_dim), n);
          break;
        case Score::Given: sc = c.given[size_t(row * s.seq + tok)]; break;
      }
      out[size_t(row * s.seq + tok)] = canon(sc);
    }
  }
  return out;
}

// Kept positions of one row, from the reference scores, as the contract ranks them.
std::vector<int32_t> ref_select(const float* scores, int64_t len, int64_t k, const CompressParams& p) {
  const int64_t sink = std::min(p.sink, len);
  const int64_t recent = std::min(p.recent, len - sink);
  auto less = [&](int32_t a, int32_t b) {
    const float na = scores[a], nb = scores[b];
    const bool an = std::isnan(na), bn = std::isnan(nb);
    if (an != bn) return bn;  // non-NaN first
    if (!an && na != nb) return na > nb;  // the higher score first (+0 == -0)
    return a < b;
  };
  std::vector<int32_t> kept, middle;
  for (int64_t i = 0; i < sink; ++i) kept.push_back(int32_t(i));
  for (int64_t i = len - recent; i < len; ++i) kept.push_back(int32_t(i));
  for (int64_t i = sink; i < len - recent; ++i) middle.push_back(int32_t(i));
  std::sort(middle.begin(), middle.end(), less);
  CHECK(int64_t(kept.size()) <= k, "sink + recent exceed k");
  middle.resize(size_t(k) - kept.size());
  kept.insert(kept.end(), middle.begin(), middle.end());
  if (p.order == Order::Norm) std::sort(kept.begin(), kept.end(), less);
  else std::sort(kept.begin(), kept.end());
  return kept;
}

bool zero_bytes(const char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) if (p[i]) return false;
  return true;
}

bool has_avx2() {
#if defined(__x86_64__)
  unsigned a, b, c, d;
  return __builtin_cpu_supports("avx2") && __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
#else
  return false;
#endif
}

// Norms of every row of a valid key tensor: reference, key_norms, portable, AVX2.
std::vector<uint32_t> check_norms(DType t, const void* keys, int64_t rows, int64_t d) {
  std::vector<uint32_t> ref(static_cast<size_t>(rows));
  const int esz = dtype_size(t);
  for (int64_t r = 0; r < rows; ++r) ref[size_t(r)] = ref_norm_bits(t, static_cast<const char*>(keys) + r * d * esz, d);
  std::vector<float> got(size_t(rows) + 1);
  const auto compare = [&](const char* path) {
    for (int64_t r = 0; r < rows; ++r) {
      uint32_t b;
      std::memcpy(&b, &got[size_t(r)], 4);
      if (b != ref[size_t(r)]) {
        char msg[200];
        std::snprintf(msg, sizeof msg, "%s norm of row %lld (head_dim %lld): 0x%08x, contract 0x%08x", path,
                      (long long)r, (long long)d, b, ref[size_t(r)]);
        fail(msg);
      }
    }
  };
  cpu::key_norms(t, keys, rows, d, got.data());
  compare("key_norms");
  cpu::row_norms_portable(t, keys, rows, d, got.data());
  compare("portable");
  if (has_avx2()) {
    CHECK(cpu::row_norms_avx2(t, keys, rows, d, got.data()), "row_norms_avx2 declined on an AVX2 CPU");
    compare("avx2");
  }
  return ref;
}

// Runs compress (or compress in place) on a planned valid job and checks every output.
// `head_keep`: the per-row counts the plan must hold (null: keep_count, the same in every row).
void run_and_check(const Case& c, CompressJob job, const std::vector<uint32_t>& norms,
                   const std::vector<int64_t>* head_keep = nullptr) {
  const std::vector<float> scores = ref_scores(c, job.shape, job.plan.lengths, norms);
  if (!job.in_place) {  // tokenScores: the same scores, bit for bit, NaN at padding
    std::vector<float> got(size_t(job.shape.rows()) + 1, 1.f);
    ScoreJob sj;
    sj.job = job;
    sj.out = got.data();
    const Status st = cpu::token_scores(sj);
    if (!st.ok()) fail(std::string("token_scores failed on a valid job: ") + st.message);
    CHECK(got.back() == 1.f, "token_scores wrote past the end");
    CHECK(scores.empty() || std::memcmp(got.data(), scores.data(), scores.size() * 4) == 0, "token_scores differ from the contract");
  }
  const Shape s = job.shape;
  const int64_t rows = s.batch * s.heads, kmax = job.plan.max_kept;
  const int esz = dtype_size(job.dtype);
  const int64_t krow = s.key_dim * esz, vrow = s.value_dim * esz;
  // the plan: lengths and counts as the contract computes them
  CHECK(int64_t(job.plan.lengths.size()) == s.batch && int64_t(job.plan.kept.size()) == rows, "plan size");
  int64_t want_max = 0;
  for (int64_t b = 0; b < s.batch; ++b) {
    const int64_t len = c.lengths_ptr() ? c.lengths[size_t(b)] : s.seq;
    CHECK(job.plan.lengths[size_t(b)] == len, "plan length");
    // per row: the given count, or keep_count; per entry: the most of its rows (with no heads:
    // keep_count without head_keep, 0 with one)
    int64_t most = head_keep ? 0 : ref_keep(c.params, len);
    for (int64_t h = 0; h < s.heads; ++h) {
      const int64_t k = head_keep ? (*head_keep)[size_t(b * s.heads + h)] : ref_keep(c.params, len);
      CHECK(job.plan.kept_of(b * s.heads + h) == k, "plan kept count");
      most = std::max(most, k);
    }
    CHECK(job.plan.batch_kept[size_t(b)] == most, "plan kept count per entry");
    want_max = std::max(want_max, most);
  }
  CHECK(kmax == want_max, "plan max_kept");

  std::vector<int32_t> idx(size_t(rows * kmax) + 1, 0x5A5A5A5A);
  std::vector<char> ok_buf, ov_buf;  // outputs (not in place): poisoned, must all be written
  std::vector<char> kcopy, vcopy;    // in place: the caller's buffers
  if (job.in_place) {
    kcopy.assign(static_cast<const char*>(c.keys.data), static_cast<const char*>(c.keys.data) + c.keys.length * esz);
    vcopy.assign(static_cast<const char*>(c.values.data), static_cast<const char*>(c.values.data) + c.values.length * esz);
    job.keys = kcopy.data();
    job.values = vcopy.data();
    job.out_keys = kcopy.data();
    job.out_values = vcopy.data();
  } else {
    ok_buf.assign(size_t(rows * kmax * krow) + 1, char(0xA5));
    ov_buf.assign(size_t(rows * kmax * vrow) + 1, char(0xA5));
    job.out_keys = ok_buf.data();
    job.out_values = ov_buf.data();
  }
  job.out_indices = idx.data();
  const Status st = cpu::compress(job);
  if (!st.ok()) fail(std::string("compress failed on a valid job: ") + code_name(st.code) + ": " + st.message);
  CHECK(idx[size_t(rows * kmax)] == 0x5A5A5A5A, "indices written past the end");

  const char* ksrc = static_cast<const char*>(c.keys.data);
  const char* vsrc = static_cast<const char*>(c.values.data);
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t b = row / s.heads, len = job.plan.lengths[size_t(b)], k = job.plan.kept_of(row);
    const std::vector<int32_t> want = ref_select(scores.data() + row * s.seq, len, k, c.params);
    const int32_t* got = idx.data() + row * kmax;
    for (int64_t j = 0; j < kmax; ++j) {
      const int32_t w = j < k ? want[size_t(j)] : -1;
      if (got[j] != w) {
        fail("row " + std::to_string(row) + " (len " + std::to_string(len) + ", k " + std::to_string(k) +
             ") index " + std::to_string(j) + ": " + std::to_string(got[j]) + ", contract " + std::to_string(w) +
             (job.in_place ? " (in place)" : ""));
      }
    }
    for (int64_t j = 0; j < (job.in_place ? s.seq : kmax); ++j) {
      const char *kd, *vd, *ke = nullptr, *ve = nullptr;
      if (job.in_place) {
        kd = kcopy.data() + (row * s.seq + j) * krow;
        vd = vcopy.data() + (row * s.seq + j) * vrow;
        const int64_t from = j < k ? want[size_t(j)] : j;  // past k: untouched
        ke = ksrc + (row * s.seq + from) * krow;
        ve = vsrc + (row * s.seq + from) * vrow;
      } else {
        kd = ok_buf.data() + (row * kmax + j) * krow;
        vd = ov_buf.data() + (row * kmax + j) * vrow;
        if (j < k) {
          ke = ksrc + (row * s.seq + want[size_t(j)]) * krow;
          ve = vsrc + (row * s.seq + want[size_t(j)]) * vrow;
        }
      }
      const bool kok = ke ? std::memcmp(kd, ke, size_t(krow)) == 0 : zero_bytes(kd, size_t(krow));
      const bool vok = ve ? std::memcmp(vd, ve, size_t(vrow)) == 0 : zero_bytes(vd, size_t(vrow));
      if (!kok || !vok) {
        fail(std::string(job.in_place ? "in place " : "") + (kok ? "value" : "key") + " row " + std::to_string(row) +
             " slot " + std::to_string(j) + " (k " + std::to_string(k) + ") differs from the contract");
      }
    }
  }
  if (!job.in_place) {
    CHECK(ok_buf.back() == char(0xA5) && ov_buf.back() == char(0xA5), "output written past the end");
  }
}

// Orders two scores as the contract ranks them (keep-highest): non-NaN first, the higher first
// (+0 == -0); false when they tie.
bool score_before(float a, float b) {
  const bool an = std::isnan(a), bn = std::isnan(b);
  if (an != bn) return bn;
  return !an && a > b;
}

// docs/policies.md "Selection modes", written here from the text: per-row counts of the threshold
// and adaptive selections of `scores` (ref_scores'), for entries of the given lengths, with
// `kept` the 'per-head' count of each row. Sorts where selection.cc radix-selects.
std::vector<int64_t> ref_selection_counts(const Case& c, const Shape& s, const std::vector<int64_t>& lengths,
                                          const std::vector<int64_t>& kept, const std::vector<float>& scores, float t) {
  const CompressParams& p = c.params;
  std::vector<int64_t> out(size_t(s.batch * s.heads));
  for (int64_t b = 0; b < s.batch; ++b) {
    const int64_t len = lengths[size_t(b)];
    const int64_t n_sink = std::min(p.sink, len), n_recent = std::min(p.recent, len - n_sink);
    const int64_t prot = n_sink + n_recent, mb = n_sink, me = len - n_recent;
    if (c.heads_mode == 2) {
      for (int64_t h = 0; h < s.heads; ++h) {
        const float* r = scores.data() + (b * s.heads + h) * s.seq;
        int64_t n = 0;
        for (int64_t i = mb; i < me; ++i) n += (!std::isnan(r[i]) && r[i] >= t) ? 1 : 0;
        out[size_t(b * s.heads + h)] = prot + n;
      }
      continue;
    }
    // adaptive: m = k - p per head on average; each head's own f best; then the best H (m - f)
    // of the others, across heads by (score, head, position)
    const int64_t m = s.heads > 0 ? kept[size_t(b * s.heads)] - prot : 0;
    const int64_t f = std::min(m, int64_t(std::floor(c.alpha * double(m))));
    struct Tok { float score; int64_t head, pos; };
    std::vector<Tok> rest;
    for (int64_t h = 0; h < s.heads; ++h) {
      const float* r = scores.data() + (b * s.heads + h) * s.seq;
      std::vector<Tok> mine;
      for (int64_t t = mb; t < me; ++t) mine.push_back({r[t], h, t});
      std::stable_sort(mine.begin(), mine.end(), [](const Tok& x, const Tok& y) { return score_before(x.score, y.score); });
      out[size_t(b * s.heads + h)] = prot + std::min<int64_t>(f, int64_t(mine.size()));
      for (size_t i = size_t(std::max<int64_t>(f, 0)); i < mine.size(); ++i) rest.push_back(mine[i]);
    }
    std::sort(rest.begin(), rest.end(), [](const Tok& x, const Tok& y) {
      if (score_before(x.score, y.score)) return true;
      if (score_before(y.score, x.score)) return false;
      return x.head != y.head ? x.head < y.head : x.pos < y.pos;
    });
    const int64_t pick = std::min<int64_t>(std::max<int64_t>(s.heads * (m - f), 0), int64_t(rest.size()));
    for (int64_t i = 0; i < pick; ++i) ++out[size_t(b * s.heads + rest[size_t(i)].head)];
  }
  return out;
}

// Threshold or adaptive on a valid, planned ('per-head') job: selection_counts against the
// reference and the invariants, then make_plan with the counts as head_keep and the compress.
void check_selection(const Case& c, CompressJob job, const std::vector<uint32_t>& norms) {
  const Shape s = job.shape;
  const int64_t rows = s.batch * s.heads;
  const std::vector<float> scores = ref_scores(c, s, job.plan.lengths, norms);
  CompressParams sp = c.params;
  sp.selection = c.heads_mode == 2 ? Selection::Threshold : Selection::Adaptive;
  sp.threshold = c.threshold;
  sp.alpha = c.alpha;
  if (c.heads_mode == 2 && c.threshold_from_scores) {  // some valid token's score, when one is not NaN
    std::vector<float> valid;
    for (int64_t row = 0; row < rows; ++row) {
      for (int64_t t = 0; t < job.plan.lengths[size_t(row / s.heads)]; ++t) {
        const float x = scores[size_t(row * s.seq + t)];
        if (!std::isnan(x)) valid.push_back(x);
      }
    }
    if (!valid.empty()) sp.threshold = valid[size_t(c.threshold_seed % valid.size())];
  }
  std::vector<int32_t> got(size_t(rows) + 1, 0x5A5A5A5A);
  selection_counts(s, sp, job.plan, scores.data(), got.data());
  CHECK(got[size_t(rows)] == 0x5A5A5A5A, "selection_counts wrote past the end");
  const std::vector<int64_t> want = ref_selection_counts(c, s, job.plan.lengths, job.plan.kept, scores, sp.threshold);
  for (int64_t row = 0; row < rows; ++row) {
    if (got[size_t(row)] != want[size_t(row)]) {
      fail(std::string(c.heads_mode == 2 ? "threshold" : "adaptive") + " count of row " + std::to_string(row) + ": " +
           std::to_string(got[size_t(row)]) + ", reference " + std::to_string(want[size_t(row)]) + " (len " +
           std::to_string(job.plan.lengths[size_t(row / s.heads)]) + ", kept " + std::to_string(job.plan.kept_of(row)) + ")");
    }
  }
  // the documented invariants, once more, from the counts alone
  for (int64_t b = 0; b < s.batch; ++b) {
    const int64_t len = job.plan.lengths[size_t(b)];
    const int64_t prot = std::min(len, std::min(c.params.sink, len) + std::min(c.params.recent, len - std::min(c.params.sink, len)));
    int64_t sum = 0;
    for (int64_t h = 0; h < s.heads; ++h) {
      const int64_t row = b * s.heads + h, k = got[size_t(row)];
      CHECK(k >= prot && k <= len, "a selection count outside [p, len]");
      if (c.heads_mode == 3) {
        const int64_t m = job.plan.kept_of(row) - prot;
        CHECK(k >= prot + int64_t(std::floor(c.alpha * double(m))), "an adaptive count below p + floor(alpha * m)");
      }
      sum += k;
    }
    if (c.heads_mode == 3) CHECK(sum == s.heads * (s.heads > 0 ? job.plan.kept_of(b * s.heads) : 0), "adaptive: sum of counts != H * k");
  }
  // the compress that follows: the counts as head_keep
  std::vector<int64_t> hk(want);
  Plan plan;
  const Status st = make_plan(s, c.params, c.lengths_ptr(), int64_t(c.lengths.size()), &plan, &hk);
  if (!st.ok()) fail(std::string("make_plan refused selection_counts' counts: ") + st.message);
  for (int64_t row = 1; row < rows; ++row) {
    if (row % s.heads && hk[size_t(row)] != hk[size_t(row - 1)]) {
      ++stats.ragged;
      break;
    }
  }
  job.plan = std::move(plan);
  run_and_check(c, std::move(job), norms, &hk);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::fprintf(stderr, "kvtrim fuzz: norm ISA %s, AVX2 path %s\n", cpu::norm_isa(),
               has_avx2() ? "checked too" : "absent");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  // ---- shape and dtype
  const DType dtype = DType(in.ConsumeIntegralInRange<int>(0, 2));
  int64_t B = in.ConsumeIntegralInRange<int64_t>(0, 3);
  int64_t H = in.ConsumeIntegralInRange<int64_t>(0, 4);
  int64_t S = in.ConsumeIntegralInRange<int64_t>(0, 300);
  if (in.ConsumeIntegralInRange<int>(0, 7) == 0) S = in.ConsumeIntegralInRange<int64_t>(300, 5000);
  const int64_t Dk = in.ConsumeIntegralInRange<int>(0, 15) ? in.ConsumeIntegralInRange<int64_t>(1, 300)
                                                           : in.ConsumeIntegralInRange<int64_t>(301, 1024);
  const int64_t Dv = in.ConsumeBool() ? Dk : in.ConsumeIntegralInRange<int64_t>(1, 300);
  if (B * H > 0) S = std::min(S, kBudget / (B * H * (Dk + Dv)));
  const int64_t nk = B * H * S * Dk, nv = B * H * S * Dv;
  const int esz = dtype_size(dtype);

  // ---- options
  Case c;
  CompressParams& p = c.params;
  p.use_ratio = in.ConsumeBool();
  switch (in.ConsumeIntegralInRange<int>(0, 11)) {
    case 0: p.keep_ratio = 1.0; break;
    case 1: p.keep_ratio = 0.0; break;
    case 2: p.keep_ratio = -0.5; break;
    case 3: p.keep_ratio = std::nan(""); break;
    case 4: p.keep_ratio = INFINITY; break;
    case 5: p.keep_ratio = std::nextafter(1.0, 2.0); break;
    case 6: p.keep_ratio = 4.9406564584124654e-324; break;
    case 7: p.keep_ratio = 0.07; break;
    default: p.keep_ratio = in.ConsumeProbability<double>(); break;  // [0, 1]
  }
  // an integer in [lo, hi], often one of the edges or just outside them
  auto edgy = [&](int64_t lo, int64_t hi) -> int64_t {
    switch (in.ConsumeIntegralInRange<int>(0, 7)) {
      case 0: return lo - 1;
      case 1: return lo;
      case 2: return hi;
      case 3: return hi + 1;
      default: return in.ConsumeIntegralInRange<int64_t>(lo, hi);
    }
  };
  p.keep = edgy(0, S);
  p.order = in.ConsumeBool() ? Order::Norm : Order::Position;
  p.score = Score(in.ConsumeIntegralInRange<int>(0, 5));
  auto window = [&]() -> int64_t {
    switch (in.ConsumeIntegralInRange<int>(0, 7)) {
      case 0: return -1;
      case 1: return kMaxRowsContract;
      case 2: return kMaxRowsContract + 1;
      case 3: case 4: return 0;
      default: return edgy(0, S);
    }
  };
  p.sink = window();
  p.recent = window();
  switch (in.ConsumeIntegralInRange<int>(0, 7)) {
    case 0: case 1: case 2: break;  // no lengths
    case 3:  // a wrong count
      c.has_lengths = true;
      c.lengths.assign(size_t(in.ConsumeIntegralInRange<int>(0, 4)), S);
      break;
    default: {  // one per batch entry, sometimes out of range
      c.has_lengths = true;
      const bool wild = in.ConsumeIntegralInRange<int>(0, 3) == 0;
      for (int64_t b = 0; b < B; ++b) {
        c.lengths.push_back(wild ? edgy(0, S) : in.ConsumeIntegralInRange<int64_t>(0, S));
      }
    }
  }
  const bool in_place = in.ConsumeBool();
  // selection modes: 5/8 'per-head'; head_keep; threshold; adaptive
  c.heads_mode = std::max(0, in.ConsumeIntegralInRange<int>(-4, 3));
  const int hk_shape = in.ConsumeIntegralInRange<int>(0, 15);  // 0: a wrong count; 1..3: one count out of range
  switch (in.ConsumeIntegralInRange<int>(0, 7)) {  // adaptive's alpha, in [0, 1]
    case 0: c.alpha = 0.0; break;
    case 1: c.alpha = 1.0; break;
    case 2: c.alpha = 0.2; break;
    case 3: c.alpha = std::nextafter(1.0, 0.0); break;
    default: c.alpha = in.ConsumeProbability<double>(); break;
  }
  const int t_pick = in.ConsumeIntegralInRange<int>(0, 7);  // the threshold: see below
  const float t_random = in.ConsumeFloatingPoint<float>();
  const int mutation = in.ConsumeIntegralInRange<int>(0, 15);  // 0..8: one invalid tensor argument
  const int mode = in.ConsumeIntegralInRange<int>(0, 3), rate = in.ConsumeIntegral<uint8_t>();
  const int spread = in.ConsumeIntegralInRange<int>(0, 14);
  SplitMix rng{in.ConsumeIntegral<uint64_t>()};
  c.threshold_seed = rng.next();

  // ---- data: random fill, then the rest of the input overlaid on the keys' bytes
  // exact sizes: any read past a tensor is ASan's to see
  std::vector<char> kbuf(size_t(nk * esz)), vbuf(size_t(nv * esz));
  fill(dtype, kbuf.data(), B * H * S, Dk, mode, rate, spread, rng);
  fill(dtype, vbuf.data(), B * H * S, Dv, mode == 0 ? 0 : 1, 16, 3, rng);
  const std::vector<uint8_t> rest = in.ConsumeRemainingBytes<uint8_t>();
  if (!rest.empty() && nk > 0) std::memcpy(kbuf.data(), rest.data(), std::min(rest.size(), size_t(nk * esz)));

  // the scorers' inputs: finite vectors (the addon refuses others), given scores with specials
  if (p.score == Score::Project) {
    for (int64_t i = 0; i < H * Dk; ++i) c.vectors.push_back(as_float(rng.below(8) ? normal_bits(DType::F32, rng, 3) : 0u));
  }
  // with a selection mode, half the given-score cases draw from {-1, 0, 1, 2, NaN}: ties across
  // heads at adaptive's pick boundary and at a threshold (the cross-head tie-break)
  const bool coarse = c.heads_mode >= 2 && rng.below(2);
  if (p.score == Score::Given && coarse) {
    static const float kCoarse[] = {-1.f, 0.f, 1.f, 2.f, NAN};
    for (int64_t i = 0; i < B * H * S; ++i) c.given.push_back(kCoarse[rng.below(rng.below(4) ? 4 : 5)]);
  } else if (p.score == Score::Given) {
    for (int64_t i = 0; i < B * H * S; ++i) {
      const uint32_t u = rng.below(8);
      c.given.push_back(as_float(u == 0 ? special_bits(DType::F32, rng) : u == 1 ? small_set_bits(DType::F32, rng) : normal_bits(DType::F32, rng, 4)));
    }
  }
  if (c.heads_mode == 1) {  // per-row counts, each in [min(len, sink + recent), len] unless made wrong
    const int64_t rows = B * H;
    const bool lengths_ok = c.has_lengths && int64_t(c.lengths.size()) == B;
    for (int64_t row = 0; row < rows; ++row) {
      int64_t len = lengths_ok ? c.lengths[size_t(row / H)] : S;
      len = std::clamp<int64_t>(len, 0, S);
      const int64_t lo = std::min(len, std::max<int64_t>(0, p.sink) + std::max<int64_t>(0, p.recent));
      const uint32_t u = rng.below(4);
      c.head_keep.push_back(u == 0 ? lo : u == 1 ? len : lo + int64_t(rng.below(uint32_t(len - lo + 1))));
    }
    if (hk_shape == 0) {
      if (rng.below(2) || c.head_keep.empty()) c.head_keep.push_back(0);
      else c.head_keep.pop_back();
    } else if (hk_shape <= 3 && !c.head_keep.empty()) {
      int64_t& k = c.head_keep[size_t(rng.below(uint32_t(c.head_keep.size())))];
      k = hk_shape == 1 ? -1 - int64_t(rng.below(3)) : hk_shape == 2 ? S + 1 + int64_t(rng.below(3)) : k + (rng.below(2) ? 1 : -1);
    }
  }
  switch (t_pick) {  // a threshold: not NaN (the addon refuses it), often exactly some token's score
    case 0: c.threshold = -INFINITY; break;
    case 1: c.threshold = INFINITY; break;
    case 2: c.threshold = rng.below(2) ? 0.f : -0.f; break;
    case 3: c.threshold = std::isnan(t_random) ? 1.f : t_random; break;
    default: c.threshold = 0.f; c.threshold_from_scores = true; break;
  }
  c.keys = TensorView{dtype, kbuf.data(), nk, {B, H, S, Dk}};
  c.values = TensorView{dtype, vbuf.data(), nv, {B, H, S, Dv}};
  switch (mutation) {  // the buffers always hold `length` elements: lies are in dims only
    case 0: c.keys.dims.push_back(1); break;                       // rank 5
    case 1: c.values.dims.pop_back(); break;                       // rank 3
    case 2: c.keys.dims[size_t(rng.below(4))] = -1 - int64_t(rng.below(3)); break;
    case 3: c.values.dims[3] = rng.below(2) ? 0 : kMaxHeadDimContract + 1 + rng.below(100); break;
    case 4: c.keys.dims[2] = int64_t(1) << (31 + rng.below(30)); break;  // rows overflow int32
    case 5: c.keys.length = std::max<int64_t>(0, nk - 1 - rng.below(3)); break;
    case 6: c.values.dtype = DType((int(dtype) + 1 + rng.below(2)) % 3); break;
    case 7: c.values.dims[size_t(rng.below(3))] += 1; break;
    case 8:  // values inside the keys' memory: fine for compress, refused in place when they overlap
      if (nv <= nk && nk > 0) c.values.data = kbuf.data() + esz * rng.below(uint32_t(nk - nv + 1));
      break;
    default: break;
  }

  // ---- keyNorms, as the addon runs it: check_tensor, then the norms of every row
  std::vector<uint32_t> norms;
  const std::set<Code> key_errors = tensor_errors(c.keys);
  check_status(check_tensor(c.keys, "keys"), key_errors, "check_tensor(keys)");
  if (key_errors.empty()) norms = check_norms(dtype, c.keys.data, c.keys.dims[0] * c.keys.dims[1] * c.keys.dims[2], c.keys.dims[3]);

  // ---- compress, then compressInPlace (which needs order 'position')
  for (const bool ip : {false, true}) {
    if (ip && !in_place) continue;
    CompressJob job{};
    const std::set<Code> want = expected_errors(c, ip);
    check_status(plan_like_addon(c, ip, &job), want, ip ? "compressInPlace plan" : "compress plan");
    if (!want.empty()) {
      stats.head_keep_refused += c.heads_mode == 1 && want.count(Code::InvalidKeep);
      continue;
    }
    ++(c.heads_mode == 0 ? stats.per_head : c.heads_mode == 1 ? stats.head_keep : c.heads_mode == 2 ? stats.threshold : stats.adaptive);
    if (c.heads_mode == 1) run_and_check(c, std::move(job), norms, &c.head_keep);
    else if (c.heads_mode >= 2) check_selection(c, std::move(job), norms);
    else run_and_check(c, std::move(job), norms);
  }
  return 0;
}
