// Host launchers of the CUDA backend: validate against device limits, size scratch, choose the
// launch geometry (one function, with a KVTRIM_SPLIT override for tests and benchmarks), launch
// through launch.h, and turn every CUDA error into a Status with CUDA's message.
#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/compress.cuh"
#include "launch.h"
#include "ops.h"

namespace kvtrim::cuda {

namespace {

Status cuda_status(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return Status::success();
  std::string msg = std::string(what) + " failed: " + cudaGetErrorString(e) + " (" + cudaGetErrorName(e) + ")";
#if KVTRIM_EMULATED
  const std::string emu = ::kvtrim::emu::last_error_message();
  if (!emu.empty()) msg += ": " + emu;
#endif
  cudaGetLastError();  // clear a sticky launch error
  return Status::error(e == cudaErrorMemoryAllocation ? Code::OutOfMemory : Code::CudaError, msg);
}

#define KVTRIM_CUDA_TRY(call)                           \
  do {                                                  \
    const Status s_ = cuda_status((call), #call);       \
    if (!s_.ok()) return s_;                            \
  } while (0)

cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

int pow2_at_least(int64_t n) {
  int p = 1;
  while (p < n) p <<= 1;
  return p;
}

NormGeometry norm_geometry(int64_t head_dim, int esz, const void* base) {
  NormGeometry g;
  g.head_dim = int(head_dim);
  g.chunks = int((head_dim + 7) / 8);
  const int p2 = pow2_at_least(g.chunks);
  g.lanes = std::min(32, p2);
  g.local = p2 / g.lanes;
  g.vec = (head_dim % 8 == 0) && (reinterpret_cast<uintptr_t>(base) % 16 == 0) ? 1 : 0;
  (void)esz;
  return g;
}

// Scratch device memory, one growing buffer per device, held for the duration of one op.
struct Scratch {
  std::mutex mu;
  void* ptr = nullptr;
  size_t bytes = 0;
};
Scratch& scratch_for(int device) {
  static Scratch pool[64];
  return pool[device & 63];
}

size_t align_up(size_t n) { return (n + 255) & ~size_t(255); }

template <class F>
Status with_device(int device, F&& f) {
  int prev = 0;
  KVTRIM_CUDA_TRY(cudaGetDevice(&prev));
  if (prev != device) KVTRIM_CUDA_TRY(cudaSetDevice(device));
  Status s = f();
  if (prev != device) cudaSetDevice(prev);
  return s;
}

template <int KIND, int UNIT>
void* compress_fn() {
  return reinterpret_cast<void*>(&compress_kernel<KIND, UNIT>);
}

// Occupancy-aware split of rows over blocks: the one place this is decided.
struct Choice {
  int split;
  int resident;
  int sms;
  bool cooperative;
};

template <int KIND, int UNIT>
Status choose_geometry(const CompressJob& job, size_t smem, Choice* c) {
  int dev = 0, sms = 0, coop = 0, blocks_per_sm = 0;
  KVTRIM_CUDA_TRY(cudaGetDevice(&dev));
  KVTRIM_CUDA_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  KVTRIM_CUDA_TRY(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev));
  KVTRIM_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks_per_sm, &compress_kernel<KIND, UNIT>,
                                                                kCompressThreads, smem));
  const int64_t rows = job.shape.batch * job.shape.heads;
  const int resident = std::max(1, sms * blocks_per_sm);
  int64_t longest = 0;
  for (int64_t l : job.plan.lengths) longest = std::max(longest, l);
  int split = 1;
  const bool can_split = coop && !job.in_place && job.params.order == Order::Position;
  if (can_split && rows < resident) {
    constexpr int64_t kMinTokensPerBlock = 512;  // below this a block's fixed costs (3 histogram rounds) dominate
    split = int(std::max<int64_t>(1, std::min<int64_t>(resident / rows, (longest + kMinTokensPerBlock - 1) / kMinTokensPerBlock)));
  }
  if (const char* env = std::getenv("KVTRIM_SPLIT")) {  // tests and benchmarks only
    const int forced = std::atoi(env);
    if (forced >= 1 && can_split) split = int(std::min<int64_t>(forced, std::max<int64_t>(1, resident / std::max<int64_t>(rows, 1))));
  }
  *c = Choice{split, resident, sms, split > 1};
  return Status::success();
}

