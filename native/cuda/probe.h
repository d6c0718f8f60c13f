// What the CUDA side of this build can do on this machine. Plain C++ interface: the addon
// reports it from backend(); builds without CUDA link none.cc instead of probe.cu.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kvtrim::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int major = 0, minor = 0;   // compute capability
  int sm_count = 0;
  uint64_t total_memory = 0;  // bytes
};

struct Probe {
  bool compiled = false;      // this binary holds CUDA code
  bool emulated = false;      // ... run by kvtrim's CPU emulator (KVTRIM_EMULATE_CUDA builds)
  bool usable = false;        // a driver, a device and a kernel image that runs on it
  std::string reason;         // why not usable, in words a user can act on
  int driver_version = 0;     // e.g. 13000 for CUDA 13.0; 0 when there is no driver
  int runtime_version = 0;    // the CUDA runtime linked in
  std::string architectures;  // the SASS/PTX targets compiled in
  std::vector<DeviceInfo> devices;
};

// Queries the driver once per call; cheap (no context is created when there is no device).
Probe probe();

}  // namespace kvtrim::cuda
