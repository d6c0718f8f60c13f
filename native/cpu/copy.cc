#include "copy.h"

#include <cstring>

#if defined(__x86_64__)
#include <emmintrin.h>  // SSE2: part of every x86-64 CPU, so no run-time check
#endif

namespace kvtrim::cpu {

void copy_bytes(void* dst, const void* src, size_t bytes, bool stream) {
#if defined(__x86_64__)
  if (stream) {
    auto* d = static_cast<__m128i*>(dst);
    const auto* s = static_cast<const __m128i*>(src);
    size_t n = bytes / 16, i = 0;
    for (; i + 4 <= n; i += 4) {
      const __m128i a = _mm_loadu_si128(s + i), b = _mm_loadu_si128(s + i + 1);
      const __m128i c = _mm_loadu_si128(s + i + 2), e = _mm_loadu_si128(s + i + 3);
      _mm_stream_si128(d + i, a);
      _mm_stream_si128(d + i + 1, b);
      _mm_stream_si128(d + i + 2, c);
      _mm_stream_si128(d + i + 3, e);
    }
    for (; i < n; ++i) _mm_stream_si128(d + i, _mm_loadu_si128(s + i));
    return;
  }
#endif
  (void)stream;
  std::memcpy(dst, src, bytes);
}

void stream_fence() {
#if defined(__x86_64__)
  _mm_sfence();
#endif
}

}  // namespace kvtrim::cpu
