// Host launchers of the fused compress (kernels/compress.cuh): validate against device limits,
// pick the kernel variant (element type x copy unit) and the launch geometry (one function each,
// with a KVTRIM_SPLIT override for tests and benchmarks), size and upload the scratch, launch
// through launch.h, and turn every CUDA error into a Status with CUDA's message.
#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "cuda_backend.h"
#include "dev_tools.h"
#include "job_args.h"
#include "kernels/compress.cuh"
#include "launch.h"
#include "runtime.h"

namespace kvtrim::cuda {

namespace {

// The copy unit of a job: 16 bytes when every row and base is 16-byte aligned, else the element.
int copy_unit(const CompressJob& job) {
  const int esz = dtype_size(job.dtype);
  auto aligned = [](const void* p, int64_t row_bytes) {
    return reinterpret_cast<uintptr_t>(p) % 16 == 0 && row_bytes % 16 == 0;
  };
  const int64_t kb = job.shape.key_dim * esz, vb = job.shape.value_dim * esz;
  if (aligned(job.keys, kb) && aligned(job.values, vb) && aligned(job.out_keys, kb) && aligned(job.out_values, vb)) return 16;
  return esz;
}

// The kernel variants compress_kernel<KIND, UNIT, PHASE_A> share one signature: the variant of a job is
// chosen here, once, at run time.
using CompressKernel = void (*)(CompressArgs);
struct Variant {
  CompressKernel kernel;  // nullptr: unknown dtype
  int unit;
};

// The norm scorers' variants exist for every unit (as before the other scorers); the other
// scorers' only for the units copy_unit can pick (16, or the element size).
template <int KIND>
Variant variant_of_unit(int unit, bool norm_scores) {
  constexpr int kElem = KIND == kF32 ? 4 : 2;
  if (!norm_scores) {
    return unit == 16 ? Variant{&compress_kernel<KIND, 16, kOtherScores>, 16} : Variant{&compress_kernel<KIND, kElem, kOtherScores>, kElem};
  }
  switch (unit) {
    case 16: return Variant{&compress_kernel<KIND, 16, kNormScores>, 16};
    case 4: return Variant{&compress_kernel<KIND, 4, kNormScores>, 4};
    default: return Variant{&compress_kernel<KIND, 2, kNormScores>, 2};
  }
}

Variant variant_for(const CompressJob& job) {
  const int unit = copy_unit(job);
  const bool norm = job.params.score == Score::LowNorm || job.params.score == Score::HighNorm;
  switch (job.dtype) {
    case DType::F16: return variant_of_unit<kF16>(unit, norm);
    case DType::BF16: return variant_of_unit<kBF16>(unit, norm);
    case DType::F32: return variant_of_unit<kF32>(unit, norm);
  }
  return Variant{nullptr, 0};
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

// Occupancy-aware split of rows over blocks: the one place this is decided.
struct Choice {
  int split;
  int resident;
  int sms;
  bool cooperative;
};

Status choose_geometry(const CompressJob& job, CompressKernel kernel, size_t smem, Choice* c) {
  int dev = 0, sms = 0, coop = 0, blocks_per_sm = 0;
  KVTRIM_CUDA_TRY(cudaGetDevice(&dev));
  KVTRIM_CUDA_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  KVTRIM_CUDA_TRY(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev));
  KVTRIM_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks_per_sm, kernel, kCompressThreads, smem));
  const int64_t rows = job.shape.batch * job.shape.heads;
  const int resident = std::max(1, sms * blocks_per_sm);
  int64_t longest = 0;
  for (int64_t l : job.plan.lengths) longest = std::max(longest, l);
  int split = 1;
  // keydiff's anchor spans the whole row: one block per row
  const bool can_split = coop && !job.in_place && job.params.order == Order::Position && job.params.score != Score::KeyDiff;
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

}  // namespace

// ---- job_args.h: one job's scratch and kernel arguments (compress, compress_layers, token_scores)

