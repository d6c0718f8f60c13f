// The emulator's settings (device properties, schedule, spin limit, stack size) with their env
// defaults, the statistics counters, and the per-OS-thread last error (set_error / fail).
#include "emu_internal.h"

#include <cstring>

namespace kvtrim {
namespace emu {
namespace detail {

std::mutex g_mu;
bool g_props_init = false;
cudaDeviceProp g_props;
namespace {
bool g_sched_init = false;  // the schedule's env defaults read (init_schedule_locked)
}  // namespace
Schedule g_schedule = Schedule::Deterministic;
uint64_t g_seed = 0;
uint64_t g_launch_counter = 0;
uint64_t g_spin_limit = 1000000;
size_t g_stack_size = 0;
std::unordered_map<const void*, int> g_func_smem;
std::map<uintptr_t, size_t> g_allocs;
std::atomic<uint64_t> g_stat_launches{0}, g_stat_blocks{0}, g_stat_fibers{0},
    g_stat_switches{0}, g_stat_stacks{0};

thread_local cudaError_t t_last_error = cudaSuccess;
thread_local std::string t_last_message;

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

cudaError_t fail(cudaError_t e, const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  t_last_message = std::string("kvtrim emulator: ") + buf;
  return set_error(e);
}

}  // namespace detail
}  // namespace emu
}  // namespace kvtrim
