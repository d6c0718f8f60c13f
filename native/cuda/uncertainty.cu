// Host launchers of layerUncertainty (LMBA) on device tensors: kernels/uncertainty.cuh per row, the
// counts copied back to the host, invalid inputs reported as the CPU path reports them.
#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/uncertainty.cuh"
#include "launch.h"
#include "cuda_backend.h"
#include "runtime.h"

namespace kvtrim::cuda {

namespace {

int kind_of(DType t) { return t == DType::F16 ? kF16 : t == DType::BF16 ? kBF16 : kF32; }

// Launches over `rows` rows of at most `longest` weights; fills counts (host) and *bad.
Status run_uncertainty(UncertaintyArgs a, int longest, int32_t* counts, unsigned long long* bad, cudaStream_t stream) {
  if (a.rows == 0) return Status::success();
  a.sort_n = int(pow2_ceil(std::max(longest, 1)));
  const long long blocks = std::min<long long>(a.rows, 1024);
  const size_t o_counts = align_up(sizeof(double) * size_t(blocks) * size_t(a.sort_n));
  const size_t o_bad = o_counts + align_up(sizeof(int) * size_t(a.rows));
  const size_t total = o_bad + sizeof(unsigned long long);
  unsigned char* base = nullptr;
  KVTRIM_CUDA_TRY(cudaMalloc(reinterpret_cast<void**>(&base), total));
  auto run = [&]() -> Status {
    a.scratch = reinterpret_cast<double*>(base);
    a.counts = reinterpret_cast<int*>(base + o_counts);
    a.bad = reinterpret_cast<unsigned long long*>(base + o_bad);
    const unsigned long long init = a.window_mode ? 0ull : ~0ull;
    KVTRIM_CUDA_TRY(cudaMemcpyAsync(a.bad, &init, sizeof init, cudaMemcpyHostToDevice, stream));
    const dim3 grid{unsigned(blocks)}, block{unsigned(kUncertaintyThreads)};
    KVTRIM_CUDA_TRY(launch_kernel(&uncertainty_kernel, grid, block, sizeof(double) * (kUncertaintyThreads / 32), stream, false, a));
    KVTRIM_CUDA_TRY(cudaMemcpyAsync(counts, a.counts, sizeof(int) * size_t(a.rows), cudaMemcpyDeviceToHost, stream));
    KVTRIM_CUDA_TRY(cudaMemcpyAsync(bad, a.bad, sizeof(unsigned long long), cudaMemcpyDeviceToHost, stream));
    return cuda_status(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  };
  Status st = run();
  cudaFree(base);
  return st;
}

}  // namespace

Status uncertainty_attention(int device, DType t, const void* att, const AttentionShape& s, const UncertaintyParams& p,
                      int32_t* counts, void* stream) {
  return with_device(device, [&]() -> Status {
    if (s.seq > INT32_MAX / 2) return Status::error(Code::InvalidDims, "seqLen above 2^30 on the GPU path");
    UncertaintyArgs a{};
    a.att = static_cast<const unsigned char*>(att);
    a.att_kind = kind_of(t);
    a.rows = s.rows();
    a.n = int(s.seq);
    a.threshold = p.threshold;
    unsigned long long bad = ~0ull;
    Status st = run_uncertainty(a, int(s.seq), counts, &bad, as_stream(stream));
    if (!st.ok() || bad == ~0ull) return st;
    const long long r = (long long)(bad / (unsigned long long)s.seq), j = (long long)(bad % (unsigned long long)s.seq);
    return Status::error(Code::InvalidArgument, "Expected attention weights to be finite and non-negative but attention[" +
        std::to_string(r / (s.heads * s.queries)) + ", " + std::to_string((r / s.queries) % s.heads) + ", " +
        std::to_string(r % s.queries) + ", " + std::to_string(j) + "] is not");
  });
}

Status uncertainty_window(int device, DType qt, const void* queries, DType kt, const void* keys, const WindowShape& s,
                   const UncertaintyParams& p, int32_t* counts, void* stream) {
  return with_device(device, [&]() -> Status {
    if (s.seq > INT32_MAX / 2) return Status::error(Code::InvalidDims, "seqLen above 2^30 on the GPU path");
    UncertaintyArgs a{};
    a.window_mode = 1;
    a.q = static_cast<const unsigned char*>(queries);
    a.k = static_cast<const unsigned char*>(keys);
    a.q_kind = kind_of(qt);
    a.k_kind = kind_of(kt);
    a.rows = s.rows();
    a.q_heads = int(s.q_heads);
    a.kv_heads = int(s.kv_heads == 0 ? 1 : s.kv_heads);
    a.window = int(s.window);
    a.seq = int(s.seq);
    a.head_dim = int(s.head_dim);
    a.causal = p.causal;
    a.threshold = p.threshold;
    a.scale = std::sqrt(double(s.head_dim));
    unsigned long long bad = 0;
    Status st = run_uncertainty(a, int(s.seq), counts, &bad, as_stream(stream));
    if (!st.ok() || bad == 0) return st;
    return Status::error(Code::InvalidArgument, "Expected finite queries and keys for layerUncertainty but a "
        "logit q . k / sqrt(D) is not finite (a NaN or infinity in the inputs)");
  });
}

}  // namespace kvtrim::cuda
