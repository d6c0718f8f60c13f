// Self-test of kvtrim's CUDA emulator (native/cuda/emu): every primitive against its documented
// CUDA semantics, the errors it must detect, the races its schedules expose, and its speed.
// Built and run by scripts/emu-selftest.sh (plain and under ASan + UBSan).
#include "../../native/cuda/emu/emu.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using kvtrim::emu::Schedule;

static int g_failures = 0;
static int g_checks = 0;
#define CHECK(cond)                                                              \
  do {                                                                           \
    ++g_checks;                                                                  \
    if (!(cond)) {                                                               \
      ++g_failures;                                                              \
      std::fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);       \
    }                                                                            \
  } while (0)
#define CHECK_EQ(a, b)                                                                       \
  do {                                                                                       \
    ++g_checks;                                                                              \
    const auto va_ = (a);                                                                    \
    const auto vb_ = (b);                                                                    \
    if (!(va_ == vb_)) {                                                                     \
      ++g_failures;                                                                          \
      std::fprintf(stderr, "FAIL %s:%d: %s == %s (%lld vs %lld)\n", __FILE__, __LINE__, #a, \
                   #b, (long long)va_, (long long)vb_);                                      \
    }                                                                                        \
  } while (0)

static bool contains(const char* hay, const char* needle) { return std::strstr(hay, needle) != nullptr; }

template <class T>
static T* dalloc(size_t n) {
  T* p = nullptr;
  if (cudaMalloc(&p, n * sizeof(T)) != cudaSuccess) std::abort();
  cudaMemset(p, 0, n * sizeof(T));
  return p;
}

static const Schedule kSchedules[] = {Schedule::Deterministic, Schedule::Random, Schedule::Priority};
static const unsigned FULL = 0xFFFFFFFFu;

// ---- shuffles -------------------------------------------------------------------------------
// out[k * n + t]: shuffle variant k of thread t (n threads).
constexpr int kShflVariants = 14;
__global__ void shfl_kernel(int* out, float* fout, double* dout, unsigned long long* uout) {
  const int t = threadIdx.x, n = blockDim.x, lane = t & 31;
  const int v = 1000 + t;
  int k = 0;
  out[k++ * n + t] = __shfl_sync(FULL, v, (lane * 7 + 3) & 31);
  out[k++ * n + t] = __shfl_sync(FULL, v, lane * 7 + 3, 16);  // srcLane modulo width
  out[k++ * n + t] = __shfl_sync(FULL, v, lane + 5, 8);
  out[k++ * n + t] = __shfl_sync(FULL, v, 0);
  out[k++ * n + t] = __shfl_up_sync(FULL, v, 3);
  out[k++ * n + t] = __shfl_up_sync(FULL, v, 3, 8);   // out of range: own value
  out[k++ * n + t] = __shfl_up_sync(FULL, v, 5, 16);
  out[k++ * n + t] = __shfl_down_sync(FULL, v, 3);
  out[k++ * n + t] = __shfl_down_sync(FULL, v, 3, 8);
  out[k++ * n + t] = __shfl_down_sync(FULL, v, 9, 16);
  out[k++ * n + t] = __shfl_xor_sync(FULL, v, 5);
  out[k++ * n + t] = __shfl_xor_sync(FULL, v, 4, 8);
  out[k++ * n + t] = __shfl_xor_sync(FULL, v, 1, 16);
  unsigned u = __shfl_down_sync(FULL, unsigned(v), 1, 32);
  out[k++ * n + t] = int(u);
  fout[t] = __shfl_xor_sync(FULL, 0.5f + float(t), 3);
  dout[t] = __shfl_sync(FULL, 0.25 + double(t), 31 - lane);
  uout[t] = __shfl_up_sync(FULL, 0x100000000ull * unsigned(t) + 7u, 1, 4);
}

static int ref_idx(int lane, int src, int w) { return (lane & ~(w - 1)) + (src % w); }
static int ref_up(int lane, int d, int w) { return (lane % w) >= d ? lane - d : lane; }
static int ref_down(int lane, int d, int w) { return (lane % w) + d < w ? lane + d : lane; }

[[maybe_unused]] static void test_shuffles() {
  const int n = 64;
  int* out = dalloc<int>(kShflVariants * n);
  float* fout = dalloc<float>(n);
  double* dout = dalloc<double>(n);
  unsigned long long* uout = dalloc<unsigned long long>(n);
  for (Schedule s : kSchedules) {
    kvtrim::emu::set_schedule(s, 7);
    CHECK_EQ(kvtrim::emu::launch(shfl_kernel, dim3(1), dim3(n), 0, nullptr, false, out, fout, dout, uout),
             cudaSuccess);
    for (int t = 0; t < n; ++t) {
      const int lane = t & 31, base = t - lane;
      auto V = [&](int l) { return 1000 + base + l; };
      int k = 0;
      CHECK_EQ(out[k++ * n + t], V((lane * 7 + 3) & 31));
      CHECK_EQ(out[k++ * n + t], V(ref_idx(lane, lane * 7 + 3, 16)));
      CHECK_EQ(out[k++ * n + t], V(ref_idx(lane, lane + 5, 8)));
      CHECK_EQ(out[k++ * n + t], V(0));
      CHECK_EQ(out[k++ * n + t], V(ref_up(lane, 3, 32)));
      CHECK_EQ(out[k++ * n + t], V(ref_up(lane, 3, 8)));
      CHECK_EQ(out[k++ * n + t], V(ref_up(lane, 5, 16)));
      CHECK_EQ(out[k++ * n + t], V(ref_down(lane, 3, 32)));
      CHECK_EQ(out[k++ * n + t], V(ref_down(lane, 3, 8)));
      CHECK_EQ(out[k++ * n + t], V(ref_down(lane, 9, 16)));
      CHECK_EQ(out[k++ * n + t], V(lane ^ 5));
      CHECK_EQ(out[k++ * n + t], V(lane ^ 4));
      CHECK_EQ(out[k++ * n + t], V(lane ^ 1));
      CHECK_EQ(out[k++ * n + t], V(ref_down(lane, 1, 32)));
      CHECK(fout[t] == 0.5f + float(base + (lane ^ 3)));
      CHECK(dout[t] == 0.25 + double(base + 31 - lane));
      const int src = ref_up(lane, 1, 4);
      CHECK(uout[t] == 0x100000000ull * unsigned(base + src) + 7u);
    }
  }
  cudaFree(out);
  cudaFree(fout);
  cudaFree(dout);
  cudaFree(uout);
}

// ---- votes, match, reduce ---------------------------------------------------------------------
__global__ void vote_kernel(unsigned* out) {
  const unsigned t = threadIdx.x, lane = t & 31, n = blockDim.x;
  unsigned k = 0;
  out[k++ * n + t] = __ballot_sync(FULL, lane % 3 == 0);
  out[k++ * n + t] = unsigned(__any_sync(FULL, lane == 17));
  out[k++ * n + t] = unsigned(__any_sync(FULL, false));
  out[k++ * n + t] = unsigned(__all_sync(FULL, lane < 32));
  out[k++ * n + t] = unsigned(__all_sync(FULL, lane != 9));
  out[k++ * n + t] = __match_any_sync(FULL, lane / 4);
  out[k++ * n + t] = __match_any_sync(FULL, (unsigned long long)(lane & 1) << 40);
  out[k++ * n + t] = __reduce_add_sync(FULL, lane + 1);
  out[k++ * n + t] = __reduce_min_sync(FULL, 100u - lane);
  out[k++ * n + t] = unsigned(__reduce_max_sync(FULL, int(lane) - 20));
  out[k++ * n + t] = unsigned(__reduce_min_sync(FULL, int(lane) - 20));
  out[k++ * n + t] = __reduce_or_sync(FULL, 1u << lane);
  out[k++ * n + t] = __reduce_and_sync(FULL, ~(1u << lane));
  // partial masks: even lanes, and the two halves separately
  unsigned r = 0;
  if ((lane & 1) == 0) r = __ballot_sync(0x55555555u, lane % 4 == 0);
  out[k++ * n + t] = r;
  if (lane < 16) r = __reduce_add_sync(0x0000FFFFu, lane);
  else r = __reduce_add_sync(0xFFFF0000u, lane);
  out[k++ * n + t] = r;
  __syncwarp();
  if (lane < 8) __syncwarp(0xFFu);
  int pred = -1;
  out[k++ * n + t] = __match_all_sync(FULL, 42u, &pred);
  out[k++ * n + t] = unsigned(pred);
  out[k++ * n + t] = __match_all_sync(FULL, lane, &pred);
  out[k++ * n + t] = unsigned(pred);
}

[[maybe_unused]] static void test_votes() {
  const unsigned n = 64, nv = 19;
  unsigned* out = dalloc<unsigned>(nv * n);
  for (Schedule s : kSchedules) {
    kvtrim::emu::set_schedule(s, 3);
    CHECK_EQ(kvtrim::emu::launch(vote_kernel, dim3(1), dim3(n), 0, nullptr, false, out), cudaSuccess);
    for (unsigned t = 0; t < n; ++t) {
      const unsigned lane = t & 31;
      unsigned k = 0;
      unsigned ballot3 = 0;
      for (unsigned l = 0; l < 32; l += 3) ballot3 |= 1u << l;
      CHECK_EQ(out[k++ * n + t], ballot3);
      CHECK_EQ(out[k++ * n + t], 1u);
      CHECK_EQ(out[k++ * n + t], 0u);
      CHECK_EQ(out[k++ * n + t], 1u);
      CHECK_EQ(out[k++ * n + t], 0u);
      CHECK_EQ(out[k++ * n + t], 0xFu << (lane / 4 * 4));
      CHECK_EQ(out[k++ * n + t], (lane & 1) ? 0xAAAAAAAAu : 0x55555555u);
      CHECK_EQ(out[k++ * n + t], 528u);
      CHECK_EQ(out[k++ * n + t], 69u);
      CHECK_EQ(out[k++ * n + t], 11u);
      CHECK_EQ(out[k++ * n + t], unsigned(-20));
      CHECK_EQ(out[k++ * n + t], FULL);
      CHECK_EQ(out[k++ * n + t], 0u);
      CHECK_EQ(out[k++ * n + t], (lane & 1) ? 0u : 0x11111111u);
      CHECK_EQ(out[k++ * n + t], lane < 16 ? 120u : 376u);
      CHECK_EQ(out[k++ * n + t], FULL);
      CHECK_EQ(out[k++ * n + t], 1u);
      CHECK_EQ(out[k++ * n + t], 0u);
      CHECK_EQ(out[k++ * n + t], 0u);
    }
  }
  cudaFree(out);
}

// ---- block barriers ------------------------------------------------------------------------------
__global__ void barrier_kernel(int* out) {
  const int t = threadIdx.x;
  int* s = reinterpret_cast<int*>(KVTRIM_DYNAMIC_SMEM());
  s[t] = t * t;
  __syncthreads();
  out[t] = s[blockDim.x - 1 - t];  // needs the barrier
  out[blockDim.x + t] = __syncthreads_count(t % 5 == 0);
  out[2 * blockDim.x + t] = __syncthreads_or(t == 77);
  out[3 * blockDim.x + t] = __syncthreads_or(false);
  out[4 * blockDim.x + t] = __syncthreads_and(t >= 0);
  out[5 * blockDim.x + t] = __syncthreads_and(t != 3);
}

static void test_barriers() {
  const int n = 200;  // not a multiple of 32: a partial last warp
  int* out = dalloc<int>(6 * n);
  for (Schedule s : kSchedules) {
    for (uint64_t seed = 0; seed < (KVTRIM_EMU_TSAN ? 1 : 3); ++seed) {
      kvtrim::emu::set_schedule(s, seed);
      CHECK_EQ(kvtrim::emu::launch(barrier_kernel, dim3(1), dim3(n), n * sizeof(int), nullptr, false, out),
               cudaSuccess);
      for (int t = 0; t < n; ++t) {
        CHECK_EQ(out[t], (n - 1 - t) * (n - 1 - t));
        CHECK_EQ(out[n + t], 40);
        CHECK_EQ(out[2 * n + t], 1);
        CHECK_EQ(out[3 * n + t], 0);
        CHECK_EQ(out[4 * n + t], 1);
        CHECK_EQ(out[5 * n + t], 0);
      }
    }
  }
  cudaFree(out);
}

// ---- atomics -------------------------------------------------------------------------------------
struct AtomicCells {
  int add, sub, max, min, exch_seen, orv, andv;
  unsigned inc, uadd, cas_sum;
  unsigned long long ull;
  float fadd;
};
__global__ void atomic_kernel(AtomicCells* c) {
  const int g = int(blockIdx.x * blockDim.x + threadIdx.x);
  atomicAdd(&c->add, 2);
  atomicSub(&c->sub, 1);
  atomicMax(&c->max, g * 3 % 1001);
  atomicMin(&c->min, 5000 - g);
  const int old = atomicExch(&c->exch_seen, g);
  (void)old;
  atomicOr(&c->orv, 1 << (g % 31));
  atomicAnd(&c->andv, ~(1 << (g % 7)));
  atomicInc(&c->inc, 99u);  // wraps to 0 after 99
  atomicAdd(&c->uadd, 1u);
  unsigned cur = atomicOr(&c->cas_sum, 0u), seen;  // a plain read would race with the CAS
  do {
    seen = cur;
    cur = atomicCAS(&c->cas_sum, seen, seen + unsigned(g));
  } while (cur != seen);
  atomicAdd(&c->ull, 1ull << 33);
  atomicAdd(&c->fadd, 0.5f);
  __threadfence();
  __threadfence_block();
}

static void test_atomics() {
  AtomicCells* c = dalloc<AtomicCells>(1);
  const int blocks = 4, threads = 96, total = blocks * threads;
  for (Schedule s : kSchedules) {
    kvtrim::emu::set_schedule(s, 11);
    AtomicCells init{};
    init.min = 1 << 30;
    init.andv = -1;
    init.exch_seen = -1;
    cudaMemcpy(c, &init, sizeof init, cudaMemcpyHostToDevice);
    CHECK_EQ(kvtrim::emu::launch(atomic_kernel, dim3(blocks), dim3(threads), 0, nullptr, false, c),
             cudaSuccess);
    AtomicCells r;
    cudaMemcpy(&r, c, sizeof r, cudaMemcpyDeviceToHost);
    CHECK_EQ(r.add, 2 * total);
    CHECK_EQ(r.sub, -total);
    int mx = 0;
    for (int g = 0; g < total; ++g) mx = std::max(mx, g * 3 % 1001);
    CHECK_EQ(r.max, mx);
    CHECK_EQ(r.min, 5000 - (total - 1));
    CHECK(r.exch_seen >= 0 && r.exch_seen < total);
    CHECK_EQ(r.orv, 0x7FFFFFFF);
    CHECK_EQ(r.andv, ~0x7F);
    CHECK_EQ(r.inc, unsigned(total % 100));
    CHECK_EQ(r.uadd, unsigned(total));
    CHECK_EQ(r.cas_sum, unsigned(total * (total - 1) / 2));
    CHECK(r.ull == (unsigned long long)total << 33);
    CHECK(r.fadd == 0.5f * total);
  }
  cudaFree(c);
}

// ---- dynamic shared memory, grids, 3-D blocks --------------------------------------------------
__global__ void smem_kernel(int* bad, int* align_bad, unsigned bytes) {
  unsigned char* s = KVTRIM_DYNAMIC_SMEM();
  if (reinterpret_cast<uintptr_t>(s) % 16 != 0) atomicAdd(align_bad, 1);
  // every byte reads as the poison 0xFF before anyone writes it, in every block
  for (unsigned i = threadIdx.x; i < bytes; i += blockDim.x)
    if (s[i] != 0xFF) atomicAdd(bad, 1);
  __syncthreads();
  for (unsigned i = threadIdx.x; i < bytes; i += blockDim.x) s[i] = 0;
}

__global__ void grid3d_kernel(unsigned* out, uint4* dims) {
  const unsigned bx = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned tx = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const unsigned g = bx * (blockDim.x * blockDim.y * blockDim.z) + tx;
  atomicAdd(&out[g], 1u);
  if (g == 0) *dims = uint4{blockDim.x * 1000000 + blockDim.y * 1000 + blockDim.z,
                            gridDim.x * 1000000 + gridDim.y * 1000 + gridDim.z, 0, 0};
}

static void test_smem_and_grids() {
  int* bad = dalloc<int>(2);
  for (Schedule s : kSchedules) {
    kvtrim::emu::set_schedule(s, 5);
    cudaMemset(bad, 0, 2 * sizeof(int));
    CHECK_EQ(kvtrim::emu::launch(smem_kernel, dim3(5), dim3(64), 1000, nullptr, false, bad, bad + 1, 1000u),
             cudaSuccess);
    CHECK_EQ(bad[0], 0);
    CHECK_EQ(bad[1], 0);
  }
  const dim3 grid(3, 2, 2), block(4, 3, 5);
  const unsigned total = 12 * 60;
  unsigned* out = dalloc<unsigned>(total);
  uint4* dims = dalloc<uint4>(1);
  CHECK(alignof(uint4) == 16 && alignof(float4) == 16 && alignof(int4) == 16);
  for (Schedule s : kSchedules) {
    kvtrim::emu::set_schedule(s, 9);
    cudaMemset(out, 0, total * sizeof(unsigned));
    CHECK_EQ(kvtrim::emu::launch(grid3d_kernel, grid, block, 0, nullptr, false, out, dims), cudaSuccess);
    unsigned ok = 0;
    for (unsigned i = 0; i < total; ++i) ok += out[i] == 1;
    CHECK_EQ(ok, total);
    CHECK_EQ(dims->x, 4003005u);
    CHECK_EQ(dims->y, 3002002u);
  }
  cudaFree(out);
  cudaFree(dims);
  cudaFree(bad);
}

// ---- host runtime ---------------------------------------------------------------------------------
__global__ void noop_kernel(int* p) {
  if (p && threadIdx.x == 0) atomicExch(p, 1);  // every block's thread 0: an atomic, not a race
}

static void test_runtime() {
  int n = 0;
  CHECK_EQ(cudaGetDeviceCount(&n), cudaSuccess);
  CHECK_EQ(n, 1);
  int v = 0;
  CHECK_EQ(cudaDriverGetVersion(&v), cudaSuccess);
  CHECK_EQ(v, 13000);
  cudaDeviceProp p;
  CHECK_EQ(cudaGetDeviceProperties(&p, 0), cudaSuccess);
  CHECK(contains(p.name, "kvtrim emulated CUDA device"));
  CHECK_EQ(p.major, 9);
  CHECK_EQ(p.multiProcessorCount, 132);
  CHECK_EQ(p.sharedMemPerMultiprocessor, size_t(233472));
  CHECK_EQ(p.sharedMemPerBlockOptin, size_t(232448));
  CHECK_EQ(p.warpSize, 32);
  CHECK_EQ(warpSize, 32);
  CHECK_EQ(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
  CHECK_EQ(v, 132);
  CHECK_EQ(cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0), cudaSuccess);
  CHECK_EQ(v, 232448);
  CHECK_EQ(cudaDeviceGetAttribute(&v, cudaDevAttrCooperativeLaunch, 0), cudaSuccess);
  CHECK_EQ(v, 1);
  CHECK_EQ(cudaGetDevice(&v), cudaSuccess);
  CHECK_EQ(cudaSetDevice(1), cudaErrorInvalidDevice);
  CHECK_EQ(cudaGetLastError(), cudaErrorInvalidDevice);
  CHECK_EQ(cudaGetLastError(), cudaSuccess);

  // occupancy: 2048 threads / SM, 32 blocks / SM, shared memory minus 1 KiB per block
  CHECK_EQ(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&v, noop_kernel, 256, 0), cudaSuccess);
  CHECK_EQ(v, 8);
  cudaOccupancyMaxActiveBlocksPerMultiprocessor(&v, noop_kernel, 32, 0);
  CHECK_EQ(v, 32);
  cudaOccupancyMaxActiveBlocksPerMultiprocessor(&v, noop_kernel, 256, 100 * 1024);
  CHECK_EQ(v, 2);
  cudaOccupancyMaxActiveBlocksPerMultiprocessor(&v, noop_kernel, 1024, 232448);
  CHECK_EQ(v, 1);

  // memcpy / memset / bounds
  unsigned char* d = nullptr;
  CHECK_EQ(cudaMalloc(&d, 100), cudaSuccess);
  CHECK(reinterpret_cast<uintptr_t>(d) % 256 == 0);
  CHECK_EQ(cudaMemset(d, 0xAB, 100), cudaSuccess);
  unsigned char h[100];
  CHECK_EQ(cudaMemcpy(h, d, 100, cudaMemcpyDeviceToHost), cudaSuccess);
  CHECK(h[0] == 0xAB && h[99] == 0xAB);
  for (int i = 0; i < 100; ++i) h[i] = (unsigned char)i;
  cudaStream_t st;
  CHECK_EQ(cudaStreamCreate(&st), cudaSuccess);
  CHECK_EQ(cudaMemcpyAsync(d, h, 100, cudaMemcpyHostToDevice, st), cudaSuccess);
  CHECK_EQ(cudaMemsetAsync(d + 50, 0, 10, st), cudaSuccess);
  CHECK_EQ(cudaStreamSynchronize(st), cudaSuccess);
  CHECK(d[49] == 49 && d[50] == 0 && d[59] == 0 && d[60] == 60);
  CHECK_EQ(cudaMemcpy(h, d + 90, 20, cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
  CHECK(contains(kvtrim::emu::last_error_message(), "not inside one cudaMalloc allocation"));
  CHECK_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  CHECK_EQ(cudaFree(h), cudaErrorInvalidValue);
  cudaGetLastError();

  // events measure host wall time around a launch
  cudaEvent_t a, b;
  CHECK_EQ(cudaEventCreate(&a), cudaSuccess);
  CHECK_EQ(cudaEventCreate(&b), cudaSuccess);
  CHECK_EQ(cudaEventRecord(a, st), cudaSuccess);
  int* flag = dalloc<int>(1);
  CHECK_EQ(kvtrim::emu::launch(noop_kernel, dim3(2), dim3(32), 0, st, false, flag), cudaSuccess);
  CHECK_EQ(*flag, 1);
  CHECK_EQ(cudaEventRecord(b, st), cudaSuccess);
  CHECK_EQ(cudaEventSynchronize(b), cudaSuccess);
  float ms = -1;
  CHECK_EQ(cudaEventElapsedTime(&ms, a, b), cudaSuccess);
  CHECK(ms >= 0 && ms < 10000);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  cudaStreamDestroy(st);
  cudaFree(flag);
  CHECK_EQ(cudaFree(d), cudaSuccess);

  // settable device: SMs and shared memory per SM
  kvtrim::emu::set_sm_count(4);
  kvtrim::emu::set_smem_per_sm(100 * 1024);
  CHECK_EQ(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
  CHECK_EQ(v, 4);
  CHECK_EQ(cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0), cudaSuccess);
  CHECK_EQ(v, 99 * 1024);
  kvtrim::emu::reset_device_properties();
  CHECK_EQ(kvtrim::emu::device_properties().multiProcessorCount, 132);

  // float intrinsics: exact, separately rounded
  const float x = 1.0f + 0x1p-23f, y = 1.0f - 0x1p-24f;
  CHECK(__fmul_rn(x, y) == x * y);
  CHECK(__fadd_rn(__fmul_rn(x, x), -1.0f) == (x * x) - 1.0f);
  CHECK(__fsqrt_rn(2.0f) == std::sqrt(2.0f));
  CHECK_EQ(__float_as_uint(1.0f), 0x3F800000u);
  CHECK(__uint_as_float(0x40000000u) == 2.0f);
  CHECK_EQ(__float_as_int(-0.0f), int(0x80000000u));
  CHECK(__int_as_float(0x3F800000) == 1.0f);
  CHECK_EQ(__popc(0xF0F0u), 8);
  CHECK_EQ(__popcll(~0ull), 64);
  CHECK_EQ(__clz(1), 31);
  CHECK_EQ(__clz(0), 32);
  CHECK_EQ(__clzll(1), 63);
  CHECK_EQ(__ffs(0), 0);
  CHECK_EQ(__ffs(8), 4);
  CHECK_EQ(__ffsll(1ll << 40), 41);
  CHECK_EQ(__brev(1u), 0x80000000u);
  CHECK_EQ(__umulhi(0x80000000u, 4u), 2u);
}

// ---- error detection -----------------------------------------------------------------------------
__global__ void skip_barrier_kernel(int* out) {
  if (threadIdx.x != 5) __syncthreads();  // thread 5 skips the barrier and exits
  out[threadIdx.x] = 1;
}
__global__ void two_barriers_kernel(int* out) {
  if (threadIdx.x < 32) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}
__global__ void mismatched_collective_kernel(int* out) {
  const int lane = threadIdx.x & 31;
  int r;
  if (lane < 16)
    r = __shfl_xor_sync(FULL, lane, 1);
  else
    r = __shfl_xor_sync(FULL, lane, 2);
  out[threadIdx.x] = r;
}
__global__ void exited_lane_kernel(int* out) {
  if ((threadIdx.x & 31) == 7) return;
  out[threadIdx.x] = __reduce_add_sync(FULL, 1u);
}
__global__ void per_lane_mask_kernel(int* out) {  // lanes disagree on the mask of one shuffle
  const unsigned m = (threadIdx.x & 31) < 16 ? 0xFFFFu : FULL;
  out[threadIdx.x] = __shfl_sync(m, int(threadIdx.x), 0);
}
__global__ void bad_mask_kernel(int* out) {
  out[threadIdx.x] = int(__ballot_sync(0x1u, true));  // lanes 1..31 are not in the mask
}
__global__ void wait_for_last_block_kernel(int* flag) {
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    while (atomicAdd(flag, 0) == 0) KVTRIM_SPIN_WAIT();
  }
  if (blockIdx.x == gridDim.x - 1 && threadIdx.x == 0) atomicExch(flag, 1);
}
__global__ void wait_for_block_kernel(int* flag) {  // legal: block 0 waits for block 5, resident
  if (blockIdx.x == 0) {
    while (atomicAdd(flag, 0) == 0) KVTRIM_SPIN_WAIT();
  }
  __syncthreads();
  if (blockIdx.x == 5 && threadIdx.x == 3) atomicExch(flag, 1);
}
// A cooperative grid barrier through atomics: every block must be co-resident.
__global__ void grid_barrier_kernel(unsigned* counter, unsigned* out) {
  __syncthreads();
  if (threadIdx.x == 0) {
    atomicAdd(counter, 1u);
    while (atomicAdd(counter, 0u) < gridDim.x) KVTRIM_SPIN_WAIT();
  }
  __syncthreads();
  out[blockIdx.x * blockDim.x + threadIdx.x] = atomicAdd(counter, 0u);  // not a plain read: a race
}
__global__ void smem_user_kernel(int* out) {
  unsigned char* s = KVTRIM_DYNAMIC_SMEM();
  s[threadIdx.x] = 1;
  out[threadIdx.x] = s[threadIdx.x];
}

static void expect_error(const char* what, cudaError_t got, cudaError_t want,
                         std::initializer_list<const char*> needles) {
  const char* msg = kvtrim::emu::last_error_message();
  std::printf("  %-22s -> %s: %s\n", what, cudaGetErrorName(got), msg);
  CHECK_EQ(got, want);
  for (const char* n : needles) {
    ++g_checks;
    if (!contains(msg, n)) {
      ++g_failures;
      std::fprintf(stderr, "FAIL: %s: message lacks \"%s\"\n", what, n);
    }
  }
  CHECK_EQ(cudaGetLastError(), want);
  CHECK_EQ(cudaGetLastError(), cudaSuccess);
}

static void test_grid_barrier();
[[maybe_unused]] static void test_errors() {
  int* out = dalloc<int>(1024);
  for (Schedule s : kSchedules) {
    kvtrim::emu::set_schedule(s, 1);
    std::printf("errors under %s:\n", kvtrim::emu::schedule_name(s));
    cudaError_t e = kvtrim::emu::launch(skip_barrier_kernel, dim3(2), dim3(64), 0, nullptr, false, out);
    expect_error("skipped __syncthreads", e, cudaErrorLaunchFailure,
                 {"deadlock", "block (", "(5,0,0)", "__syncthreads", "selftest.cc:"});
    e = kvtrim::emu::launch(two_barriers_kernel, dim3(1), dim3(64), 0, nullptr, false, out);
    expect_error("barriers on two lines", e, cudaErrorLaunchFailure,
                 {"divergent __syncthreads", "block (0,0,0)", "thread (", "selftest.cc:"});
    e = kvtrim::emu::launch(mismatched_collective_kernel, dim3(1), dim3(32), 0, nullptr, false, out);
    expect_error("mismatched collective", e, cudaErrorLaunchFailure,
                 {"mismatched warp collective", "block (0,0,0)", "warp 0", "__shfl_xor_sync"});
    e = kvtrim::emu::launch(exited_lane_kernel, dim3(1), dim3(64), 0, nullptr, false, out);
    expect_error("lane exited", e, cudaErrorLaunchFailure,
                 {"mismatched warp collective", "lane", "__reduce_add_sync"});
    e = kvtrim::emu::launch(per_lane_mask_kernel, dim3(1), dim3(32), 0, nullptr, false, out);
    expect_error("masks disagree", e, cudaErrorLaunchFailure,
                 {"mismatched warp collective", "__shfl_sync", "selftest.cc:"});
    e = kvtrim::emu::launch(bad_mask_kernel, dim3(1), dim3(32), 0, nullptr, false, out);
    expect_error("mask without self", e, cudaErrorLaunchFailure,
                 {"does not include its own lane", "__ballot_sync"});
  }
  // a launch after errors works, and no stacks leaked: the pool is reused
  kvtrim::emu::set_schedule(Schedule::Random, 2);
  const uint64_t stacks_before = kvtrim::emu::stats().stacks;
  for (int i = 0; i < 3; ++i) {
    CHECK_EQ(kvtrim::emu::launch(skip_barrier_kernel, dim3(2), dim3(64), 0, nullptr, false, out),
             cudaErrorLaunchFailure);
    CHECK_EQ(kvtrim::emu::launch(noop_kernel, dim3(3), dim3(64), 0, nullptr, false, out), cudaSuccess);
  }
#if !KVTRIM_EMU_TSAN  // under TSan stacks are never reused
  CHECK_EQ(kvtrim::emu::stats().stacks, stacks_before);
#else
  (void)stacks_before;
#endif
  cudaGetLastError();

  // livelock: block 0 waits for the last block of a 100000-block non-cooperative grid, which is
  // never resident while block 0 runs
  int* flag = dalloc<int>(1);
#if KVTRIM_EMU_TSAN
  // The same detection at a TSan size (each TSan fiber costs ~0.8 MiB to create): one SM, so
  // 40 blocks are enough to leave the last one not resident, and a shorter spin limit.
  kvtrim::emu::set_spin_limit(5000);
  kvtrim::emu::set_sm_count(1);
  const unsigned livelock_blocks = 40;
#else
  const unsigned livelock_blocks = 100000;
#endif
  for (Schedule s : kSchedules) {
    kvtrim::emu::set_schedule(s, 4);
    *flag = 0;
    const auto t0 = std::chrono::steady_clock::now();
    const cudaError_t e =
        kvtrim::emu::launch(wait_for_last_block_kernel, dim3(livelock_blocks), dim3(32), 0, nullptr, false, flag);
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("livelock under %s (%.2f s):\n", kvtrim::emu::schedule_name(s), sec);
    expect_error("livelock", e, cudaErrorLaunchFailure,
                 {"livelock", "block (0,0,0)", "thread (0,0,0)", "selftest.cc:", "not resident"});
    // waiting for a resident block is fine
    *flag = 0;
    CHECK_EQ(kvtrim::emu::launch(wait_for_block_kernel, dim3(8), dim3(64), 0, nullptr, false, flag),
             cudaSuccess);
  }
  cudaFree(flag);
  kvtrim::emu::set_spin_limit(1000000);
  kvtrim::emu::reset_device_properties();

  // shared memory over the limit; the opt-in attribute raises it
  std::printf("launch checks:\n");
  cudaError_t e = kvtrim::emu::launch(smem_user_kernel, dim3(1), dim3(32), 64 * 1024, nullptr, false, out);
  expect_error("smem over the limit", e, cudaErrorInvalidValue, {"shared memory over the limit", "65536"});
  CHECK_EQ(cudaFuncSetAttribute(smem_user_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024),
           cudaSuccess);
  CHECK_EQ(kvtrim::emu::launch(smem_user_kernel, dim3(1), dim3(32), 64 * 1024, nullptr, false, out), cudaSuccess);
  CHECK_EQ(cudaFuncSetAttribute(smem_user_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 232449),
           cudaErrorInvalidValue);
  cudaGetLastError();
  e = kvtrim::emu::launch(smem_user_kernel, dim3(1), dim3(2048), 0, nullptr, false, out);
  expect_error("block too large", e, cudaErrorInvalidConfiguration, {"invalid configuration"});

  test_grid_barrier();
  cudaFree(out);
}

// Cooperative: a grid barrier works with all blocks co-resident; one block more is too large.
static void test_grid_barrier() {
  const unsigned sms = KVTRIM_EMU_TSAN ? 1 : 3, nb = sms * 8;  // 8 blocks of 256 per SM
  kvtrim::emu::set_sm_count(int(sms));
  unsigned* counter = dalloc<unsigned>(1);
  unsigned* cout_ = dalloc<unsigned>(24 * 256);
  for (Schedule s : kSchedules) {
    kvtrim::emu::set_schedule(s, 6);
    *counter = 0;
    CHECK_EQ(kvtrim::emu::launch(grid_barrier_kernel, dim3(nb), dim3(256), 0, nullptr, true, counter, cout_),
             cudaSuccess);  // 3 SMs x 8 blocks of 256
    CHECK_EQ(cout_[0], nb);
    CHECK_EQ(cout_[nb * 256 - 1], nb);
  }
  const cudaError_t e = kvtrim::emu::launch(grid_barrier_kernel, dim3(nb + 1), dim3(256), 0, nullptr, true, counter, cout_);
  expect_error("cooperative too large", e, cudaErrorCooperativeLaunchTooLarge, {"cooperative", std::to_string(nb + 1).c_str()});
  kvtrim::emu::reset_device_properties();
  cudaFree(counter);
  cudaFree(cout_);
}

// ---- races the schedules expose --------------------------------------------------------------------
// Race 1: the shared histogram is cleared, but without the __syncthreads after the clear, threads
// add to bins that their owners have not cleared yet (and then clear away).
__global__ void racy_histogram_kernel(const unsigned char* data, unsigned* hist_out) {
  unsigned* hist = reinterpret_cast<unsigned*>(KVTRIM_DYNAMIC_SMEM());
  const unsigned t = threadIdx.x;
  hist[t] = 0;
  // BUG: __syncthreads() missing here
  for (unsigned i = 0; i < 4; ++i) atomicAdd(&hist[data[4 * t + i]], 1u);
  __syncthreads();
  hist_out[t] = hist[t];
}
// Race 2: thread 0 writes a count to shared memory, the other threads read it after their warp's
// reduction, with no barrier in between.
__global__ void racy_count_kernel(const float* in, unsigned n, float* out) {
  unsigned* count = reinterpret_cast<unsigned*>(KVTRIM_DYNAMIC_SMEM());
  const unsigned t = threadIdx.x;
  if (t == 0) *count = n;
  // BUG: __syncthreads() missing here
  float v = in[t];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL, v, o);
  out[t] = v * float(*count);
}