template <int KIND, int UNIT>
Status run_compress(const CompressJob& job, cudaStream_t stream) {
  const Shape& s = job.shape;
  const int64_t rows = s.batch * s.heads;
  const int esz = dtype_size(job.dtype);
  const size_t smem = compress_smem_bytes(kCompressThreads);
  if (rows == 0) return Status::success();
  if (s.seq > INT32_MAX / 2) return Status::error(Code::InvalidDims, "seqLen above 2^30 on the GPU path");

  Choice ch;
  Status st = choose_geometry<KIND, UNIT>(job, smem, &ch);
  if (!st.ok()) return st;
  const int G = ch.split;
  const int sort_n = job.params.order == Order::Norm ? pow2_at_least(std::max<int64_t>(job.plan.max_kept, 1)) : 0;

  // Scratch layout: lengths, kept, keys32, hist, counts, barrier, sortbuf.
  const size_t o_len = 0;
  const size_t o_kept = o_len + align_up(sizeof(int) * size_t(s.batch));
  const size_t o_keys = o_kept + align_up(sizeof(int) * size_t(s.batch));
  const size_t o_hist = o_keys + align_up(sizeof(unsigned) * size_t(rows * s.seq));
  const size_t n_hist = G > 1 ? size_t(rows) * 3 * kRadixBins : 0;
  const size_t o_counts = o_hist + align_up(sizeof(unsigned) * n_hist);
  const size_t n_counts = G > 1 ? size_t(rows) * G * 2 : 0;
  const size_t o_barrier = o_counts + align_up(sizeof(unsigned) * n_counts);
  const size_t n_barrier = G > 1 ? size_t(rows) : 0;
  const size_t o_sort = o_barrier + align_up(sizeof(unsigned) * n_barrier);
  const size_t total = o_sort + align_up(sizeof(unsigned long long) * size_t(rows) * size_t(sort_n));

  int dev = 0;
  KVTRIM_CUDA_TRY(cudaGetDevice(&dev));
  Scratch& sc = scratch_for(dev);
  std::lock_guard<std::mutex> lock(sc.mu);
  if (sc.bytes < total) {
    if (sc.ptr) KVTRIM_CUDA_TRY(cudaFree(sc.ptr));
    sc.ptr = nullptr;
    sc.bytes = 0;
    KVTRIM_CUDA_TRY(cudaMalloc(&sc.ptr, total));
    sc.bytes = total;
  }
  unsigned char* base = static_cast<unsigned char*>(sc.ptr);
  std::vector<int> host(size_t(2 * s.batch));
  for (int64_t b = 0; b < s.batch; ++b) {
    host[size_t(b)] = int(job.plan.lengths[size_t(b)]);
    host[size_t(s.batch + b)] = int(job.plan.kept[size_t(b)]);
  }
  KVTRIM_CUDA_TRY(cudaMemcpyAsync(base + o_len, host.data(), sizeof(int) * size_t(s.batch), cudaMemcpyHostToDevice, stream));
  KVTRIM_CUDA_TRY(cudaMemcpyAsync(base + o_kept, host.data() + s.batch, sizeof(int) * size_t(s.batch), cudaMemcpyHostToDevice, stream));
  if (G > 1) KVTRIM_CUDA_TRY(cudaMemsetAsync(base + o_hist, 0, o_sort - o_hist, stream));

  CompressArgs a{};
  a.keys = static_cast<const unsigned char*>(job.keys);
  a.values = static_cast<const unsigned char*>(job.values);
  a.out_keys = static_cast<unsigned char*>(job.out_keys);
  a.out_values = static_cast<unsigned char*>(job.out_values);
  a.out_indices = job.out_indices;
  a.heads = int(s.heads);
  a.seq = s.seq;
  a.key_row_bytes = int(s.key_dim * esz);
  a.value_row_bytes = int(s.value_dim * esz);
  a.kmax = int(job.plan.max_kept);
  a.out_seq = job.in_place ? s.seq : job.plan.max_kept;
  a.lengths = reinterpret_cast<const int*>(base + o_len);
  a.kept = reinterpret_cast<const int*>(base + o_kept);
  a.sink = int(std::min<int64_t>(job.params.sink, INT32_MAX));
  a.recent = int(std::min<int64_t>(job.params.recent, INT32_MAX));
  a.high = job.params.score == Score::HighNorm;
  a.order_norm = job.params.order == Order::Norm;
  a.in_place = job.in_place;
  a.split = G;
  a.copy_unit = UNIT;
  a.norm = norm_geometry(s.key_dim, esz, job.keys);
  a.keys32 = reinterpret_cast<unsigned*>(base + o_keys);
  a.hist = reinterpret_cast<unsigned*>(base + o_hist);
  a.counts = reinterpret_cast<unsigned*>(base + o_counts);
  a.barrier = reinterpret_cast<unsigned*>(base + o_barrier);
  a.sortbuf = reinterpret_cast<unsigned long long*>(base + o_sort);
  a.sort_n = sort_n;

  const dim3 grid{unsigned(rows * G)}, block{unsigned(kCompressThreads)};
  KVTRIM_CUDA_TRY(launch_kernel(&compress_kernel<KIND, UNIT>, grid, block, smem, stream, G > 1, a));
  KVTRIM_CUDA_TRY(cudaStreamSynchronize(stream));
  return Status::success();
}

