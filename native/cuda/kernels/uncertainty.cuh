// ZigZagKV's layer uncertainty (LMBA) on the GPU, the spec of native/core/uncertainty.h: for a
// row of attention weights (given, or computed from a window query against the keys), the
// number of largest weights whose sum in double reaches threshold * total.
//
// One block per row (grid-stride over rows): the row goes to a double scratch slice padded to a
// power of two with -1 (below every weight), a bitonic sort makes it descending, and one thread
// sums it left to right exactly as the CPU does (total, then the running sum until it reaches the
// target). Sums in the same order give the same doubles, so counts from given weights are
// identical to the CPU's. The window path forms logits in double as the CPU does (left-to-right
// dot products, no FMA: built with --fmad=false), but exp() is CUDA's, not glibc's, so a count can
// differ by one where the running sum lands within an ulp of the target.
// Race-freedom: every phase over the scratch slice ends with __syncthreads; the max reduction
// uses its own shared slots; invalid inputs are recorded with atomics.
#pragma once
#include "common.cuh"

namespace kvtrim::cuda {

constexpr int kUncertaintyThreads = 256;

struct UncertaintyArgs {
  int window_mode;            // 0: attention weights, 1: queries against keys
  const unsigned char* att;   // [rows, n]
  int att_kind;
  const unsigned char* q;     // [B, Hq, W, D]
  const unsigned char* k;     // [B, Hkv, S, D]
  int q_kind, k_kind;
  long long rows;
  int n;                      // attention: seqLen
  int q_heads, kv_heads, window, seq, head_dim, causal;
  double threshold, scale;    // scale = sqrt(D)
  double* scratch;            // [gridDim.x, sort_n]
  int sort_n;
  int* counts;                // [rows]
  unsigned long long* bad;    // attention: lowest bad element index; window: nonzero if a logit is not finite
};

KVTRIM_DEV float load_kind(int kind, const unsigned char* p, long long i) {
  if (kind == kF32) return reinterpret_cast<const float*>(p)[i];
  const unsigned raw = reinterpret_cast<const unsigned short*>(p)[i];
  return kind == kF16 ? __uint_as_float(f16_to_f32_bits(raw)) : __uint_as_float(raw << 16);
}

KVTRIM_DEV double block_max(double v, double* slots) {
  for (int d = 16; d >= 1; d >>= 1) {
    const double o = __shfl_xor_sync(0xFFFFFFFFu, v, d);
    v = o > v ? o : v;
  }
  const int lane = int(threadIdx.x & 31u), warp = int(threadIdx.x >> 5), warps = int(blockDim.x >> 5);
  if (lane == 0) slots[warp] = v;
  __syncthreads();
  double m = slots[0];
  for (int w = 1; w < warps; ++w) m = slots[w] > m ? slots[w] : m;
  __syncthreads();
  return m;
}

__global__ void __launch_bounds__(kUncertaintyThreads) uncertainty_kernel(const __grid_constant__ UncertaintyArgs a) {
  double* slots = reinterpret_cast<double*>(KVTRIM_DYNAMIC_SMEM());  // one per warp
  double* w = a.scratch + (long long)blockIdx.x * a.sort_n;
  for (long long row = blockIdx.x; row < a.rows; row += gridDim.x) {
    int n = a.n;
    if (!a.window_mode) {
      for (int j = threadIdx.x; j < a.sort_n; j += blockDim.x) {
        double x = -1.0;
        if (j < n) {
          const float f = load_kind(a.att_kind, a.att, row * n + j);
          if (!(f >= 0.0f) || f == __int_as_float(0x7F800000)) atomicMin(a.bad, (unsigned long long)(row * n + j));
          x = double(f);
        }
        w[j] = x;
      }
    } else {
      const int W = a.window, S = a.seq, D = a.head_dim;
      const long long bh = row / W;  // (batch, q head)
      const int i = int(row % W);
      const int b = int(bh / a.q_heads), hq = int(bh % a.q_heads);
      const int kvh = hq / (a.q_heads / a.kv_heads);
      n = a.causal ? S - W + i + 1 : S;
      const long long q0 = row * D, k0 = ((long long)b * a.kv_heads + kvh) * S * D;
      double m = -__longlong_as_double(0x7FF0000000000000LL);  // -infinity
      for (int j = threadIdx.x; j < a.sort_n; j += blockDim.x) {
        double logit = -1.0;
        if (j < n) {
          double dot = 0.0;
          for (int d = 0; d < D; ++d) {
            const double prod = __dmul_rn(double(load_kind(a.q_kind, a.q, q0 + d)),
                                          double(load_kind(a.k_kind, a.k, k0 + (long long)j * D + d)));
            dot = __dadd_rn(dot, prod);
          }
          logit = dot / a.scale;
          if (!(logit - logit == 0.0)) atomicOr(a.bad, 1ull);  // NaN or infinity
          m = logit > m ? logit : m;
        }
        w[j] = logit;
      }
      m = block_max(m, slots);
      for (int j = threadIdx.x; j < n; j += blockDim.x) w[j] = exp(w[j] - m);  // pads stay -1
    }
    __syncthreads();
    // bitonic sort, descending
    for (int size = 2; size <= a.sort_n; size <<= 1) {
      for (int stride = size >> 1; stride > 0; stride >>= 1) {
        for (int t = threadIdx.x; t < a.sort_n; t += blockDim.x) {
          const int u = t ^ stride;
          if (u > t) {
            const double x = w[t], y = w[u];
            const bool down = (t & size) == 0;
            if ((x < y) == down) {
              w[t] = y;
              w[u] = x;
            }
          }
        }
        __syncthreads();
      }
    }
    if (threadIdx.x == 0) {
      double total = 0.0;
      for (int j = 0; j < n; ++j) total = __dadd_rn(total, w[j]);
      const double target = a.threshold * total;
      double cum = 0.0;
      int c = 0;
      while (cum < target && c < n) cum = __dadd_rn(cum, w[c++]);
      a.counts[row] = c;
    }
    __syncthreads();
  }
}

}  // namespace kvtrim::cuda
