// keyNorms and compress on host tensors: option checks here, everything else native.
import type { NativeTensor } from '../binding'
import { binding } from './binding'
import { withCallerStack } from './errors'
import type { CompressOptions, CompressResult, InPlaceResult, TensorLike } from './types'
import { compressOptions } from './validate'

// Tensors go to native code as they are (no copy); native code checks them.
const native = (t: TensorLike): NativeTensor => t as NativeTensor

/**
 * L2 norm of every key row, [batch, kvHeads, seqLen] as a Float32Array, computed in the
 * canonical fp32 order of the numeric contract (bit-identical on every backend for 16-bit keys).
 */
export function keyNormsSync(keys: TensorLike): Float32Array {
  return binding().keyNormsSync(native(keys))
}

/** {@link keyNormsSync}, off the event loop. */
export function keyNorms(keys: TensorLike): Promise<Float32Array> {
  return withCallerStack(() => binding().keyNorms(native(keys)), keyNorms)
}

/**
 * Keeps, per batch entry and KV head, the k tokens whose keys have the lowest L2 norm (or the
 * highest, with score 'high-norm'), and returns the compacted keys, values and the kept
 * positions. The inputs are never modified.
 */
export function compressSync(keys: TensorLike, values: TensorLike, options: CompressOptions): CompressResult {
  return binding().compressSync(native(keys), native(values), compressOptions(options)) as CompressResult
}

/** {@link compressSync}, off the event loop. */
export function compress(keys: TensorLike, values: TensorLike, options: CompressOptions): Promise<CompressResult> {
  return withCallerStack(
    () => binding().compress(native(keys), native(values), compressOptions(options)) as Promise<CompressResult>,
    compress,
  )
}

/**
 * Compresses a cache in its own memory, for a preallocated (static) cache whose dims[2] is a
 * capacity: per head, the kept rows move to the front in position order and the new valid
 * length of each batch entry is returned; rows past it are left unspecified. Only order
 * 'position'. The one operation that modifies its inputs (keys.data and values.data).
 */
export function compressInPlaceSync(keys: TensorLike, values: TensorLike, options: CompressOptions): InPlaceResult {
  return binding().compressInPlaceSync(native(keys), native(values), compressOptions(options))
}

/** {@link compressInPlaceSync}, off the event loop. Do not touch the tensors until it settles. */
export function compressInPlace(keys: TensorLike, values: TensorLike, options: CompressOptions): Promise<InPlaceResult> {
  return withCallerStack(() => binding().compressInPlace(native(keys), native(values), compressOptions(options)), compressInPlace)
}
