#include "host_buffers.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>

namespace kvtrim::cpu {

namespace {

constexpr size_t kHuge = size_t(2) << 20;
constexpr size_t kDefaultCapMiB = 1024;

size_t mapped_size(size_t bytes) { return (bytes + kHuge - 1) / kHuge * kHuge; }

size_t cap_from_env() {
  const char* s = std::getenv("KVTRIM_POOL_MB");
  if (s == nullptr || *s == '\0') return kDefaultCapMiB << 20;
  char* end = nullptr;
  const unsigned long long mb = std::strtoull(s, &end, 10);
  if (end == s || *end != '\0' || mb > (size_t(1) << 24)) return kDefaultCapMiB << 20;
  return size_t(mb) << 20;
}

struct Pool {
  std::mutex mu;
  std::multimap<size_t, void*> idle;  // by mapped size
  size_t cap = cap_from_env();
  size_t idle_bytes = 0, in_use = 0;
  size_t since_return = 0;  // handed out since a buffer last came back
  uint64_t reused = 0, mapped = 0, declined = 0;

  // Unmaps idle buffers, largest first, until `need` more bytes fit under the cap.
  void make_room(size_t need) {
    while (!idle.empty() && in_use + idle_bytes + need > cap) {
      auto it = std::prev(idle.end());
      munmap(it->second, it->first);
      idle_bytes -= it->first;
      idle.erase(it);
    }
  }
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: finalizers may run at exit
  return *p;
}

}  // namespace

void advise_huge_pages(void* p, size_t bytes) {
#ifdef MADV_HUGEPAGE
  // Only whole 2 MiB pages inside the range: madvise wants page-aligned addresses, and the
  // allocator's memory around them is not ours.
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + kHuge - 1) / kHuge * kHuge;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + bytes) / kHuge * kHuge;
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

bool acquire_buffers(const size_t* sizes, int n, void** out) {
  Pool& p = pool();
  std::lock_guard<std::mutex> lk(p.mu);
  size_t total = 0;
  for (int i = 0; i < n; ++i) total += mapped_size(sizes[i]);
  // Between two returns the pool hands out a quarter of the cap, or two calls of this size if
  // that is more (a caller that holds one large result while computing the next must not fall
  // back to ordinary memory).
  if (total > p.cap || (p.since_return > 0 && p.since_return + total > std::max(p.cap / 4, 2 * total))) {
    ++p.declined;
    return false;
  }
  // Idle buffers of the exact sizes first; whatever is missing is mapped anew.
  std::multimap<size_t, void*> taken;
  for (int i = 0; i < n; ++i) {
    const size_t size = mapped_size(sizes[i]);
    auto it = p.idle.find(size);
    if (it != p.idle.end()) {
      taken.emplace(size, it->second);
      p.idle_bytes -= size;
      p.idle.erase(it);
    }
  }
  auto give_back = [&] {
    for (auto& [size, ptr] : taken) {
      p.idle.emplace(size, ptr);
      p.idle_bytes += size;
    }
  };
  p.make_room(total);  // the taken ones count too: they are in neither idle nor in_use now
  if (p.in_use + p.idle_bytes + total > p.cap) {
    give_back();
    ++p.declined;
    return false;
  }
  for (int i = 0; i < n; ++i) {
    const size_t size = mapped_size(sizes[i]);
    auto it = taken.find(size);
    if (it != taken.end()) {
      out[i] = it->second;
      taken.erase(it);
      ++p.reused;
      continue;
    }
    void* m = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
      for (int j = 0; j < i; ++j) {
        p.idle.emplace(mapped_size(sizes[j]), out[j]);
        p.idle_bytes += mapped_size(sizes[j]);
      }
      give_back();
      ++p.declined;
      return false;
    }
#ifdef MADV_HUGEPAGE
    madvise(m, size, MADV_HUGEPAGE);
#endif
    out[i] = m;
    ++p.mapped;
  }
  p.in_use += total;
  p.since_return += total;
  return true;
}

void release_buffer(void* ptr, size_t bytes) {
  if (ptr == nullptr) return;
  const size_t size = mapped_size(bytes);
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lk(p.mu);
    p.in_use -= size;
    p.since_return = 0;
    if (p.in_use + p.idle_bytes + size <= p.cap) {
      p.idle.emplace(size, ptr);
      p.idle_bytes += size;
      return;
    }
  }
  munmap(ptr, size);
}

size_t release_idle_buffers() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lk(p.mu);
  const size_t released = p.idle_bytes;
  for (auto& [size, ptr] : p.idle) munmap(ptr, size);
  p.idle.clear();
  p.idle_bytes = 0;
  return released;
}

void set_pool_cap(size_t bytes) {
  Pool& p = pool();
  std::lock_guard<std::mutex> lk(p.mu);
  p.cap = bytes;
  p.make_room(0);
}

PoolStats pool_stats() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lk(p.mu);
  return PoolStats{p.cap, p.in_use, p.idle_bytes, p.reused, p.mapped, p.declined};
}

}  // namespace kvtrim::cpu
