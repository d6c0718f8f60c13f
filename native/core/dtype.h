// Element types and their exact conversion to fp32. Written with plain integer arithmetic so
// that the same code is correct on the host, under the CUDA emulator and as a reference.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

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

// IEEE binary16 -> binary32, exact for every input (subnormals, infinities, NaN payloads).
inline float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1Fu) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal: renormalise
    uint32_t shifts = 0;
    while (!(mant & 0x400u)) { mant <<= 1; ++shifts; }
    bits = sign | ((113u - shifts) << 23) | ((mant & 0x3FFu) << 13);
  }
  return bits_to_f32(bits);
}

inline float bf16_to_f32(uint16_t h) { return bits_to_f32(uint32_t(h) << 16); }

}  // namespace kvtrim