static void test_races() {
  const unsigned T = 256;
  unsigned char* data = dalloc<unsigned char>(4 * T);
  unsigned* hist = dalloc<unsigned>(T);
  unsigned want_hist[256] = {};
  uint64_t r = 12345;
  for (unsigned i = 0; i < 4 * T; ++i) {
    r = r * 6364136223846793005ull + 1442695040888963407ull;
    data[i] = (unsigned char)(r >> 56);
    ++want_hist[data[i]];
  }
  float* in = dalloc<float>(T);
  float* out = dalloc<float>(T);
  for (unsigned i = 0; i < T; ++i) in[i] = float(i % 7);
  std::printf("races caught (wrong result) out of 20 seeds:\n");
  int caught1[3] = {}, caught2[3] = {};
  for (int si = 0; si < 3; ++si) {
    for (uint64_t seed = 0; seed < (KVTRIM_EMU_TSAN ? 1 : 20); ++seed) {  // TSan: one is enough
      kvtrim::emu::set_schedule(kSchedules[si], seed);
      CHECK_EQ(kvtrim::emu::launch(racy_histogram_kernel, dim3(1), dim3(T), T * 4, nullptr, false, data, hist),
               cudaSuccess);
      caught1[si] += std::memcmp(hist, want_hist, sizeof want_hist) != 0;
      CHECK_EQ(kvtrim::emu::launch(racy_count_kernel, dim3(1), dim3(T), 4, nullptr, false, in, 3u, out),
               cudaSuccess);
      bool wrong = false;
      for (unsigned t = 0; t < T; ++t) {
        float s = 0;
        for (unsigned l = 0; l < 32; ++l) s += in[(t & ~31u) + l];
        if (out[t] != s * 3.0f) wrong = true;
      }
      caught2[si] += wrong;
    }
    std::printf("  %-13s histogram cleared without a barrier: %2d/20   count written by thread 0 "
                "without a barrier: %2d/20\n",
                kvtrim::emu::schedule_name(kSchedules[si]), caught1[si], caught2[si]);
  }
  // What this shows (measured; see the report printed above):
  // - Race 1 (unsynchronised clear + atomics) is caught by every schedule: even the deterministic
  //   one runs thread 0's atomics before later threads clear their bins.
  // - Race 2 (thread 0 writes, the others read after a warp reduction) is hidden by the
  //   deterministic schedule (thread 0 runs first) and almost always by the random one (thread 0
  //   gets its single step in long before a whole warp finishes five shuffle rounds); the
  //   priority schedule lets one warp run far ahead and catches it whenever that warp is not
  //   thread 0's (about 7 seeds in 8).
#if !KVTRIM_EMU_TSAN
  CHECK(caught1[2] >= 11);
  CHECK(caught2[2] >= 11);
#endif
  cudaFree(data);
  cudaFree(hist);
  cudaFree(in);
  cudaFree(out);
}

