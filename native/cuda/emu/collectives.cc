// The warp collectives (__syncwarp, shuffles, votes, matches, reductions): a rendezvous of the
// mask's lanes at one call site, their results as PTX defines them, and the mismatch errors.
#include "emu_internal.h"

namespace kvtrim {
namespace emu {
namespace detail {

const char* op_name(Op op) {
  switch (op) {
    case Op::SyncWarp: return "__syncwarp";
    case Op::ShflIdx: return "__shfl_sync";
    case Op::ShflUp: return "__shfl_up_sync";
    case Op::ShflDown: return "__shfl_down_sync";
    case Op::ShflXor: return "__shfl_xor_sync";
    case Op::Ballot: return "__ballot_sync";
    case Op::Any: return "__any_sync";
    case Op::All: return "__all_sync";
    case Op::MatchAny: return "__match_any_sync";
    case Op::MatchAll: return "__match_all_sync";
    case Op::RedAddU: return "__reduce_add_sync";
    case Op::RedMinU: case Op::RedMinI: return "__reduce_min_sync";
    case Op::RedMaxU: case Op::RedMaxI: return "__reduce_max_sync";
    case Op::RedAnd: return "__reduce_and_sync";
    case Op::RedOr: return "__reduce_or_sync";
    case Op::RedXor: return "__reduce_xor_sync";
  }
  return "?";
}

namespace {
uint64_t poison_bits(int bytes) {
  return bytes >= 8 ? ~uint64_t(0) : ((uint64_t(1) << (8 * bytes)) - 1);
}

void complete(Collective& c, Fiber* fibers /* warp's lane 0 */) {
  const unsigned m = c.mask;
  uint64_t red = 0;
  switch (c.op) {
    case Op::Ballot: case Op::Any: case Op::All:
      for (unsigned l = 0; l < 32; ++l)
        if ((m >> l & 1) && c.val[l]) red |= 1u << l;
      if (c.op == Op::Any) red = red != 0;
      if (c.op == Op::All) red = red == m;
      break;
    case Op::RedAddU: {
      unsigned a = 0;
      for (unsigned l = 0; l < 32; ++l) if (m >> l & 1) a += unsigned(c.val[l]);
      red = a;
      break;
    }
    case Op::RedMinU: case Op::RedMaxU: {
      unsigned a = c.op == Op::RedMinU ? 0xFFFFFFFFu : 0u;
      for (unsigned l = 0; l < 32; ++l)
        if (m >> l & 1) {
          const unsigned v = unsigned(c.val[l]);
          a = c.op == Op::RedMinU ? std::min(a, v) : std::max(a, v);
        }
      red = a;
      break;
    }
    case Op::RedMinI: case Op::RedMaxI: {
      int a = c.op == Op::RedMinI ? INT32_MAX : INT32_MIN;
      for (unsigned l = 0; l < 32; ++l)
        if (m >> l & 1) {
          const int v = int(unsigned(c.val[l]));
          a = c.op == Op::RedMinI ? std::min(a, v) : std::max(a, v);
        }
      red = unsigned(a);
      break;
    }
    case Op::RedAnd: case Op::RedOr: case Op::RedXor: {
      unsigned a = c.op == Op::RedAnd ? 0xFFFFFFFFu : 0u;
      for (unsigned l = 0; l < 32; ++l)
        if (m >> l & 1) {
          const unsigned v = unsigned(c.val[l]);
          a = c.op == Op::RedAnd ? (a & v) : c.op == Op::RedOr ? (a | v) : (a ^ v);
        }
      red = a;
      break;
    }
    case Op::MatchAll: {
      bool all = true;
      const unsigned first = unsigned(__builtin_ctz(m));
      for (unsigned l = 0; l < 32; ++l)
        if ((m >> l & 1) && c.val[l] != c.val[first]) all = false;
      red = all ? m : 0;
      break;
    }
    default: break;
  }
  for (unsigned l = 0; l < 32; ++l) {
    if (!(m >> l & 1)) continue;
    uint64_t r = red;
    switch (c.op) {
      case Op::SyncWarp: r = 0; break;
      case Op::ShflIdx: case Op::ShflUp: case Op::ShflDown: case Op::ShflXor: {
        // PTX shfl.sync: c = ((32 - width) << 8) | (up ? 0 : 0x1f)
        const unsigned segmask = unsigned(32 - c.width) & 0x1f;
        const unsigned cval = c.op == Op::ShflUp ? 0u : 0x1fu;
        const unsigned b = unsigned(c.arg[l]) & 0x1f;
        const int minl = int(l & segmask);
        const int maxl = int((l & segmask) | (cval & ~segmask));
        int j = 0;
        bool ok = true;
        if (c.op == Op::ShflUp) { j = int(l) - int(b); ok = j >= maxl; }
        else if (c.op == Op::ShflDown) { j = int(l) + int(b); ok = j <= maxl; }
        else if (c.op == Op::ShflXor) { j = int(l ^ b); ok = j <= maxl; }
        else { j = minl | int(b & ~segmask); ok = j <= maxl; }
        if (!ok) j = int(l);
        r = (m >> j & 1) ? c.val[j] : poison_bits(c.bytes);  // source outside the mask: undefined
        break;
      }
      case Op::MatchAny: {
        unsigned mm = 0;
        for (unsigned k = 0; k < 32; ++k)
          if ((m >> k & 1) && c.val[k] == c.val[l]) mm |= 1u << k;
        r = mm;
        break;
      }
      default: break;
    }
    fibers[l].result = r;
  }
}
}  // namespace

uint64_t warp_collective(Op op, unsigned mask, uint64_t value, int arg, int width, int bytes,
                         const char* file, int line) {
  KVTRIM_EMU_TSAN_IGNORE();
  Fiber* f = self(op_name(op));
  Sched* s = f->sched;
  Block* b = f->block;
  Warp& w = b->warps[f->warp];
  const unsigned bit = 1u << f->lane;
  const uint3 bi = b->idx, ti = f->vars.tid;
  if (!(mask & bit)) {
    s->error(cudaErrorLaunchFailure,
             "bad warp collective mask: block (%u,%u,%u) thread (%u,%u,%u) (warp %u lane %u) calls "
             "%s with mask 0x%08x, which does not include its own lane, at %s:%d",
             bi.x, bi.y, bi.z, ti.x, ti.y, ti.z, f->warp, f->lane, op_name(op), mask, file, line);
    s->abandon(f);
  }
  if (width < 1 || width > 32 || (width & (width - 1))) {
    s->error(cudaErrorLaunchFailure,
             "bad shuffle width: block (%u,%u,%u) thread (%u,%u,%u) calls %s with width %d (a "
             "power of two from 1 to 32) at %s:%d",
             bi.x, bi.y, bi.z, ti.x, ti.y, ti.z, op_name(op), width, file, line);
    s->abandon(f);
  }
  // The same instruction (site) with an overlapping mask: join it; the masks must be equal.
  Collective* c = nullptr;
  for (Collective& p : w.pending)
    if ((p.mask & mask) && same_site(p.file, p.line, file, line)) { c = &p; break; }
  if (c) {
    if (c->mask != mask || c->op != op || c->width != width || c->bytes != bytes) {
      s->error(cudaErrorLaunchFailure,
               "mismatched warp collective: block (%u,%u,%u) warp %u: lane %u (thread (%u,%u,%u)) "
               "is at %s %s:%d with mask 0x%08x (width %d) while lanes 0x%08x wait there with "
               "mask 0x%08x (width %d)",
               bi.x, bi.y, bi.z, f->warp, f->lane, ti.x, ti.y, ti.z, op_name(op), file, line, mask,
               width, c->arrived, c->mask, c->width);
      s->abandon(f);
    }
  } else {
    const unsigned missing = mask & ~w.exists;
    const unsigned gone = mask & w.exited;
    if (missing || gone) {
      s->error(cudaErrorLaunchFailure,
               "mismatched warp collective: block (%u,%u,%u) warp %u: lane %u (thread (%u,%u,%u)) "
               "is at %s %s:%d with mask 0x%08x naming lanes 0x%08x that %s",
               bi.x, bi.y, bi.z, f->warp, f->lane, ti.x, ti.y, ti.z, op_name(op), file, line, mask,
               missing ? missing : gone,
               missing ? "do not exist in this block" : "have exited");
      s->abandon(f);
    }
    // A cycle: lanes of this mask wait at another collective for this lane.
    for (const Collective& p : w.pending) {
      if ((p.mask & bit) && (p.arrived & mask)) {
        s->error(cudaErrorLaunchFailure,
                 "mismatched warp collective: block (%u,%u,%u) warp %u: lane %u (thread "
                 "(%u,%u,%u)) is at %s %s:%d (mask 0x%08x) while lanes 0x%08x wait for it at %s "
                 "%s:%d (mask 0x%08x)",
                 bi.x, bi.y, bi.z, f->warp, f->lane, ti.x, ti.y, ti.z, op_name(op), file, line,
                 mask, p.arrived & mask, op_name(p.op), p.file, p.line, p.mask);
        s->abandon(f);
      }
    }
    Fiber* lane0 = &b->fibers[f->warp * 32];
    for (unsigned l = 0; l < 32; ++l) {
      if (!(mask >> l & 1)) continue;
      const Fiber* g = &lane0[l];
      if (g->state == FState::Barrier) {
        s->error(cudaErrorLaunchFailure,
                 "mismatched warp collective: block (%u,%u,%u) warp %u: lane %u (thread "
                 "(%u,%u,%u)) is at %s %s:%d (mask 0x%08x) while lane %u waits at %s %s:%d",
                 bi.x, bi.y, bi.z, f->warp, f->lane, ti.x, ti.y, ti.z, op_name(op), file, line,
                 mask, l, g->wwhat, g->wfile, g->wline);
        s->abandon(f);
      }
    }
    w.pending.emplace_back();
    c = &w.pending.back();
    c->op = op;
    c->mask = mask;
    c->file = file;
    c->line = line;
    c->width = width;
    c->bytes = bytes;
  }
  c->arrived |= bit;
  c->val[f->lane] = value;
  c->arg[f->lane] = arg;
  f->wfile = file;
  f->wline = line;
  f->wwhat = op_name(op);
  s->progress();
#if KVTRIM_EMU_TSAN
  if (op == Op::SyncWarp) __tsan_release(&f->warp_token);
#endif
  if (c->arrived == c->mask) {
    Fiber* lane0 = &b->fibers[f->warp * 32];
#if KVTRIM_EMU_TSAN
    // __syncwarp orders memory among its lanes; shuffles, votes, matches and reductions do not
    // (the CUDA guide: they "do not imply a memory barrier").
    if (op == Op::SyncWarp) {
      for (unsigned l = 0; l < 32; ++l) {
        if (!(c->mask >> l & 1)) continue;
        Fiber* g = &lane0[l];
        if (g != f) __tsan_switch_to_fiber(g->tsan, kTsanNoSync);
        for (unsigned k = 0; k < 32; ++k)
          if (c->mask >> k & 1) __tsan_acquire(&lane0[k].warp_token);
        if (g != f) __tsan_switch_to_fiber(f->tsan, kTsanNoSync);
      }
    }
#endif
    complete(*c, lane0);
    const unsigned m = c->mask;
    w.pending.erase(w.pending.begin() + (c - w.pending.data()));
    for (unsigned l = 0; l < 32; ++l) {
      if (!(m >> l & 1)) continue;
      Fiber* g = &lane0[l];
      g->prio = (g->prio & ~uint64_t(0xFFFFFFFFu)) | (s->rng.next() >> 32);
      s->push(g);  // all participants, the caller included, in lane order
    }
    s->to_main(f, false);
    return f->result;
  }
  f->state = FState::Collective;
  s->to_main(f, false);
  return f->result;
}

}  // namespace detail
}  // namespace emu
}  // namespace kvtrim
