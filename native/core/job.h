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

}  // namespace kvtrim