// ---- schedule independence and speed ---------------------------------------------------------------
// A correct kernel: block-wide inclusive scan (warp shuffles + shared memory + barriers), repeated.
__global__ void scan_kernel(const unsigned* in, unsigned* out, int rounds) {
  unsigned* warp_sums = reinterpret_cast<unsigned*>(KVTRIM_DYNAMIC_SMEM());
  const unsigned t = threadIdx.x, lane = t & 31, warp = t >> 5, nwarps = blockDim.x >> 5;
  const unsigned base = blockIdx.x * blockDim.x;
  unsigned acc = 0;
  for (int r = 0; r < rounds; ++r) {
    unsigned x = in[base + t] + unsigned(r);
    for (unsigned d = 1; d < 32; d <<= 1) {
      const unsigned y = __shfl_up_sync(FULL, x, d);
      if (lane >= d) x += y;
    }
    if (lane == 31) warp_sums[warp] = x;
    __syncthreads();
    if (warp == 0) {
      unsigned w = lane < nwarps ? warp_sums[lane] : 0;
      for (unsigned d = 1; d < 32; d <<= 1) {
        const unsigned y = __shfl_up_sync(FULL, w, d);
        if (lane >= d) w += y;
      }
      if (lane < nwarps) warp_sums[lane] = w;
    }
    __syncthreads();
    if (warp > 0) x += warp_sums[warp - 1];
    acc += x;
    __syncthreads();
  }
  out[base + t] = acc;
}

