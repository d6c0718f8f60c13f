// Row copies for the gather. Large outputs are written with non-temporal (streaming) stores:
// the compacted cache is not read again by this call, and streaming skips the read-for-
// ownership of every destination line, which otherwise adds the output's size in reads.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kvtrim::cpu {

// Copies `bytes` from src to dst; `stream` selects non-temporal stores (dst and bytes must then
// be multiples of 16). Call stream_fence() once after a batch of streamed copies.
void copy_bytes(void* dst, const void* src, size_t bytes, bool stream);
void stream_fence();

// Whether streamed copies can be used for rows of `row_bytes` into `dst`.
inline bool can_stream(const void* dst, int64_t row_bytes) {
  return (reinterpret_cast<uintptr_t>(dst) & 15u) == 0 && (row_bytes & 15) == 0;
}

}  // namespace kvtrim::cpu
