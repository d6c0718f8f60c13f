// kvtrim's CUDA emulator: the subset of CUDA that kvtrim's kernels and launchers use, for g++.
// Every GPU thread runs as a fiber on the calling OS thread; __syncthreads and the warp
// collectives are real rendezvous of their participants. See README.md in this directory.
// Included by native/cuda/cuda_api.h when not compiling with nvcc; link native/cuda/emu/*.cc
// with it.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- qualifiers ---------------------------------------------------------------------------
// Defined before <vector_types.h> so that CUDA's host_defines.h keeps ours.
#undef __host__
#undef __device__
#undef __global__
#define __host__
#define __device__
#define __global__
#if defined(__has_include)
#if __has_include(<vector_types.h>)
#include <vector_types.h>
#define KVTRIM_EMU_CUDA_VECTOR_TYPES 1
#endif
#endif
#undef __host__
#undef __device__
#undef __global__
#undef __forceinline__
#undef __launch_bounds__
#undef __shared__
#undef __constant__
#define __host__
#define __device__
#define __global__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __constant__
// Kernels take their shared memory from KVTRIM_DYNAMIC_SMEM(); a bare __shared__ would be a
// per-fiber local under the emulator, so it is a compile error here.
#define __shared__ kvtrim_emu_error_bare___shared___is_not_emulated_use_KVTRIM_DYNAMIC_SMEM
// __restrict__ is g++'s own keyword.

#ifndef KVTRIM_EMU_CUDA_VECTOR_TYPES
struct char1 { signed char x; };
struct uchar1 { unsigned char x; };
struct alignas(2) char2 { signed char x, y; };
struct alignas(2) uchar2 { unsigned char x, y; };
struct alignas(4) char4 { signed char x, y, z, w; };
struct alignas(4) uchar4 { unsigned char x, y, z, w; };
struct alignas(4) short2 { short x, y; };
struct alignas(4) ushort2 { unsigned short x, y; };
struct alignas(8) short4 { short x, y, z, w; };
struct alignas(8) ushort4 { unsigned short x, y, z, w; };
struct int1 { int x; };
struct uint1 { unsigned x; };
struct alignas(8) int2 { int x, y; };
struct alignas(8) uint2 { unsigned x, y; };
struct int3 { int x, y, z; };
struct uint3 { unsigned x, y, z; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
struct float1 { float x; };
struct alignas(8) float2 { float x, y; };
struct float3 { float x, y, z; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) double2 { double x, y; };
struct alignas(16) longlong2 { long long x, y; };
struct alignas(16) ulonglong2 { unsigned long long x, y; };
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};
#endif

#define KVTRIM_ARCH 0
#define KVTRIM_EMULATED 1
// KVTRIM_EMU_TSAN=1: the ThreadSanitizer build (GPU threads are TSan fibers; README.md). Set it
// for the emulator's own files (native/cuda/emu/*.cc) and for every translation unit that
// includes this header.
#ifndef KVTRIM_EMU_TSAN
#define KVTRIM_EMU_TSAN 0
#endif

// ---- host runtime types ---------------------------------------------------------------------
enum cudaError_t : int {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInsufficientDriver = 35,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorLaunchTimeout = 702,
  cudaErrorLaunchFailure = 719,
  cudaErrorCooperativeLaunchTooLarge = 720,
  cudaErrorNotSupported = 801,
  cudaErrorUnknown = 999,
};
typedef cudaError_t cudaError;

enum cudaMemcpyKind : int {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaFuncAttribute : int {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};

enum cudaDeviceAttr : int {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrL2CacheSize = 38,
  cudaDevAttrMaxThreadsPerMultiProcessor = 39,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerMultiprocessor = 81,
  cudaDevAttrCooperativeLaunch = 95,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
  cudaDevAttrMaxBlocksPerMultiprocessor = 106,
  cudaDevAttrClusterLaunch = 120,
};

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  int regsPerBlock;
  int warpSize;
  size_t memPitch;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  size_t totalConstMem;
  int major;
  int minor;
  size_t textureAlignment;
  int multiProcessorCount;
  int integrated;
  int concurrentKernels;
  int pciBusID;
  int pciDeviceID;
  int memoryBusWidth;
  int l2CacheSize;
  int persistingL2CacheMaxSize;
  int maxThreadsPerMultiProcessor;
  size_t sharedMemPerMultiprocessor;
  int regsPerMultiprocessor;
  int managedMemory;
  int isMultiGpuBoard;
  int cooperativeLaunch;
  size_t sharedMemPerBlockOptin;
  size_t reservedSharedMemPerBlock;
  int maxBlocksPerMultiProcessor;
  int clusterLaunch;
  int unifiedAddressing;
};