static void test_scan_and_speed() {
  const unsigned T = 256, B = 4;
  const int rounds = 10;
  unsigned* in = dalloc<unsigned>(T * B);
  unsigned* out = dalloc<unsigned>(T * B);
  std::vector<unsigned> want(T * B);
  for (unsigned i = 0; i < T * B; ++i) in[i] = (i * 2654435761u) >> 28;
  for (unsigned b = 0; b < B; ++b)
    for (unsigned t = 0; t < T; ++t) {
      unsigned acc = 0;
      for (int r = 0; r < rounds; ++r) {
        unsigned pre = 0;
        for (unsigned k = 0; k <= t; ++k) pre += in[b * T + k] + unsigned(r);
        acc += pre;
      }
      want[b * T + t] = acc;
    }
  for (Schedule s : kSchedules)
    for (uint64_t seed = 0; seed < (KVTRIM_EMU_TSAN ? 1 : 4); ++seed) {
      kvtrim::emu::set_schedule(s, seed);
      cudaMemset(out, 0, T * B * sizeof(unsigned));
      CHECK_EQ(kvtrim::emu::launch(scan_kernel, dim3(B), dim3(T), 32 * sizeof(unsigned), nullptr, false, in, out,
                                   rounds),
               cudaSuccess);
      CHECK(std::memcmp(out, want.data(), T * B * sizeof(unsigned)) == 0);
    }
#if defined(__SANITIZE_ADDRESS__) || KVTRIM_EMU_TSAN
  const int speed_rounds = 10;  // sanitizer builds: a smoke run, not a measurement
#else
  const int speed_rounds = 100;
#endif
#if KVTRIM_EMU_TSAN
  return;  // no speed run under TSan
#endif
  std::printf("speed (scan kernel, %u blocks x %u threads, %d rounds of 5+5 shuffles and 3 barriers):\n",
              B * 8, T, speed_rounds);
  for (Schedule s : kSchedules) {
    kvtrim::emu::set_schedule(s, 1);
    unsigned* in2 = dalloc<unsigned>(T * B * 8);
    unsigned* out2 = dalloc<unsigned>(T * B * 8);
    const auto st0 = kvtrim::emu::stats();
    const auto t0 = std::chrono::steady_clock::now();
    CHECK_EQ(kvtrim::emu::launch(scan_kernel, dim3(B * 8), dim3(T), 32 * sizeof(unsigned), nullptr, false, in2,
                                 out2, speed_rounds),
             cudaSuccess);
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto st1 = kvtrim::emu::stats();
    const double sw = double(st1.switches - st0.switches);
    std::printf("  %-13s %.0f switches in %.3f s: %.1f M switches/s\n",
                kvtrim::emu::schedule_name(s), sw, sec, sw / sec / 1e6);
    cudaFree(in2);
    cudaFree(out2);
  }
  cudaFree(in);
  cudaFree(out);
}


