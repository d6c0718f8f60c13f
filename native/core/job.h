// One compress call, fully described: validated inputs, the plan, and caller-owned outputs.
// Backends (native/cpu, native/cuda) take a Job and fill its outputs; they never allocate them.
#pragma once
#include <cstdint>

#include "plan.h"
#include "tensor.h"

namespace kvtrim {

struct CompressJob {
  DType dtype;
  Shape shape;
  const void* keys;
  const void* values;
  CompressParams params;
  Plan plan;
  // Scorer inputs (docs/policies.md). Score::Given: float32 [batch, heads, seq] (seq = the
  // keys' dims[2]) where the keys live (host, or the keys' device). Score::Project: float32
  // [heads, key_dim], always in HOST memory (small; the CUDA launcher uploads it). Null for
  // the other scorers.
  const float* scores = nullptr;
  const float* vectors = nullptr;
  // Outputs: keys [B, H, max_kept, Dk], values [B, H, max_kept, Dv], indices [B, H, max_kept].
  // Entries past a batch entry's own kept count are zero rows and index -1.
  void* out_keys;
  void* out_values;
  int32_t* out_indices;
  // In place (compressInPlace): out_keys / out_values are the inputs themselves, rows keep
  // their stride of seq tokens, kept rows move to the front in position order, and rows past
  // a batch entry's kept count are left as they were.
  bool in_place = false;
};

// tokenScores: every token's score [batch, heads, seq] in the keep-highest convention, NaN
// (canonical) at padding positions (t >= the batch entry's length). The job's plan gives the
// lengths; its outputs other than `out` are unused.
struct ScoreJob {
  CompressJob job;
  float* out = nullptr;
};

}  // namespace kvtrim