struct CUstream_st;
struct CUevent_st;
typedef CUstream_st* cudaStream_t;
typedef CUevent_st* cudaEvent_t;

const char* cudaGetErrorString(cudaError_t error);
const char* cudaGetErrorName(cudaError_t error);
cudaError_t cudaGetLastError();
cudaError_t cudaMalloc(void** ptr, size_t bytes);
template <class T>
inline cudaError_t cudaMalloc(T** ptr, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), bytes);
}
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* ptr, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream = nullptr);
cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaDriverGetVersion(int* version);
cudaError_t cudaRuntimeGetVersion(int* version);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value);
template <class... P>
inline cudaError_t cudaFuncSetAttribute(void (*func)(P...), cudaFuncAttribute attr, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(func), attr, value);
}
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, const void* func,
                                                          int block_size, size_t smem_bytes);
template <class... P>
inline cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, void (*func)(P...),
                                                                 int block_size,
                                                                 size_t smem_bytes) {
  return cudaOccupancyMaxActiveBlocksPerMultiprocessor(
      blocks, reinterpret_cast<const void*>(func), block_size, smem_bytes);
}

// ---- the emulator's own API -------------------------------------------------------------------
namespace kvtrim {
namespace emu {

enum class Schedule { Deterministic, Random, Priority };

// Sets the schedule of later launches. The seed drives Random and Priority; launch n after this
// call uses seed + n, so a sequence of launches is reproducible. Overrides KVTRIM_EMU_SCHEDULE /
// KVTRIM_EMU_SEED (read at the first launch otherwise).
void set_schedule(Schedule schedule, uint64_t seed = 0);
Schedule schedule();
uint64_t schedule_seed();
const char* schedule_name(Schedule schedule);

// The message of the last emulator-detected error of a launch on this OS thread ("" if none):
// one line naming the kind of error, block (x,y,z), thread (x,y,z) and file:line(s).
const char* last_error_message();
void clear_last_error_message();

// The emulated device. Defaults: an H100 SXM (cc 9.0, 132 SMs, 228 KiB shared memory per SM,
// 227 KiB opt-in per block, 80 GiB, 50 MiB L2), then env KVTRIM_EMU_SMS / KVTRIM_EMU_SMEM_PER_SM.
cudaDeviceProp device_properties();
void set_device_properties(const cudaDeviceProp& prop);
// Convenience setters; set_smem_per_sm also sets the opt-in limit to bytes - 1024.
void set_sm_count(int sms);
void set_smem_per_sm(size_t bytes);
void reset_device_properties();  // back to the defaults (env included)

// Livelock threshold: spin-waits (KVTRIM_SPIN_WAIT / __nanosleep) in a row across the launch
// with no fiber passing a barrier or collective or exiting. Default 1,000,000
// (env KVTRIM_EMU_SPIN_LIMIT).
void set_spin_limit(uint64_t spins);
// Fiber stack size in bytes (default 64 KiB, 256 KiB under ASan; env KVTRIM_EMU_STACK_KB).
void set_stack_size(size_t bytes);
size_t stack_size();

struct Stats {
  uint64_t launches = 0;
  uint64_t blocks = 0;
  uint64_t fibers = 0;    // GPU threads run
  uint64_t switches = 0;  // fiber context switches (each way counts)
  uint64_t stacks = 0;    // stacks allocated so far (pooled)
};
Stats stats();
void reset_stats();

namespace detail {

// What the builtin variables read; one per fiber.
struct ThreadVars {
  uint3 tid;   // threadIdx
  uint3 bid;   // blockIdx
  dim3 bdim;   // blockDim
  dim3 gdim;   // gridDim
  unsigned char* smem;
};
extern thread_local ThreadVars* tv;

enum class Op : uint8_t {
  SyncWarp,
  ShflIdx,
  ShflUp,
  ShflDown,
  ShflXor,
  Ballot,
  Any,
  All,
  MatchAny,
  MatchAll,
  RedAddU,
  RedMinU,
  RedMaxU,
  RedMinI,
  RedMaxI,
  RedAnd,
  RedOr,
  RedXor,
};
enum class Bar : uint8_t { Sync, Count, And, Or };

uint64_t warp_collective(Op op, unsigned mask, uint64_t value, int arg, int width, int bytes,
                         const char* file, int line);
int block_barrier(Bar kind, int pred, const char* file, int line);
void spin_wait(const char* file, int line);
void switch_point();  // atomics and fences: a possible switch under random / priority
int launch_impl(const void* func, dim3 grid, dim3 block, size_t smem, bool cooperative,
                void (*entry)(void*), void* ctx);
[[noreturn]] void bad_host_use(const char* what);

inline ThreadVars& cur(const char* what) {
  if (!tv) bad_host_use(what);
  return *tv;
}
#if KVTRIM_EMU_TSAN
// The builtin variables are read outside TSan's view: they live in the emulator's own
// bookkeeping (written by the scheduler), not in memory that GPU threads share.
#define KVTRIM_EMU_NO_TSAN __attribute__((no_sanitize("thread"), noinline))
KVTRIM_EMU_NO_TSAN inline uint3 thread_idx() { return cur("threadIdx").tid; }
KVTRIM_EMU_NO_TSAN inline uint3 block_idx() { return cur("blockIdx").bid; }
KVTRIM_EMU_NO_TSAN inline dim3 block_dim() { return cur("blockDim").bdim; }
KVTRIM_EMU_NO_TSAN inline dim3 grid_dim() { return cur("gridDim").gdim; }
KVTRIM_EMU_NO_TSAN inline unsigned char* dynamic_smem() { return cur("KVTRIM_DYNAMIC_SMEM").smem; }
#else
#define KVTRIM_EMU_NO_TSAN
#endif

template <class T>
inline uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value,
                "warp collectives move at most 8 bytes of a trivially copyable type");
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <class T>
inline T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}
template <class T>
inline T shfl(Op op, const char* f, int l, unsigned mask, T var, int arg, int width) {
  return from_bits<T>(warp_collective(op, mask, to_bits(var), arg, width, int(sizeof(T)), f, l));
}
template <class T>
inline T shfl_idx(const char* f, int l, unsigned mask, T var, int src, int width = 32) {
  return shfl(Op::ShflIdx, f, l, mask, var, src, width);
}
template <class T>
inline T shfl_up(const char* f, int l, unsigned mask, T var, unsigned delta, int width = 32) {
  return shfl(Op::ShflUp, f, l, mask, var, int(delta), width);
}
template <class T>
inline T shfl_down(const char* f, int l, unsigned mask, T var, unsigned delta, int width = 32) {
  return shfl(Op::ShflDown, f, l, mask, var, int(delta), width);
}
template <class T>
inline T shfl_xor(const char* f, int l, unsigned mask, T var, int lane_mask, int width = 32) {
  return shfl(Op::ShflXor, f, l, mask, var, lane_mask, width);
}
struct SyncWarpAt {
  const char* file;
  int line;
  void operator()(unsigned mask = 0xFFFFFFFFu) const {
    warp_collective(Op::SyncWarp, mask, 0, 0, 32, 0, file, line);
  }
};
template <class T>
inline unsigned match_any(const char* f, int l, unsigned mask, T v) {
  return unsigned(warp_collective(Op::MatchAny, mask, to_bits(v), 0, 32, int(sizeof(T)), f, l));
}
template <class T>
inline unsigned match_all(const char* f, int l, unsigned mask, T v, int* pred) {
  uint64_t r = warp_collective(Op::MatchAll, mask, to_bits(v), 0, 32, int(sizeof(T)), f, l);
  if (pred) *pred = r != 0;
  return unsigned(r);
}
inline unsigned reduce_u(Op op, const char* f, int l, unsigned mask, unsigned v) {
  return unsigned(warp_collective(op, mask, v, 0, 32, 4, f, l));
}
inline unsigned reduce_add(const char* f, int l, unsigned mask, unsigned v) {
  return reduce_u(Op::RedAddU, f, l, mask, v);
}
inline int reduce_add(const char* f, int l, unsigned mask, int v) {
  return int(reduce_u(Op::RedAddU, f, l, mask, unsigned(v)));
}
inline unsigned reduce_min(const char* f, int l, unsigned mask, unsigned v) {
  return reduce_u(Op::RedMinU, f, l, mask, v);
}
inline int reduce_min(const char* f, int l, unsigned mask, int v) {
  return int(reduce_u(Op::RedMinI, f, l, mask, unsigned(v)));
}
inline unsigned reduce_max(const char* f, int l, unsigned mask, unsigned v) {
  return reduce_u(Op::RedMaxU, f, l, mask, v);
}
inline int reduce_max(const char* f, int l, unsigned mask, int v) {
  return int(reduce_u(Op::RedMaxI, f, l, mask, unsigned(v)));
}

// Under TSan the parameters are copied uninstrumented: the launch's argument tuple is the
// emulator's (on the launching thread's stack), and the copies are each GPU thread's own.
template <class Tuple, class K, size_t... I>
KVTRIM_EMU_NO_TSAN inline void call_kernel(K kernel, Tuple& args, std::index_sequence<I...>) {
  kernel(std::get<I>(args)...);  // each GPU thread gets its own copy of the parameters
}
template <class K, class Tuple>
struct LaunchCtx {
  K kernel;
  Tuple args;
  KVTRIM_EMU_NO_TSAN static void entry(void* p) {
    auto* c = static_cast<LaunchCtx*>(p);
    call_kernel(c->kernel, c->args, std::make_index_sequence<std::tuple_size<Tuple>::value>{});
  }
};

}  // namespace detail

