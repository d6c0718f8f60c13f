// CUDA probe: driver and runtime versions, devices, and one tiny kernel launch that proves
// this binary carries code the device can run (a driver too old for the CUDA 13 runtime, or a
// card newer than the compiled architectures without usable PTX, fails here, not mid-compress).
#include <string>

#include "launch.h"
#include "probe.h"

#ifndef KVTRIM_CUDA_ARCHS
#define KVTRIM_CUDA_ARCHS "unknown"
#endif

namespace kvtrim::cuda {

namespace {

__global__ void probe_kernel(int* out) { *out = 0x6b76; }

std::string err(const char* what, cudaError_t e) {
  return std::string(what) + " failed: " + cudaGetErrorString(e) + " (cudaError " +
         std::to_string(int(e)) + ")";
}

std::string launch_check(int device) {
  cudaError_t e = cudaSetDevice(device);
  if (e != cudaSuccess) return err("cudaSetDevice", e);
  int* d = nullptr;
  e = cudaMalloc(&d, sizeof(int));
  if (e != cudaSuccess) return err("cudaMalloc", e);
  e = launch_kernel(&probe_kernel, dim3{1, 1, 1}, dim3{1, 1, 1}, 0, nullptr, false, d);
  int h = 0;
  if (e == cudaSuccess) e = cudaMemcpy(&h, d, sizeof(int), cudaMemcpyDeviceToHost);
  cudaFree(d);
  if (e != cudaSuccess) return err("a probe kernel launch", e);
  if (h != 0x6b76) return "a probe kernel ran but wrote the wrong value";
  return "";
}

}  // namespace

Probe probe() {
  Probe p;
  p.compiled = true;
  p.emulated = KVTRIM_EMULATED != 0;
  p.architectures = p.emulated ? "emulated (g++)" : KVTRIM_CUDA_ARCHS;
  cudaRuntimeGetVersion(&p.runtime_version);
  cudaDriverGetVersion(&p.driver_version);  // leaves 0 when no driver is installed
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e == cudaErrorNoDevice) {
    p.reason = "the NVIDIA driver reports no CUDA device (" + err("cudaGetDeviceCount", e) + ")";
    cudaGetLastError();
    return p;
  }
  if (e != cudaSuccess) {
    p.reason = p.driver_version == 0
        ? "no NVIDIA driver is installed (" + err("cudaGetDeviceCount", e) + ")"
        : (p.driver_version < p.runtime_version
               ? "the NVIDIA driver (CUDA " + std::to_string(p.driver_version / 1000) + "." +
                     std::to_string(p.driver_version % 1000 / 10) +
                     ") is older than the CUDA " + std::to_string(p.runtime_version / 1000) +
                     " runtime kvtrim was built with; update the driver (R580 or newer for CUDA 13) (" +
                     err("cudaGetDeviceCount", e) + ")"
               : err("cudaGetDeviceCount", e));
    cudaGetLastError();
    return p;
  }
  if (count == 0) {
    p.reason = "the NVIDIA driver reports no CUDA device";
    return p;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    p.devices.push_back(DeviceInfo{i, prop.name, prop.major, prop.minor, prop.multiProcessorCount,
                                   uint64_t(prop.totalGlobalMem)});
  }
  const std::string launch = launch_check(0);
  if (!launch.empty()) {
    p.reason = "device 0 cannot run kvtrim's CUDA code: " + launch;
    cudaGetLastError();
    return p;
  }
  p.usable = true;
  return p;
}

}  // namespace kvtrim::cuda
