// __syncthreads, __syncthreads_count / _and / _or: a rendezvous of every thread of the block at
// one call site, with the errors of a divergent or deadlocked barrier and, under TSan, CUDA's
// happens-before edges.
#include "emu_internal.h"

namespace kvtrim {
namespace emu {
namespace detail {

const char* bar_name(Bar b) {
  switch (b) {
    case Bar::Sync: return "__syncthreads";
    case Bar::Count: return "__syncthreads_count";
    case Bar::And: return "__syncthreads_and";
    case Bar::Or: return "__syncthreads_or";
  }
  return "?";
}

int block_barrier(Bar kind, int pred, const char* file, int line) {
  KVTRIM_EMU_TSAN_IGNORE();
  Fiber* f = self(bar_name(kind));
  Sched* s = f->sched;
  Block* b = f->block;
  const uint3 bi = b->idx, ti = f->vars.tid;
  for (const Collective& c : b->warps[f->warp].pending) {
    if (c.mask & (1u << f->lane)) {
      s->error(cudaErrorLaunchFailure,
               "mismatched warp collective: block (%u,%u,%u) warp %u: lane %u (thread (%u,%u,%u)) "
               "is at %s %s:%d while lanes 0x%08x wait for it at %s %s:%d (mask 0x%08x)",
               bi.x, bi.y, bi.z, f->warp, f->lane, ti.x, ti.y, ti.z, bar_name(kind), file, line,
               c.arrived, op_name(c.op), c.file, c.line, c.mask);
      s->abandon(f);
    }
  }
  if (b->exited > 0) {
    const uint3 t2 = b->first_exited->vars.tid;
    s->error(cudaErrorLaunchFailure,
             "deadlock: block (%u,%u,%u) thread (%u,%u,%u) waits at %s %s:%d but thread "
             "(%u,%u,%u) and %u others of its block have exited",
             bi.x, bi.y, bi.z, ti.x, ti.y, ti.z, bar_name(kind), file, line, t2.x, t2.y, t2.z,
             b->exited - 1);
    s->abandon(f);
  }
  if (b->bar_arrived == 0) {
    b->bar_kind = kind;
    b->bar_file = file;
    b->bar_line = line;
    b->bar_first = f;
    b->bar_acc = kind == Bar::And ? 1 : 0;
  } else if (b->bar_kind != kind || !same_site(b->bar_file, b->bar_line, file, line)) {
    const uint3 t2 = b->bar_first->vars.tid;
    s->error(cudaErrorLaunchFailure,
             "divergent __syncthreads: block (%u,%u,%u) thread (%u,%u,%u) is at %s %s:%d but "
             "thread (%u,%u,%u) waits at %s %s:%d",
             bi.x, bi.y, bi.z, ti.x, ti.y, ti.z, bar_name(kind), file, line, t2.x, t2.y, t2.z,
             bar_name(b->bar_kind), b->bar_file, b->bar_line);
    s->abandon(f);
  }
  switch (kind) {
    case Bar::Sync: break;
    case Bar::Count: b->bar_acc += pred; break;
    case Bar::And: b->bar_acc &= pred; break;
    case Bar::Or: b->bar_acc |= pred; break;
  }
  f->wfile = file;
  f->wline = line;
  f->wwhat = bar_name(kind);
  s->progress();
#if KVTRIM_EMU_TSAN
  __tsan_release(&b->bar_token);
#endif
  if (++b->bar_arrived == b->nthreads) {
    const int result = b->bar_acc;
    b->bar_arrived = 0;
#if KVTRIM_EMU_TSAN
    // Every thread leaves with the history of every arrival (all are waiting here now, so the
    // token holds nothing that happened after an arrival of this barrier).
    for (unsigned t = 0; t < b->nthreads; ++t) {
      Fiber* g = &b->fibers[t];
      if (g != f) __tsan_switch_to_fiber(g->tsan, kTsanNoSync);
      __tsan_acquire(&b->bar_token);
      if (g != f) __tsan_switch_to_fiber(f->tsan, kTsanNoSync);
    }
#endif
    std::vector<uint64_t> warp_prio(b->warps.size());
    for (auto& p : warp_prio) p = s->rng.next() >> 32;
    for (unsigned t = 0; t < b->nthreads; ++t) {  // all wake, in thread order
      Fiber* g = &b->fibers[t];
      g->result = uint64_t(result);
      g->prio = s->draw_prio(warp_prio[g->warp]);
      s->push(g);
    }
    s->to_main(f, false);
    return int(f->result);
  }
  f->state = FState::Barrier;
  s->to_main(f, false);
  return int(f->result);
}

}  // namespace detail
}  // namespace emu
}  // namespace kvtrim