// Runs kernel<<<grid, block, smem, stream>>>(args...) to completion (streams are synchronous).
// cooperative: all blocks co-resident (as cudaLaunchCooperativeKernel); otherwise blocks run in
// waves of SMs x occupancy. Returns cudaSuccess or the error (also left for cudaGetLastError);
// for emulator-detected errors last_error_message() says what and where.
template <class... P, class... A>
cudaError_t launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                   bool cooperative, A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "launch: wrong number of kernel arguments");
  (void)stream;
  using Tuple = std::tuple<typename std::decay<P>::type...>;
  detail::LaunchCtx<void (*)(P...), Tuple> ctx{kernel, Tuple(std::forward<A>(args)...)};
  return cudaError_t(detail::launch_impl(reinterpret_cast<const void*>(kernel), grid, block, smem,
                                         cooperative, &decltype(ctx)::entry, &ctx));
}

}  // namespace emu
}  // namespace kvtrim

// ---- builtin variables ----------------------------------------------------------------------
#if KVTRIM_EMU_TSAN
#define threadIdx (::kvtrim::emu::detail::thread_idx())
#define blockIdx (::kvtrim::emu::detail::block_idx())
#define blockDim (::kvtrim::emu::detail::block_dim())
#define gridDim (::kvtrim::emu::detail::grid_dim())
#define KVTRIM_DYNAMIC_SMEM() (::kvtrim::emu::detail::dynamic_smem())
#else
#define threadIdx (::kvtrim::emu::detail::cur("threadIdx").tid)
#define blockIdx (::kvtrim::emu::detail::cur("blockIdx").bid)
#define blockDim (::kvtrim::emu::detail::cur("blockDim").bdim)
#define gridDim (::kvtrim::emu::detail::cur("gridDim").gdim)
#define KVTRIM_DYNAMIC_SMEM() (::kvtrim::emu::detail::cur("KVTRIM_DYNAMIC_SMEM").smem)
#endif
constexpr int warpSize = 32;

