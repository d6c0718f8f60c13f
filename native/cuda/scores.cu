// Host launcher of tokenScores on device tensors (kernels/scores.cuh: token_scores_kernel): one
// block per row runs phase A of the compress kernel (the same score_tokens) and writes the
// scores instead of rank keys. Scratch and arguments as compress's (job_args.h).
#include <mutex>
#include <vector>

#include "cuda_backend.h"
#include "job_args.h"
#include "kernels/scores.cuh"
#include "launch.h"
#include "runtime.h"

namespace kvtrim::cuda {

namespace {

Status run_token_scores(const ScoreJob& sj, cudaStream_t stream) {
  const CompressJob& job = sj.job;
  const int64_t rows = job.shape.batch * job.shape.heads;
  if (rows == 0 || job.shape.seq == 0) return Status::success();
  Status st = check_seq(job);
  if (!st.ok()) return st;
  const Layout L = layout_for(job, 1);
  std::unique_lock<std::mutex> lock;
  unsigned char* base = nullptr;
  st = scratch(L.total, &lock, &base);
  if (!st.ok()) return st;
  std::vector<int> host;
  st = upload_plan(job, L, base, &host, stream);
  if (!st.ok()) return st;
  const CompressArgs a = args_for(job, L, dtype_size(job.dtype), base);
  const dim3 grid{unsigned(rows)}, block{unsigned(kScoreThreads)};
  cudaError_t e;
  switch (job.dtype) {
    case DType::F16: e = launch_kernel(&token_scores_kernel<kF16, CompressArgs>, grid, block, 0, stream, false, a, sj.out); break;
    case DType::BF16: e = launch_kernel(&token_scores_kernel<kBF16, CompressArgs>, grid, block, 0, stream, false, a, sj.out); break;
    default: e = launch_kernel(&token_scores_kernel<kF32, CompressArgs>, grid, block, 0, stream, false, a, sj.out); break;
  }
  KVTRIM_CUDA_TRY(e);
  return cuda_status(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
}

}  // namespace

Status token_scores(int device, const ScoreJob& job, void* stream) {
  return with_device(device, [&]() -> Status { return run_token_scores(job, as_stream(stream)); });
}

}  // namespace kvtrim::cuda
