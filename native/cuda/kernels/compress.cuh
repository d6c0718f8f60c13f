// The fused compress: per (batch, head) row, token scores, selection of the k kept tokens and
// the gather of their key and value rows, in one launch.
//
// Algorithm, per row (G blocks share a row; G = 1 unless the row is split, see below):
//   A. scores: low-norm / high-norm read every valid token's key row once (norms.cuh) and write
//      its 32-bit rank key (NaN largest; ties then by position) to a scratch array (4 bytes per
//      token, 1.6% of a 256-byte fp16 row, and L2-resident: it is read again at once). The other
//      scorers (scores.cuh, a run-time switch on args.sc.scorer in one variant for them all,
//      see PhaseA) write score_key of their score there instead: kv-norm reads the K and V rows once,
//      project the K rows once, given only its 4-byte scores, keydiff the K rows 3 times (norms,
//      anchor, dots; G = 1 only, since its anchor spans the row).
//   B. radix select of the m-th smallest key among the unprotected middle tokens [sink, len -
//      recent): the contract's three digit rounds (11, 11, 10 bits: native/core/contract.h) over
//      the scratch keys, each a shared-memory histogram of the keys matching the prefix so far
//      and a block scan to find the digit. The result is a threshold key T and `ties`: keys
//      below T are kept, and of the keys equal to T the first `ties` by position.
//   C. compaction in position order: tiles of blockDim tokens; one packed block scan counts,
//      for each token, the kept-below (lt) and equal-to-T (eq) tokens before it; a kept token's
//      output slot follows from those counts (sink and recent tokens from their positions). Its
//      key and value rows are then copied, 16 bytes per thread per step where the row allows.
//   D. order 'norm' only: the kept (key, position) pairs go to scratch instead and are bitonic-
//      sorted there (64-bit keys are unique: no stability needed) before the gather.
// Bytes moved (norm scorers): the K rows once (A), the kept K and V rows read and written once
// (C), plus the keys (4 bytes/token written once, read 4 times) -- within ~7% of the floor for
// fp16 D = 128. kv-norm adds the V rows once; keydiff reads the K rows 3 times (plus its
// chunk sums, D floats per 32 tokens); given reads 4 bytes per token instead of the K rows.
//
// Split rows (few long rows, G > 1, launched cooperatively so all blocks are co-resident):
// block g owns a contiguous slice of the row. Histograms are summed in global memory with
// atomics, and a per-row barrier (common.cuh: row_barrier) separates each round's adds from
// its reads; after the rounds, each block publishes its slice's (lt, eq) counts, a barrier, and
// each block derives its output offset from the counts of the slices before it. Each block then
// gathers the tokens of its own slice, so no further barrier is needed.
//
// Why it is race-free: within a block every shared-memory reuse is separated by __syncthreads
// (histogram clear -> adds -> scan -> next round; list writes -> copies -> next tile). Across
// blocks of a row, global histograms and counts are written only with atomics before a barrier
// and read (volatile) only after it. Output slots of different tokens are distinct, so gathers
// never collide. In place (compressInPlace, G = 1 always): a kept row moves to slot j <= its
// position, slots are filled in increasing order, and each tile's copy loads all its source
// rows into registers, then __syncthreads, then stores: a store can only hit a row that this
// tile has already loaded or that no later tile reads (later sources lie at positions >= their
// slots > this tile's slots).
#pragma once
#include "scores.cuh"

