// The CUDA backend's host interface: plain C++ (no CUDA types), so native/addon can call it
// from a build with or without CUDA. Every function returns a Status; CUDA failures carry
// CUDA's own message (and, under the emulator, the emulator's diagnosis).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../core/job.h"
#include "../core/uncertainty.h"

namespace kvtrim::cuda {

// Whether this build has CUDA code and a usable device: probe.h (backend()).

// Device memory for device tensors (device = ordinal), memory.cu. Streams are opaque: nullptr =
// the default stream.
Status device_alloc(int device, size_t bytes, void** ptr);
Status device_free(int device, void* ptr);
Status copy_to_device(int device, void* dst, const void* src, size_t bytes, void* stream);
Status copy_to_host(int device, void* dst, const void* src, size_t bytes, void* stream);
// keyNorms (norms.cu); keys and out are device pointers.
Status key_norms(int device, DType t, const void* keys, int64_t n_rows, int64_t head_dim, float* out,
                 void* stream);

// compress.cu. Every pointer of the job (keys, values, outputs, out_indices) is a device pointer;
// the plan is on the host. Blocks until the work is done (the addon calls it off the event loop).
Status compress(int device, const CompressJob& job, void* stream);

// tokenScores (docs/policies.md): job.job's keys, values and scores are device pointers, its
// vectors host memory, `out` a device pointer ([batch, heads, seq] float32).
Status token_scores(int device, const ScoreJob& job, void* stream);

// Every job (one per layer of a model) in ONE launch where they share the element type and
// 16-byte aligned rows (one block per row, no split rows); otherwise one launch per job.
Status compress_layers(int device, const std::vector<CompressJob>& jobs, void* stream);

// layerUncertainty (LMBA) on device tensors (uncertainty.cu): counts [rows] go to HOST memory.
Status uncertainty_attention(int device, DType t, const void* attention, const AttentionShape& s,
                      const UncertaintyParams& p, int32_t* counts, void* stream);
Status uncertainty_window(int device, DType qt, const void* queries, DType kt, const void* keys,
                   const WindowShape& s, const UncertaintyParams& p, int32_t* counts, void* stream);

}  // namespace kvtrim::cuda