#define KVTRIM_SPIN_WAIT() ::kvtrim::emu::detail::spin_wait(__FILE__, __LINE__)

// ---- barriers and warp collectives (macros: they record the call site) ------------------------
#define __syncthreads() \
  ((void)::kvtrim::emu::detail::block_barrier(::kvtrim::emu::detail::Bar::Sync, 1, __FILE__, __LINE__))
#define __syncthreads_count(p) \
  ::kvtrim::emu::detail::block_barrier(::kvtrim::emu::detail::Bar::Count, (p) ? 1 : 0, __FILE__, __LINE__)
#define __syncthreads_and(p) \
  ::kvtrim::emu::detail::block_barrier(::kvtrim::emu::detail::Bar::And, (p) ? 1 : 0, __FILE__, __LINE__)
#define __syncthreads_or(p) \
  ::kvtrim::emu::detail::block_barrier(::kvtrim::emu::detail::Bar::Or, (p) ? 1 : 0, __FILE__, __LINE__)
#define __syncwarp(...) ::kvtrim::emu::detail::SyncWarpAt{__FILE__, __LINE__}(__VA_ARGS__)
#define __shfl_sync(...) ::kvtrim::emu::detail::shfl_idx(__FILE__, __LINE__, __VA_ARGS__)
#define __shfl_up_sync(...) ::kvtrim::emu::detail::shfl_up(__FILE__, __LINE__, __VA_ARGS__)
#define __shfl_down_sync(...) ::kvtrim::emu::detail::shfl_down(__FILE__, __LINE__, __VA_ARGS__)
#define __shfl_xor_sync(...) ::kvtrim::emu::detail::shfl_xor(__FILE__, __LINE__, __VA_ARGS__)
#define __ballot_sync(mask, pred)                                                          \
  unsigned(::kvtrim::emu::detail::warp_collective(::kvtrim::emu::detail::Op::Ballot, (mask), \
                                                  (pred) ? 1u : 0u, 0, 32, 4, __FILE__, __LINE__))
