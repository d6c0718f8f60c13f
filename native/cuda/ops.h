// The CUDA backend's host interface: plain C++ (no CUDA types), so native/addon can call it
// from a build with or without CUDA. Every function returns a Status; CUDA failures carry
// CUDA's own message (and, under the emulator, the emulator's diagnosis).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../core/job.h"
#include "../core/uncertainty.h"

namespace kvtrim::cuda {

// Whether this build has the CUDA backend (real or emulated) and it can be used now.
bool available(std::string* why_not);
bool emulated();

// Device memory for device tensors (device = ordinal). Streams are opaque: nullptr = default.
Status device_alloc(int device, size_t bytes, void** ptr);
Status device_free(int device, void* ptr);
Status copy_to_device(int device, void* dst, const void* src, size_t bytes, void* stream);
Status copy_to_host(int device, void* dst, const void* src, size_t bytes, void* stream);
Status synchronize(int device, void* stream);
// A stream of kvtrim's own (tests and benchmarks; users pass their runtime's stream instead).
Status stream_create(int device, void** stream);
Status stream_destroy(int device, void* stream);

// keys and out are device pointers.
Status key_norms(int device, DType t, const void* keys, int64_t n_rows, int64_t head_dim, float* out,
                 void* stream);

// Every pointer of the job (keys, values, outputs, out_indices) is a device pointer; the plan
// is on the host. Blocks until the work is done (the addon calls it off the event loop).
Status compress(int device, const CompressJob& job, void* stream);

// Every job (one per layer of a model) in ONE launch where they share the element type and
// 16-byte aligned rows (one block per row, no split rows); otherwise one launch per job.
Status compress_layers(int device, const std::vector<CompressJob>& jobs, void* stream);

// The launch geometry compress would use: blocks per row and blocks in all (for tests/bench).
struct Geometry {
  int threads, blocks_per_row, blocks, resident_blocks, sms;
  bool cooperative;
};
Status compress_geometry(int device, const CompressJob& job, Geometry* g);

// layerUncertainty (LMBA) on device tensors (lmba.cu): counts [rows] go to HOST memory.
Status lmba_attention(int device, DType t, const void* attention, const AttentionShape& s,
                      const LmbaParams& p, int32_t* counts, void* stream);
Status lmba_window(int device, DType qt, const void* queries, DType kt, const void* keys,
                   const WindowShape& s, const LmbaParams& p, int32_t* counts, void* stream);

// Benchmarks. Milliseconds of each of `reps` compress calls (CUDA events around the whole
// operation on the stream: lengths upload, scratch clear, the launch), after `warmup` calls,
// cycling through `jobs` so inputs do not stay in L2.
Status time_compress(int device, const std::vector<CompressJob>& jobs, int warmup, int reps,
                     std::vector<float>* ms);
// Device-to-device cudaMemcpy of `bytes`: median bytes moved (read + write) per second.
Status copy_bandwidth(int device, size_t bytes, int reps, double* bytes_per_second);

// Emulator builds only (tests): the schedule ("deterministic", "random", "priority") and seed
// of later launches, the emulated SM count (0: the default H100's) and the livelock threshold
// in spin-waits (0: the default). Errors elsewhere.
Status configure_emulator(const std::string& schedule, uint64_t seed, int sms, uint64_t spin_limit);

}  // namespace kvtrim::cuda
