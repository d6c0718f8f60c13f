// Host launcher of keyNorms on device tensors (kernels/norms.cuh): one norm per key row, in the
// contract's order, written to device memory.
#include <algorithm>

#include "cuda_backend.h"
#include "kernels/norms.cuh"
#include "launch.h"
#include "runtime.h"

namespace kvtrim::cuda {

Status key_norms(int device, DType t, const void* keys, int64_t n_rows, int64_t head_dim, float* out, void* stream) {
  return with_device(device, [&]() -> Status {
    if (n_rows == 0) return Status::success();
    const NormGeometry g = norm_geometry(head_dim, keys);
    const int threads = 256;
    const int64_t groups = (n_rows + (32 / g.lanes) - 1) / (32 / g.lanes);
    const int64_t blocks = std::min<int64_t>((groups + (threads / 32) - 1) / (threads / 32), 65535);
    const dim3 grid{unsigned(blocks)}, block{unsigned(threads)};
    const auto* k = static_cast<const unsigned char*>(keys);
    cudaError_t e;
    switch (t) {
      case DType::F16: e = launch_kernel(&key_norms_kernel<kF16>, grid, block, 0, as_stream(stream), false, k, (long long)n_rows, g, out); break;
      case DType::BF16: e = launch_kernel(&key_norms_kernel<kBF16>, grid, block, 0, as_stream(stream), false, k, (long long)n_rows, g, out); break;
      default: e = launch_kernel(&key_norms_kernel<kF32>, grid, block, 0, as_stream(stream), false, k, (long long)n_rows, g, out); break;
    }
    KVTRIM_CUDA_TRY(e);
    return cuda_status(cudaStreamSynchronize(as_stream(stream)), "cudaStreamSynchronize");
  });
}

}  // namespace kvtrim::cuda
