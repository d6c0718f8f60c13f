// Large host output buffers, recycled. A fresh 64 MiB array costs ~16k page faults and the
// kernel's zeroing of every page -- on the benchmark shape more than the compress itself -- so
// outputs of 1 MiB and more come from this pool: mapped with MADV_HUGEPAGE when new, and
// returned by the JS finalizer of the array that used them for the next call to reuse.
#pragma once
#include <cstddef>

namespace kvtrim::cpu {

constexpr size_t kPooledMinBytes = size_t(1) << 20;

// At least `bytes` of writable memory, contents unspecified; nullptr if none can be had.
void* acquire_buffer(size_t bytes);
// Gives back a buffer from acquire_buffer with the same `bytes`.
void release_buffer(void* p, size_t bytes);

}  // namespace kvtrim::cpu
