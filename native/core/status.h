// Status values returned by everything below native/addon: nothing there throws or exits;
// the addon turns a failed Status into a KvtrimError whose `code` is code_name(code).
#pragma once
#include <string>
#include <utility>

namespace kvtrim {

enum class Code {
  Ok,
  InvalidArgument,   // an argument of the wrong JS type (caught in the facade or the addon)
  InvalidRank,       // a tensor that is not [batch, kvHeads, seqLen, headDim]
  InvalidDims,       // dims that are not non-negative integers, or headDim out of range
  DimsMismatch,      // keys and values disagree in batch, heads or seqLen
  DataLength,        // data.length does not equal the product of dims
  InvalidDType,      // unknown dtype, or dtypes of keys and values differ
  InvalidKeepRatio,  // keepRatio outside (0, 1]
  InvalidKeep,       // keep outside [0, seqLen]
  InvalidSink,       // sink not a non-negative integer
  InvalidRecent,     // recent not a non-negative integer
  InvalidLengths,    // lengths of the wrong count, negative or above the capacity
  InvalidOption,     // an option of the wrong value (order, score, unknown names)
  TooManyRows,       // batch * kvHeads * seqLen above 2^31 - 1
  DetachedBuffer,    // an input whose ArrayBuffer was transferred or detached
  InputChanged,      // an input detached or resized while its Promise was pending
  CudaError,         // a failing CUDA call; the message carries CUDA's own
  OutOfMemory,
  Internal,
};

const char* code_name(Code code);

struct Status {
  Code code = Code::Ok;
  std::string message;

  bool ok() const { return code == Code::Ok; }
  static Status success() { return {}; }
  static Status error(Code c, std::string msg) { return Status{c, std::move(msg)}; }
};

}  // namespace kvtrim
