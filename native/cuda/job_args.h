// One job's device scratch and kernel arguments, defined in compress.cu and shared by the
// launchers of compress, compress_layers and token_scores (scores.cu), so the scorer inputs
// (project's uploaded vectors, keydiff's chunk sums) are laid out and passed in one place.
#pragma once
#include <cstddef>
#include <mutex>
#include <vector>

#include "../core/job.h"
#include "cuda_api.h"
#include "kernels/compress.cuh"

namespace kvtrim::cuda {

// Where one job's scratch lives, relative to its base: lengths per batch entry and kept per row (ints,
// uploaded from the plan), rank keys, for split rows the histograms, counts and barrier
// counters (zeroed), for order 'norm' the sort buffer, for project the vectors, for keydiff
// the token-chunk sums.
struct Layout {
  size_t len, kept, keys, hist, counts, barrier, sort, vectors, chunks, total;
  int split, sort_n, token_chunks;
};

Layout layout_for(const CompressJob& job, int split);
// The kernel arguments of a job whose scratch starts at `base` (device memory).
CompressArgs args_for(const CompressJob& job, const Layout& L, int unit, unsigned char* base);
// Uploads a job's lengths and kept counts (0 where the plan has none) and project's vectors;
// clears the split-row scratch. `host` must outlive the stream's copies.
Status upload_plan(const CompressJob& job, const Layout& L, unsigned char* base, std::vector<int>* host,
                   cudaStream_t stream);
// The device's scratch buffer, grown to `bytes`; locked for the duration of one operation.
Status scratch(size_t bytes, std::unique_lock<std::mutex>* lock, unsigned char** base);
// One job alone (compress, token_scores): its scratch, locked until `js` goes, with the plan
// uploaded; *a gets the kernel arguments. Wait for the stream before `js` goes.
struct JobScratch {
  std::unique_lock<std::mutex> lock;
  std::vector<int> host;
};
Status prepare_job(const CompressJob& job, int split, int unit, cudaStream_t stream, JobScratch* js, CompressArgs* a);
Status check_seq(const CompressJob& job);

}  // namespace kvtrim::cuda
