#include "plan.h"

#include <algorithm>
#include <string>

namespace kvtrim {

Status make_plan(const Shape& shape, const CompressParams& p, const int64_t* lengths,
                 int64_t n_lengths, Plan* plan, const std::vector<int64_t>* head_keep) {
  if (p.use_ratio && !(p.keep_ratio > 0.0 && p.keep_ratio <= 1.0)) {
    return Status::error(Code::InvalidKeepRatio,
        "Expected keepRatio in (0, 1] but received " + std::to_string(p.keep_ratio));
  }
  if (!p.use_ratio && (p.keep < 0 || p.keep > shape.seq)) {
    return Status::error(Code::InvalidKeep, "Expected keep in [0, seqLen = " +
        std::to_string(shape.seq) + "] but received " + std::to_string(p.keep));
  }
  if (p.sink < 0 || p.sink > kMaxRows) {
    return Status::error(Code::InvalidSink,
        "Expected sink to be an integer in [0, 2^31 - 1] but received " + std::to_string(p.sink));
  }
  if (p.recent < 0 || p.recent > kMaxRows) {
    return Status::error(Code::InvalidRecent,
        "Expected recent to be an integer in [0, 2^31 - 1] but received " + std::to_string(p.recent));
  }
  plan->lengths.assign(size_t(shape.batch), shape.seq);
  if (lengths != nullptr) {
    if (n_lengths != shape.batch) {
      return Status::error(Code::InvalidLengths, "Expected lengths to have one entry per batch (" +
          std::to_string(shape.batch) + ") but it has " + std::to_string(n_lengths));
    }
    for (int64_t b = 0; b < shape.batch; ++b) {
      if (lengths[b] < 0 || lengths[b] > shape.seq) {
        return Status::error(Code::InvalidLengths, "Expected lengths[" + std::to_string(b) +
            "] in [0, capacity = " + std::to_string(shape.seq) + "] but received " +
            std::to_string(lengths[b]));
      }
      plan->lengths[size_t(b)] = lengths[b];
    }
  }
  const int64_t rows = shape.batch * shape.heads;
  if (head_keep != nullptr && int64_t(head_keep->size()) != rows) {
    return Status::error(Code::InvalidKeep, "Expected headKeep to have one count per (batch entry, KV head) row, batch * kvHeads = " +
        std::to_string(rows) + ", but it has " + std::to_string(head_keep->size()));
  }
  plan->kept.resize(size_t(rows));
  plan->batch_kept.assign(size_t(shape.batch), 0);
  plan->max_kept = 0;
  for (int64_t b = 0; b < shape.batch; ++b) {
    const int64_t len = plan->lengths[size_t(b)];
    // every head keeps keep_count (the entry's count even when there are no heads), or the
    // caller's counts, each checked; batch_kept is the most of the entry's rows
    const int64_t per_head = head_keep ? 0 : keep_count(p.use_ratio, p.keep_ratio, p.keep, p.sink, p.recent, len);
    int64_t most = per_head;
    for (int64_t row = b * shape.heads; row < (b + 1) * shape.heads; ++row) {
      int64_t k = per_head;
      if (head_keep != nullptr) {
        k = (*head_keep)[size_t(row)];
        const int64_t protect = std::min(len, p.sink + p.recent);
        if (k < protect || k > len) {
          return Status::error(Code::InvalidKeep, "Expected headKeep[" + std::to_string(row) + "] in [" +
              std::to_string(protect) + ", " + std::to_string(len) +
              "] (at least the entry's sink + recent tokens, at most its length) but received " + std::to_string(k));
        }
      }
      plan->kept[size_t(row)] = k;
      most = std::max(most, k);
    }
    plan->batch_kept[size_t(b)] = most;
    plan->max_kept = std::max(plan->max_kept, most);
  }
  return Status::success();
}

Status check_in_place(const TensorView& keys, const TensorView& values, const CompressParams& p) {
  if (p.order != Order::Position) {
    return Status::error(Code::InvalidOption,
        "Expected order 'position' for compressInPlace (kept rows move to the front in position "
        "order); use compress for order 'norm'");
  }
  const char* k0 = static_cast<const char*>(keys.data);
  const char* v0 = static_cast<const char*>(values.data);
  const char* k1 = k0 + keys.length * dtype_size(keys.dtype);
  const char* v1 = v0 + values.length * dtype_size(values.dtype);
  if (k0 < v1 && v0 < k1) {
    return Status::error(Code::InvalidArgument,
        "Expected keys.data and values.data to be separate memory for compressInPlace, but they overlap");
  }
  return Status::success();
}

}  // namespace kvtrim