namespace kvtrim::cuda {

// kRadixBins (2048: 11-bit digits), radix_bits and radix_shift: native/core/contract.h.
constexpr int kCompressThreads = 512;

struct CompressArgs {
  const unsigned char* keys;
  const unsigned char* values;
  unsigned char* out_keys;    // == keys when in place
  unsigned char* out_values;  // == values when in place
  int* out_indices;           // [rows, kmax]
  int heads;
  long long seq;              // capacity (dims[2])
  int key_row_bytes, value_row_bytes;
  int kmax;
  long long out_seq;          // row stride of the outputs: kmax, or seq in place
  const int* lengths;         // [batch] valid tokens
  const int* kept;            // [batch * heads] tokens to keep, per row
  int sink, recent;
  int high, order_norm, in_place;  // high: the norm path's high-norm ranking
  int split;                  // G: blocks per row
  int copy_unit;              // 16 when every row and base is 16-byte aligned, else 4 or 2
  NormGeometry norm;
  unsigned* keys32;           // [rows, seq] rank keys
  unsigned* hist;             // [rows, kRadixRounds, kRadixBins] (split only; zeroed)
  unsigned* counts;           // [rows, split, 2] (split only)
  unsigned* barrier;          // [rows] (split only; zeroed)
  unsigned long long* sortbuf;  // [rows, sort_n] (order 'norm' only)
  int sort_n;                 // power of two >= kmax
  ScoreArgs sc;               // the scorer and its inputs (scores.cuh)
};

// Shared memory: histogram, scan scratch, small broadcast slots, the tile's kept list.
struct CompressSmem {
  unsigned* hist;   // kRadixBins
  unsigned* scan;   // 32
  unsigned* bcast;  // 8
  int* src;         // blockDim
  int* dst;         // blockDim
};

KVTRIM_DEV CompressSmem carve_smem(unsigned char* base) {
  CompressSmem s;
  s.hist = reinterpret_cast<unsigned*>(base);
  s.scan = s.hist + kRadixBins;
  s.bcast = s.scan + 32;
  s.src = reinterpret_cast<int*>(s.bcast + 8);
  s.dst = s.src + blockDim.x;
  return s;
}

inline size_t compress_smem_bytes(int threads) {
  return sizeof(unsigned) * (kRadixBins + 32 + 8) + 2 * sizeof(int) * size_t(threads);
}

// Copies n rows listed in (src, dst) slot pairs, row_bytes each, cooperatively by the block.
// In place, all loads of a round happen before any store of that round (see the header).
template <int UNIT>
KVTRIM_DEV void copy_rows(const unsigned char* src_base, unsigned char* dst_base, long long src_stride,
                          long long dst_stride, int row_bytes, const int* src, const int* dst, int n,
                          bool in_place) {
  using Unit = typename std::conditional<UNIT == 16, uint4, typename std::conditional<UNIT == 4, unsigned, unsigned short>::type>::type;
  const int per_row = row_bytes / UNIT;
  const int total = n * per_row;
  if (!in_place) {
    for (int i = threadIdx.x; i < total; i += blockDim.x) {
      const int r = i / per_row, u = i - r * per_row;
      const Unit v = reinterpret_cast<const Unit*>(src_base + src[r] * src_stride)[u];
      reinterpret_cast<Unit*>(dst_base + dst[r] * dst_stride)[u] = v;
    }
    return;
  }
  constexpr int kPerThread = 4;
  for (int start = 0; start < total; start += kPerThread * int(blockDim.x)) {  // uniform trip count
    Unit buf[kPerThread];
#pragma unroll
    for (int q = 0; q < kPerThread; ++q) {
      const int i = start + q * int(blockDim.x) + int(threadIdx.x);
      if (i < total) {
        const int r = i / per_row, u = i - r * per_row;
        buf[q] = reinterpret_cast<const Unit*>(src_base + src[r] * src_stride)[u];
      }
    }
    __syncthreads();
#pragma unroll
    for (int q = 0; q < kPerThread; ++q) {
      const int i = start + q * int(blockDim.x) + int(threadIdx.x);
      if (i < total) {
        const int r = i / per_row, u = i - r * per_row;
        reinterpret_cast<Unit*>(dst_base + dst[r] * dst_stride)[u] = buf[q];
      }
    }
    __syncthreads();
  }
}

template <int UNIT>
KVTRIM_DEV void gather_list(const CompressArgs& a, long long row, const CompressSmem& sm, int n) {
  const long long src_row = row * a.seq, dst_row = row * a.out_seq;
  copy_rows<UNIT>(a.keys + src_row * a.key_row_bytes, a.out_keys + dst_row * a.key_row_bytes,
                  a.key_row_bytes, a.key_row_bytes, a.key_row_bytes, sm.src, sm.dst, n, a.in_place);
  copy_rows<UNIT>(a.values + src_row * a.value_row_bytes, a.out_values + dst_row * a.value_row_bytes,
                  a.value_row_bytes, a.value_row_bytes, a.value_row_bytes, sm.src, sm.dst, n, a.in_place);
}

// One radix round's digit: the bin holding the need-th key (1-based) of the histogram in
// shared memory. Writes (digit, keys in lower bins) to bcast[0], bcast[1].
KVTRIM_DEV void find_digit(const CompressSmem& sm, unsigned need, int bins) {
  const int per = kRadixBins / int(blockDim.x);  // blockDim divides 2048
  const int first = int(threadIdx.x) * per;
  unsigned local = 0;
  for (int i = 0; i < per; ++i) local += first + i < bins ? sm.hist[first + i] : 0u;
  unsigned total;
  unsigned before = block_exclusive_scan(local, sm.scan, &total);
  for (int i = 0; i < per && first + i < bins; ++i) {
    const unsigned h = sm.hist[first + i];
    if (before < need && need <= before + h) {
      sm.bcast[0] = unsigned(first + i);
      sm.bcast[1] = before;
    }
    before += h;
  }
  __syncthreads();
}

// Which phase A a kernel carries (a template parameter, measured: with the other scorers'
// phase A in the same body, ptxas either spilled or took 128 registers for several variants, and
// 64 registers with no spill is what gives 2 blocks of 512 per SM). compress_kernel has a
// variant per kind: the norm scorers' (unchanged) and the others'; compress_layers_kernel, at 1
// block per SM anyway, carries both behind the run-time switch.
enum PhaseA : int { kNormScores = 0, kOtherScores = 1, kAnyScores = 2 };

// The whole algorithm for block g of the G blocks of (batch, head) row `row` of one tensor pair.
template <int KIND, int UNIT, int PHASE_A>
KVTRIM_DEV void compress_row(const CompressArgs& a, const long long row, const int g) {
  const CompressSmem sm = carve_smem(KVTRIM_DYNAMIC_SMEM());
  const int G = a.split;
  const int batch = int(row / a.heads);
  const int len = a.lengths[batch];
  const int k = a.kept[row];
  const int per = (len + G - 1) / G;
  const int t0 = min_i(len, g * per), t1 = min_i(len, t0 + per);
  unsigned* keys32 = a.keys32 + row * a.seq;

  // A. Scores of this block's slice, as rank keys. The norm scorers keep their own loop
  // (rank_key of the norm, as before the other scorers existed); the rest share score_tokens.
  if (PHASE_A == kNormScores || (PHASE_A == kAnyScores && (a.sc.scorer == kLowNorm || a.sc.scorer == kHighNorm))) {
    const int groups_per_warp = 32 / a.norm.lanes;
    const int warp = int(threadIdx.x >> 5), warps = int(blockDim.x >> 5);
    const int group = int(threadIdx.x & 31u) / a.norm.lanes;
    const unsigned char* base = a.keys + row * a.seq * a.key_row_bytes;
    for (int t = t0 + warp * groups_per_warp; t < t1; t += warps * groups_per_warp) {
      const int tok = t + group;
      const bool valid = tok < t1;
      const float n = group_row_norm<KIND>(base + (long long)(valid ? tok : t0) * a.key_row_bytes, valid, a.norm);
      if (valid && (threadIdx.x & unsigned(a.norm.lanes - 1)) == 0) keys32[tok] = rank_key(__float_as_uint(n), a.high != 0);
    }
  } else {
    score_tokens<KIND>(a, row, t0, t1, len, keys32, [&](int tok, float s) { keys32[tok] = score_key(__float_as_uint(s)); });
  }
  __syncthreads();

  // B. Threshold of the middle tokens.
  const int n_sink = min_i(a.sink, len);
  const int n_recent = min_i(a.recent, len - n_sink);
  const int mb = n_sink, me = len - n_recent, mid = me - mb;
  const int m = k - n_sink - n_recent;  // 0 <= m <= mid (the plan guarantees it)
  const bool all_mid = m >= mid, none_mid = m <= 0;
  const bool select = !all_mid && !none_mid;
  unsigned barrier_n = 0;
  unsigned threshold = 0, ties = 0;
  if (select) {  // uniform across the row's blocks
    unsigned prefix = 0, pmask = 0, below = 0;
    const int shifts[kRadixRounds] = {radix_shift(0), radix_shift(1), radix_shift(2)};
    const int widths[kRadixRounds] = {radix_bits(0), radix_bits(1), radix_bits(2)};
    const int s0 = max_i(t0, mb), s1 = min_i(t1, me);
    for (int round = 0; round < kRadixRounds; ++round) {
      const int shift = shifts[round];
      const unsigned dmask = (1u << widths[round]) - 1u;
      for (int i = threadIdx.x; i < kRadixBins; i += blockDim.x) sm.hist[i] = 0;
      __syncthreads();
      for (int t = s0 + int(threadIdx.x); t < s1; t += blockDim.x) {
        const unsigned key = keys32[t];
        if ((key & pmask) == prefix) atomicAdd(&sm.hist[(key >> shift) & dmask], 1u);
      }
      __syncthreads();
      if (G > 1) {
        unsigned* gh = a.hist + (row * kRadixRounds + round) * kRadixBins;
        for (int i = threadIdx.x; i <= int(dmask); i += blockDim.x) {
          if (sm.hist[i]) atomicAdd(&gh[i], sm.hist[i]);
        }
        row_barrier(a.barrier + row, unsigned(G), ++barrier_n);
        const volatile unsigned* vgh = gh;
        for (int i = threadIdx.x; i <= int(dmask); i += blockDim.x) sm.hist[i] = vgh[i];
        __syncthreads();
      }
      find_digit(sm, unsigned(m) - below, int(dmask) + 1);
      prefix |= sm.bcast[0] << shift;
      pmask |= dmask << shift;
      below += sm.bcast[1];
      __syncthreads();  // bcast and hist are rewritten next round
    }
    threshold = prefix;
    ties = unsigned(m) - below;
  }

  // C. Offsets of this slice: counts of (lt, eq) middle tokens in the slices before it.
  unsigned lt_run = 0, eq_run = 0;
  if (G > 1 && select) {
    unsigned lt = 0, eq = 0;
    for (int t = max_i(t0, mb) + int(threadIdx.x); t < min_i(t1, me); t += blockDim.x) {
      const unsigned key = keys32[t];
      lt += key < threshold;
      eq += key == threshold;
    }
    unsigned tot_lt, tot_eq;
    block_exclusive_scan(lt, sm.scan, &tot_lt);
    block_exclusive_scan(eq, sm.scan, &tot_eq);
    unsigned* c = a.counts + (row * G + g) * 2;
    if (threadIdx.x == 0) {
      atomicExch(&c[0], tot_lt);
      atomicExch(&c[1], tot_eq);
    }
    row_barrier(a.barrier + row, unsigned(G), ++barrier_n);
    const volatile unsigned* vc = a.counts + row * G * 2;
    for (int p = 0; p < g; ++p) {
      lt_run += vc[2 * p];
      eq_run += vc[2 * p + 1];
    }
  }
  // Kept tokens before this slice: sink, middle and recent ones at positions < t0.
  const int mid_before = all_mid ? min_i(max_i(t0 - mb, 0), mid)
                                 : (none_mid ? 0 : int(lt_run + min_u(eq_run, ties)));
  int kept_run = min_i(t0, n_sink) + mid_before + max_i(t0 - me, 0);

  for (int tile = t0; tile < t1; tile += blockDim.x) {
    const int t = tile + int(threadIdx.x);
    const bool valid = t < t1;
    const unsigned key = valid ? keys32[t] : 0xFFFFFFFFu;
    const bool is_mid = valid && t >= mb && t < me;
    const bool lt = select && is_mid && key < threshold;
    const bool eq = select && is_mid && key == threshold;
    unsigned tot;
    const unsigned excl = block_exclusive_scan(unsigned(lt) | (unsigned(eq) << 16), sm.scan, &tot);
    const unsigned lt_before = lt_run + (excl & 0xFFFFu), eq_before = eq_run + (excl >> 16);
    bool kept = false;
    int out = 0;
    if (valid && t < n_sink) {
      kept = true;
      out = t;
    } else if (valid && t >= me) {
      kept = true;
      out = n_sink + m + (t - me);
    } else if (is_mid) {
      kept = all_mid || lt || (eq && eq_before < ties);
      out = n_sink + (all_mid ? t - mb : int(lt_before + min_u(eq_before, ties)));
    }
    lt_run += tot & 0xFFFFu;
    eq_run += tot >> 16;
    const int n_kept = __syncthreads_count(kept);
    if (kept) {
      sm.src[out - kept_run] = t;
      sm.dst[out - kept_run] = out;
      if (a.order_norm) {
        a.sortbuf[row * a.sort_n + out] = ((unsigned long long)key << 32) | unsigned(t);
      } else {
        a.out_indices[row * a.kmax + out] = t;
      }
    }
    kept_run += n_kept;
    __syncthreads();
    if (!a.order_norm) gather_list<UNIT>(a, row, sm, n_kept);
    __syncthreads();
  }

  // D. Order 'norm' (G = 1): sort the kept (key, position) pairs, then gather in that order.
  if (a.order_norm) {
    unsigned long long* buf = a.sortbuf + row * a.sort_n;
    for (int i = k + int(threadIdx.x); i < a.sort_n; i += blockDim.x) buf[i] = ~0ull;
    __syncthreads();
    for (int size = 2; size <= a.sort_n; size <<= 1) {
      for (int stride = size >> 1; stride > 0; stride >>= 1) {
        for (int i = threadIdx.x; i < a.sort_n; i += blockDim.x) {
          const int j = i ^ stride;
          if (j > i) {
            const unsigned long long x = buf[i], y = buf[j];
            const bool up = (i & size) == 0;
            if ((x > y) == up) {
              buf[i] = y;
              buf[j] = x;
            }
          }
        }
        __syncthreads();
      }
    }
    for (int tile = 0; tile < k; tile += blockDim.x) {
      const int j = tile + int(threadIdx.x);
      const int n = min_i(int(blockDim.x), k - tile);
      if (j < k) {
        const int pos = int(buf[j] & 0xFFFFFFFFull);
        a.out_indices[row * a.kmax + j] = pos;
        sm.src[j - tile] = pos;
        sm.dst[j - tile] = j;
      }
      __syncthreads();
      gather_list<UNIT>(a, row, sm, n);
      __syncthreads();
    }
  }

  // Padding of ragged batch entries: slots [k, kmax) get index -1 and (not in place) zero rows.
  if (g == 0) {
    for (int j = k + int(threadIdx.x); j < a.kmax; j += blockDim.x) a.out_indices[row * a.kmax + j] = -1;
  }
  if (!a.in_place && g == 0) {
    const long long pad = (long long)(a.kmax - k);
    unsigned char* kd = a.out_keys + (row * a.out_seq + k) * a.key_row_bytes;
    unsigned char* vd = a.out_values + (row * a.out_seq + k) * a.value_row_bytes;
    for (long long i = threadIdx.x; i < pad * a.key_row_bytes; i += blockDim.x) kd[i] = 0;
    for (long long i = threadIdx.x; i < pad * a.value_row_bytes; i += blockDim.x) vd[i] = 0;
  }
}

// One tensor pair: G blocks per row. __grid_constant__: the body reads the arguments where
// they are (the constant bank), with no copy to registers or local memory.
template <int KIND, int UNIT, int PHASE_A>
__global__ void __launch_bounds__(kCompressThreads) compress_kernel(const __grid_constant__ CompressArgs a) {
  compress_row<KIND, UNIT, PHASE_A>(a, blockIdx.x / a.split, int(blockIdx.x % a.split));
}

// Every layer of a model in one launch (compressCache on device tensors): layer l owns blocks
// [first_block[l], first_block[l + 1]), one per row (split = 1). Descriptors live in device
// memory; all layers share the element type and the copy unit (the launcher checks); each
// layer's descriptor carries its own scorer and scorer inputs, so every scorer batches (keydiff
// needs G = 1, which this kernel always has).
// The descriptor is read in place from global memory (read-only, so loaded as its fields are
// used): copying it to registers up front spills.
template <int KIND, int UNIT>
__global__ void __launch_bounds__(kCompressThreads, 1)
    compress_layers_kernel(const CompressArgs* __restrict__ layers, const unsigned* first_block, int n_layers) {
  int l = 0;
  while (l + 1 < n_layers && blockIdx.x >= first_block[l + 1]) ++l;
  const CompressArgs& a = layers[l];
  compress_row<KIND, UNIT, kAnyScores>(a, (long long)(blockIdx.x - first_block[l]), 0);
}

}  // namespace kvtrim::cuda