Layout layout_for(const CompressJob& job, int split) {
  const Shape& s = job.shape;
  const size_t rows = size_t(s.batch * s.heads);
  Layout L{};
  L.split = split;
  L.sort_n = job.params.order == Order::Norm ? int(pow2_ceil(std::max<int64_t>(job.plan.max_kept, 1))) : 0;
  L.len = 0;
  L.kept = L.len + align_up(sizeof(int) * size_t(s.batch));
  L.keys = L.kept + align_up(sizeof(int) * rows);
  L.hist = L.keys + align_up(sizeof(unsigned) * rows * size_t(s.seq));
  L.counts = L.hist + align_up(sizeof(unsigned) * (split > 1 ? rows * kRadixRounds * kRadixBins : 0));
  L.barrier = L.counts + align_up(sizeof(unsigned) * (split > 1 ? rows * size_t(split) * 2 : 0));
  L.sort = L.barrier + align_up(sizeof(unsigned) * (split > 1 ? rows : 0));
  L.vectors = L.sort + align_up(sizeof(unsigned long long) * rows * size_t(L.sort_n));
  const bool project = job.params.score == Score::Project, keydiff = job.params.score == Score::KeyDiff;
  L.chunks = L.vectors + align_up(sizeof(float) * (project ? size_t(s.heads * s.key_dim) : 0));
  L.token_chunks = int((s.seq + kTokenChunk - 1) / kTokenChunk);
  L.total = L.chunks + align_up(sizeof(float) * (keydiff ? rows * size_t(L.token_chunks) * size_t(s.key_dim) : 0));
  return L;
}

// The kernel arguments of a job whose scratch starts at `base` (device memory).
CompressArgs args_for(const CompressJob& job, const Layout& L, int unit, unsigned char* base) {
  const Shape& s = job.shape;
  const int esz = dtype_size(job.dtype);
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
  a.lengths = reinterpret_cast<const int*>(base + L.len);
  a.kept = reinterpret_cast<const int*>(base + L.kept);
  a.sink = int(std::min<int64_t>(job.params.sink, INT32_MAX));
  a.recent = int(std::min<int64_t>(job.params.recent, INT32_MAX));
  a.high = job.params.score == Score::HighNorm;
  a.order_norm = job.params.order == Order::Norm;
  a.in_place = job.in_place;
  a.split = L.split;
  a.copy_unit = unit;
  a.norm = norm_geometry(s.key_dim, job.keys);
  a.keys32 = reinterpret_cast<unsigned*>(base + L.keys);
  a.hist = reinterpret_cast<unsigned*>(base + L.hist);
  a.counts = reinterpret_cast<unsigned*>(base + L.counts);
  a.barrier = reinterpret_cast<unsigned*>(base + L.barrier);
  a.sortbuf = reinterpret_cast<unsigned long long*>(base + L.sort);
  a.sort_n = L.sort_n;
  a.sc.scorer = int(job.params.score);
  a.sc.vnorm = norm_geometry(s.value_dim, job.values);
  a.sc.vectors = reinterpret_cast<const float*>(base + L.vectors);
  a.sc.given = job.scores;
  a.sc.chunks = reinterpret_cast<float*>(base + L.chunks);
  a.sc.token_chunks = L.token_chunks;
  return a;
}

Status upload_plan(const CompressJob& job, const Layout& L, unsigned char* base, std::vector<int>* host,
                   cudaStream_t stream) {
  const int64_t B = job.shape.batch;
  const int64_t R = B * job.shape.heads;
  host->assign(size_t(B + R), 0);
  for (int64_t b = 0; b < B; ++b) (*host)[size_t(b)] = int(job.plan.lengths[size_t(b)]);
  // one kept count per (batch, head) row; tokenScores' plans may carry lengths only
  for (int64_t r = 0; r < R && size_t(r) < job.plan.kept.size(); ++r) (*host)[size_t(B + r)] = int(job.plan.kept[size_t(r)]);
  if (job.params.score == Score::Project) {  // job.vectors is host memory (job.h), alive for the call
    if (job.vectors == nullptr) return Status::error(Code::Internal, "compress: score 'project' without vectors");
    KVTRIM_CUDA_TRY(cudaMemcpyAsync(base + L.vectors, job.vectors, sizeof(float) * size_t(job.shape.heads * job.shape.key_dim),
                                    cudaMemcpyHostToDevice, stream));
  }
  if (job.params.score == Score::Given && job.scores == nullptr && job.shape.rows() > 0)
    return Status::error(Code::Internal, "compress: score 'scores' without scores");
  KVTRIM_CUDA_TRY(cudaMemcpyAsync(base + L.len, host->data(), sizeof(int) * size_t(B), cudaMemcpyHostToDevice, stream));
  KVTRIM_CUDA_TRY(cudaMemcpyAsync(base + L.kept, host->data() + B, sizeof(int) * size_t(R), cudaMemcpyHostToDevice, stream));
  if (L.split > 1) KVTRIM_CUDA_TRY(cudaMemsetAsync(base + L.hist, 0, L.sort - L.hist, stream));
  // The copies read `host` asynchronously: the caller keeps it alive until the stream syncs.
  return Status::success();
}

