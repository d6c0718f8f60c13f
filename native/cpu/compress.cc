// Three parallel phases, each over independent tasks, so no locks and no shared writes:
//   1. the score of every valid token (scores.cc: a norm, a product of norms, a dot, ...),
//   2. per (batch, head) row: radix select of the kept tokens (core/select.cc),
//   3. gather of the kept key and value rows, runs of consecutive tokens copied at once.
// Bytes moved: what the scorer reads (scores.cc; the keys once for a norm), kept key and value
// rows read and written once, plus 4 bytes of score per token (written in 1, read in 2).
#include "compress.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

#include "../core/select.h"
#include "norms.h"
#include "parallel.h"
#include "scores.h"

namespace kvtrim::cpu {

namespace {

constexpr int64_t kNormBlock = 1024;    // tokens per norm task
constexpr int64_t kGatherBlock = 1024;  // kept tokens per gather task

}  // namespace

void key_norms(DType t, const void* keys, int64_t n_rows, int64_t head_dim, float* out) {
  const int64_t row_bytes = head_dim * dtype_size(t);
  const int64_t tasks = (n_rows + kNormBlock - 1) / kNormBlock;
  parallel_for(tasks, n_rows * row_bytes, [&](int64_t task) {
    const int64_t r0 = task * kNormBlock, r1 = std::min(n_rows, r0 + kNormBlock);
    row_norms(t, static_cast<const char*>(keys) + r0 * row_bytes, r1 - r0, head_dim, out + r0);
  });
}

Status compress(const CompressJob& job) {
  const Shape& s = job.shape;
  const int64_t rows = s.batch * s.heads;  // (batch, head) rows, each of s.seq tokens
  const int64_t kmax = job.plan.max_kept;
  const int esz = dtype_size(job.dtype);
  const int64_t krow = s.key_dim * esz, vrow = s.value_dim * esz;
  if (rows == 0) return Status::success();

  // 1. Scores (given scores are used where they are).
  std::vector<float> own;
  const float* scores = job.scores;
  if (job.params.score != Score::Given) {
    try {
      own.resize(size_t(rows * s.seq));
    } catch (const std::bad_alloc&) {
      return Status::error(Code::OutOfMemory, "out of host memory for " +
          std::to_string(rows * s.seq * 4) + " bytes of score scratch");
    }
    Status st = score_tokens(job, own.data(), false);
    if (!st.ok()) return st;
    scores = own.data();
  }
  auto kept_of = [&](int64_t row) { return job.plan.kept_of(row); };

  // 2. Select, one task per row; scratch is per thread and reused.
  bool oom = false;
  parallel_for(rows, rows * s.seq * 16, [&](int64_t row) {
    thread_local std::vector<uint32_t> keys;
    thread_local std::vector<uint64_t> kept;
    const int64_t len = job.plan.lengths[size_t(row / s.heads)], k = kept_of(row);
    int32_t* out = job.out_indices + row * kmax;
    try {
      if (int64_t(keys.size()) < len) keys.resize(size_t(len));
      if (job.params.order == Order::Norm && int64_t(kept.size()) < k) kept.resize(size_t(k));
    } catch (const std::bad_alloc&) {
      oom = true;  // benign race: every writer stores true
      return;
    }
    const float* sr = scores + row * s.seq;
    for (int64_t i = 0; i < len; ++i) keys[size_t(i)] = score_key(f32_to_bits(sr[i]));
    select_keys(keys.data(), len, k, job.params.sink, job.params.recent, job.params.order, kept.data(), out);
    std::fill(out + k, out + kmax, -1);
  });
  if (oom) return Status::error(Code::OutOfMemory, "out of host memory for selection scratch");

  // 3. Gather kept rows; runs of consecutive source tokens are one copy.
  if (job.in_place) {
    // Kept rows move toward lower slots (idx[j] >= j, strictly increasing), so walking j
    // upward never overwrites a row that is still to be read; hence one task per row, and
    // memmove for a run whose source and destination overlap.
    parallel_for(rows, rows * kmax * (krow + vrow) * 2, [&](int64_t row) {
      const int32_t* idx = job.out_indices + row * kmax;
      char* kbase = static_cast<char*>(job.out_keys) + row * s.seq * krow;
      char* vbase = static_cast<char*>(job.out_values) + row * s.seq * vrow;
      const int64_t k = kept_of(row);
      for (int64_t j = 0; j < k;) {
        int64_t run = 1;
        while (j + run < k && idx[j + run] == idx[j] + run) ++run;
        if (idx[j] != j) {
          std::memmove(kbase + j * krow, kbase + int64_t(idx[j]) * krow, size_t(run * krow));
          std::memmove(vbase + j * vrow, vbase + int64_t(idx[j]) * vrow, size_t(run * vrow));
        }
        j += run;
      }
    });
    return Status::success();
  }
  const int64_t gblk = std::max<int64_t>(1, (kmax + kGatherBlock - 1) / kGatherBlock);
  parallel_for(rows * gblk, rows * kmax * (krow + vrow) * 2, [&](int64_t task) {
    const int64_t row = task / gblk, j0 = (task % gblk) * kGatherBlock;
    const int64_t j1 = std::min(kmax, j0 + kGatherBlock);
    const int64_t k = kept_of(row);
    const int32_t* idx = job.out_indices + row * kmax;
    const char* ksrc = static_cast<const char*>(job.keys) + row * s.seq * krow;
    const char* vsrc = static_cast<const char*>(job.values) + row * s.seq * vrow;
    char* kdst = static_cast<char*>(job.out_keys) + row * kmax * krow;
    char* vdst = static_cast<char*>(job.out_values) + row * kmax * vrow;
    int64_t j = j0;
    const int64_t jk = std::min(j1, k);
    while (j < jk) {
      int64_t run = 1;
      while (j + run < jk && idx[j + run] == idx[j] + run) ++run;
      // Plain stores: streaming (non-temporal) stores were measured slower here (NOTES.md).
      std::memcpy(kdst + j * krow, ksrc + int64_t(idx[j]) * krow, size_t(run * krow));
      std::memcpy(vdst + j * vrow, vsrc + int64_t(idx[j]) * vrow, size_t(run * vrow));
      j += run;
    }
    const int64_t z0 = std::max(j0, jk);  // rows past this entry's k are zero
    if (z0 < j1) {
      std::memset(kdst + z0 * krow, 0, size_t((j1 - z0) * krow));
      std::memset(vdst + z0 * vrow, 0, size_t((j1 - z0) * vrow));
    }
  });
  return Status::success();
}

}  // namespace kvtrim::cpu
