#include "status.h"

namespace kvtrim {

const char* code_name(Code code) {
  switch (code) {
    case Code::Ok: return "OK";
    case Code::InvalidArgument: return "INVALID_ARGUMENT";
    case Code::InvalidRank: return "INVALID_RANK";
    case Code::InvalidDims: return "INVALID_DIMS";
    case Code::DimsMismatch: return "DIMS_MISMATCH";
    case Code::DataLength: return "DATA_LENGTH";
    case Code::InvalidDType: return "INVALID_DTYPE";
    case Code::InvalidKeepRatio: return "INVALID_KEEP_RATIO";
    case Code::InvalidKeep: return "INVALID_KEEP";
    case Code::InvalidSink: return "INVALID_SINK";
    case Code::InvalidRecent: return "INVALID_RECENT";
    case Code::InvalidLengths: return "INVALID_LENGTHS";
    case Code::InvalidOption: return "INVALID_OPTION";
    case Code::TooManyRows: return "TOO_MANY_ROWS";
    case Code::DetachedBuffer: return "DETACHED_BUFFER";
    case Code::InputChanged: return "INPUT_CHANGED";
    case Code::CudaError: return "CUDA_ERROR";
    case Code::OutOfMemory: return "OUT_OF_MEMORY";
    case Code::Internal: return "INTERNAL";
  }
  return "INTERNAL";
}

}  // namespace kvtrim
