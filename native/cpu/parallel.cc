#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
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

namespace {

// A persistent pool of thread_count() - 1 workers; the caller of parallel_for is the last one.
// One job at a time (callers from several libuv threads take turns). Created on first use and
// never destroyed: its threads sleep on a condition variable and die with the process.
class Pool {
 public:
  explicit Pool(int workers) {
    for (int i = 0; i < workers; ++i) std::thread([this] { work(); }).detach();
    workers_ = workers;
  }

  void run(int64_t n_tasks, const std::function<void(int64_t)>& fn) {
    std::lock_guard<std::mutex> one_job(job_mu_);
    {
      std::lock_guard<std::mutex> lk(mu_);
      fn_ = &fn;
      n_tasks_ = n_tasks;
      next_.store(0, std::memory_order_relaxed);
      busy_ = workers_;
      ++generation_;
    }
    cv_.notify_all();
    drain();
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [this] { return busy_ == 0; });
    fn_ = nullptr;
  }

 private:
  void drain() {
    for (int64_t t; (t = next_.fetch_add(1, std::memory_order_relaxed)) < n_tasks_;) (*fn_)(t);
  }

  void work() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return generation_ != seen; });
        seen = generation_;
      }
      drain();
      std::lock_guard<std::mutex> lk(mu_);
      if (--busy_ == 0) done_cv_.notify_one();
    }
  }

  std::mutex job_mu_, mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int64_t)>* fn_ = nullptr;
  int64_t n_tasks_ = 0;
  std::atomic<int64_t> next_{0};
  int workers_ = 0, busy_ = 0;
  uint64_t generation_ = 0;
};

Pool& pool() {
  static Pool* p = new Pool(thread_count() - 1);
  return *p;
}

}  // namespace

void parallel_for(int64_t n_tasks, int64_t work, const std::function<void(int64_t)>& fn) {
  constexpr int64_t kInlineWork = 256 * 1024;  // below this a wake-up costs more than the work
  if (thread_count() <= 1 || n_tasks <= 1 || work < kInlineWork) {
    for (int64_t t = 0; t < n_tasks; ++t) fn(t);
    return;
  }
  pool().run(n_tasks, fn);
}

}  // namespace kvtrim::cpu