#define __any_sync(mask, pred)                                                           \
  int(::kvtrim::emu::detail::warp_collective(::kvtrim::emu::detail::Op::Any, (mask),      \
                                             (pred) ? 1u : 0u, 0, 32, 4, __FILE__, __LINE__))
#define __all_sync(mask, pred)                                                           \
  int(::kvtrim::emu::detail::warp_collective(::kvtrim::emu::detail::Op::All, (mask),      \
                                             (pred) ? 1u : 0u, 0, 32, 4, __FILE__, __LINE__))
#define __match_any_sync(mask, v) ::kvtrim::emu::detail::match_any(__FILE__, __LINE__, (mask), (v))
#define __match_all_sync(mask, v, pred) \
  ::kvtrim::emu::detail::match_all(__FILE__, __LINE__, (mask), (v), (pred))
#define __reduce_add_sync(mask, v) ::kvtrim::emu::detail::reduce_add(__FILE__, __LINE__, (mask), (v))
#define __reduce_min_sync(mask, v) ::kvtrim::emu::detail::reduce_min(__FILE__, __LINE__, (mask), (v))
#define __reduce_max_sync(mask, v) ::kvtrim::emu::detail::reduce_max(__FILE__, __LINE__, (mask), (v))
#define __reduce_and_sync(mask, v) \
  ::kvtrim::emu::detail::reduce_u(::kvtrim::emu::detail::Op::RedAnd, __FILE__, __LINE__, (mask), unsigned(v))
#define __reduce_or_sync(mask, v) \
  ::kvtrim::emu::detail::reduce_u(::kvtrim::emu::detail::Op::RedOr, __FILE__, __LINE__, (mask), unsigned(v))
#define __reduce_xor_sync(mask, v) \
  ::kvtrim::emu::detail::reduce_u(::kvtrim::emu::detail::Op::RedXor, __FILE__, __LINE__, (mask), unsigned(v))