// ---- the race zoo: classic GPU bugs, each with its fixed twin ---------------------------------
// scripts/emu-selftest.sh runs each one in a process of its own under the TSan build
// (`selftest-tsan --zoo NAME` and `--zoo NAME-fixed`) and requires a ThreadSanitizer report for
// every bug and none for every twin. `fixed` is uniform, so barriers stay convergent.

// 1. A shared write read by another thread without __syncthreads in between.
__global__ void zoo_missing_sync(int* out, bool fixed) {
  int* s = reinterpret_cast<int*>(KVTRIM_DYNAMIC_SMEM());
  const int t = int(threadIdx.x), n = int(blockDim.x);
  s[t] = t * 3;
  if (fixed) __syncthreads();
  out[t] = s[n - 1 - t];
}
// 2. Shared memory reused across loop iterations without the trailing barrier: the next
//    iteration's write overtakes a neighbour's read of the previous one (write after read).
__global__ void zoo_smem_reuse(const int* in, int* out, int iters, bool fixed) {
  int* s = reinterpret_cast<int*>(KVTRIM_DYNAMIC_SMEM());
  const int t = int(threadIdx.x), n = int(blockDim.x);
  int acc = 0;
  for (int i = 0; i < iters; ++i) {
    s[t] = in[i * n + t];
    __syncthreads();
    acc += s[(t + 1) % n];
    if (fixed) __syncthreads();
  }
  out[t] = acc;
}
// 3. Warp-synchronous shared access: lanes exchange data through shared memory after a vote,
//    which orders nothing; __syncwarp does.
__global__ void zoo_warp_sync(int* out, bool fixed) {
  int* s = reinterpret_cast<int*>(KVTRIM_DYNAMIC_SMEM());
  const int t = int(threadIdx.x), lane = t & 31;
  s[t] = t + 1;
  if (fixed) __syncwarp();
  else (void)__ballot_sync(FULL, s[t] > 0);
  out[t] = s[(t & ~31) | ((lane + 1) & 31)];
}
// 4. A global flag handshake between blocks: block 0 writes data and raises a flag (atomic),
//    block 1 waits for the flag and reads the data. Without __threadfence on both sides the
//    data is not ordered by the flag (CUDA atomics are relaxed). Variants drop one fence each.
__global__ void zoo_flag(int* data, int* flag, int* out, int fences /* bit 0 writer, bit 1 reader */) {
  if (threadIdx.x != 0) return;
  if (blockIdx.x == 0) {
    for (int i = 0; i < 8; ++i) data[i] = 10 + i;
    if (fences & 1) __threadfence();
    atomicExch(flag, 1);
  } else {
    while (atomicAdd(flag, 0) == 0) KVTRIM_SPIN_WAIT();
    if (fences & 2) __threadfence();
    int sum = 0;
    for (int i = 0; i < 8; ++i) sum += data[i];
    *out = sum;
  }
}
// 5. In-place compaction split over blocks: each block moves the kept (even) elements of its
//    slice to slot i / 2, which for block 1 lies in block 0's slice, possibly before block 0 has
//    read it. Fixed: every block loads, a grid barrier (fence, arrive, wait, fence), then stores.
__device__ void zoo_grid_barrier(unsigned* counter) {
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    atomicAdd(counter, 1u);
    while (atomicAdd(counter, 0u) < gridDim.x) KVTRIM_SPIN_WAIT();
    __threadfence();
  }
  __syncthreads();
}
__global__ void zoo_inplace(int* row, unsigned* counter, bool fixed) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  const int v = row[i];
  if (fixed) zoo_grid_barrier(counter);
  if (i % 2 == 0) row[i / 2] = v;
}
// 6. A shared histogram updated with a plain += (a read-modify-write race the plain emulator
//    cannot see: no fiber switch between the load and the store). Fixed: atomicAdd.
__global__ void zoo_histogram(const unsigned char* data, unsigned* out, bool fixed) {
  unsigned* hist = reinterpret_cast<unsigned*>(KVTRIM_DYNAMIC_SMEM());
  const unsigned t = threadIdx.x;
  if (t < 16) hist[t] = 0;
  __syncthreads();
  const unsigned bin = data[t] & 15u;
  if (fixed) atomicAdd(&hist[bin], 1u);
  else hist[bin] += 1;
  __syncthreads();
  if (t < 16) out[t] = hist[t];
}