int copy_unit(const CompressJob& job) {
  const int esz = dtype_size(job.dtype);
  auto aligned = [](const void* p, int64_t row_bytes) {
    return reinterpret_cast<uintptr_t>(p) % 16 == 0 && row_bytes % 16 == 0;
  };
  const int64_t kb = job.shape.key_dim * esz, vb = job.shape.value_dim * esz;
  if (aligned(job.keys, kb) && aligned(job.values, vb) && aligned(job.out_keys, kb) && aligned(job.out_values, vb)) return 16;
  return esz;
}

template <int KIND>
Status dispatch_unit(const CompressJob& job, cudaStream_t stream) {
  switch (copy_unit(job)) {
    case 16: return run_compress<KIND, 16>(job, stream);
    case 4: return run_compress<KIND, 4>(job, stream);
    default: return run_compress<KIND, 2>(job, stream);
  }
}

}  // namespace

bool emulated() { return KVTRIM_EMULATED != 0; }

bool available(std::string* why_not) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    if (why_not) *why_not = e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device";
    cudaGetLastError();
    return false;
  }
  return true;
}

Status device_alloc(int device, size_t bytes, void** ptr) {
  return with_device(device, [&] {
    *ptr = nullptr;
    if (bytes == 0) return Status::success();
    return cuda_status(cudaMalloc(ptr, bytes), "cudaMalloc");
  });
}

Status device_free(int device, void* ptr) {
  return with_device(device, [&] { return cuda_status(cudaFree(ptr), "cudaFree"); });
}

Status copy_to_device(int device, void* dst, const void* src, size_t bytes, void* stream) {
  return with_device(device, [&] {
    if (bytes == 0) return Status::success();
    KVTRIM_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, as_stream(stream)));
    return cuda_status(cudaStreamSynchronize(as_stream(stream)), "cudaStreamSynchronize");
  });
}

Status copy_to_host(int device, void* dst, const void* src, size_t bytes, void* stream) {
  return with_device(device, [&] {
    if (bytes == 0) return Status::success();
    KVTRIM_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, as_stream(stream)));
    return cuda_status(cudaStreamSynchronize(as_stream(stream)), "cudaStreamSynchronize");
  });
}

Status synchronize(int device, void* stream) {
  return with_device(device, [&] { return cuda_status(cudaStreamSynchronize(as_stream(stream)), "cudaStreamSynchronize"); });
}

