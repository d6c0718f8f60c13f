// Development hooks of the CUDA backend: kvtrim's own streams, the launch geometry, timed
// launches and the copy bandwidth (tests and benchmarks), and the emulator's controls. Not part
// of the product: the addon exports them only in development and emulator builds.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cuda_backend.h"

namespace kvtrim::cuda {

// A stream of kvtrim's own (tests and benchmarks; users pass their runtime's stream instead).
Status stream_create(int device, void** stream);
Status stream_destroy(int device, void* stream);

// The launch geometry compress would use: blocks per row and blocks in all (for tests/bench).
struct Geometry {
  int threads, blocks_per_row, blocks, resident_blocks, sms;
  bool cooperative;
  int copy_unit;  // bytes per copy step of the gather: 16, or the element size
};
Status compress_geometry(int device, const CompressJob& job, Geometry* g);

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
