#include "host_buffers.h"

#include <sys/mman.h>

#include <cstdlib>
#include <map>
#include <mutex>

namespace kvtrim::cpu {

namespace {

constexpr size_t kHuge = size_t(2) << 20;
constexpr size_t kMaxPooled = size_t(1) << 30;  // keep at most 1 GiB of idle buffers

size_t mapped_size(size_t bytes) { return (bytes + kHuge - 1) / kHuge * kHuge; }

struct FreeList {
  std::mutex mu;
  std::multimap<size_t, void*> idle;  // by mapped size
  size_t idle_bytes = 0;
};

FreeList& free_list() {
  static FreeList* f = new FreeList();  // never destroyed: finalizers may run at exit
  return *f;
}

}  // namespace

void* acquire_buffer(size_t bytes) {
  const size_t size = mapped_size(bytes);
  {
    FreeList& f = free_list();
    std::lock_guard<std::mutex> lk(f.mu);
    auto it = f.idle.find(size);
    if (it != f.idle.end()) {
      void* p = it->second;
      f.idle.erase(it);
      f.idle_bytes -= size;
      return p;
    }
  }
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
#ifdef MADV_HUGEPAGE
  madvise(p, size, MADV_HUGEPAGE);
#endif
  return p;
}

void release_buffer(void* p, size_t bytes) {
  if (p == nullptr) return;
  const size_t size = mapped_size(bytes);
  FreeList& f = free_list();
  {
    std::lock_guard<std::mutex> lk(f.mu);
    if (f.idle_bytes + size <= kMaxPooled) {
      f.idle.emplace(size, p);
      f.idle_bytes += size;
      return;
    }
  }
  munmap(p, size);
}

}  // namespace kvtrim::cpu
