// Element types and their exact conversion to fp32. Written with plain integer arithmetic so
// that the same code is correct on the host, under the CUDA emulator and as a reference.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

#include "contract.h"

namespace kvtrim {

enum class DType { F16 = 0, BF16 = 1, F32 = 2 };

inline int dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    case DType::F32: return "float32";
  }
  return "?";
}

inline bool parse_dtype(const std::string& s, DType* out) {
  if (s == "float16") { *out = DType::F16; return true; }
  if (s == "bfloat16") { *out = DType::BF16; return true; }
  if (s == "float32") { *out = DType::F32; return true; }
  return false;
}

inline float bits_to_f32(uint32_t b) { float f; std::memcpy(&f, &b, 4); return f; }
inline uint32_t f32_to_bits(float f) { uint32_t b; std::memcpy(&b, &f, 4); return b; }

// IEEE binary16 -> binary32, exact for every input (the contract's conversion: contract.h).
inline float f16_to_f32(uint16_t h) { return bits_to_f32(f16_to_f32_bits(h)); }

inline float bf16_to_f32(uint16_t h) { return bits_to_f32(uint32_t(h) << 16); }

}  // namespace kvtrim
