// The types of the cache policies (compressCache, budgets): one model's layers and their options.
import type { DeviceTensor } from '../tensor'
import type { CacheScore, CompressOptions, TensorLike } from '../types'

/** Per-layer budgets for compressCache (see docs/policies.md and lib/cache/budgets.ts). */
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

export interface CacheOptions extends Omit<CompressOptions, 'score' | 'headKeep'> {
  /** The scorer (docs/policies.md): a name for every layer, or one project / scores entry per layer. */
  score?: CacheScore
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
  layers: Array<CacheLayer<T> & { indices?: Int32Array; lengths?: Int32Array; headLengths?: Int32Array }>
  report: LayerReport[]
}