Status key_norms(int device, DType t, const void* keys, int64_t n_rows, int64_t head_dim, float* out, void* stream) {
  return with_device(device, [&]() -> Status {
    if (n_rows == 0) return Status::success();
    const NormGeometry g = norm_geometry(head_dim, dtype_size(t), keys);
    const int threads = 256;
    const int64_t groups = (n_rows + (32 / g.lanes) - 1) / (32 / g.lanes);
    const int64_t blocks = std::min<int64_t>((groups + (threads / 32) - 1) / (threads / 32), 65535);
    const dim3 grid{unsigned(blocks)}, block{unsigned(threads)};
    const auto* k = static_cast<const unsigned char*>(keys);
    cudaError_t e;
    switch (t) {
      case DType::F16: e = launch_kernel(&key_norms_kernel<kF16>, grid, block, 0, as_stream(stream), false, k, (long long)n_rows, g, out); break;
      case DType::BF16: e = launch_kernel(&key_norms_kernel<kBF16>, grid, block, 0, as_stream(stream), false, k, (long long)n_rows, g, out); break;
      default: e = launch_kernel(&key_norms_kernel<kF32>, grid, block, 0, as_stream(stream), false, k, (long long)n_rows, g, out); break;
    }
    KVTRIM_CUDA_TRY(e);
    return cuda_status(cudaStreamSynchronize(as_stream(stream)), "cudaStreamSynchronize");
  });
}

Status compress(int device, const CompressJob& job, void* stream) {
  return with_device(device, [&]() -> Status {
    switch (job.dtype) {
      case DType::F16: return dispatch_unit<kF16>(job, as_stream(stream));
      case DType::BF16: return dispatch_unit<kBF16>(job, as_stream(stream));
      case DType::F32: return dispatch_unit<kF32>(job, as_stream(stream));
    }
    return Status::error(Code::Internal, "compress: unknown dtype");
  });
}

Status compress_geometry(int device, const CompressJob& job, Geometry* out) {
  return with_device(device, [&]() -> Status {
    Choice c;
    Status s = choose_geometry<kF16, 16>(job, compress_smem_bytes(kCompressThreads), &c);
    if (!s.ok()) return s;
    const int64_t rows = job.shape.batch * job.shape.heads;
    *out = Geometry{kCompressThreads, c.split, int(rows * c.split), c.resident, c.sms, c.cooperative};
    return Status::success();
  });
}

Status time_compress(int device, const std::vector<CompressJob>& jobs, int warmup, int reps,
                     std::vector<float>* ms) {
  return with_device(device, [&]() -> Status {
    if (jobs.empty()) return Status::error(Code::InvalidArgument, "time_compress: no jobs");
    cudaEvent_t start, stop;
    KVTRIM_CUDA_TRY(cudaEventCreate(&start));
    KVTRIM_CUDA_TRY(cudaEventCreate(&stop));
    Status st = Status::success();
    for (int i = 0; i < warmup && st.ok(); ++i) st = compress(device, jobs[size_t(i) % jobs.size()], nullptr);
    ms->clear();
    for (int i = 0; i < reps && st.ok(); ++i) {
      cudaEventRecord(start, nullptr);
      st = compress(device, jobs[size_t(i) % jobs.size()], nullptr);
      cudaEventRecord(stop, nullptr);
      cudaEventSynchronize(stop);
      float t = 0;
      cudaEventElapsedTime(&t, start, stop);
      ms->push_back(t);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return st;
  });
}

Status copy_bandwidth(int device, size_t bytes, int reps, double* bytes_per_second) {
  return with_device(device, [&]() -> Status {
    void *a = nullptr, *b = nullptr;
    KVTRIM_CUDA_TRY(cudaMalloc(&a, bytes));
    Status st = cuda_status(cudaMalloc(&b, bytes), "cudaMalloc");
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    std::vector<float> t;
    for (int i = 0; i < reps + 2 && st.ok(); ++i) {
      cudaEventRecord(start, nullptr);
      st = cuda_status(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, nullptr), "cudaMemcpyAsync");
      cudaEventRecord(stop, nullptr);
      cudaEventSynchronize(stop);
      float ms = 0;
      cudaEventElapsedTime(&ms, start, stop);
      if (i >= 2) t.push_back(ms);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    cudaFree(a);
    if (b) cudaFree(b);
    if (!st.ok()) return st;
    std::sort(t.begin(), t.end());
    const double med = t.empty() ? 0.0 : t[t.size() / 2];
    *bytes_per_second = med > 0 ? 2.0 * double(bytes) / (med * 1e-3) : 0.0;
    return Status::success();
  });
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