Status scratch(size_t bytes, std::unique_lock<std::mutex>* lock, unsigned char** base) {
  int dev = 0;
  KVTRIM_CUDA_TRY(cudaGetDevice(&dev));
  Scratch& sc = scratch_for(dev);
  *lock = std::unique_lock<std::mutex>(sc.mu);
  if (sc.bytes < bytes) {
    if (sc.ptr) KVTRIM_CUDA_TRY(cudaFree(sc.ptr));
    sc.ptr = nullptr;
    sc.bytes = 0;
    KVTRIM_CUDA_TRY(cudaMalloc(&sc.ptr, bytes));
    sc.bytes = bytes;
  }
  *base = static_cast<unsigned char*>(sc.ptr);
  return Status::success();
}

Status prepare_job(const CompressJob& job, int split, int unit, cudaStream_t stream, JobScratch* js, CompressArgs* a) {
  const Layout L = layout_for(job, split);
  unsigned char* base = nullptr;
  Status st = scratch(L.total, &js->lock, &base);
  if (!st.ok()) return st;
  st = upload_plan(job, L, base, &js->host, stream);
  if (!st.ok()) return st;
  *a = args_for(job, L, unit, base);
  return Status::success();
}

Status check_seq(const CompressJob& job) {
  if (job.shape.seq > INT32_MAX / 2) return Status::error(Code::InvalidDims, "seqLen above 2^30 on the GPU path");
  return Status::success();
}

