// What the emulator's own files share (never included by kernels, which see only emu.h): the
// sanitizer hooks, the settings, stacks, fibers, blocks and the scheduler's state. README.md has
// the file map.
#pragma once

#include "emu.h"

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

// ---- sanitizers ------------------------------------------------------------------------------
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
// ThreadSanitizer's fiber API (sanitizer/tsan_interface.h). The emulator itself is not
// instrumented: only the kernels' translation units are, and these calls give TSan the GPU threads
// and the happens-before edges that CUDA defines (README.md, "ThreadSanitizer").
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
namespace kvtrim {
namespace emu {
namespace detail {
constexpr unsigned kTsanNoSync = 1;  // __tsan_switch_to_fiber_no_sync: a switch orders nothing
// The scheduler's own work (its allocations and copies go through TSan's interceptors) is kept
// out of TSan's view, on the launching thread and on GPU threads alike.
struct TsanIgnore {
  TsanIgnore() { __tsan_ignore_thread_begin(); }
  ~TsanIgnore() { __tsan_ignore_thread_end(); }
};
}  // namespace detail
}  // namespace emu
}  // namespace kvtrim
#define KVTRIM_EMU_TSAN_IGNORE() TsanIgnore tsan_ignore_guard_
#else
#define KVTRIM_EMU_TSAN_IGNORE() (void)0
#endif

// The context switch: hand-written x86-64 assembly (fibers.cc), ucontext elsewhere.
#if defined(__x86_64__) && !defined(KVTRIM_EMU_UCONTEXT)
#define KVTRIM_EMU_ASM_SWITCH 1
#else
#define KVTRIM_EMU_ASM_SWITCH 0
#include <ucontext.h>
#endif

namespace kvtrim {
namespace emu {
namespace detail {

// ---- settings (settings.cc) ------------------------------------------------------------------
extern std::mutex g_mu;  // guards the settings below, the allocation table and function attributes
extern bool g_props_init;
extern cudaDeviceProp g_props;
extern Schedule g_schedule;
extern uint64_t g_seed;
extern uint64_t g_launch_counter;
extern uint64_t g_spin_limit;
extern size_t g_stack_size;
extern std::unordered_map<const void*, int> g_func_smem;  // cudaFuncAttributeMaxDynamicSharedMemorySize
extern std::map<uintptr_t, size_t> g_allocs;              // "device" allocations
extern std::atomic<uint64_t> g_stat_launches, g_stat_blocks, g_stat_fibers, g_stat_switches,
    g_stat_stacks;

extern thread_local cudaError_t t_last_error;
extern thread_local std::string t_last_message;

constexpr size_t kReservedSmemPerBlock = 1024;
constexpr int kDefaultSmemLimit = 48 * 1024;
constexpr size_t kWindowFibers = 2048;  // fibers started at once before more blocks are needed

uint64_t env_u64(const char* name, uint64_t fallback);
cudaDeviceProp default_props();
cudaDeviceProp& props_locked();
cudaDeviceProp props();
size_t stack_size_locked();
void init_schedule_locked();
cudaError_t set_error(cudaError_t e);
cudaError_t fail(cudaError_t e, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// ---- random numbers --------------------------------------------------------------------------
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

// ---- stacks (stacks.cc) ----------------------------------------------------------------------
struct Stack {
  char* map = nullptr;  // guard page included
  size_t map_size = 0;
  char* lo = nullptr;   // usable range [lo, lo + size)
  size_t size = 0;
};
bool stack_get(Stack* out, size_t size);
void stack_put(Stack& s);

// ---- fibers and blocks -----------------------------------------------------------------------
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

// Names of barriers (barriers.cc) and collectives (collectives.cc) for the error messages, and
// whether two waits are at the same call site.
const char* op_name(Op op);
const char* bar_name(Bar b);
inline bool same_site(const char* f1, int l1, const char* f2, int l2) {
  return l1 == l2 && (f1 == f2 || std::strcmp(f1, f2) == 0);
}

// ---- the scheduler of one launch (scheduler.cc; switching in fibers.cc) ---------------------
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

  // -- errors (scheduler.cc) --
  void error(cudaError_t e, const char* fmt, ...) __attribute__((format(printf, 3, 4)));

  // -- switching (fibers.cc) --
  static void fiber_main(Fiber* f);
  void resume(Fiber* f);
  // From a fiber back to the scheduler. `final`: the fiber never resumes.
  void to_main(Fiber* f, bool final);
  [[noreturn]] void abandon(Fiber* f);  // after an error: never resumed, stack reclaimed
  bool start(Fiber* f);
#if !KVTRIM_EMU_ASM_SWITCH
  static void fiber_entry_uc(unsigned hi, unsigned lo);
#endif

  // -- blocks (scheduler.cc) --
  bool can_activate() const { return next_block < wave_end; }
  void activate();
  void release(Block* b);

  // -- progress and spinning --
  void progress() {
    spins_since_progress = 0;
    spins_since_growth = 0;
  }

  // -- the loop (scheduler.cc) --
  void run();
  void report_deadlock();
};

extern thread_local Sched* t_sched;  // the launch running on this OS thread (launch.cc)

// The calling GPU thread; aborts (bad_host_use) when called from host code.
inline Fiber* self(const char* what) {
  if (!tv || !t_sched) bad_host_use(what);
  return reinterpret_cast<Fiber*>(tv);  // vars is Fiber's first member
}

// ---- per-kernel resources (resources.cc) -----------------------------------------------------
struct FuncInfo {
  std::string name;
  int regs = 0, static_smem = 0;  // 0 registers: unknown (not in the table), no register limit
};
const FuncInfo& func_info_locked(const void* func);  // g_mu held
// Resident blocks per SM, as CUDA's occupancy calculator: threads, blocks, shared memory (static
// + dynamic + 1 KiB reserved per block) and, when the kernel's sm_90 register count is known,
// registers (allocated per warp in units of 256).
int occupancy(const cudaDeviceProp& p, unsigned threads, size_t smem, int regs = 0);
void write_occupancy_report_locked(const cudaDeviceProp& p, const void* any_func);

}  // namespace detail
}  // namespace emu
}  // namespace kvtrim
