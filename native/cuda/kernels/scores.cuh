// The scorers of docs/policies.md on the GPU: phase A of the fused compress (compress.cuh) and
// the tokenScores kernel run these same functions, so a score has one formula per backend.
//
// Per scorer, for the tokens [t0, t1) of one (batch, head) row, each token's fp32 score s
// (keep-highest) goes to emit(tok, s), called by one lane per token:
//   low-norm / high-norm  -n / n (tokenScores only: compress ranks these by rank_key directly)
//   kv-norm   pass 1 key norms into `scratch` as float bits; pass 2 value norms (the value rows'
//             own geometry, so their own lane grouping), s = nk * nv
//   project   s = -(f_h . k), f_h = vectors[h] (uploaded by the launcher)
//   keydiff   pass 1 key norms into `scratch`; pass 2 the anchor (token chunks of kTokenChunk
//             summed per dimension into `chunks`, then the pairwise tree; G = 1 only: the
//             anchor spans the whole row); pass 3 s = -(k . a) / n. The keys are read 3 times.
//   given     s = scores[row, t]; no key row is read
// Every pass is block-uniform (the passes are separated by __syncthreads), so all threads of
// the block must call score_tokens.
#pragma once
#include "../../core/select.h"
#include "norms.cuh"

namespace kvtrim::cuda {

constexpr int kLowNorm = int(Score::LowNorm), kHighNorm = int(Score::HighNorm), kKvNorm = int(Score::KvNorm),
              kKeyDiff = int(Score::KeyDiff), kProject = int(Score::Project), kGiven = int(Score::Given);

// The scorer inputs of one job (device pointers; compress.cu's args_for fills them).
struct ScoreArgs {
  int scorer;            // Score
  NormGeometry vnorm;    // kv-norm: the value rows
  const float* vectors;  // project: [heads, key_dim]
  const float* given;    // given: [rows, seq], the caller's tensor
  float* chunks;         // keydiff: [rows, token_chunks, key_dim]; chunk 0 ends as the anchor
  int token_chunks;      // ceil(seq / kTokenChunk)
};

// score.h's canonical_score: NaN as kCanonicalNaN, a zero as +0 (tokenScores returns bits).
KVTRIM_DEV float canonical_score_dev(float s) {
  if (s != s) return __uint_as_float(kCanonicalNaN);
  return s == 0.f ? 0.f : s;
}

KVTRIM_DEV bool finite_dev(float x) { return (__float_as_uint(x) & 0x7FFFFFFFu) < 0x7F800000u; }

// score.h's keydiff_score: NaN for an infinite or NaN norm, 0 for a zero key, else -(d / n).
KVTRIM_DEV float keydiff_score_dev(float dot, float n) {
  if (!finite_dev(n)) return __uint_as_float(kCanonicalNaN);
  if (n == 0.f) return 0.f;
  return -__fdiv_rn(dot, n);
}

// Calls f(tok, valid, leader) once per lane for the tokens of [t0, t1), a group of `lanes`
// lanes per token (group_row_sum's segments); every lane takes the same trip count per warp.
template <class F>
KVTRIM_DEV void for_token_groups(int t0, int t1, int lanes, F f) {
  const int groups_per_warp = 32 / lanes;
  const int warp = int(threadIdx.x >> 5), warps = int(blockDim.x >> 5);
  const int group = int(threadIdx.x & 31u) / lanes;
  const bool leader = (threadIdx.x & unsigned(lanes - 1)) == 0;
  for (int t = t0 + warp * groups_per_warp; t < t1; t += warps * groups_per_warp) {
    const int tok = t + group;
    f(tok < t1 ? tok : t0, tok < t1, leader);
  }
}

// KeyDiff's anchor of a row of `len` tokens (norms as float bits in `norms`) into chunks[0, D):
// per (token chunk c, dimension d) one thread sums its 32 tokens in order (threads of a warp
// take consecutive d: coalesced), then the pairwise tree over the chunks, a barrier per level.
template <int KIND>
KVTRIM_DEV void keydiff_anchor(const unsigned char* keys, int row_bytes, int D, int len, const unsigned* norms,
                               float* chunks) {
  const int n = (len + kTokenChunk - 1) / kTokenChunk;
  for (long long i = threadIdx.x; i < (long long)n * D; i += blockDim.x) {  // n * D can pass 2^31
    const int c = int(i / D), d = int(i - (long long)c * D);
    const int end = min_i(len, (c + 1) * kTokenChunk);
    float s = 0.f;
    for (int j = c * kTokenChunk; j < end; ++j) {
      const float nj = __uint_as_float(norms[j]);
      if (!finite_dev(nj) || nj == 0.f) continue;  // adds nothing (score.h: keydiff_counts)
      const unsigned char* r = keys + (long long)j * row_bytes;
      const unsigned raw = KIND == kF32 ? reinterpret_cast<const unsigned*>(r)[d]
                                        : unsigned(reinterpret_cast<const unsigned short*>(r)[d]);
      s = __fadd_rn(s, __fdiv_rn(to_f32<KIND>(raw), nj));
    }
    chunks[i] = s;
  }
  __syncthreads();
  for (int half = int(pow2_ceil(n)) / 2; half >= 1; half /= 2) {
    for (long long i = threadIdx.x; i < (long long)half * D; i += blockDim.x) {
      if (i / D + half < n) chunks[i] = __fadd_rn(chunks[i], chunks[i + (long long)half * D]);
    }
    __syncthreads();
  }
  if (n == 0) {  // no valid token: a zero anchor (nothing reads it; kept defined)
    for (int d = threadIdx.x; d < D; d += blockDim.x) chunks[d] = 0.f;
    __syncthreads();
  }
}

// The scores of tokens [t0, t1) of row `row` (module comment). `a` is CompressArgs (compress.cuh):
// keys, values, heads, seq, row bytes, norm (the key geometry), high, sc. `scratch` holds one
// 32-bit word per token of the row (compress's keys32): emit may overwrite scratch[tok].
template <int KIND, class A, class Emit>
KVTRIM_DEV void score_tokens(const A& a, long long row, int t0, int t1, int len, unsigned* scratch, Emit emit) {
  const ScoreArgs& sc = a.sc;
  const int scorer = sc.scorer;
  const int krb = a.key_row_bytes;
  const unsigned char* kbase = a.keys + row * a.seq * krb;
  if (scorer == kGiven) {
    const float* given = sc.given + row * a.seq;
    for (int t = t0 + int(threadIdx.x); t < t1; t += blockDim.x) emit(t, given[t]);
    return;
  }
  if (scorer == kProject || scorer == kLowNorm || scorer == kHighNorm) {
    const float* f = scorer == kProject ? sc.vectors + (row % a.heads) * a.norm.head_dim : nullptr;
    for_token_groups(t0, t1, a.norm.lanes, [&](int tok, bool valid, bool leader) {
      const unsigned char* k = kbase + (long long)tok * krb;
      if (scorer == kProject) {
        const float d = group_row_dot<KIND>(k, valid, a.norm, f);
        if (valid && leader) emit(tok, -d);
      } else {
        const float n = group_row_norm<KIND>(k, valid, a.norm);
        if (valid && leader) emit(tok, scorer == kHighNorm ? n : -n);
      }
    });
    return;
  }
  // kv-norm and keydiff: the key norms first, as float bits.
  for_token_groups(t0, t1, a.norm.lanes, [&](int tok, bool valid, bool leader) {
    const float n = group_row_norm<KIND>(kbase + (long long)tok * krb, valid, a.norm);
    if (valid && leader) scratch[tok] = __float_as_uint(n);
  });
  __syncthreads();
  if (scorer == kKvNorm) {
    const unsigned char* vbase = a.values + row * a.seq * a.value_row_bytes;
    for_token_groups(t0, t1, sc.vnorm.lanes, [&](int tok, bool valid, bool leader) {
      const float nv = group_row_norm<KIND>(vbase + (long long)tok * a.value_row_bytes, valid, sc.vnorm);
      if (valid && leader) emit(tok, __fmul_rn(__uint_as_float(scratch[tok]), nv));
    });
    return;
  }
  // keydiff (G = 1: [t0, t1) is [0, len))
  float* chunks = sc.chunks + row * sc.token_chunks * a.norm.head_dim;
  keydiff_anchor<KIND>(kbase, krb, a.norm.head_dim, len, scratch, chunks);
  for_token_groups(t0, t1, a.norm.lanes, [&](int tok, bool valid, bool leader) {
    const float d = group_row_dot<KIND>(kbase + (long long)tok * krb, valid, a.norm, chunks);
    if (valid && leader) emit(tok, keydiff_score_dev(d, __uint_as_float(scratch[tok])));
  });
}

// tokenScores: one block per row; every token's canonical score, NaN at t >= len.
template <int KIND, class A>
__global__ void __launch_bounds__(512) token_scores_kernel(const __grid_constant__ A a, float* out) {
  const long long row = blockIdx.x;
  const int len = a.lengths[row / a.heads];
  float* o = out + row * a.seq;
  score_tokens<KIND>(a, row, 0, len, len, a.keys32 + row * a.seq,
                     [&](int tok, float s) { o[tok] = canonical_score_dev(s); });
  for (long long t = len + threadIdx.x; t < a.seq; t += blockDim.x) o[t] = __uint_as_float(kCanonicalNaN);
}

}  // namespace kvtrim::cuda
