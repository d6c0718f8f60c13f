// The CUDA backend in a build without CUDA (no nvcc, or KVTRIM_CUDA=OFF): the probe says why,
// and every call of the interface returns that error.
#include "cuda_backend.h"
#include "dev_tools.h"
#include "probe.h"

namespace kvtrim::cuda {

namespace {
Status none() {
  return Status::error(Code::CudaError,
      "this build of kvtrim has no CUDA code; rebuild with the CUDA toolkit on PATH (npm run build:native)");
}
}  // namespace

Probe probe() {
  Probe p;
  p.reason = "this build of kvtrim has no CUDA code (nvcc was not found when it was built, or "
             "KVTRIM_CUDA=OFF was set); rebuild with the CUDA toolkit on PATH to get it";
  return p;
}

// cuda_backend.h
Status device_alloc(int, size_t, void**) { return none(); }
Status device_free(int, void*) { return none(); }
Status copy_to_device(int, void*, const void*, size_t, void*) { return none(); }
Status copy_to_host(int, void*, const void*, size_t, void*) { return none(); }
Status key_norms(int, DType, const void*, int64_t, int64_t, float*, void*) { return none(); }
Status compress(int, const CompressJob&, void*) { return none(); }
Status compress_layers(int, const std::vector<CompressJob>&, void*) { return none(); }
Status token_scores(int, const ScoreJob&, void*) { return none(); }
Status uncertainty_attention(int, DType, const void*, const AttentionShape&, const UncertaintyParams&, int32_t*, void*) { return none(); }
Status uncertainty_window(int, DType, const void*, DType, const void*, const WindowShape&, const UncertaintyParams&, int32_t*, void*) { return none(); }

// dev_tools.h
Status stream_create(int, void**) { return none(); }
Status stream_destroy(int, void*) { return none(); }
Status compress_geometry(int, const CompressJob&, Geometry*) { return none(); }
Status time_compress(int, const std::vector<CompressJob>&, int, int, std::vector<float>*) { return none(); }
Status copy_bandwidth(int, size_t, int, double*) { return none(); }
Status configure_emulator(const std::string&, uint64_t, int, uint64_t) { return none(); }

}  // namespace kvtrim::cuda
