// The scorers of docs/policies.md on the GPU: phase A of the fused compress (compress.cuh) and
// the tokenScores kernel run these same functions, so a score has one formula per backend.
//
// Per scorer, for the tokens [t0, t1) of one (batch, head) row, each token's fp32 score s
// (keep-highest) goes to emit(tok, s), called by one lane per token:
//   low-norm / high-norm  -n / n (tokenScores only: compress ranks these by rank_key directly)
//   kv-norm   pass 1 key norms into `scratch` as float bits; pass 2 value norms (the value rows'
//             own geometry, so their own lane grouping), s = nk * nv (one rounded product)
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

// contract.h's canonical score: NaN as kCanonicalNaN, a zero as +0 (tokenScores returns bits).
KVTRIM_DEV float canonical_score_dev(float s) { return __uint_as_float(canonical_score_bits(__float_as_uint(s))); }

// contract.h's keydiff_case: NaN for an infinite or NaN norm, 0 for a zero key, else -(d / n).
KVTRIM_DEV float keydiff_score_dev(float dot, float n) {
  const KeyDiffCase c = keydiff_case(__float_as_uint(n));
  if (c == KeyDiffCase::NaN) return __uint_as_float(kCanonicalNaN);
  if (c == KeyDiffCase::Zero) return 0.f;
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
// Threads map to (chunk, dimension) once (no division in the loops: registers). Out of line on
// the GPU (measured: inlined, its division spilled compress_kernel's 16-byte variants on sm_75).
template <int KIND>
KVTRIM_DEV_NOINLINE void keydiff_anchor(const unsigned char* keys, int row_bytes, int D, int len, const unsigned* norms,
                               float* chunks) {
  const int n = (len + kTokenChunk - 1) / kTokenChunk;
  const int span = min_i(D, int(blockDim.x));   // threads per chunk
  const int per = int(blockDim.x) / span;        // chunks at once
  const int c_first = int(threadIdx.x) / span, d_first = int(threadIdx.x) - c_first * span;
  const bool active = c_first < per;
  for (int c = c_first; active && c < n; c += per) {
    const int j0 = c * kTokenChunk, end = min_i(len, j0 + kTokenChunk);
    for (int d = d_first; d < D; d += span) {
      float s = 0.f;
      const unsigned char* r = keys + (long long)j0 * row_bytes + (long long)d * (KIND == kF32 ? 4 : 2);
#pragma unroll 1
      for (int j = j0; j < end; ++j, r += row_bytes) {  // a running pointer: fewer live registers
        if (keydiff_case(norms[j]) != KeyDiffCase::Divide) continue;  // adds nothing
        const float nj = __uint_as_float(norms[j]);
        const unsigned raw = KIND == kF32 ? *reinterpret_cast<const unsigned*>(r) : unsigned(*reinterpret_cast<const unsigned short*>(r));
        s = __fadd_rn(s, __fdiv_rn(to_f32<KIND>(raw), nj));
      }
      chunks[(long long)c * D + d] = s;
    }
  }
  __syncthreads();
  for (int half = int(pow2_ceil(n)) / 2; half >= 1; half /= 2) {
    for (int c = c_first; active && c < half && c + half < n; c += per) {
      float* x = chunks + (long long)c * D;
      const float* y = x + (long long)half * D;
      for (int d = d_first; d < D; d += span) x[d] = __fadd_rn(x[d], y[d]);
    }
    __syncthreads();
  }
  if (n == 0) {  // no valid token: a zero anchor (nothing reads it; kept defined)
    for (int d = threadIdx.x; d < D; d += blockDim.x) chunks[d] = 0.f;
    __syncthreads();
  }
}

// The scores of tokens [t0, t1) of row `row` (module comment). `a` is CompressArgs (compress.cuh):
// keys, values, heads, seq, row bytes, norm (the key geometry), sc. `scratch` holds one 32-bit
// word per token of the row (compress's keys32): emit may overwrite scratch[tok].
// Every row-reading scorer is one or two passes of ONE row-sum loop (squares, or products with
// y when y is set): one inlined copy of the unrolled sum instead of five (registers).
template <int KIND, class A, class Emit>
KVTRIM_DEV void score_tokens(const A& a, long long row, int t0, int t1, int len, unsigned* scratch, Emit emit) {
  const ScoreArgs& sc = a.sc;
  const int scorer = sc.scorer;
  if (scorer == kGiven) {
    const float* given = sc.given + row * a.seq;
    for (int t = t0 + int(threadIdx.x); t < t1; t += blockDim.x) emit(t, given[t]);
    return;
  }
  const unsigned char* kbase = a.keys + row * a.seq * a.key_row_bytes;
  float* chunks = sc.chunks + row * sc.token_chunks * a.norm.head_dim;  // keydiff only
  // kv-norm and keydiff: pass 0 stores the key norms in scratch, pass 1 makes the score
  const int passes = scorer == kKvNorm || scorer == kKeyDiff ? 2 : 1;
  for (int pass = 0; pass < passes; ++pass) {
    if (pass == 1) {
      __syncthreads();  // the norms are written
      if (scorer == kKeyDiff) keydiff_anchor<KIND>(kbase, a.key_row_bytes, a.norm.head_dim, len, scratch, chunks);
    }
    const bool values = scorer == kKvNorm && pass == 1;
    const NormGeometry& g = values ? sc.vnorm : a.norm;
    const unsigned char* base = values ? a.values + row * a.seq * a.value_row_bytes : kbase;
    const int row_bytes = values ? a.value_row_bytes : a.key_row_bytes;
    const float* y = scorer == kProject ? sc.vectors + (row % a.heads) * a.norm.head_dim
                   : (scorer == kKeyDiff && pass == 1 ? chunks : nullptr);
    for_token_groups(t0, t1, g.lanes, [&](int tok, bool valid, bool leader) {
      const float sum = group_row_sum<KIND, kSquaresOrDot>(base + (long long)tok * row_bytes, valid, g, y);
      if (!valid || !leader) return;
      if (y != nullptr) {  // a dot: project's, or keydiff's with the anchor
        emit(tok, scorer == kProject ? -sum : keydiff_score_dev(sum, __uint_as_float(scratch[tok])));
        return;
      }
      const float n = norm_of_sum(sum);
      if (passes == 2 && pass == 0) scratch[tok] = __float_as_uint(n);
      else if (values) emit(tok, __fmul_rn(__uint_as_float(scratch[tok]), n));
      else emit(tok, scorer == kHighNorm ? n : -n);
    });
  }
}

// tokenScores: one block of kScoreThreads per row; every token's canonical score, NaN at
// t >= len. 2 blocks per SM asked of ptxas: with the bound alone it spilled (bfloat16).
constexpr int kScoreThreads = 512;
template <int KIND, class A>
__global__ void __launch_bounds__(kScoreThreads, 2) token_scores_kernel(const __grid_constant__ A a, float* out) {
  const long long row = blockIdx.x;
  const int len = a.lengths[row / a.heads];
  float* o = out + row * a.seq;
  score_tokens<KIND>(a, row, 0, len, len, a.keys32 + row * a.seq,
                     [&](int tok, float s) { o[tok] = canonical_score_dev(s); });
  for (long long t = len + threadIdx.x; t < a.seq; t += blockDim.x) o[t] = __uint_as_float(kCanonicalNaN);
}

}  // namespace kvtrim::cuda
