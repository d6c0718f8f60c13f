// Fiber stacks: mmap'ed with a guard page, pooled per OS thread (never under TSan, where a reused
// stack would carry the previous GPU thread's shadow).
#include "emu_internal.h"

#include <sys/mman.h>
#include <unistd.h>

namespace kvtrim {
namespace emu {
namespace detail {

namespace {
struct StackPool {
  std::vector<Stack> v;
  ~StackPool() {
    for (Stack& s : v) munmap(s.map, s.map_size);
  }
};
thread_local StackPool t_pool;
constexpr size_t kPoolMax = 2048;
}  // namespace

bool stack_get(Stack* out, size_t size) {
  while (!t_pool.v.empty()) {
    Stack s = t_pool.v.back();
    t_pool.v.pop_back();
    if (s.size == size) {
      *out = s;
      return true;
    }
    munmap(s.map, s.map_size);
  }
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  const size_t total = size + page;
  void* m = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (m == MAP_FAILED) return false;
  if (mprotect(m, page, PROT_NONE) != 0) {
    munmap(m, total);
    return false;
  }
  out->map = static_cast<char*>(m);
  out->map_size = total;
  out->lo = out->map + page;
  out->size = size;
  g_stat_stacks.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void stack_put(Stack& s) {
  if (!s.map) return;
#if KVTRIM_EMU_ASAN
  __asan_unpoison_memory_region(s.lo, s.size);  // frames of abandoned or exited fibers
#endif
  // Under TSan a stack is never handed to another fiber: its shadow (the previous GPU thread's
  // accesses) would race with the new one's. munmap resets the shadow; the next mmap is fresh.
  if (!KVTRIM_EMU_TSAN && t_pool.v.size() < kPoolMax) t_pool.v.push_back(s);
  else munmap(s.map, s.map_size);
  s = Stack{};
}

}  // namespace detail
}  // namespace emu
}  // namespace kvtrim
