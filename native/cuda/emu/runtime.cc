// The host runtime subset (cuda* functions): errors, memory (bounds-checked against cudaMalloc
// allocations), synchronous streams, events timed by the host clock, device properties and
// attributes, function attributes and occupancy.
#include "emu_internal.h"

#include <chrono>
#include <cstring>
#include <new>

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

struct CUstream_st {};  // streams are synchronous: a stream is only a handle
struct CUevent_st {
  std::chrono::steady_clock::time_point t;
  bool recorded;
};

cudaError_t cudaStreamCreate(cudaStream_t* s) {
  if (!s) return set_error(cudaErrorInvalidValue);
  *s = new CUstream_st{};
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventCreate(cudaEvent_t* e) {
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
