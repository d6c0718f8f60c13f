// kvtrim's CUDA emulator: scheduler, fibers and the host runtime. See emu.h and README.md.
#include "emu.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define KVTRIM_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KVTRIM_EMU_ASAN 1
#endif
#endif
#ifndef KVTRIM_EMU_ASAN
#define KVTRIM_EMU_ASAN 0
#endif

#if KVTRIM_EMU_ASAN
extern "C" {
void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom, size_t size);
void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old,
                                     size_t* size_old);
void __asan_unpoison_memory_region(void const volatile* addr, size_t size);
void __sanitizer_set_death_callback(void (*callback)(void));
}
#endif

#if KVTRIM_EMU_TSAN
// ThreadSanitizer's fiber API (sanitizer/tsan_interface.h). emu.cc itself is not instrumented:
// only the kernels' translation units are, and these calls give TSan the GPU threads and the
// happens-before edges that CUDA defines (README.md, "ThreadSanitizer").
extern "C" {
void* __tsan_get_current_fiber(void);
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
void __tsan_set_fiber_name(void* fiber, const char* name);
void __tsan_acquire(void* addr);
void __tsan_release(void* addr);
void __tsan_ignore_thread_begin(void);
void __tsan_ignore_thread_end(void);
}
namespace {
constexpr unsigned kTsanNoSync = 1;  // __tsan_switch_to_fiber_no_sync: a switch orders nothing
// The scheduler's own work (its allocations and copies go through TSan's interceptors) is kept
// out of TSan's view, on the launching thread and on GPU threads alike.
struct TsanIgnore {
  TsanIgnore() { __tsan_ignore_thread_begin(); }
  ~TsanIgnore() { __tsan_ignore_thread_end(); }
};
}
#define KVTRIM_EMU_TSAN_IGNORE() TsanIgnore tsan_ignore_guard_
#else
#define KVTRIM_EMU_TSAN_IGNORE() (void)0
#endif

#if defined(__x86_64__) && !defined(KVTRIM_EMU_UCONTEXT)
#define KVTRIM_EMU_ASM_SWITCH 1
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
#else
#define KVTRIM_EMU_ASM_SWITCH 0
#include <ucontext.h>
#endif

