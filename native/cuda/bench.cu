// Benchmarks of the CUDA backend (development hooks, dev_tools.h): compress timed with CUDA
// events, and the device's copy bandwidth to compare it with.
#include <algorithm>
#include <vector>

#include "dev_tools.h"
#include "runtime.h"

namespace kvtrim::cuda {

Status time_compress(int device, const std::vector<CompressJob>& jobs, int warmup, int reps,
                     std::vector<float>* ms) {
  return with_device(device, [&]() -> Status {
    if (jobs.empty()) return Status::error(Code::InvalidArgument, "time_compress: no jobs");
    cudaEvent_t start, stop;
    KVTRIM_CUDA_TRY(cudaEventCreate(&start));
    KVTRIM_CUDA_TRY(cudaEventCreate(&stop));
    Status st = Status::success();
    for (int i = 0; i < warmup && st.ok(); ++i) st = compress(device, jobs[size_t(i) % jobs.size()], nullptr);
    ms->clear();
    for (int i = 0; i < reps && st.ok(); ++i) {
      cudaEventRecord(start, nullptr);
      st = compress(device, jobs[size_t(i) % jobs.size()], nullptr);
      cudaEventRecord(stop, nullptr);
      cudaEventSynchronize(stop);
      float t = 0;
      cudaEventElapsedTime(&t, start, stop);
      ms->push_back(t);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return st;
  });
}

Status copy_bandwidth(int device, size_t bytes, int reps, double* bytes_per_second) {
  return with_device(device, [&]() -> Status {
    void *a = nullptr, *b = nullptr;
    KVTRIM_CUDA_TRY(cudaMalloc(&a, bytes));
    Status st = cuda_status(cudaMalloc(&b, bytes), "cudaMalloc");
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    std::vector<float> t;
    for (int i = 0; i < reps + 2 && st.ok(); ++i) {
      cudaEventRecord(start, nullptr);
      st = cuda_status(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, nullptr), "cudaMemcpyAsync");
      cudaEventRecord(stop, nullptr);
      cudaEventSynchronize(stop);
      float ms = 0;
      cudaEventElapsedTime(&ms, start, stop);
      if (i >= 2) t.push_back(ms);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    cudaFree(a);
    if (b) cudaFree(b);
    if (!st.ok()) return st;
    std::sort(t.begin(), t.end());
    const double med = t.empty() ? 0.0 : t[t.size() / 2];
    *bytes_per_second = med > 0 ? 2.0 * double(bytes) / (med * 1e-3) : 0.0;
    return Status::success();
  });
}

}  // namespace kvtrim::cuda
