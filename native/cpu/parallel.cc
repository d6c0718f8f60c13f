#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

namespace kvtrim::cpu {

int thread_count() {
  static const int n = [] {
    if (const char* env = std::getenv("KVTRIM_THREADS")) {
      const int v = std::atoi(env);
      if (v > 0) return std::min(v, 256);
    }
    const unsigned hw = std::thread::hardware_concurrency();
    return hw == 0 ? 1 : int(std::min(hw, 256u));
  }();
  return n;
}

void parallel_for(int64_t n_tasks, int64_t work, const std::function<void(int64_t)>& fn) {
  constexpr int64_t kInlineWork = 256 * 1024;  // ~ a few tens of microseconds of copying
  const int64_t threads = std::min<int64_t>(thread_count(), n_tasks);
  if (threads <= 1 || work < kInlineWork) {
    for (int64_t t = 0; t < n_tasks; ++t) fn(t);
    return;
  }
  std::atomic<int64_t> next{0};
  auto drain = [&] {
    for (int64_t t; (t = next.fetch_add(1, std::memory_order_relaxed)) < n_tasks;) fn(t);
  };
  std::vector<std::thread> pool;
  pool.reserve(size_t(threads - 1));
  for (int64_t i = 1; i < threads; ++i) pool.emplace_back(drain);
  drain();
  for (auto& th : pool) th.join();
}

}  // namespace kvtrim::cpu