namespace kvtrim {
namespace emu {
namespace detail {

thread_local ThreadVars* tv = nullptr;

namespace {

// ---- settings -------------------------------------------------------------------------------
std::mutex g_mu;  // guards the settings below, the allocation table and function attributes
bool g_props_init = false;
cudaDeviceProp g_props;
bool g_sched_init = false;
Schedule g_schedule = Schedule::Deterministic;
uint64_t g_seed = 0;
uint64_t g_launch_counter = 0;
uint64_t g_spin_limit = 1000000;
size_t g_stack_size = 0;
std::unordered_map<const void*, int> g_func_smem;  // cudaFuncAttributeMaxDynamicSharedMemorySize
std::map<uintptr_t, size_t> g_allocs;              // "device" allocations
std::atomic<uint64_t> g_stat_launches{0}, g_stat_blocks{0}, g_stat_fibers{0},
    g_stat_switches{0}, g_stat_stacks{0};

thread_local cudaError_t t_last_error = cudaSuccess;
thread_local std::string t_last_message;

constexpr size_t kReservedSmemPerBlock = 1024;
constexpr int kDefaultSmemLimit = 48 * 1024;
constexpr size_t kWindowFibers = 2048;  // fibers started at once before more blocks are needed

uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  unsigned long long x = std::strtoull(v, &end, 0);
  return (end && *end == 0) ? uint64_t(x) : fallback;
}

cudaDeviceProp default_props() {
  cudaDeviceProp p;
  std::memset(&p, 0, sizeof p);
  std::snprintf(p.name, sizeof p.name, "kvtrim emulated CUDA device (H100 properties)");
  p.totalGlobalMem = size_t(80) << 30;
  p.sharedMemPerBlock = 48 * 1024;
  p.regsPerBlock = 65536;
  p.warpSize = 32;
  p.memPitch = size_t(1) << 31;
  p.maxThreadsPerBlock = 1024;
  p.maxThreadsDim[0] = 1024;
  p.maxThreadsDim[1] = 1024;
  p.maxThreadsDim[2] = 64;
  p.maxGridSize[0] = 2147483647;
  p.maxGridSize[1] = 65535;
  p.maxGridSize[2] = 65535;
  p.totalConstMem = 65536;
  p.major = 9;
  p.minor = 0;
  p.textureAlignment = 512;
  p.multiProcessorCount = 132;
  p.concurrentKernels = 1;
  p.memoryBusWidth = 5120;
  p.l2CacheSize = 50 * 1024 * 1024;
  p.persistingL2CacheMaxSize = 30 * 1024 * 1024;
  p.maxThreadsPerMultiProcessor = 2048;
  p.sharedMemPerMultiprocessor = 233472;
  p.regsPerMultiprocessor = 65536;
  p.managedMemory = 1;
  p.cooperativeLaunch = 1;
  p.sharedMemPerBlockOptin = 232448;
  p.reservedSharedMemPerBlock = kReservedSmemPerBlock;
  p.maxBlocksPerMultiProcessor = 32;
  p.clusterLaunch = 1;
  p.unifiedAddressing = 1;
  const uint64_t sms = env_u64("KVTRIM_EMU_SMS", 0);
  if (sms > 0 && sms < 100000) p.multiProcessorCount = int(sms);
  const uint64_t smem = env_u64("KVTRIM_EMU_SMEM_PER_SM", 0);
  if (smem > kReservedSmemPerBlock) {
    p.sharedMemPerMultiprocessor = size_t(smem);
    p.sharedMemPerBlockOptin = size_t(smem) - kReservedSmemPerBlock;
    if (p.sharedMemPerBlock > p.sharedMemPerBlockOptin) p.sharedMemPerBlock = p.sharedMemPerBlockOptin;
  }
  return p;
}

cudaDeviceProp& props_locked() {
  if (!g_props_init) {
    g_props = default_props();
    g_props_init = true;
  }
  return g_props;
}

cudaDeviceProp props() {
  std::lock_guard<std::mutex> lk(g_mu);
  return props_locked();
}

size_t stack_size_locked() {
  if (g_stack_size == 0) {
    const uint64_t kb = env_u64("KVTRIM_EMU_STACK_KB", 0);
    // Under TSan 56 KiB: a stack with its guard page stays under TSan's
    // clear_shadow_mmap_threshold (64 KiB), so unmapping it clears the shadow in place instead
    // of remapping it, which splits TSan's shadow mapping until vm.max_map_count is reached.
    g_stack_size = kb >= 16 ? size_t(kb) * 1024
                            : (KVTRIM_EMU_ASAN ? 256 * 1024 : KVTRIM_EMU_TSAN ? 56 * 1024 : 64 * 1024);
  }
  return g_stack_size;
}

void init_schedule_locked() {
  if (g_sched_init) return;
  g_sched_init = true;
  if (const char* s = std::getenv("KVTRIM_EMU_SCHEDULE")) {
    if (!std::strcmp(s, "random")) g_schedule = Schedule::Random;
    else if (!std::strcmp(s, "priority")) g_schedule = Schedule::Priority;
    else g_schedule = Schedule::Deterministic;
  }
  g_seed = env_u64("KVTRIM_EMU_SEED", 0);
  g_spin_limit = env_u64("KVTRIM_EMU_SPIN_LIMIT", g_spin_limit);
}

cudaError_t set_error(cudaError_t e) {
  if (e != cudaSuccess) t_last_error = e;
  return e;
}

cudaError_t fail(cudaError_t e, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
cudaError_t fail(cudaError_t e, const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  t_last_message = std::string("kvtrim emulator: ") + buf;
  return set_error(e);
}

// ---- random numbers -------------------------------------------------------------------------
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) {}
  uint64_t next() {  // splitmix64
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return n ? next() % n : 0; }
};

// ---- stacks ---------------------------------------------------------------------------------
struct Stack {
  char* map = nullptr;  // guard page included
  size_t map_size = 0;
  char* lo = nullptr;   // usable range [lo, lo + size)
  size_t size = 0;
};

struct StackPool {
  std::vector<Stack> v;
  ~StackPool() {
    for (Stack& s : v) munmap(s.map, s.map_size);
  }
};
thread_local StackPool t_pool;
constexpr size_t kPoolMax = 2048;

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

}  // namespace

// ---- fibers, blocks, scheduler ------------------------------------------------------------------
enum class FState : uint8_t { Ready, Running, Barrier, Collective, Exited };

struct Block;
struct Sched;

struct Fiber {
  ThreadVars vars;  // what threadIdx & co. read
  Block* block = nullptr;
  Sched* sched = nullptr;
  void* sp = nullptr;
#if !KVTRIM_EMU_ASM_SWITCH
  ucontext_t uc;
#endif
  Stack stack;
  FState state = FState::Ready;
  unsigned linear = 0, warp = 0, lane = 0;
  uint64_t prio = 0;
  uint64_t result = 0;
  const char* wfile = nullptr;  // where it waits (barrier, collective) or last spun
  int wline = 0;
  const char* wwhat = "";
  void* asan_fake = nullptr;
#if KVTRIM_EMU_TSAN
  void* tsan = nullptr;          // the TSan fiber of this GPU thread (kept to the launch's end)
  char warp_token = 0;           // __syncwarp: this lane's history at arrival (released here)
  bool fence_pending = false;    // a fence since the last atomic: the next atomic is a release
  unsigned n_reads = 0;          // atomics since the last fence (acquired at the next fence)
  const void* reads[8] = {};
  bool tsan_done = false;        // finished (exited or abandoned), its ignore ended
#endif
};

struct Collective {
  Op op;
  unsigned mask = 0, arrived = 0;
  const char* file = nullptr;
  int line = 0;
  int width = 32, bytes = 0;
  uint64_t val[32];
  int arg[32];
};

struct Warp {
  std::vector<Collective> pending;  // disjoint masks
  unsigned exists = 0;              // lanes that exist in the block
  unsigned exited = 0;
};

struct Block {
  uint64_t linear = 0;
  uint3 idx{};
  unsigned nthreads = 0;
  unsigned char* smem = nullptr;
  std::unique_ptr<Fiber[]> fibers;
  std::vector<Warp> warps;
  unsigned exited = 0;
  Fiber* first_exited = nullptr;
  unsigned bar_arrived = 0;
  Bar bar_kind = Bar::Sync;
  const char* bar_file = nullptr;
  int bar_line = 0;
  int bar_acc = 0;
  Fiber* bar_first = nullptr;
#if KVTRIM_EMU_TSAN
  char bar_token = 0;  // __syncthreads: every arriving thread releases here
#endif
};

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
const char* bar_name(Bar b) {
  switch (b) {
    case Bar::Sync: return "__syncthreads";
    case Bar::Count: return "__syncthreads_count";
    case Bar::And: return "__syncthreads_and";
    case Bar::Or: return "__syncthreads_or";
  }
  return "?";
}
bool same_site(const char* f1, int l1, const char* f2, int l2) {
  return l1 == l2 && (f1 == f2 || std::strcmp(f1, f2) == 0);
}

struct Sched {
  Schedule mode;
  Rng rng;
  uint64_t spin_limit;
  size_t stack_bytes;
  void (*entry)(void*) = nullptr;
  void* ctx = nullptr;

