#include "uncertainty.h"

#include <algorithm>
#include <functional>
#include <string>

namespace kvtrim {

Status check_uncertainty_params(const UncertaintyParams& p) {
  if (!(p.threshold > 0.0 && p.threshold <= 1.0)) {
    return Status::error(Code::InvalidOption,
        "Expected threshold in (0, 1] but received " + std::to_string(p.threshold));
  }
  return Status::success();
}

Status check_attention(const TensorView& t, AttentionShape* shape) {
  if (t.dims.size() != 4) {
    return Status::error(Code::InvalidRank, "Expected attention.dims to have 4 entries "
        "[batch, heads, queries, seqLen] but received " + std::to_string(t.dims.size()) + ": " +
        dims_string(t.dims));
  }
  int64_t rows = 1;
  for (int i = 0; i < 4; ++i) {
    if (t.dims[size_t(i)] < 0) {
      return Status::error(Code::InvalidDims,
          "Expected attention.dims to be non-negative integers but received " + dims_string(t.dims));
    }
  }
  for (int i = 0; i < 3; ++i) {
    const int64_t d = t.dims[size_t(i)];
    if (d > kMaxRows || (d > 0 && rows > kMaxRows / d)) {
      return Status::error(Code::TooManyRows, "Expected attention to have at most 2^31 - 1 rows "
          "(batch * heads * queries) but its dims are " + dims_string(t.dims));
    }
    rows *= d;
  }
  const int64_t seq = t.dims[3];
  if (seq > kMaxRows || (seq > 0 && rows > (int64_t(1) << 62) / seq)) {
    return Status::error(Code::TooManyRows, "Expected a smaller attention tensor than " + dims_string(t.dims));
  }
  if (t.length != rows * seq) {
    return Status::error(Code::DataLength, "Expected attention.data to hold " +
        std::to_string(rows * seq) + " elements (the product of dims " + dims_string(t.dims) +
        ") but it holds " + std::to_string(t.length));
  }
  *shape = AttentionShape{t.dims[0], t.dims[1], t.dims[2], seq};
  return Status::success();
}

Status check_window(const TensorView& q, const TensorView& k, const UncertaintyParams& p, WindowShape* shape) {
  Status s = check_tensor(q, "queries");
  if (!s.ok()) return s;
  s = check_tensor(k, "keys");
  if (!s.ok()) return s;
  if (q.dims[0] != k.dims[0] || q.dims[3] != k.dims[3]) {
    return Status::error(Code::DimsMismatch, "Expected queries and keys to agree in batch (dims[0]) "
        "and headDim (dims[3]) but queries.dims is " + dims_string(q.dims) + " and keys.dims is " +
        dims_string(k.dims));
  }
  const int64_t hq = q.dims[1], hkv = k.dims[1];
  if (hkv == 0 ? hq != 0 : hq % hkv != 0) {
    return Status::error(Code::DimsMismatch, "Expected queries' heads (dims[1] = " +
        std::to_string(hq) + ") to be a multiple of keys' kvHeads (dims[1] = " + std::to_string(hkv) +
        ") (grouped-query attention)");
  }
  if (p.causal && q.dims[2] > k.dims[2]) {
    return Status::error(Code::DimsMismatch, "Expected the observation window (queries.dims[2] = " +
        std::to_string(q.dims[2]) + ") to be at most keys' seqLen (" + std::to_string(k.dims[2]) +
        ") with causal: the window is the last queries of the sequence");
  }
  *shape = WindowShape{q.dims[0], hq, hkv, q.dims[2], k.dims[2], q.dims[3]};
  return Status::success();
}

int64_t mass_count(double* w, int64_t n, double threshold) {
  std::sort(w, w + n, std::greater<double>());
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) total += w[i];
  const double target = threshold * total;
  double cum = 0.0;
  int64_t c = 0;
  while (cum < target && c < n) cum += w[c++];
  return c;
}

}  // namespace kvtrim
