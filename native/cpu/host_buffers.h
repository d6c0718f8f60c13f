// Large host output buffers, recycled. A fresh 64 MiB array costs ~16k page faults and the
// kernel's zeroing of every page -- on the benchmark shape more than the compress itself -- so
// outputs of 1 MiB and more come from this pool: mapped with MADV_HUGEPAGE when new, and
// returned by the JS finalizer of the array that used them for the next call to reuse.
//
// The pool is bounded twice, because finalizers run only when the event loop turns:
// - a cap on everything it maps, in use and idle together (KVTRIM_POOL_MB, default 1024);
// - a cap on what it hands out between two returns (a quarter of the cap, or two calls' worth
//   if more): a synchronous loop that never yields gets ordinary memory, which the GC frees
//   without the event loop.
// A request the pool cannot take returns false and the caller uses ordinary memory.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kvtrim::cpu {

constexpr size_t kPooledMinBytes = size_t(1) << 20;

struct PoolStats {
  size_t cap = 0;        // bytes the pool may map, in use and idle together
  size_t in_use = 0;     // handed out, not yet given back
  size_t idle = 0;       // mapped, waiting for reuse
  uint64_t reused = 0;   // requests served from idle buffers
  uint64_t mapped = 0;   // requests served by a new mapping
  uint64_t declined = 0; // requests left to ordinary memory (over a cap)
};

// All-or-nothing: one call's outputs (n sizes, each >= kPooledMinBytes) from the pool, or
// false with nothing taken. out[i] has at least sizes[i] writable bytes, contents unspecified.
bool acquire_buffers(const size_t* sizes, int n, void** out);
// Gives back a buffer from acquire_buffers with the same size.
void release_buffer(void* p, size_t bytes);
// Asks for huge pages on the whole 2 MiB pages of a fresh, untouched allocation (the ordinary
// memory an output gets when the pool declines): first touch then costs a fault per 2 MiB.
void advise_huge_pages(void* p, size_t bytes);
// Unmaps every idle buffer; returns the bytes released.
size_t release_idle_buffers();
// Sets the cap (bytes; 0 disables the pool); idle buffers over it are unmapped at once.
void set_pool_cap(size_t bytes);
PoolStats pool_stats();

}  // namespace kvtrim::cpu