namespace {

// The launch of one job: the kernel variant and its geometry. compress launches exactly this and
// compress_geometry reports exactly this (so the geometry a test sees is the launch's own).
struct Launch {
  Variant variant;
  size_t smem;
  Choice choice;
};

Status plan_launch(const CompressJob& job, Launch* l) {
  l->variant = variant_for(job);
  if (l->variant.kernel == nullptr) return Status::error(Code::Internal, "compress: unknown dtype");
  l->smem = compress_smem_bytes(kCompressThreads);
  return choose_geometry(job, l->variant.kernel, l->smem, &l->choice);
}

Status run_compress(const CompressJob& job, cudaStream_t stream) {
  const int64_t rows = job.shape.batch * job.shape.heads;
  if (rows == 0) return Status::success();
  Status st = check_seq(job);
  if (!st.ok()) return st;
  Launch ln;
  st = plan_launch(job, &ln);
  if (!st.ok()) return st;
  JobScratch js;
  CompressArgs a;
  st = prepare_job(job, ln.choice.split, ln.variant.unit, stream, &js, &a);
  if (!st.ok()) return st;
  const dim3 grid{unsigned(rows * ln.choice.split)}, block{unsigned(kCompressThreads)};
  KVTRIM_CUDA_TRY(launch_kernel(ln.variant.kernel, grid, block, ln.smem, stream, ln.choice.split > 1, a));
  return cuda_status(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
}

// Every job in one launch: one block per row (no split rows), descriptors in device memory.
template <int KIND, int UNIT>
Status run_compress_layers(const std::vector<CompressJob>& jobs, cudaStream_t stream) {
  const size_t smem = compress_smem_bytes(kCompressThreads);
  const size_t n = jobs.size();
  std::vector<Layout> layouts;
  std::vector<size_t> offsets;
  std::vector<unsigned> first_block(n + 1, 0);
  size_t total = 0;
  for (size_t j = 0; j < n; ++j) {
    Status st = check_seq(jobs[j]);
    if (!st.ok()) return st;
    layouts.push_back(layout_for(jobs[j], 1));
    offsets.push_back(total);
    total += layouts.back().total;
    const uint64_t rows = uint64_t(jobs[j].shape.batch * jobs[j].shape.heads);
    if (first_block[j] + rows > uint64_t(INT32_MAX)) return Status::error(Code::TooManyRows, "too many rows in one launch");
    first_block[j + 1] = unsigned(first_block[j] + rows);
  }
  const size_t o_desc = total, o_first = o_desc + align_up(sizeof(CompressArgs) * n);
  total = o_first + align_up(sizeof(unsigned) * (n + 1));
  std::unique_lock<std::mutex> lock;
  unsigned char* base = nullptr;
  Status st = scratch(total, &lock, &base);
  if (!st.ok()) return st;
  std::vector<std::vector<int>> hosts(n);
  std::vector<CompressArgs> desc(n);
  for (size_t j = 0; j < n; ++j) {
    st = upload_plan(jobs[j], layouts[j], base + offsets[j], &hosts[j], stream);
    if (!st.ok()) return st;
    desc[j] = args_for(jobs[j], layouts[j], UNIT, base + offsets[j]);
  }
  KVTRIM_CUDA_TRY(cudaMemcpyAsync(base + o_desc, desc.data(), sizeof(CompressArgs) * n, cudaMemcpyHostToDevice, stream));
  KVTRIM_CUDA_TRY(cudaMemcpyAsync(base + o_first, first_block.data(), sizeof(unsigned) * (n + 1), cudaMemcpyHostToDevice, stream));
  if (first_block[n] > 0) {
    const dim3 grid{first_block[n]}, block{unsigned(kCompressThreads)};
    const auto* d = reinterpret_cast<const CompressArgs*>(base + o_desc);
    const auto* f = reinterpret_cast<const unsigned*>(base + o_first);
    KVTRIM_CUDA_TRY(launch_kernel(&compress_layers_kernel<KIND, UNIT>, grid, block, smem, stream, false, d, f, int(n)));
  }
  return cuda_status(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
}

}  // namespace

Status compress(int device, const CompressJob& job, void* stream) {
  return with_device(device, [&]() -> Status { return run_compress(job, as_stream(stream)); });
}

Status compress_layers(int device, const std::vector<CompressJob>& jobs, void* stream) {
  if (jobs.empty()) return Status::success();
  // One launch needs one element type and 16-byte aligned rows (the only copy unit the layers
  // kernel is built for, to keep the binary small); otherwise one launch per job.
  bool uniform = true;
  for (const CompressJob& j : jobs) uniform = uniform && j.dtype == jobs[0].dtype && copy_unit(j) == 16;
  if (!uniform || jobs.size() == 1) {
    for (const CompressJob& j : jobs) {
      Status s = compress(device, j, stream);
      if (!s.ok()) return s;
    }
    return Status::success();
  }
  return with_device(device, [&]() -> Status {
    switch (jobs[0].dtype) {
      case DType::F16: return run_compress_layers<kF16, 16>(jobs, as_stream(stream));
      case DType::BF16: return run_compress_layers<kBF16, 16>(jobs, as_stream(stream));
      case DType::F32: return run_compress_layers<kF32, 16>(jobs, as_stream(stream));
    }
    return Status::error(Code::Internal, "compress_layers: unknown dtype");
  });
}

// A development hook (dev_tools.h), here because it reports plan_launch's own choice.
Status compress_geometry(int device, const CompressJob& job, Geometry* out) {
  return with_device(device, [&]() -> Status {
    Launch ln;
    Status s = plan_launch(job, &ln);
    if (!s.ok()) return s;
    const Choice& c = ln.choice;
    const int64_t rows = job.shape.batch * job.shape.heads;
    *out = Geometry{kCompressThreads, c.split, int(rows * c.split), c.resident, c.sms, c.cooperative, ln.variant.unit};
    return Status::success();
  });
}

}  // namespace kvtrim::cuda