  dim3 grid, blk;
  size_t smem = 0;
  unsigned nthreads = 0;
  uint64_t nblocks = 0, next_block = 0, wave_end = 0, resident = 0;
  bool cooperative = false;
  std::vector<Block*> active;
  size_t active_fibers = 0;
  uint64_t spins_since_progress = 0, spins_since_growth = 0;
  bool want_grow = false;

  // run queues
  std::deque<Fiber*> fifo;                         // deterministic; priority: spinners
  std::vector<Fiber*> pool;                        // random
  std::vector<std::pair<uint64_t, Fiber*>> heap;   // priority (max-heap)

  void* main_sp = nullptr;
#if !KVTRIM_EMU_ASM_SWITCH
  ucontext_t main_uc;
#endif
  void* main_fake = nullptr;
  const void* main_bottom = nullptr;
  size_t main_size = 0;
  Fiber* current = nullptr;
  uint64_t switches = 0;

  cudaError_t err = cudaSuccess;
  std::string msg;

#if KVTRIM_EMU_TSAN
  void* tsan_main = nullptr;              // the launching thread's TSan context
  char launch_token = 0;                  // every exiting GPU thread releases here
  std::vector<void*> tsan_exited;         // TSan fibers of finished blocks, not destroyed yet
  size_t tsan_live = 0;                   // TSan fibers created and not destroyed
  size_t tsan_high_water = 2048;          // destroy exited fibers only past this many
  std::vector<unsigned char*> smem_dead;  // freed at the launch's end, after the acquire
#endif

  Sched(Schedule m, uint64_t seed) : mode(m), rng(seed) {}

  // -- run queue --
  void push(Fiber* f) {
    f->state = FState::Ready;
    switch (mode) {
      case Schedule::Deterministic: fifo.push_back(f); break;
      case Schedule::Random: pool.push_back(f); break;
      case Schedule::Priority:
        heap.emplace_back(f->prio, f);
        std::push_heap(heap.begin(), heap.end());
        break;
    }
  }
  void push_spinner(Fiber* f) {
    if (mode == Schedule::Priority) {
      f->state = FState::Ready;
      fifo.push_back(f);
    } else {
      push(f);
    }
  }
  Fiber* pop() {
    Fiber* f = nullptr;
    if (mode == Schedule::Random) {
      if (pool.empty()) return nullptr;
      const size_t i = rng.below(pool.size());
      f = pool[i];
      pool[i] = pool.back();
      pool.pop_back();
      return f;
    }
    if (mode == Schedule::Priority && !heap.empty()) {
      std::pop_heap(heap.begin(), heap.end());
      f = heap.back().second;
      heap.pop_back();
      return f;
    }
    if (fifo.empty()) return nullptr;
    f = fifo.front();
    fifo.pop_front();
    return f;
  }
  uint64_t draw_prio(uint64_t warp_prio) { return (warp_prio << 32) | (rng.next() >> 32); }

  // -- errors --
  void error(cudaError_t e, const char* fmt, ...) __attribute__((format(printf, 3, 4))) {
    if (err != cudaSuccess) return;
    char buf[1536];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    err = e;
    msg = std::string("kvtrim emulator: ") + buf;
  }

