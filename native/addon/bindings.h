// The binding's functions (binding.d.ts types them), by the file that implements them. Each
// operation is one function for host and device tensors: where the tensors live decides where
// it runs (args.h reads them), and its ...Sync and Promise forms are one Operation
// (async_op.h) run now or on the libuv pool.
#pragma once
#include <napi.h>

namespace kvtrim::addon {

// key_norms.cc: keyNormsSync(keys, { stream? }?) and keyNorms -> Float32Array (host keys) or a
// DeviceBuffer of float32 norms (device keys).
Napi::Value KeyNormsSync(const Napi::CallbackInfo& info);
Napi::Value KeyNorms(const Napi::CallbackInfo& info);

// compress.cc: compress[Sync](keys, values, options), compressInPlace[Sync], and
// cudaCompressLayers[Sync](keys[], values[], options[], layerIndices[]) (device tensors only:
// every layer in one launch).
Napi::Value CompressSync(const Napi::CallbackInfo& info);
Napi::Value Compress(const Napi::CallbackInfo& info);
Napi::Value CompressInPlaceSync(const Napi::CallbackInfo& info);
Napi::Value CompressInPlace(const Napi::CallbackInfo& info);
Napi::Value CompressLayersSync(const Napi::CallbackInfo& info);
Napi::Value CompressLayers(const Napi::CallbackInfo& info);

// token_scores.cc: tokenScoresSync(keys, values, { score?, lengths?, stream? }) and tokenScores
// -> Float32Array [B, H, S] (host tensors) or a DeviceBuffer of float32 scores (device).
Napi::Value TokenScoresSync(const Napi::CallbackInfo& info);
Napi::Value TokenScores(const Napi::CallbackInfo& info);

// selection_counts.cc: selectionCountsSync(scores, options) and selectionCounts -> Int32Array
// [B * H], a ragged selection's per-row kept counts (scores: float32 [B, H, S], host or device).
Napi::Value SelectionCountsSync(const Napi::CallbackInfo& info);
Napi::Value SelectionCounts(const Napi::CallbackInfo& info);

// uncertainty.cc: uncertaintyCountsSync(input, { threshold, causal }) -> Int32Array, and its
// Promise twin uncertaintyCounts; input is { attention } or { queries, keys }, host or device.
Napi::Value UncertaintyCountsSync(const Napi::CallbackInfo& info);
Napi::Value UncertaintyCounts(const Napi::CallbackInfo& info);

// backend.cc: backend()
Napi::Value Backend(const Napi::CallbackInfo& info);

// dev_hooks.cc (only with KVTRIM_DEV_HOOKS): the `dev` object of tools for tests and benchmarks.
Napi::Object DevHooks(Napi::Env env);

}  // namespace kvtrim::addon
