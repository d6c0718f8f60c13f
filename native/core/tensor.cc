#include "tensor.h"

#include <string>

namespace kvtrim {

std::string dims_string(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

Status check_tensor(const TensorView& t, const char* name) {
  const std::string n = name;
  if (t.dims.size() != 4) {
    return Status::error(Code::InvalidRank, "Expected " + n +
        ".dims to have 4 entries [batch, kvHeads, seqLen, headDim] but received " +
        std::to_string(t.dims.size()) + ": " + dims_string(t.dims));
  }
  for (int64_t d : t.dims) {
    if (d < 0) {
      return Status::error(Code::InvalidDims,
          "Expected " + n + ".dims to be non-negative integers but received " + dims_string(t.dims));
    }
  }
  const int64_t head_dim = t.dims[3];
  if (head_dim < 1 || head_dim > kMaxHeadDim) {
    return Status::error(Code::InvalidDims, "Expected " + n + ".dims[3] (headDim) in [1, " +
        std::to_string(kMaxHeadDim) + "] but received " + std::to_string(head_dim));
  }
  // Checked before the product is formed, so no overflow: each factor is below 2^31 here.
  int64_t rows = 1;
  for (int i = 0; i < 3; ++i) {
    if (t.dims[i] > kMaxRows || (t.dims[i] > 0 && rows > kMaxRows / t.dims[i])) {
      rows = kMaxRows + 1;
      break;
    }
    rows *= t.dims[i];
  }
  // An empty tensor still plans one entry per batch and per row: bound those too.
  if (rows <= kMaxRows && (t.dims[0] > kMaxBatch || t.dims[0] * t.dims[1] > kMaxRows)) {
    return Status::error(Code::TooManyRows, "Expected " + n + " to have at most 2^24 batch entries and 2^31 - 1 "
        "(batch, kvHead) rows but its dims are " + dims_string(t.dims));
  }
  if (rows > kMaxRows) {
    return Status::error(Code::TooManyRows, "Expected " + n +
        " to have at most 2^31 - 1 rows (batch * kvHeads * seqLen) but its dims are " +
        dims_string(t.dims) + "; compress it in parts (per layer or per batch)");
  }
  if (t.length != rows * head_dim) {
    return Status::error(Code::DataLength, "Expected " + n + ".data to hold " +
        std::to_string(rows * head_dim) + " elements (the product of dims " + dims_string(t.dims) +
        ") but it holds " + std::to_string(t.length));
  }
  return Status::success();
}

Status check_pair(const TensorView& keys, const TensorView& values, Shape* shape) {
  Status s = check_tensor(keys, "keys");
  if (!s.ok()) return s;
  s = check_tensor(values, "values");
  if (!s.ok()) return s;
  if (keys.dtype != values.dtype) {
    return Status::error(Code::InvalidDType, std::string("Expected keys and values of one dtype but "
        "received keys ") + dtype_name(keys.dtype) + " and values " + dtype_name(values.dtype));
  }
  for (int i = 0; i < 3; ++i) {
    if (keys.dims[i] != values.dims[i]) {
      static const char* names[3] = {"batch", "kvHeads", "seqLen"};
      return Status::error(Code::DimsMismatch, std::string("Expected keys and values to agree in ") +
          names[i] + " (dims[" + std::to_string(i) + "]) but keys.dims is " + dims_string(keys.dims) +
          " and values.dims is " + dims_string(values.dims));
    }
  }
  *shape = Shape{keys.dims[0], keys.dims[1], keys.dims[2], keys.dims[3], values.dims[3]};
  return Status::success();
}

}  // namespace kvtrim
