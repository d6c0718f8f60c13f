// The public types of the facade: tensors as the caller holds them, compress options and results.
import type { KeepRule } from './keep-count'

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

/**
 * A scorer (docs/policies.md). For compressCache and the Compressor, `project` holds one
 * Float32Array per layer and `scores` one tensor per layer.
 */
export type Score =
  | 'low-norm'
  | 'high-norm'
  | 'kv-norm'
  | 'keydiff'
  | { project: Float32Array | readonly number[] }
  | { scores: ScoreTensor }

/**
 * Scores for `{ scores }`: a float32 tensor [batch, kvHeads, seqLen], a host TensorLike for
 * host keys or a DeviceTensor on the keys' device for device keys.
 */
export interface ScoreTensor {
  readonly type: DType | string
  readonly dims: readonly number[]
}

/**
 * A cache's scorer (compressCache, Compressor, CacheCompressor): a name applies to every
 * layer; `project` holds one vector set per layer, `scores` one tensor per layer (compressCache).
 */
export type CacheScore =
  | 'low-norm'
  | 'high-norm'
  | 'kv-norm'
  | 'keydiff'
  | { project: readonly (Float32Array | readonly number[])[] }
  | { scores: readonly ScoreTensor[] }

/**
 * How many tokens each (batch entry, KV head) row keeps (docs/policies.md "Selection modes").
 * 'per-head' (default): every head keeps k (keepRatio or keep). `{ threshold: t }`: each head
 * keeps its sink and recent tokens and every middle token whose score is >= t (no keepRatio or
 * keep). 'adaptive' or `{ adaptive: { alpha } }` (AdaKV): the heads of a batch entry share
 * kvHeads * k tokens; each keeps at least floor(alpha * (k - sink - recent)) of its own best
 * middle tokens (alpha in [0, 1], default 0.2), the rest go to the best scores across heads.
 * Ragged selections return per-head lengths (`headLengths`); see the docs for the runtimes
 * that can use them.
 */
export type Selection = 'per-head' | 'adaptive' | { adaptive: { alpha?: number } } | { threshold: number }

/** tokenScores's options. */
export interface TokenScoresOptions {
  /** The scorer (default 'low-norm'). */
  score?: Score
  /** Valid length per batch entry; positions past it score NaN. */
  lengths?: ArrayLike<number>
  /** Device tensors only: the CUDA stream. */
  stream?: bigint
}

/** compress's options: how many tokens to keep (keepRatio or keep, with sink and recent), and how. */
export interface CompressOptions extends KeepRule {
  /** Order of the kept tokens: 'position' (default, ascending) or 'norm' (ascending rank, as the reference). */
  order?: 'position' | 'norm'
  /**
   * Which tokens a head keeps: the k with the highest score (docs/policies.md has each formula
   * and paper). 'low-norm' (default, Devoto et al. 2024) keeps the lowest key norms;
   * 'high-norm' the highest (the paper's ablation); 'kv-norm' the highest key norm times value
   * norm (CurDKV); 'keydiff' the keys least similar to the head's mean direction (KeyDiff);
   * `{ project: vectors }` the lowest f_h . k (Q-Filters: one float32 vector per KV head,
   * [kvHeads * keyDim]); `{ scores }` your own float32 scores [batch, kvHeads, seqLen].
   */
  score?: Score
  /** How many tokens each head keeps (default 'per-head': k each); see {@link Selection}. */
  selection?: Selection
  /**
   * Your own per-head counts instead of keepRatio / keep: one integer per (batch entry, KV
   * head) row, [batch * kvHeads] row-major, each in [min(len, sink + recent), len] for its
   * entry's valid length len (sink and recent included).
   */
  headKeep?: ArrayLike<number>
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
   * Tokens kept per batch entry (with a ragged `selection` or `headKeep`: the most any of its
   * heads keeps). Rows past a head's own count (`headLengths`) are zero rows with index -1.
   */
  lengths: Int32Array
  /** Tokens kept per (batch entry, KV head) row, [batch, kvHeads] row-major. */
  headLengths: Int32Array
  /** The output's seqLen: the largest entry of `lengths`. */
  kept: number
}

export interface InPlaceResult {
  /** [batch, kvHeads, kept]: source position of each kept token, ascending; -1 in padding. */
  indices: Int32Array
  /** The new valid length of each batch entry: its kept rows are rows [0, lengths[b]) (ragged heads: the longest head's). */
  lengths: Int32Array
  /** The new valid length of each (batch entry, KV head) row, [batch, kvHeads]: its kept rows are [0, headLengths[b * kvHeads + h]). */
  headLengths: Int32Array
  /** The largest entry of `lengths`. */
  kept: number
}
