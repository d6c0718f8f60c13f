// Device building blocks shared by kvtrim's kernels: exact element conversion, block-wide scans
// and reductions, and the per-row barrier of the split-row path. The contract itself (rank key,
// radix digits, norm chunk) is native/core/contract.h, shared with the CPU path.
#pragma once
#include "../../core/contract.h"
#include "../cuda_api.h"

namespace kvtrim::cuda {

enum ElemKind : int { kF16 = 0, kBF16 = 1, kF32 = 2 };

// Exact conversions to fp32: the contract's f16_to_f32_bits (contract.h), bf16 a shift.
template <int KIND>
KVTRIM_DEV float to_f32(unsigned raw) {
  if (KIND == kF16) return __uint_as_float(f16_to_f32_bits(raw));
  if (KIND == kBF16) return __uint_as_float(raw << 16);
  return __uint_as_float(raw);
}

// Exclusive prefix sum over the block of one unsigned per thread; `total` gets the sum.
// `scratch` holds 32 unsigned in shared memory. Every thread of the block must call it.
KVTRIM_DEV unsigned block_exclusive_scan(unsigned v, unsigned* scratch, unsigned* total) {
  const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
  const unsigned nwarps = (blockDim.x + 31u) >> 5;
  unsigned x = v;
  for (unsigned d = 1; d < 32; d <<= 1) {
    const unsigned y = __shfl_up_sync(0xFFFFFFFFu, x, d);
    if (lane >= d) x += y;
  }
  if (lane == 31) scratch[warp] = x;
  __syncthreads();
  if (warp == 0) {
    unsigned w = lane < nwarps ? scratch[lane] : 0u;
    for (unsigned d = 1; d < 32; d <<= 1) {
      const unsigned y = __shfl_up_sync(0xFFFFFFFFu, w, d);
      if (lane >= d) w += y;
    }
    scratch[lane] = w;  // inclusive scan of warp totals
  }
  __syncthreads();
  const unsigned before = (warp == 0 ? 0u : scratch[warp - 1]) + x - v;
  *total = scratch[nwarps - 1];
  __syncthreads();  // scratch is reused by the next call
  return before;
}

// Barrier among the `count` blocks that share one row in the split-row path. `counter` is
// zeroed before the launch and only grows: the n-th barrier waits for count * n arrivals.
// Requires co-residency, which the launcher guarantees with a cooperative launch.
KVTRIM_DEV void row_barrier(unsigned* counter, unsigned count, unsigned n) {
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    atomicAdd(counter, 1u);
    while (atomicAdd(counter, 0u) < count * n) KVTRIM_SPIN_WAIT();
    __threadfence();
  }
  __syncthreads();
}

}  // namespace kvtrim::cuda

namespace kvtrim::cuda {

// Integer min / max with the same spelling under nvcc and the emulator.
KVTRIM_DEV int min_i(int a, int b) { return a < b ? a : b; }
KVTRIM_DEV int max_i(int a, int b) { return a > b ? a : b; }
KVTRIM_DEV unsigned min_u(unsigned a, unsigned b) { return a < b ? a : b; }

}  // namespace kvtrim::cuda