// ---- bit and float intrinsics -----------------------------------------------------------------
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(unsigned(x)); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0F0F0F0Fu) | ((x & 0x0F0F0F0Fu) << 4);
  x = ((x >> 8) & 0x00FF00FFu) | ((x & 0x00FF00FFu) << 8);
  return (x >> 16) | (x << 16);
}
inline unsigned long long __brevll(unsigned long long x) {
  return ((unsigned long long)__brev(unsigned(x)) << 32) | __brev(unsigned(x >> 32));
}
inline unsigned __umulhi(unsigned a, unsigned b) {
  return unsigned(((unsigned long long)a * b) >> 32);
}
inline int __mulhi(int a, int b) { return int(((long long)a * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
  const unsigned long long v = ((unsigned long long)y << 32) | x;
  unsigned r = 0;
  for (int i = 0; i < 4; ++i) r |= unsigned((v >> (8 * ((s >> (4 * i)) & 7))) & 0xFF) << (8 * i);
  return r;
}
inline unsigned __funnelshift_l(unsigned lo, unsigned hi, unsigned shift) {
  const unsigned long long v = ((unsigned long long)hi << 32) | lo;
  return unsigned((v << (shift & 31)) >> 32);
}
inline unsigned __funnelshift_r(unsigned lo, unsigned hi, unsigned shift) {
  const unsigned long long v = ((unsigned long long)hi << 32) | lo;
  return unsigned(v >> (shift & 31));
}

inline float __int_as_float(int x) { float f; std::memcpy(&f, &x, 4); return f; }
inline int __float_as_int(float f) { int x; std::memcpy(&x, &f, 4); return x; }
inline float __uint_as_float(unsigned x) { float f; std::memcpy(&f, &x, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned x; std::memcpy(&x, &f, 4); return x; }
inline double __longlong_as_double(long long x) { double d; std::memcpy(&d, &x, 8); return d; }
inline long long __double_as_longlong(double d) { long long x; std::memcpy(&x, &d, 8); return x; }

// Separately rounded IEEE operations: the empty asm keeps g++ from contracting them into FMAs.
#if defined(__x86_64__)
#define KVTRIM_EMU_NOFUSE(v) __asm__("" : "+x"(v))
#else
#define KVTRIM_EMU_NOFUSE(v) __asm__("" : "+r"(v))
#endif
inline float __fadd_rn(float a, float b) { float r = a + b; KVTRIM_EMU_NOFUSE(r); return r; }
inline float __fsub_rn(float a, float b) { float r = a - b; KVTRIM_EMU_NOFUSE(r); return r; }
inline float __fmul_rn(float a, float b) { float r = a * b; KVTRIM_EMU_NOFUSE(r); return r; }
inline float __fdiv_rn(float a, float b) { float r = a / b; KVTRIM_EMU_NOFUSE(r); return r; }
inline float __frcp_rn(float a) { float r = 1.0f / a; KVTRIM_EMU_NOFUSE(r); return r; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline double __dadd_rn(double a, double b) { double r = a + b; KVTRIM_EMU_NOFUSE(r); return r; }
inline double __dmul_rn(double a, double b) { double r = a * b; KVTRIM_EMU_NOFUSE(r); return r; }
inline double __dsqrt_rn(double a) { return std::sqrt(a); }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }

template <class T>
inline T __ldg(const T* p) { return *p; }

long long clock64();

// ---- atomics and fences (each one a possible switch under random / priority) ----------------
// Atomics are relaxed __atomic builtins (CUDA's atomicX are relaxed), so ThreadSanitizer sees
// them as atomics. Under KVTRIM_EMU_TSAN a fence orders memory as PTX's release and acquire
// patterns do (README.md, "CUDA's memory model under TSan"): the fiber's next atomic after a
// fence is a release, and its atomics since the previous fence become acquires at the fence.
namespace kvtrim {
namespace emu {
namespace detail {
#if KVTRIM_EMU_TSAN
void tsan_atomic(const void* address);  // before every atomic of a GPU thread
void tsan_fence();
#endif
inline void atomic_enter(const void* address) {
  switch_point();
#if KVTRIM_EMU_TSAN
  tsan_atomic(address);
#else
  (void)address;
#endif
}
template <class T, class F>
inline T atomic_cas_loop(T* address, F op) {  // min, max, inc, dec, float add: a CAS loop
  T old;
  __atomic_load(address, &old, __ATOMIC_RELAXED);
  for (;;) {
    T desired = op(old);
    if (__atomic_compare_exchange(address, &old, &desired, false, __ATOMIC_RELAXED,
                                  __ATOMIC_RELAXED))
      return old;
  }
}
}  // namespace detail
}  // namespace emu
}  // namespace kvtrim

#define KVTRIM_EMU_ATOMIC_FETCH(T, name, builtin)                       \
  inline T name(T* address, T val) {                                   \
    ::kvtrim::emu::detail::atomic_enter(address);                      \
    return builtin(address, val, __ATOMIC_RELAXED);                    \
  }
#define KVTRIM_EMU_ATOMIC_CAS_OP(T, name, expr)                                             \
  inline T name(T* address, T val) {                                                       \
    ::kvtrim::emu::detail::atomic_enter(address);                                          \
    return ::kvtrim::emu::detail::atomic_cas_loop(address, [val](T old) -> T { return (expr); }); \
  }
#define KVTRIM_EMU_ATOMIC_EXCH(T)                                      \
  inline T atomicExch(T* address, T val) {                             \
    ::kvtrim::emu::detail::atomic_enter(address);                      \
    T old;                                                             \
    __atomic_exchange(address, &val, &old, __ATOMIC_RELAXED);          \
    return old;                                                        \
  }
KVTRIM_EMU_ATOMIC_FETCH(int, atomicAdd, __atomic_fetch_add)
KVTRIM_EMU_ATOMIC_FETCH(unsigned, atomicAdd, __atomic_fetch_add)
KVTRIM_EMU_ATOMIC_FETCH(unsigned long long, atomicAdd, __atomic_fetch_add)
KVTRIM_EMU_ATOMIC_CAS_OP(float, atomicAdd, old + val)
KVTRIM_EMU_ATOMIC_CAS_OP(double, atomicAdd, old + val)
KVTRIM_EMU_ATOMIC_FETCH(int, atomicSub, __atomic_fetch_sub)
KVTRIM_EMU_ATOMIC_FETCH(unsigned, atomicSub, __atomic_fetch_sub)
KVTRIM_EMU_ATOMIC_CAS_OP(int, atomicMax, old > val ? old : val)
KVTRIM_EMU_ATOMIC_CAS_OP(unsigned, atomicMax, old > val ? old : val)
KVTRIM_EMU_ATOMIC_CAS_OP(long long, atomicMax, old > val ? old : val)
KVTRIM_EMU_ATOMIC_CAS_OP(unsigned long long, atomicMax, old > val ? old : val)
KVTRIM_EMU_ATOMIC_CAS_OP(int, atomicMin, old < val ? old : val)
KVTRIM_EMU_ATOMIC_CAS_OP(unsigned, atomicMin, old < val ? old : val)
KVTRIM_EMU_ATOMIC_CAS_OP(long long, atomicMin, old < val ? old : val)
KVTRIM_EMU_ATOMIC_CAS_OP(unsigned long long, atomicMin, old < val ? old : val)
KVTRIM_EMU_ATOMIC_EXCH(int)
KVTRIM_EMU_ATOMIC_EXCH(unsigned)
KVTRIM_EMU_ATOMIC_EXCH(unsigned long long)
KVTRIM_EMU_ATOMIC_EXCH(float)
KVTRIM_EMU_ATOMIC_FETCH(int, atomicOr, __atomic_fetch_or)
KVTRIM_EMU_ATOMIC_FETCH(unsigned, atomicOr, __atomic_fetch_or)
KVTRIM_EMU_ATOMIC_FETCH(unsigned long long, atomicOr, __atomic_fetch_or)
KVTRIM_EMU_ATOMIC_FETCH(int, atomicAnd, __atomic_fetch_and)
KVTRIM_EMU_ATOMIC_FETCH(unsigned, atomicAnd, __atomic_fetch_and)
KVTRIM_EMU_ATOMIC_FETCH(unsigned long long, atomicAnd, __atomic_fetch_and)
KVTRIM_EMU_ATOMIC_FETCH(int, atomicXor, __atomic_fetch_xor)
KVTRIM_EMU_ATOMIC_FETCH(unsigned, atomicXor, __atomic_fetch_xor)
KVTRIM_EMU_ATOMIC_FETCH(unsigned long long, atomicXor, __atomic_fetch_xor)
KVTRIM_EMU_ATOMIC_CAS_OP(unsigned, atomicInc, old >= val ? 0u : old + 1u)
KVTRIM_EMU_ATOMIC_CAS_OP(unsigned, atomicDec, (old == 0u || old > val) ? val : old - 1u)
#undef KVTRIM_EMU_ATOMIC_FETCH
#undef KVTRIM_EMU_ATOMIC_CAS_OP
#undef KVTRIM_EMU_ATOMIC_EXCH
#define KVTRIM_EMU_CAS(T)                                                                   \
  inline T atomicCAS(T* address, T compare, T val) {                                        \
    ::kvtrim::emu::detail::atomic_enter(address);                                           \
    __atomic_compare_exchange_n(address, &compare, val, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED); \
    return compare; /* the old value either way */                                          \
  }
KVTRIM_EMU_CAS(int)
KVTRIM_EMU_CAS(unsigned)
KVTRIM_EMU_CAS(unsigned long long)
KVTRIM_EMU_CAS(unsigned short)
#undef KVTRIM_EMU_CAS

#if KVTRIM_EMU_TSAN
#define KVTRIM_EMU_FENCE() (::kvtrim::emu::detail::switch_point(), ::kvtrim::emu::detail::tsan_fence())
#else
#define KVTRIM_EMU_FENCE() ::kvtrim::emu::detail::switch_point()
#endif
inline void __threadfence() { KVTRIM_EMU_FENCE(); }
inline void __threadfence_block() { KVTRIM_EMU_FENCE(); }
inline void __threadfence_system() { KVTRIM_EMU_FENCE(); }
// A sleep is a yield to the other fibers (and counts as a spin-wait for livelock detection).
#define __nanosleep(ns) ((void)(ns), ::kvtrim::emu::detail::spin_wait(__FILE__, __LINE__))