static const char* const kZoo[] = {"missing-sync", "smem-reuse", "warp-sync", "flag-no-fences",
                                   "flag-no-release", "flag-no-acquire", "inplace-overtake",
                                   "histogram-plain"};

// Runs zoo kernel `name` (or its twin, "NAME-fixed") under every schedule; returns 2 if unknown.
static int run_zoo(const char* arg) {
  std::string name = arg;
  const bool fixed = name.size() > 6 && name.compare(name.size() - 6, 6, "-fixed") == 0;
  if (fixed) name.resize(name.size() - 6);
  const int T = 128;
  int* out = dalloc<int>(1024);
  int* in = dalloc<int>(8 * T);
  int* data = dalloc<int>(8);
  int* flag = dalloc<int>(1);
  unsigned* counter = dalloc<unsigned>(1);
  int* row = dalloc<int>(2 * T);
  unsigned char* bytes = dalloc<unsigned char>(T);
  for (int i = 0; i < 8 * T; ++i) in[i] = i % 13;
  for (int i = 0; i < T; ++i) bytes[i] = (unsigned char)(i * 7);
  int known = 1;
  for (Schedule sc : kSchedules) {
    kvtrim::emu::set_schedule(sc, 3);
    cudaError_t e = cudaSuccess;
    if (name == "missing-sync") {
      e = kvtrim::emu::launch(zoo_missing_sync, dim3(1), dim3(T), T * 4, nullptr, false, out, fixed);
    } else if (name == "smem-reuse") {
      e = kvtrim::emu::launch(zoo_smem_reuse, dim3(1), dim3(T), T * 4, nullptr, false,
                              static_cast<const int*>(in), out, 8, fixed);
    } else if (name == "warp-sync") {
      e = kvtrim::emu::launch(zoo_warp_sync, dim3(1), dim3(64), 64 * 4, nullptr, false, out, fixed);
    } else if (name.compare(0, 5, "flag-") == 0) {
      const int fences = fixed ? 3 : name == "flag-no-release" ? 2 : name == "flag-no-acquire" ? 1 : 0;
      *flag = 0;
      e = kvtrim::emu::launch(zoo_flag, dim3(2), dim3(32), 0, nullptr, true, data, flag, out, fences);
      CHECK_EQ(*out, 8 * 10 + 28);
    } else if (name == "inplace-overtake") {
      for (int i = 0; i < 2 * T; ++i) row[i] = i;
      *counter = 0;
      e = kvtrim::emu::launch(zoo_inplace, dim3(2), dim3(T), 0, nullptr, true, row, counter, fixed);
      if (fixed)
        for (int i = 0; i < T; ++i) CHECK_EQ(row[i], 2 * i);
    } else if (name == "histogram-plain") {
      e = kvtrim::emu::launch(zoo_histogram, dim3(1), dim3(T), 16 * 4, nullptr, false,
                              static_cast<const unsigned char*>(bytes), reinterpret_cast<unsigned*>(out), fixed);
      if (fixed)
        for (int b = 0; b < 16; ++b) CHECK_EQ(out[b], T / 16);
    } else {
      known = 0;
      break;
    }
    CHECK_EQ(e, cudaSuccess);
  }
  cudaFree(out);
  cudaFree(in);
  cudaFree(data);
  cudaFree(flag);
  cudaFree(counter);
  cudaFree(row);
  cudaFree(bytes);
  if (!known) {
    std::fprintf(stderr, "unknown zoo kernel %s; known:", arg);
    for (const char* z : kZoo) std::fprintf(stderr, " %s", z);
    std::fprintf(stderr, "\n");
    return 2;
  }
  std::printf("zoo %s%s: ran under every schedule\n", name.c_str(), fixed ? " (fixed)" : "");
  return g_failures ? 1 : 0;
}

