// A minimal fork-join over the machine's cores for the CPU path: a persistent pool of workers
// that the calling thread joins; small jobs run inline, where a wake-up costs more than the work.
#pragma once
#include <cstdint>
#include <functional>

namespace kvtrim::cpu {

// Worker threads used by the CPU path: KVTRIM_THREADS if set, else the hardware's count.
int thread_count();

// Runs fn(task) for task in [0, n_tasks) on up to thread_count() threads. `work` is a rough
// cost in bytes touched; below a threshold everything runs on the calling thread.
void parallel_for(int64_t n_tasks, int64_t work, const std::function<void(int64_t)>& fn);

}  // namespace kvtrim::cpu
