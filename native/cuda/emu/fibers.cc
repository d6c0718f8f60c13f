// GPU threads as fibers: the x86-64 context switch (ucontext elsewhere), starting a fiber on its
// stack, switching between a fiber and the scheduler with the sanitizers' fiber hooks, and a
// thread's exit.
#include "emu_internal.h"

#include <cstring>

#if KVTRIM_EMU_ASM_SWITCH
// kvtrim_emu_swap(save, to): saves the callee-saved registers, MXCSR and the x87 control word
// on the current stack, stores its stack pointer in *save and resumes the context saved at `to`.
__asm__(R"(
  .text
  .p2align 4
  .globl kvtrim_emu_swap
  .hidden kvtrim_emu_swap
  .type kvtrim_emu_swap,@function
kvtrim_emu_swap:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size kvtrim_emu_swap,.-kvtrim_emu_swap

  .p2align 4
  .globl kvtrim_emu_tramp
  .hidden kvtrim_emu_tramp
  .type kvtrim_emu_tramp,@function
kvtrim_emu_tramp:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size kvtrim_emu_tramp,.-kvtrim_emu_tramp
)");
extern "C" void kvtrim_emu_swap(void** save, void* to);
extern "C" void kvtrim_emu_tramp();
#endif

namespace kvtrim {
namespace emu {
namespace detail {

thread_local ThreadVars* tv = nullptr;

void Sched::resume(Fiber* f) {
  current = f;
  tv = &f->vars;
  f->state = FState::Running;
#if KVTRIM_EMU_ASAN
  __sanitizer_start_switch_fiber(&main_fake, f->stack.lo, f->stack.size);
#endif
#if KVTRIM_EMU_TSAN
  __tsan_switch_to_fiber(f->tsan, kTsanNoSync);
#endif
#if KVTRIM_EMU_ASM_SWITCH
  kvtrim_emu_swap(&main_sp, f->sp);
#else
  swapcontext(&main_uc, &f->uc);
#endif
#if KVTRIM_EMU_ASAN
  __sanitizer_finish_switch_fiber(main_fake, nullptr, nullptr);
#endif
  tv = nullptr;
  current = nullptr;
  switches += 2;
}

void Sched::to_main(Fiber* f, bool final) {
#if KVTRIM_EMU_ASAN
  __sanitizer_start_switch_fiber(final ? nullptr : &f->asan_fake, main_bottom, main_size);
#else
  (void)final;
#endif
#if KVTRIM_EMU_TSAN
  if (final) {
    // Its writes happen before the host's reads. Every way out (exit, abandon) holds exactly
    // one ignore (fiber_main's or the barrier's / collective's / spin-wait's): end it, as
    // TSan requires of a finished thread.
    __tsan_release(&launch_token);
    __tsan_ignore_thread_end();
    f->tsan_done = true;
  }
  __tsan_switch_to_fiber(tsan_main, kTsanNoSync);
#endif
#if KVTRIM_EMU_ASM_SWITCH
  kvtrim_emu_swap(&f->sp, main_sp);
#else
  swapcontext(&f->uc, &main_uc);
#endif
#if KVTRIM_EMU_ASAN
  __sanitizer_finish_switch_fiber(f->asan_fake, &main_bottom, &main_size);
#endif
}

void Sched::abandon(Fiber* f) {
  to_main(f, true);
  std::abort();
}

bool Sched::start(Fiber* f) {
  if (!stack_get(&f->stack, stack_bytes)) {
    error(cudaErrorLaunchOutOfResources,
          "out of resources: cannot map a %zu-byte fiber stack (%zu threads started)",
          stack_bytes, active_fibers);
    return false;
  }
#if KVTRIM_EMU_TSAN
  // Created by the launching thread: the host's writes before the launch happen before it.
  f->tsan = __tsan_create_fiber(0);
  ++tsan_live;
  {
    char name[96];
    const uint3 bi = f->vars.bid, ti = f->vars.tid;
    std::snprintf(name, sizeof name, "GPU block (%u,%u,%u) thread (%u,%u,%u)", bi.x, bi.y, bi.z,
                  ti.x, ti.y, ti.z);
    __tsan_set_fiber_name(f->tsan, name);
  }
#endif
#if KVTRIM_EMU_ASM_SWITCH
  uintptr_t top = (reinterpret_cast<uintptr_t>(f->stack.lo) + f->stack.size) & ~uintptr_t(15);
  top -= 16;
  uint64_t* sp = reinterpret_cast<uint64_t*>(top);
  unsigned mxcsr = 0;
  unsigned short fpucw = 0;
  __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
  __asm__ volatile("fnstcw %0" : "=m"(fpucw));
  *--sp = reinterpret_cast<uint64_t>(&kvtrim_emu_tramp);  // return address of the first swap
  *--sp = 0;                                              // rbp
  *--sp = 0;                                              // rbx
  *--sp = reinterpret_cast<uint64_t>(f);                  // r12: argument
  *--sp = reinterpret_cast<uint64_t>(&fiber_main);        // r13: function
  *--sp = 0;                                              // r14
  *--sp = 0;                                              // r15
  *--sp = uint64_t(mxcsr) | (uint64_t(fpucw) << 32);
  f->sp = sp;
#else
  getcontext(&f->uc);
  f->uc.uc_stack.ss_sp = f->stack.lo;
  f->uc.uc_stack.ss_size = f->stack.size;
  f->uc.uc_link = nullptr;
  makecontext(&f->uc, reinterpret_cast<void (*)()>(&fiber_entry_uc), 2,
              unsigned(reinterpret_cast<uintptr_t>(f) >> 32),
              unsigned(reinterpret_cast<uintptr_t>(f) & 0xFFFFFFFFu));
#endif
  return true;
}

#if !KVTRIM_EMU_ASM_SWITCH
void Sched::fiber_entry_uc(unsigned hi, unsigned lo) {
  fiber_main(reinterpret_cast<Fiber*>((uintptr_t(hi) << 32) | lo));
}
#endif

void Sched::fiber_main(Fiber* f) {
  Sched* s = f->sched;
#if KVTRIM_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &s->main_bottom, &s->main_size);
#endif
  s->entry(s->ctx);
#if KVTRIM_EMU_TSAN
  __tsan_ignore_thread_begin();  // for good: the GPU thread is done
#endif
  // The thread exits: it must not be awaited by a barrier or a collective.
  Block* b = f->block;
  Warp& w = b->warps[f->warp];
  const uint3 bi = b->idx, ti = f->vars.tid;
  for (const Collective& c : w.pending) {
    if (c.mask & (1u << f->lane)) {
      s->error(cudaErrorLaunchFailure,
               "mismatched warp collective: block (%u,%u,%u) warp %u: lane %u (thread (%u,%u,%u)) "
               "exited while lanes 0x%08x wait for it at %s %s:%d (mask 0x%08x)",
               bi.x, bi.y, bi.z, f->warp, f->lane, ti.x, ti.y, ti.z, c.arrived, op_name(c.op),
               c.file, c.line, c.mask);
      s->abandon(f);
    }
  }
  if (b->bar_arrived > 0) {
    const uint3 t2 = b->bar_first->vars.tid;
    s->error(cudaErrorLaunchFailure,
             "deadlock: block (%u,%u,%u) thread (%u,%u,%u) exited while %u threads (first "
             "thread (%u,%u,%u)) wait for it at %s %s:%d",
             bi.x, bi.y, bi.z, ti.x, ti.y, ti.z, b->bar_arrived, t2.x, t2.y, t2.z,
             bar_name(b->bar_kind), b->bar_file, b->bar_line);
    s->abandon(f);
  }
  w.exited |= 1u << f->lane;
  if (b->exited++ == 0) b->first_exited = f;
  f->state = FState::Exited;
  s->progress();
  s->to_main(f, true);
  std::abort();  // never resumed
}

void bad_host_use(const char* what) {
  std::fprintf(stderr, "kvtrim emulator: %s used outside a kernel launched by kvtrim::emu::launch\n",
               what);
  std::abort();
}

}  // namespace detail
}  // namespace emu
}  // namespace kvtrim