// Crash modes for the sanitizer build (scripts/emu-selftest.sh expects them to be caught).
__global__ void smem_overflow_kernel(int* out) {
  unsigned char* s = KVTRIM_DYNAMIC_SMEM();
  s[threadIdx.x + 1] = 1;  // the last thread writes one byte past the 64-byte buffer
  out[threadIdx.x] = s[threadIdx.x];
}
__global__ void misaligned_kernel(const unsigned char* p, unsigned* out) {
  const uint4 v = *reinterpret_cast<const uint4*>(p + 4 * threadIdx.x);  // 4-byte aligned only
  out[threadIdx.x] = v.x;
}

int main(int argc, char** argv) {
  if (argc > 2 && !std::strcmp(argv[1], "--zoo")) return run_zoo(argv[2]);
  if (argc > 1 && !std::strcmp(argv[1], "--zoo-list")) {
    for (const char* z : kZoo) std::printf("%s\n", z);
    return 0;
  }
  if (argc > 1 && !std::strcmp(argv[1], "--races")) {  // the intentionally racy kernels alone
    test_races();
    return g_failures ? 1 : 0;
  }
  if (argc > 1) {
    int* out = dalloc<int>(1024);
    if (!std::strcmp(argv[1], "--smem-overflow"))
      kvtrim::emu::launch(smem_overflow_kernel, dim3(1), dim3(64), 64, nullptr, false, out);
    else if (!std::strcmp(argv[1], "--misaligned-uint4"))
      kvtrim::emu::launch(misaligned_kernel, dim3(1), dim3(32), 0, nullptr, false,
                          reinterpret_cast<const unsigned char*>(out), reinterpret_cast<unsigned*>(out + 512));
    std::printf("%s: not caught\n", argv[1]);
    return 0;
  }
  std::printf("kvtrim emulator self-test (stack %zu bytes per fiber)\n", kvtrim::emu::stack_size());
  test_runtime();
#if !KVTRIM_EMU_TSAN  // collectives' values: no shared memory to race on, and slow under TSan
  test_shuffles();
  test_votes();
#endif
  test_barriers();
  test_atomics();
  test_smem_and_grids();
#if KVTRIM_EMU_TSAN
  // Under TSan: the error paths (abandoned fibers) are not what is under test, and the livelock
  // run creates tens of thousands of fibers; the co-resident grid barrier is.
  test_grid_barrier();
#else
  test_errors();
#endif
#if !KVTRIM_EMU_TSAN  // racy on purpose: under TSan they run alone (--races), and must be reported
  test_races();
#endif
  test_scan_and_speed();
  std::printf("%d checks, %d failures; %llu stacks mapped in all\n", g_checks, g_failures,
              (unsigned long long)kvtrim::emu::stats().stacks);
  return g_failures ? 1 : 0;
}
