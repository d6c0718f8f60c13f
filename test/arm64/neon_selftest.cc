// Exhaustive check of the NEON row norms against the scalar contract (native/core/norm.h),
// compiled for aarch64 and run under qemu-aarch64 by scripts/test-arm64.sh (no Node needed):
//  - every fp16 and every bf16 bit pattern (NaNs, infinities, subnormals, both zeros) at every
//    position of rows of head_dim 1, 3, 8, 9 and 17, so each conversion lands in every lane, every chunk
//    position and the padded tail;
//  - random rows of many head_dims (1..1024) and row counts (1..13, the non-multiple-of-4 tail),
//    for every dtype, including rows of tiny bf16 and fp32 values whose squares are subnormal
//    (where a fused multiply-add rounds differently) and fp32 values whose squares overflow.
// Bit-for-bit: a mismatch prints the dtype, head_dim, row and both bit patterns and exits 1.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "../../native/core/norm.h"
#include "../../native/cpu/norms.h"

using namespace kvtrim;

static long checked = 0, failures = 0;

static void compare(DType t, const void* rows, int64_t n_rows, int64_t d) {
  std::vector<float> a(size_t(n_rows) + 1), b(size_t(n_rows) + 1);
  if (!cpu::row_norms_neon(t, rows, n_rows, d, a.data())) {
    std::printf("row_norms_neon is not compiled in\n");
    std::exit(1);
  }
  cpu::row_norms_portable(t, rows, n_rows, d, b.data());
  for (int64_t r = 0; r < n_rows; ++r) {
    ++checked;
    const float ref = row_norm_scalar(t, static_cast<const char*>(rows) + r * d * dtype_size(t), d);
    if (f32_to_bits(a[r]) != f32_to_bits(ref) || f32_to_bits(b[r]) != f32_to_bits(ref)) {
      if (++failures <= 10) {
        std::printf("MISMATCH %s d=%lld row=%lld neon=%08x portable=%08x scalar=%08x\n", dtype_name(t),
                    (long long)d, (long long)r, f32_to_bits(a[r]), f32_to_bits(b[r]), f32_to_bits(ref));
      }
    }
  }
}

int main() {
  // 1. every 16-bit pattern, in every position of rows of 1, 3, 8, 9 and 17 elements.
  for (DType t : {DType::F16, DType::BF16}) {
    for (int64_t d : {1, 3, 8, 9, 17}) {
      for (int64_t pos = 0; pos < d; ++pos) {
        const int64_t n_rows = 65536;
        std::vector<uint16_t> rows(size_t(n_rows * d), 0);
        for (int64_t r = 0; r < n_rows; ++r) {
          for (int64_t i = 0; i < d; ++i) rows[size_t(r * d + i)] = uint16_t(i == pos ? r : 0x3C00 ^ (i & 1));
        }
        compare(t, rows.data(), n_rows, d);
      }
    }
  }
  // 2. random rows.
  std::mt19937_64 rng(17);
  const int64_t dims[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 96, 127, 128, 129, 255, 256, 511, 1000, 1023, 1024};
  for (int64_t d : dims) {
    for (int64_t n_rows = 1; n_rows <= 13; ++n_rows) {
      for (int kind = 0; kind < 4; ++kind) {
        std::vector<uint16_t> h(size_t(n_rows * d));
        std::vector<float> f(size_t(n_rows * d));
        for (size_t i = 0; i < h.size(); ++i) {
          const uint64_t x = rng();
          switch (kind) {
            case 0: h[i] = uint16_t(x); break;                                        // any pattern
            case 1: h[i] = uint16_t((x & 0x8000) | (0x3000 + (x >> 20) % 0x1800)); break;  // ordinary
            case 2: h[i] = uint16_t((x & 0x8000) | ((x >> 20) % 0x0600)); break;       // subnormal fp16, tiny bf16
            case 3: h[i] = uint16_t((x & 0x8000) | ((45 + (x >> 20) % 26) << 7) | ((x >> 40) & 0x7f)); break;  // bf16 2^-82..2^-57: subnormal squares
          }
          uint32_t b = uint32_t(x >> 32);
          if (kind == 1) b = (b & 0x807FFFFFu) | ((100u + (b >> 23) % 60u) << 23);
          if (kind == 2) b = (b & 0x807FFFFFu) | ((40u + (b >> 23) % 36u) << 23);  // squares subnormal or 0
          if (kind == 3) b = (b & 0x807FFFFFu) | ((180u + (b >> 23) % 12u) << 23);  // squares overflow
          f[i] = bits_to_f32(b);
        }
        compare(DType::F16, h.data(), n_rows, d);
        compare(DType::BF16, h.data(), n_rows, d);
        compare(DType::F32, f.data(), n_rows, d);
      }
    }
  }
  std::printf("neon selftest: %ld rows checked, %ld mismatches\n", checked, failures);
  return failures ? 1 : 0;
}
