// What atomics and fences do besides their memory effect: a possible switch under the random and
// priority schedules, and under TSan the release / acquire edges of PTX's fence patterns.
#include "emu_internal.h"

namespace kvtrim {
namespace emu {
namespace detail {

void switch_point() {
  if (!tv || !t_sched) return;  // host code
  KVTRIM_EMU_TSAN_IGNORE();
  Fiber* f = reinterpret_cast<Fiber*>(tv);
  Sched* s = f->sched;
  switch (s->mode) {
    case Schedule::Deterministic: return;
    case Schedule::Random: {
      const size_t n = s->pool.size();
      if (n == 0 || s->rng.below(n + 1) == n) return;
      break;
    }
    case Schedule::Priority:
      if (s->heap.empty() || s->heap.front().first <= f->prio) return;
      break;
  }
  s->push(f);
  s->to_main(f, false);
}

#if KVTRIM_EMU_TSAN
// PTX's release pattern (a fence, then a strong write) and acquire pattern (a strong read, then
// a fence), with every atomic relaxed: see README.md for the rule and why it is sound.
void tsan_atomic(const void* address) {
  if (!tv || !t_sched) return;  // host code
  Fiber* f = reinterpret_cast<Fiber*>(tv);
  if (f->fence_pending) {
    __tsan_release(const_cast<void*>(address));
    f->fence_pending = false;
  }
  for (unsigned i = 0; i < f->n_reads && i < 8; ++i)
    if (f->reads[i] == address) return;
  f->reads[f->n_reads++ % 8] = address;  // past 8 distinct addresses, the oldest are dropped
}
void tsan_fence() {
  if (!tv || !t_sched) return;
  Fiber* f = reinterpret_cast<Fiber*>(tv);
  const unsigned n = f->n_reads < 8 ? f->n_reads : 8;
  for (unsigned i = 0; i < n; ++i) __tsan_acquire(const_cast<void*>(f->reads[i]));
  f->n_reads = 0;
  f->fence_pending = true;
}
#endif

}  // namespace detail
}  // namespace emu
}  // namespace kvtrim
