import type { DeviceTensor } from './tensor'

/** Element types: float16 and bfloat16 as raw bits in a Uint16Array (or Float16Array). */
export type DType = 'float16' | 'bfloat16' | 'float32'

/** 16-bit storage: raw IEEE half or bfloat16 bits. */
export type Bits16Array = Uint16Array

/**
 * A host tensor in the layout [batch, kvHeads, seqLen, headDim], contiguous and row-major.
 * onnxruntime-node and transformers.js `Tensor`s have these fields and are accepted as is.
 */
export interface TensorLike {
  readonly type: DType | string
  readonly data: Float32Array | Uint16Array | ArrayBufferView
  readonly dims: readonly number[]
}

/** What kvtrim returns: the same plain shape, with a Float32Array or Uint16Array. */
export interface HostTensor {
  type: DType
  data: Float32Array | Uint16Array
  dims: number[]
}

export interface CompressOptions {
  /** Keep k = ceil(keepRatio * len) tokens per head, computed in double as Python does. In (0, 1]. */
  keepRatio?: number
  /** Keep this many tokens per head (an integer in [0, seqLen]); clamped to each entry's length. */
  keep?: number
  /** Order of the kept tokens: 'position' (default, ascending) or 'norm' (ascending rank, as the reference). */
  order?: 'position' | 'norm'
  /** 'low-norm' (default, the paper) keeps the lowest norms; 'high-norm' is the paper's ablation. */
  score?: 'low-norm' | 'high-norm'
  /** The first `sink` tokens are always kept; they count toward k. */
  sink?: number
  /** The last `recent` valid tokens are always kept; they count toward k. */
  recent?: number
  /** Valid length per batch entry (ragged batches); each at most dims[2]. Default: all dims[2]. */
  lengths?: ArrayLike<number>
  /**
   * Device tensors only: the CUDA stream (a cudaStream_t as a bigint, e.g. your runtime's) that
   * kvtrim's work is queued on; the call settles when that work is done. Default: the default stream.
   */
  stream?: bigint
}

export interface CompressResult<T = HostTensor> {
  /** [batch, kvHeads, kept, headDim] */
  keys: T
  /** [batch, kvHeads, kept, valueHeadDim] */
  values: T
  /** [batch, kvHeads, kept]: source position of each kept token; -1 in padding rows. */
  indices: Int32Array
  /**
   * Tokens kept per batch entry. Entries with fewer than `kept` (ragged `lengths`) are padded
   * at the end with zero rows and index -1.
   */
  lengths: Int32Array
  /** The output's seqLen: the largest entry of `lengths`. */
  kept: number
}

export interface InPlaceResult {
  /** [batch, kvHeads, kept]: source position of each kept token, ascending; -1 in padding. */
  indices: Int32Array
  /** The new valid length of each batch entry: its kept rows are rows [0, lengths[b]). */
  lengths: Int32Array
  /** The largest entry of `lengths`. */
  kept: number
}

/** Per-layer budgets for compressCache (see docs/policies.md and lib/budgets.ts). */
export type Budgets =
  /** The same keepRatio / keep on every layer (the reference). */
  | 'uniform'
  /**
   * PyramidKV: more tokens in lower layers, fewer in upper ones, the same total as uniform;
   * keepRatio / keep give the average. beta (default 20) sets the top layer's share.
   */
  | 'pyramid'
  | { readonly pyramid: { readonly beta?: number } }
  /**
   * ZigZagKV: budgets proportional to one uncertainty score per layer (layerUncertainty's
   * scores), above a floor of minRatio (default 0.2) times the average; the same total.
   */
  | { readonly zigzag: readonly number[]; readonly minRatio?: number }
  /** One keepRatio per layer, each in (0, 1]. */
  | readonly number[]
  /** One absolute count per layer; with `total`, the counts must sum to it. */
  | { readonly keep: readonly number[]; readonly total?: number }

export interface CacheOptions extends CompressOptions {
  /** A layer shorter than this (valid length below pruneAfter) is left as is. Default 0. */
  pruneAfter?: number
  /** Layers left as is. Default []. */
  skipLayers?: readonly number[]
  /** Per-layer budgets. Default 'uniform'. */
  budgets?: Budgets
}

/** One layer of a cache: host tensors, or device tensors (then the layer runs on its GPU). */
export interface CacheLayer<T extends TensorLike | DeviceTensor = TensorLike> {
  keys: T
  values: T
}

export interface LayerReport {
  layer: number
  /** seqLen before (the longest valid length when `lengths` is given) */
  before: number
  /** seqLen after */
  after: number
  compressed: boolean
  /** why a layer was left as is */
  reason?: 'skipLayers' | 'pruneAfter'
}

export interface CacheResult<T extends TensorLike | DeviceTensor = TensorLike> {
  /** Compressed layers, and the caller's own objects for layers left as is. */
  layers: Array<CacheLayer<T> & { indices?: Int32Array; lengths?: Int32Array }>
  report: LayerReport[]
}
