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

/** compress's options: how many tokens to keep (keepRatio or keep, with sink and recent), and how. */
export interface CompressOptions extends KeepRule {
  /** Order of the kept tokens: 'position' (default, ascending) or 'norm' (ascending rank, as the reference). */
  order?: 'position' | 'norm'
  /** 'low-norm' (default, the paper) keeps the lowest norms; 'high-norm' is the paper's ablation. */
  score?: 'low-norm' | 'high-norm'
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
