// Key norms and row dots on the GPU in the contract's canonical order (native/core/norm.h and
// score.h say it in C++).
//
// A token's row is read by a group of L lanes of one warp (L = min(32, chunks rounded up to a
// power of two)); lane l owns chunks l, l + L, l + 2L, ... and sums each chunk's kChunk (8)
// squares left to right with separately rounded __fmul_rn / __fadd_rn. The contract's pairwise tree
// (sum[i] += sum[i + half]) first pairs chunks that the same lane owns (half >= L: local adds),
// then lanes (half < L: __shfl_down_sync within the L-lane segment). Zero pads are skipped, which
// is exact: x + 0 == x for every sum of squares. So the result is bit-identical to the CPU.
// With L = 16 for head_dim 128 in fp16, each lane's chunk is one 16-byte load: 2 tokens per warp
// per step, fully coalesced (a warp reads 512 contiguous bytes).
#pragma once
#include "common.cuh"

namespace kvtrim::cuda {

constexpr int kMaxLocalChunks = kMaxChunks / 32;  // head_dim <= 1024: 128 chunks over 32 lanes
static_assert(kMaxLocalChunks == 4, "group_row_norm's local tree is written for 4 chunks per lane");
// The vector path loads one chunk as one 16-byte load (16-bit elements) or two (fp32).
static_assert(kChunk == 8, "chunk_sum's vector path is written for chunks of 8 elements");

struct NormGeometry {
  int head_dim;  // elements per row
  int chunks;    // num_chunks(head_dim): ceil(head_dim / kChunk)
  int lanes;     // L: lanes per token, a power of two <= 32
  int local;     // J = pow2(chunks) / L: chunks per lane, 1, 2 or 4
  int vec;       // 1: rows are 16-byte aligned multiples of 8 elements (vector loads)
};

// The geometry of a row of head_dim elements at `base` (host side; kernels receive it): L lanes
// per token (the chunk count rounded up to a power of two, at most 32), J chunks per lane, and
// vector loads where every row is 16-byte aligned and a whole number of chunks.
inline NormGeometry norm_geometry(int64_t head_dim, const void* base) {
  NormGeometry g;
  g.head_dim = int(head_dim);
  g.chunks = int(num_chunks(head_dim));
  const int p2 = int(pow2_ceil(g.chunks));
  g.lanes = p2 < 32 ? p2 : 32;
  g.local = p2 / g.lanes;
  g.vec = (head_dim % kChunk == 0) && (reinterpret_cast<uintptr_t>(base) % 16 == 0) ? 1 : 0;
  return g;
}

// What a row sum adds: squares (a norm), products with a float32 vector y (a dot), or either,
// chosen at run time by y != nullptr (one copy of the code for a kernel that needs both).
enum SumKind : int { kSquares = 0, kDot = 1, kSquaresOrDot = 2 };

// One term of a chunk's left-to-right sum: x[i] * x[i] or x[i] * y[i], each product rounded
// on its own, the chunk's first term taken as it is.
template <int KIND, int SUM>
KVTRIM_DEV float term_add(float s, unsigned raw, const float* y, int i, bool first) {
  const float x = to_f32<KIND>(raw);
  const float p = __fmul_rn(x, SUM == kSquares ? x : SUM == kDot ? y[i] : (y != nullptr ? y[i] : x));
  return first ? p : __fadd_rn(s, p);
}

// Left-to-right sum of chunk c of a row (SumKind SUM).
template <int KIND, int SUM>
KVTRIM_DEV float chunk_sum(const unsigned char* row, int c, const NormGeometry& g, const float* y) {
  float s = 0.f;
  if (g.vec && SUM != kSquares && y != nullptr) {
    // A dot: 4 elements and 4 of y (16-byte aligned wherever the row is: the launcher's
    // vectors and anchor are) at a time, so its operands take 8 registers, not 16.
#pragma unroll 1
    for (int h = 0; h < 2; ++h) {
      const float4 yv = reinterpret_cast<const float4*>(y)[2 * c + h];
      const float ys[4] = {yv.x, yv.y, yv.z, yv.w};
      unsigned w[4];
      if (KIND == kF32) {
        const uint4 q = reinterpret_cast<const uint4*>(row)[2 * c + h];
        w[0] = q.x, w[1] = q.y, w[2] = q.z, w[3] = q.w;
      } else {
        const uint2 q = reinterpret_cast<const uint2*>(row)[2 * c + h];
        w[0] = q.x & 0xFFFFu, w[1] = q.x >> 16, w[2] = q.y & 0xFFFFu, w[3] = q.y >> 16;
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float p = __fmul_rn(to_f32<KIND>(w[i]), ys[i]);
        s = (h == 0 && i == 0) ? p : __fadd_rn(s, p);
      }
    }
    return s;
  }
  if (g.vec) {
    if (KIND == kF32) {
      const uint4* p = reinterpret_cast<const uint4*>(row) + 2 * c;
      const uint4 a = p[0], b = p[1];
      const unsigned w[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
      for (int i = 0; i < 8; ++i) s = term_add<KIND, SUM>(s, w[i], y, kChunk * c + i, i == 0);
    } else {
      const uint4 a = reinterpret_cast<const uint4*>(row)[c];
      const unsigned w[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
      for (int i = 0; i < 8; ++i) s = term_add<KIND, SUM>(s, (w[i / 2] >> (16 * (i & 1))) & 0xFFFFu, y, kChunk * c + i, i == 0);
    }
    return s;
  }
  const int begin = c * kChunk, end = begin + kChunk < g.head_dim ? begin + kChunk : g.head_dim;
  for (int i = begin; i < end; ++i) {
    const unsigned raw = KIND == kF32 ? reinterpret_cast<const unsigned*>(row)[i]
                                      : unsigned(reinterpret_cast<const unsigned short*>(row)[i]);
    s = term_add<KIND, SUM>(s, raw, y, i, i == begin);
  }
  return s;
}

// The contract's sum of a row at `row` (ignored when !valid): chunk sums, then the pairwise
// tree, computed by the L lanes of this thread's segment; every lane of the warp must call it
// (shuffles use the full mask). Returns the total in every lane of the segment. A chunk past
// the row adds +0: exact for squares; for a dot it can only turn a -0 total into +0, which no
// score keeps (canonical_score, score_key).
template <int KIND, int SUM>
KVTRIM_DEV float group_row_sum(const unsigned char* row, bool valid, const NormGeometry& g, const float* y) {
  const int lane = int(threadIdx.x & 31u) & (g.lanes - 1);
  float s[kMaxLocalChunks];
#pragma unroll
  for (int j = 0; j < kMaxLocalChunks; ++j) {
    const int c = lane + g.lanes * j;
    s[j] = (valid && j < g.local && c < g.chunks) ? chunk_sum<KIND, SUM>(row, c, g, y) : 0.f;
  }
  if (g.local >= 4) {
    s[0] = __fadd_rn(s[0], s[2]);
    s[1] = __fadd_rn(s[1], s[3]);
  }
  if (g.local >= 2) s[0] = __fadd_rn(s[0], s[1]);
  for (int half = g.lanes / 2; half >= 1; half /= 2) {
    const float other = __shfl_down_sync(0xFFFFFFFFu, s[0], half, g.lanes);
    s[0] = __fadd_rn(s[0], other);
  }
  return __shfl_sync(0xFFFFFFFFu, s[0], 0, g.lanes);
}

// A norm from its sum of squares: sqrtf, NaN canonical (native/core/norm.h, step 5: a GPU's
// own NaN is 0x7FFFFFFF).
KVTRIM_DEV float norm_of_sum(float sum) {
  const float norm = __fsqrt_rn(sum);
  return norm != norm ? __uint_as_float(kCanonicalNaN) : norm;
}

// Norm of a row (group_row_sum's rules), in every lane of the segment.
template <int KIND>
KVTRIM_DEV float group_row_norm(const unsigned char* row, bool valid, const NormGeometry& g) {
  return norm_of_sum(group_row_sum<KIND, kSquares>(row, valid, g, nullptr));
}

// keyNorms: out[r] = norm of key row r, for n_rows rows. Grid-stride over groups of tokens.
template <int KIND>
__global__ void key_norms_kernel(const unsigned char* keys, long long n_rows,
                                 NormGeometry g, float* out) {
  const int esz = KIND == kF32 ? 4 : 2;
  const long long row_bytes = (long long)g.head_dim * esz;
  const int groups_per_warp = 32 / g.lanes;
  const long long warp = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  const long long warps = ((long long)gridDim.x * blockDim.x) >> 5;
  const int group = int(threadIdx.x & 31u) / g.lanes;
  for (long long base = warp * groups_per_warp; base < n_rows; base += warps * groups_per_warp) {
    const long long r = base + group;
    const bool valid = r < n_rows;
    const float n = group_row_norm<KIND>(keys + (valid ? r : 0) * row_bytes, valid, g);
    if (valid && (threadIdx.x & unsigned(g.lanes - 1)) == 0) out[r] = n;
  }
}

}  // namespace kvtrim::cuda
