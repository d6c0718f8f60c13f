// A borrowed view of a host tensor in the [batch, kvHeads, seqLen, headDim] layout, and the
// checks every operation applies to its inputs before touching data.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "dtype.h"
#include "norm.h"
#include "status.h"

namespace kvtrim {

constexpr int64_t kMaxRows = 2147483647;  // batch * kvHeads * seqLen must fit an int32 index
constexpr int64_t kMaxBatch = int64_t(1) << 24;  // batch entries (each has its own plan entry)

struct TensorView {
  DType dtype = DType::F32;
  const void* data = nullptr;
  int64_t length = 0;          // elements in data
  std::vector<int64_t> dims;   // as given; validated to rank 4
};

struct Shape {
  int64_t batch = 0, heads = 0, seq = 0, key_dim = 0, value_dim = 0;
  int64_t rows() const { return batch * heads * seq; }
};

// "[1, 8, 4096, 128]", for messages.
std::string dims_string(const std::vector<int64_t>& dims);

// Rank, dims, row count and data length of one tensor; `name` is used in messages.
Status check_tensor(const TensorView& t, const char* name);

// Both tensors, and their agreement: same dtype, same batch, heads and seqLen. The value
// head dimension may differ from the key one (it is only copied).
Status check_pair(const TensorView& keys, const TensorView& values, Shape* shape);

}  // namespace kvtrim
