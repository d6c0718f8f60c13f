// Development hooks of the CUDA backend (dev_tools.h): kvtrim's own streams and the emulator's
// controls. The launch geometry is compress.cu's (compress_geometry), the timings bench.cu's.
#include <string>

#include "dev_tools.h"
#include "runtime.h"

namespace kvtrim::cuda {

Status stream_create(int device, void** stream) {
  return with_device(device, [&] {
    cudaStream_t s = nullptr;
    Status st = cuda_status(cudaStreamCreate(&s), "cudaStreamCreate");
    *stream = s;
    return st;
  });
}

Status stream_destroy(int device, void* stream) {
  return with_device(device, [&] { return cuda_status(cudaStreamDestroy(as_stream(stream)), "cudaStreamDestroy"); });
}

Status configure_emulator(const std::string& schedule, uint64_t seed, int sms, uint64_t spin_limit) {
#if KVTRIM_EMULATED
  namespace emu = ::kvtrim::emu;
  emu::Schedule sch;
  if (schedule == "deterministic") sch = emu::Schedule::Deterministic;
  else if (schedule == "random") sch = emu::Schedule::Random;
  else if (schedule == "priority") sch = emu::Schedule::Priority;
  else return Status::error(Code::InvalidOption, "Expected schedule 'deterministic', 'random' or 'priority'");
  emu::set_schedule(sch, seed);
  if (sms > 0) emu::set_sm_count(sms);
  else emu::reset_device_properties();
  emu::set_spin_limit(spin_limit > 0 ? spin_limit : 1000000);
  return Status::success();
#else
  (void)schedule, (void)seed, (void)sms, (void)spin_limit;
  return Status::error(Code::InvalidOption, "configure_emulator: this is a GPU build, not the emulator build");
#endif
}

}  // namespace kvtrim::cuda
