// TEMPORARY (session 13): replaced by native/cuda/scores.cu from the CUDA scorer work.
#include "cuda_backend.h"
namespace kvtrim::cuda {
Status token_scores(int, const ScoreJob&, void*) {
  return Status::error(Code::CudaError, "tokenScores on device tensors is not built yet");
}
}  // namespace kvtrim::cuda
