// The scheduler of one launch: blocks started in waves (a wave's blocks as residency allows), the
// run loop that resumes fibers in the schedule's order, errors, deadlock and livelock detection.
#include "emu_internal.h"

#include <cstring>
#include <new>

namespace kvtrim {
namespace emu {
namespace detail {

void Sched::error(cudaError_t e, const char* fmt, ...) {
  if (err != cudaSuccess) return;
  char buf[1536];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  err = e;
  msg = std::string("kvtrim emulator: ") + buf;
}

void Sched::activate() {
  Block* b = new Block;
  b->linear = next_block++;
  b->idx.x = unsigned(b->linear % grid.x);
  b->idx.y = unsigned((b->linear / grid.x) % grid.y);
  b->idx.z = unsigned(b->linear / (uint64_t(grid.x) * grid.y));
  b->nthreads = nthreads;
  b->smem = static_cast<unsigned char*>(::operator new(smem, std::align_val_t(16)));
  std::memset(b->smem, 0xFF, smem);
  const unsigned nwarps = (nthreads + 31) / 32;
  b->warps.resize(nwarps);
  std::vector<uint64_t> warp_prio(nwarps);
  for (unsigned w = 0; w < nwarps; ++w) {
    const unsigned lanes = std::min(32u, nthreads - 32 * w);
    b->warps[w].exists = lanes == 32 ? 0xFFFFFFFFu : ((1u << lanes) - 1);
    warp_prio[w] = rng.next() >> 32;
  }
  b->fibers.reset(new Fiber[nthreads]);
  for (unsigned t = 0; t < nthreads; ++t) {
    Fiber* f = &b->fibers[t];
    f->vars.tid.x = t % blk.x;
    f->vars.tid.y = (t / blk.x) % blk.y;
    f->vars.tid.z = t / (blk.x * blk.y);
    f->vars.bid = b->idx;
    f->vars.bdim = blk;
    f->vars.gdim = grid;
    f->vars.smem = b->smem;
    f->block = b;
    f->sched = this;
    f->linear = t;
    f->warp = t / 32;
    f->lane = t % 32;
    f->prio = draw_prio(warp_prio[f->warp]);
    push(f);
  }
  active.push_back(b);
  active_fibers += nthreads;
  g_stat_blocks.fetch_add(1, std::memory_order_relaxed);
  g_stat_fibers.fetch_add(nthreads, std::memory_order_relaxed);
}

void Sched::release(Block* b) {
  for (unsigned t = 0; t < b->nthreads; ++t) stack_put(b->fibers[t].stack);
#if KVTRIM_EMU_TSAN
  // Shared memory is freed after the launch's final acquire (a free here would race with the
  // block's accesses); the block's TSan fibers live on until the high-water mark, so that TSan
  // does not reuse their thread ids while their accesses may still race with later blocks.
  smem_dead.push_back(b->smem);
  for (unsigned t = 0; t < b->nthreads; ++t) {
    Fiber* g = &b->fibers[t];
    if (!g->tsan) continue;
    if (!g->tsan_done) {
      // Abandoned after an error while suspended, which is always inside the emulator (a
      // barrier, a collective, a spin-wait or a switch point), holding one ignore: end it.
      __tsan_switch_to_fiber(g->tsan, kTsanNoSync);
      __tsan_ignore_thread_end();
      __tsan_switch_to_fiber(tsan_main, kTsanNoSync);
    }
    tsan_exited.push_back(g->tsan);
  }
  if (tsan_live > tsan_high_water) {
    for (void* h : tsan_exited) __tsan_destroy_fiber(h);
    tsan_live -= tsan_exited.size();
    tsan_exited.clear();
  }
#else
  ::operator delete(b->smem, std::align_val_t(16));
#endif
  active_fibers -= b->nthreads;
  active.erase(std::find(active.begin(), active.end(), b));
  delete b;
}

void Sched::run() {
  for (;;) {
    if (err != cudaSuccess) break;
    if (active.empty() && next_block == wave_end) {
      if (next_block >= nblocks) break;  // done
      wave_end = std::min<uint64_t>(nblocks, wave_end + resident);
    }
    while (can_activate() && (active.size() < 2 || active_fibers + nthreads <= kWindowFibers))
      activate();
    if (want_grow) {
      want_grow = false;
      if (can_activate()) activate();
    }
    Fiber* f = pop();
    if (!f) {
      if (can_activate()) {
        activate();
        continue;
      }
      report_deadlock();
      break;
    }
    if (!f->stack.map && !start(f)) break;
    resume(f);
    if (f->state == FState::Exited) {
      Block* b = f->block;
      stack_put(f->stack);
      if (b->exited == b->nthreads) release(b);
    }
  }
  while (!active.empty()) release(active.back());  // after an error: abandon the rest
  fifo.clear();
  pool.clear();
  heap.clear();
#if KVTRIM_EMU_TSAN
  __tsan_acquire(&launch_token);  // the kernel's writes happen before the host's reads
  for (void* h : tsan_exited) __tsan_destroy_fiber(h);
  tsan_exited.clear();
  tsan_live = 0;
  for (unsigned char* p : smem_dead) ::operator delete(p, std::align_val_t(16));
  smem_dead.clear();
#endif
}

void Sched::report_deadlock() {
  // A collective that can never complete: say where its missing lanes are.
  for (Block* b : active) {
    for (unsigned wi = 0; wi < b->warps.size(); ++wi) {
      for (const Collective& c : b->warps[wi].pending) {
        const unsigned missing = c.mask & ~c.arrived;
        if (!missing) continue;
        const unsigned l = unsigned(__builtin_ctz(missing));
        const Fiber* g = &b->fibers[wi * 32 + l];
        const uint3 ti = g->vars.tid;
        error(cudaErrorLaunchFailure,
              "mismatched warp collective (deadlock): block (%u,%u,%u) warp %u: lanes 0x%08x "
              "wait at %s %s:%d (mask 0x%08x) for lane %u (thread (%u,%u,%u)), which %s %s "
              "%s:%d",
              b->idx.x, b->idx.y, b->idx.z, wi, c.arrived, op_name(c.op), c.file, c.line,
              c.mask, l, ti.x, ti.y, ti.z,
              g->state == FState::Exited ? "exited after" : "waits at", g->wwhat,
              g->wfile ? g->wfile : "?", g->wline);
        return;
      }
    }
  }
  for (Block* b : active) {
    for (unsigned t = 0; t < b->nthreads; ++t) {
      Fiber* f = &b->fibers[t];
      if (f->state == FState::Barrier || f->state == FState::Collective) {
        const uint3 ti = f->vars.tid;
        error(cudaErrorLaunchFailure,
              "deadlock: no thread can run; block (%u,%u,%u) thread (%u,%u,%u) waits at %s %s:%d",
              b->idx.x, b->idx.y, b->idx.z, ti.x, ti.y, ti.z, f->wwhat, f->wfile, f->wline);
        return;
      }
    }
  }
  error(cudaErrorLaunchFailure, "deadlock: no thread can run");
}

void spin_wait(const char* file, int line) {
  KVTRIM_EMU_TSAN_IGNORE();
  Fiber* f = self("KVTRIM_SPIN_WAIT");
  Sched* s = f->sched;
  f->wfile = file;
  f->wline = line;
  f->wwhat = "spin-wait";
  ++s->spins_since_progress;
  if (++s->spins_since_growth > 2 * uint64_t(s->nthreads) && s->can_activate()) {
    s->want_grow = true;
    s->spins_since_growth = 0;
  }
  if (s->spins_since_progress >= s->spin_limit && !s->can_activate()) {
    const uint3 bi = f->block->idx, ti = f->vars.tid;
    char extra[256] = "";
    if (s->next_block < s->nblocks)
      std::snprintf(extra, sizeof extra,
                    "; %llu blocks of the grid are not resident yet (a non-cooperative launch "
                    "runs at most %llu blocks at a time)",
                    (unsigned long long)(s->nblocks - s->next_block),
                    (unsigned long long)s->resident);
    s->error(cudaErrorLaunchFailure,
             "livelock: block (%u,%u,%u) thread (%u,%u,%u) spins at %s:%d and no thread has "
             "passed a barrier or exited for %llu spin-waits%s",
             bi.x, bi.y, bi.z, ti.x, ti.y, ti.z, file, line,
             (unsigned long long)s->spins_since_progress, extra);
    s->abandon(f);
  }
  s->push_spinner(f);
  s->to_main(f, false);
}

}  // namespace detail
}  // namespace emu
}  // namespace kvtrim
