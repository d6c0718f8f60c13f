// kvtrim::emu's public functions (emu.h, "the emulator's own API"): schedule, device properties,
// limits, the last error message and the statistics, over the settings in settings.cc.
#include "emu_internal.h"

#include <unistd.h>

namespace kvtrim {
namespace emu {

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