  // -- switching --
  static void fiber_main(Fiber* f);
  void resume(Fiber* f) {
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
  // From a fiber back to the scheduler. `final`: the fiber never resumes.
  void to_main(Fiber* f, bool final) {
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
  [[noreturn]] void abandon(Fiber* f) {  // after an error: never resumed, stack reclaimed
    to_main(f, true);
    std::abort();
  }
  bool start(Fiber* f) {
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
  static void fiber_entry_uc(unsigned hi, unsigned lo) {
    fiber_main(reinterpret_cast<Fiber*>((uintptr_t(hi) << 32) | lo));
  }
#endif

  // -- blocks --
  bool can_activate() const { return next_block < wave_end; }
  void activate() {
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
  void release(Block* b) {
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

  // -- progress and spinning --
  void progress() {
    spins_since_progress = 0;
    spins_since_growth = 0;
  }

  // -- the loop --
  void run() {
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

  void report_deadlock() {
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
};

thread_local Sched* t_sched = nullptr;

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

Fiber* self(const char* what) {
  if (!tv || !t_sched) bad_host_use(what);
  return reinterpret_cast<Fiber*>(tv);  // vars is Fiber's first member
}

void bad_host_use(const char* what) {
  std::fprintf(stderr, "kvtrim emulator: %s used outside a kernel launched by kvtrim::emu::launch\n",
               what);
  std::abort();
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

// ---- per-kernel resources: nvcc's registers and static shared memory (ptxas_sm90.inc) ----------
// A kernel is known by its mangled name, found from its address in the symbol table of the
// binary that holds it (the addon's symbols are hidden, so dladdr alone does not name them).
namespace {
struct PtxasEntry {
  const char* mangled;
  int regs, static_smem, threads, dynamic_smem, blocks;
};
const PtxasEntry kPtxas[] = {
#include "ptxas_sm90.inc"
};

struct SymbolTable {
  std::unordered_map<uintptr_t, std::string> by_offset;  // function offset in the file -> name
};
// The defined function symbols of an ELF file (.symtab, else .dynsym), read once per file.
const SymbolTable& symbols_of(const std::string& file) {
  static std::map<std::string, SymbolTable> cache;  // guarded by g_mu
  auto it = cache.find(file);
  if (it != cache.end()) return it->second;
  SymbolTable& t = cache[file];
  const int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return t;
  struct stat st;
  void* m = fstat(fd, &st) == 0 ? mmap(nullptr, size_t(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
  close(fd);
  if (m == MAP_FAILED) return t;
  const auto* base = static_cast<const unsigned char*>(m);
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(base);
  if (size_t(st.st_size) >= sizeof(Elf64_Ehdr) && std::memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 &&
      eh->e_ident[EI_CLASS] == ELFCLASS64 && eh->e_shoff + size_t(eh->e_shnum) * sizeof(Elf64_Shdr) <= size_t(st.st_size)) {
    const auto* sh = reinterpret_cast<const Elf64_Shdr*>(base + eh->e_shoff);
    for (const unsigned want : {unsigned(SHT_SYMTAB), unsigned(SHT_DYNSYM)}) {
      for (unsigned i = 0; i < eh->e_shnum; ++i) {
        if (sh[i].sh_type != want || sh[i].sh_link >= eh->e_shnum) continue;
        const auto* sym = reinterpret_cast<const Elf64_Sym*>(base + sh[i].sh_offset);
        const char* str = reinterpret_cast<const char*>(base + sh[sh[i].sh_link].sh_offset);
        for (size_t k = 0; k < sh[i].sh_size / sizeof(Elf64_Sym); ++k)
          if (ELF64_ST_TYPE(sym[k].st_info) == STT_FUNC && sym[k].st_value && sym[k].st_shndx != SHN_UNDEF)
            t.by_offset.emplace(uintptr_t(sym[k].st_value), str + sym[k].st_name);
      }
      if (!t.by_offset.empty()) break;
    }
  }
  munmap(m, size_t(st.st_size));
  return t;
}

struct FuncInfo {
  std::string name;
  int regs = 0, static_smem = 0;  // 0 registers: unknown (not in the table), no register limit
};
std::unordered_map<const void*, FuncInfo> g_func_info;  // guarded by g_mu

const FuncInfo& func_info_locked(const void* func) {
  auto it = g_func_info.find(func);
  if (it != g_func_info.end()) return it->second;
  FuncInfo info;
  Dl_info dl;
  if (func && dladdr(func, &dl) && dl.dli_fname) {
    if (dl.dli_sname) info.name = dl.dli_sname;
    const bool pie = dl.dli_fbase != nullptr;
    const uintptr_t off = reinterpret_cast<uintptr_t>(func) - (pie ? reinterpret_cast<uintptr_t>(dl.dli_fbase) : 0);
    if (info.name.empty()) {
      const SymbolTable& t = symbols_of(dl.dli_fname);
      auto s = t.by_offset.find(off);
      if (s == t.by_offset.end()) s = t.by_offset.find(reinterpret_cast<uintptr_t>(func));  // non-PIE
      if (s != t.by_offset.end()) info.name = s->second;
    }
  }
  for (const PtxasEntry& e : kPtxas)
    if (info.name == e.mangled) {
      info.regs = e.regs;
      info.static_smem = e.static_smem;
    }
  return g_func_info.emplace(func, std::move(info)).first->second;
}
}  // namespace

// Resident blocks per SM, as CUDA's occupancy calculator: threads, blocks, shared memory (static
// + dynamic + 1 KiB reserved per block) and, when the kernel's sm_90 register count is known,
// registers (allocated per warp in units of 256).
int occupancy(const cudaDeviceProp& p, unsigned threads, size_t smem, int regs = 0) {
  if (threads == 0) return 0;
  const unsigned warps = (threads + 31) / 32;
  int n = p.maxThreadsPerMultiProcessor / int(warps * 32);
  n = std::min(n, p.maxBlocksPerMultiProcessor > 0 ? p.maxBlocksPerMultiProcessor : 32);
  const size_t per_block = smem + kReservedSmemPerBlock;
  n = std::min<int>(n, int(p.sharedMemPerMultiprocessor / per_block));
  if (regs > 0) {
    const long per_warp = (long(regs) * 32 + 255) / 256 * 256;
    if (per_warp * long(warps) > long(p.regsPerBlock)) return 0;
    n = std::min<int>(n, int(long(p.regsPerMultiprocessor) / (per_warp * long(warps))));
  }
  return std::max(n, 0);
}

// For tests (env KVTRIM_EMU_OCCUPANCY_REPORT=file, written at the first launch of the process):
// every kernel of the ptxas table that this binary holds, with the emulator's blocks per SM and
// the ptxas-derived figure. One JSON object per line.
void write_occupancy_report_locked(const cudaDeviceProp& p, const void* any_func) {
  const char* path = std::getenv("KVTRIM_EMU_OCCUPANCY_REPORT");
  if (!path || !*path) return;
  Dl_info dl;
  if (!dladdr(any_func, &dl) || !dl.dli_fname) return;
  const SymbolTable& t = symbols_of(dl.dli_fname);
  FILE* out = std::fopen(path, "w");
  if (!out) return;
  for (const PtxasEntry& e : kPtxas) {
    const void* addr = nullptr;
    for (const auto& s : t.by_offset)
      if (s.second == e.mangled) addr = reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(dl.dli_fbase) + s.first);
    int emulated = -1, regs = 0;
    if (addr) {
      const FuncInfo& fi = func_info_locked(addr);
      regs = fi.regs;
      emulated = occupancy(p, unsigned(e.threads), size_t(e.dynamic_smem + fi.static_smem), fi.regs);
    }
    std::fprintf(out, "{\"kernel\":\"%s\",\"found\":%s,\"regs\":%d,\"emulated\":%d,\"ptxas\":%d}\n",
                 e.mangled, addr ? "true" : "false", regs, emulated, e.blocks);
  }
  std::fclose(out);
}

#if KVTRIM_EMU_ASAN
// A sanitizer report inside a kernel names the GPU thread it came from.
void on_sanitizer_death() {
  if (!tv) return;
  const ThreadVars& v = *tv;
  std::fprintf(stderr, "kvtrim emulator: the report above came from GPU block (%u,%u,%u) thread (%u,%u,%u)\n",
               v.bid.x, v.bid.y, v.bid.z, v.tid.x, v.tid.y, v.tid.z);
}
#endif

int launch_impl(const void* func, dim3 grid, dim3 block, size_t smem, bool cooperative,
                void (*entry)(void*), void* ctx) {
#if KVTRIM_EMU_ASAN
  static const bool death_callback_set = (__sanitizer_set_death_callback(&on_sanitizer_death), true);
  (void)death_callback_set;
#endif
  if (t_sched)
    return fail(cudaErrorNotSupported, "launch from inside a kernel is not supported");
  cudaDeviceProp p;
  int limit;
  Schedule mode;
  uint64_t seed, spin_limit;
  size_t stack;
  {
    std::lock_guard<std::mutex> lk(g_mu);
    p = props_locked();
    auto it = g_func_smem.find(func);
    limit = it == g_func_smem.end() ? kDefaultSmemLimit : it->second;
    init_schedule_locked();
    mode = g_schedule;
    seed = g_seed + g_launch_counter++;
    spin_limit = g_spin_limit;
    stack = stack_size_locked();
  }
  g_stat_launches.fetch_add(1, std::memory_order_relaxed);
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (block.x == 0 || block.y == 0 || block.z == 0 || threads > unsigned(p.maxThreadsPerBlock) ||
      block.x > unsigned(p.maxThreadsDim[0]) || block.y > unsigned(p.maxThreadsDim[1]) ||
      block.z > unsigned(p.maxThreadsDim[2]))
    return fail(cudaErrorInvalidConfiguration,
                "invalid configuration: block (%u,%u,%u) (%llu threads; 1 to %d allowed)", block.x,
                block.y, block.z, (unsigned long long)threads, p.maxThreadsPerBlock);
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > unsigned(p.maxGridSize[0]) ||
      grid.y > unsigned(p.maxGridSize[1]) || grid.z > unsigned(p.maxGridSize[2]))
    return fail(cudaErrorInvalidConfiguration, "invalid configuration: grid (%u,%u,%u)", grid.x,
                grid.y, grid.z);
  if (smem > size_t(limit))
    return fail(cudaErrorInvalidValue,
                "shared memory over the limit: the launch asks for %zu bytes of dynamic shared "
                "memory, the kernel's limit is %d (cudaFuncSetAttribute("
                "cudaFuncAttributeMaxDynamicSharedMemorySize) raises it up to %zu)",
                smem, limit, p.sharedMemPerBlockOptin);
  int regs = 0, static_smem = 0;
  {
    std::lock_guard<std::mutex> lk(g_mu);
    const FuncInfo& fi = func_info_locked(func);
    regs = fi.regs;
    static_smem = fi.static_smem;
    static std::string reported;  // the report's path, once written
    const char* path = std::getenv("KVTRIM_EMU_OCCUPANCY_REPORT");
    if (path && *path && reported != path) {
      reported = path;
      write_occupancy_report_locked(p, func);
    }
  }
  const int occ = occupancy(p, unsigned(threads), smem + size_t(static_smem), regs);
  if (occ == 0)
    return fail(cudaErrorLaunchOutOfResources,
                "out of resources: a block of %llu threads with %zu bytes of shared memory (%d "
                "registers per thread) does not fit on one SM",
                (unsigned long long)threads, smem + size_t(static_smem), regs);
  const uint64_t resident = uint64_t(occ) * uint64_t(p.multiProcessorCount);
  const uint64_t nblocks = uint64_t(grid.x) * grid.y * grid.z;
  if (cooperative && nblocks > resident)
    return fail(cudaErrorCooperativeLaunchTooLarge,
                "cooperative launch too large: grid of %llu blocks, at most %llu co-resident "
                "(%d SMs x %d blocks per SM%s)",
                (unsigned long long)nblocks, (unsigned long long)resident, p.multiProcessorCount,
                occ, regs > 0 ? ", registers included" : "");

  KVTRIM_EMU_TSAN_IGNORE();
  Sched s(mode, seed);
  s.spin_limit = spin_limit;
  s.stack_bytes = stack;
  s.entry = entry;
  s.ctx = ctx;
  s.grid = grid;
  s.blk = block;
  s.smem = smem;
  s.nthreads = unsigned(threads);
#if KVTRIM_EMU_TSAN
  s.tsan_main = __tsan_get_current_fiber();
  s.tsan_high_water = size_t(env_u64("KVTRIM_EMU_TSAN_FIBERS", 2048));
#endif
  s.nblocks = nblocks;
  s.resident = cooperative ? nblocks : resident;
  s.cooperative = cooperative;
  t_sched = &s;
  s.run();
  t_sched = nullptr;
  g_stat_switches.fetch_add(s.switches, std::memory_order_relaxed);
  if (s.err != cudaSuccess) {
    t_last_message = s.msg;
    return set_error(s.err);
  }
  return cudaSuccess;
}

}  // namespace detail

// ---- public emulator API ------------------------------------------------------------------------
void set_schedule(Schedule schedule, uint64_t seed) {
  std::lock_guard<std::mutex> lk(detail::g_mu);
  detail::init_schedule_locked();
  detail::g_schedule = schedule;
  detail::g_seed = seed;
  detail::g_launch_counter = 0;
}
Schedule schedule() {
  std::lock_guard<std::mutex> lk(detail::g_mu);
  detail::init_schedule_locked();
  return detail::g_schedule;
}
uint64_t schedule_seed() {
  std::lock_guard<std::mutex> lk(detail::g_mu);
  detail::init_schedule_locked();
  return detail::g_seed;
}
const char* schedule_name(Schedule s) {
  switch (s) {
    case Schedule::Deterministic: return "deterministic";
    case Schedule::Random: return "random";
    case Schedule::Priority: return "priority";
  }
  return "?";
}
const char* last_error_message() { return detail::t_last_message.c_str(); }
void clear_last_error_message() { detail::t_last_message.clear(); }

cudaDeviceProp device_properties() { return detail::props(); }
void set_device_properties(const cudaDeviceProp& prop) {
  std::lock_guard<std::mutex> lk(detail::g_mu);
  detail::g_props = prop;
  detail::g_props_init = true;
}
void set_sm_count(int sms) {
  std::lock_guard<std::mutex> lk(detail::g_mu);
  detail::props_locked().multiProcessorCount = sms > 0 ? sms : 1;
}
void set_smem_per_sm(size_t bytes) {
  std::lock_guard<std::mutex> lk(detail::g_mu);
  cudaDeviceProp& p = detail::props_locked();
  if (bytes <= detail::kReservedSmemPerBlock) bytes = detail::kReservedSmemPerBlock + 1024;
  p.sharedMemPerMultiprocessor = bytes;
  p.sharedMemPerBlockOptin = bytes - detail::kReservedSmemPerBlock;
  p.sharedMemPerBlock = std::min<size_t>(48 * 1024, p.sharedMemPerBlockOptin);
}
void reset_device_properties() {
  std::lock_guard<std::mutex> lk(detail::g_mu);
  detail::g_props = detail::default_props();
  detail::g_props_init = true;
}
void set_spin_limit(uint64_t spins) {
  std::lock_guard<std::mutex> lk(detail::g_mu);
  detail::init_schedule_locked();
  detail::g_spin_limit = spins ? spins : 1;
}
void set_stack_size(size_t bytes) {
  std::lock_guard<std::mutex> lk(detail::g_mu);
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  detail::g_stack_size = std::max<size_t>(16 * 1024, (bytes + page - 1) / page * page);
}
size_t stack_size() {
  std::lock_guard<std::mutex> lk(detail::g_mu);
  return detail::stack_size_locked();
}
Stats stats() {
  Stats s;
  s.launches = detail::g_stat_launches.load();
  s.blocks = detail::g_stat_blocks.load();
  s.fibers = detail::g_stat_fibers.load();
  s.switches = detail::g_stat_switches.load();
  s.stacks = detail::g_stat_stacks.load();
  return s;
}
void reset_stats() {
  detail::g_stat_launches = 0;
  detail::g_stat_blocks = 0;
  detail::g_stat_fibers = 0;
  detail::g_stat_switches = 0;
  detail::g_stat_stacks = 0;
}

}  // namespace emu
}  // namespace kvtrim

// ---- host runtime API -------------------------------------------------------------------------
using kvtrim::emu::detail::fail;
using kvtrim::emu::detail::set_error;

long long clock64() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
#define C(x) case x: return #x;
    C(cudaSuccess) C(cudaErrorInvalidValue) C(cudaErrorMemoryAllocation)
    C(cudaErrorInitializationError) C(cudaErrorInvalidConfiguration)
    C(cudaErrorInvalidMemcpyDirection) C(cudaErrorInsufficientDriver) C(cudaErrorNoDevice)
    C(cudaErrorInvalidDevice) C(cudaErrorInvalidResourceHandle) C(cudaErrorNotReady)
    C(cudaErrorLaunchOutOfResources) C(cudaErrorLaunchTimeout) C(cudaErrorLaunchFailure)
    C(cudaErrorCooperativeLaunchTooLarge) C(cudaErrorNotSupported) C(cudaErrorUnknown)
#undef C
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInsufficientDriver:
      return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchTimeout: return "the launch timed out and was terminated";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorCooperativeLaunchTooLarge:
      return "too many blocks in cooperative launch";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorUnknown: return "unknown error";
  }
  return "unknown error";
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = kvtrim::emu::detail::t_last_error;
  kvtrim::emu::detail::t_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return kvtrim::emu::detail::t_last_error; }

namespace {
using namespace kvtrim::emu::detail;

// The allocation holding [p, p + n), or false.
bool is_device_range(const void* p, size_t n) {
  std::lock_guard<std::mutex> lk(g_mu);
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = g_allocs.upper_bound(a);
  if (it == g_allocs.begin()) return false;
  --it;
  return a >= it->first && a + n <= it->first + it->second;
}

cudaError_t check_copy(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
  if (n == 0) return cudaSuccess;
  if (!dst || !src) return fail(cudaErrorInvalidValue, "cudaMemcpy: null pointer");
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (int(kind) < 0 || int(kind) > 4)
    return fail(cudaErrorInvalidMemcpyDirection, "cudaMemcpy: bad kind %d", int(kind));
  if (dst_dev && !is_device_range(dst, n))
    return fail(cudaErrorInvalidValue,
                "cudaMemcpy: destination [%p, +%zu) is not inside one cudaMalloc allocation", dst, n);
  if (src_dev && !is_device_range(src, n))
    return fail(cudaErrorInvalidValue,
                "cudaMemcpy: source [%p, +%zu) is not inside one cudaMalloc allocation", src, n);
  return cudaSuccess;
}
}  // namespace

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  if (!ptr) return set_error(cudaErrorInvalidValue);
  const size_t n = bytes ? bytes : 1;
  void* p = ::operator new(n, std::align_val_t(256), std::nothrow);
  if (!p) {
    *ptr = nullptr;
    return fail(cudaErrorMemoryAllocation, "cudaMalloc: out of memory (%zu bytes)", bytes);
  }
  std::lock_guard<std::mutex> lk(g_mu);
  g_allocs[reinterpret_cast<uintptr_t>(p)] = n;
  *ptr = p;
  return cudaSuccess;
}
cudaError_t cudaFree(void* ptr) {
  if (!ptr) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lk(g_mu);
    auto it = g_allocs.find(reinterpret_cast<uintptr_t>(ptr));
    if (it == g_allocs.end()) {
      return fail(cudaErrorInvalidValue, "cudaFree: %p is not a cudaMalloc allocation", ptr);
    }
    g_allocs.erase(it);
  }
  ::operator delete(ptr, std::align_val_t(256));
  return cudaSuccess;
}
cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  if (!ptr) return set_error(cudaErrorInvalidValue);
  *ptr = ::operator new(bytes ? bytes : 1, std::align_val_t(256), std::nothrow);
  return *ptr ? cudaSuccess : set_error(cudaErrorMemoryAllocation);
}
cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned) { return cudaMallocHost(ptr, bytes); }
cudaError_t cudaFreeHost(void* ptr) {
  if (ptr) ::operator delete(ptr, std::align_val_t(256));
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  const cudaDeviceProp p = props();
  size_t used = 0;
  {
    std::lock_guard<std::mutex> lk(g_mu);
    for (auto& a : g_allocs) used += a.second;
  }
  if (total_bytes) *total_bytes = p.totalGlobalMem;
  if (free_bytes) *free_bytes = p.totalGlobalMem > used ? p.totalGlobalMem - used : 0;
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  const cudaError_t e = check_copy(dst, src, bytes, kind);
  if (e != cudaSuccess) return e;
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}
cudaError_t cudaMemset(void* ptr, int value, size_t bytes) {
  if (bytes == 0) return cudaSuccess;
  if (!is_device_range(ptr, bytes))
    return fail(cudaErrorInvalidValue,
                "cudaMemset: [%p, +%zu) is not inside one cudaMalloc allocation", ptr, bytes);
  std::memset(ptr, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t) {
  return cudaMemset(ptr, value, bytes);
}

struct CUstream_st {
  unsigned flags;
};
struct CUevent_st {
  std::chrono::steady_clock::time_point t;
  bool recorded;
};

cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, 0); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags) {
  if (!s) return set_error(cudaErrorInvalidValue);
  *s = new CUstream_st{flags};
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventCreate(cudaEvent_t* e) { return cudaEventCreateWithFlags(e, 0); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) {
  if (!e) return set_error(cudaErrorInvalidValue);
  *e = new CUevent_st{std::chrono::steady_clock::now(), false};
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  if (!e) return set_error(cudaErrorInvalidResourceHandle);
  e->t = std::chrono::steady_clock::now();
  e->recorded = true;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  return e ? cudaSuccess : set_error(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventQuery(cudaEvent_t e) {
  return e ? cudaSuccess : set_error(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  if (!ms || !a || !b) return set_error(cudaErrorInvalidValue);
  if (!a->recorded || !b->recorded) return set_error(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(b->t - a->t).count();
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int* n) {
  if (!n) return set_error(cudaErrorInvalidValue);
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* d) {
  if (!d) return set_error(cudaErrorInvalidValue);
  *d = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : set_error(cudaErrorInvalidDevice); }
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaDeviceReset() { return cudaSuccess; }
cudaError_t cudaDriverGetVersion(int* v) {
  if (!v) return set_error(cudaErrorInvalidValue);
  *v = 13000;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* v) { return cudaDriverGetVersion(v); }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (!prop) return set_error(cudaErrorInvalidValue);
  if (device != 0) return set_error(cudaErrorInvalidDevice);
  *prop = props();
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (!value) return set_error(cudaErrorInvalidValue);
  if (device != 0) return set_error(cudaErrorInvalidDevice);
  const cudaDeviceProp p = props();
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = p.maxThreadsPerBlock; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = int(p.sharedMemPerBlock); break;
    case cudaDevAttrWarpSize: *value = p.warpSize; break;
    case cudaDevAttrMultiProcessorCount: *value = p.multiProcessorCount; break;
    case cudaDevAttrL2CacheSize: *value = p.l2CacheSize; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *value = p.maxThreadsPerMultiProcessor; break;
    case cudaDevAttrComputeCapabilityMajor: *value = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = p.minor; break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = int(p.sharedMemPerMultiprocessor); break;
    case cudaDevAttrCooperativeLaunch: *value = p.cooperativeLaunch; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = int(p.sharedMemPerBlockOptin); break;
    case cudaDevAttrMaxBlocksPerMultiprocessor: *value = p.maxBlocksPerMultiProcessor; break;
    case cudaDevAttrClusterLaunch: *value = p.clusterLaunch; break;
    default: return set_error(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}
cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  if (!func) return set_error(cudaErrorInvalidValue);
  if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) return cudaSuccess;
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return set_error(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lk(g_mu);
  const cudaDeviceProp& p = props_locked();
  if (value < 0 || size_t(value) > p.sharedMemPerBlockOptin) {
    t_last_message = "kvtrim emulator: cudaFuncSetAttribute: " + std::to_string(value) +
                     " bytes of dynamic shared memory is over sharedMemPerBlockOptin (" +
                     std::to_string(p.sharedMemPerBlockOptin) + ")";
    return set_error(cudaErrorInvalidValue);
  }
  g_func_smem[func] = value;
  return cudaSuccess;
}
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, const void* func,
                                                          int block_size, size_t smem_bytes) {
  if (!blocks || !func || block_size <= 0) return set_error(cudaErrorInvalidValue);
  const cudaDeviceProp p = props();
  if (block_size > p.maxThreadsPerBlock) {
    *blocks = 0;
    return cudaSuccess;
  }
  int regs = 0, static_smem = 0;
  {
    std::lock_guard<std::mutex> lk(g_mu);
    const FuncInfo& fi = func_info_locked(func);
    regs = fi.regs;
    static_smem = fi.static_smem;
  }
  *blocks = occupancy(p, unsigned(block_size), smem_bytes + size_t(static_smem), regs);
  return cudaSuccess;
}
