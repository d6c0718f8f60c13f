// A launch: its checks (block and grid size, shared memory, occupancy, cooperative co-residency)
// against the emulated device, then a scheduler run of the whole grid on the calling OS thread.
#include "emu_internal.h"

namespace kvtrim {
namespace emu {
namespace detail {

thread_local Sched* t_sched = nullptr;

#if KVTRIM_EMU_ASAN
namespace {
// A sanitizer report inside a kernel names the GPU thread it came from.
void on_sanitizer_death() {
  if (!tv) return;
  const ThreadVars& v = *tv;
  std::fprintf(stderr, "kvtrim emulator: the report above came from GPU block (%u,%u,%u) thread (%u,%u,%u)\n",
               v.bid.x, v.bid.y, v.bid.z, v.tid.x, v.tid.y, v.tid.z);
}
}  // namespace
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
}  // namespace emu
}  // namespace kvtrim
