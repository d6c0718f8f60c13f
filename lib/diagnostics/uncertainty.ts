// layerUncertainty: ZigZagKV's per-layer score (LMBA) from attention weights or from an
// observation window of queries. The counting runs natively: on the CPU for host tensors, on
// the GPU for device tensors (same counts; see native/cuda/kernels/uncertainty.cuh for the window path).
import type { NativeUncertaintyInput, NativeUncertaintyOptions } from '../../binding'
import { binding } from '../binding'
import { checkKnown, checkObject, invalid, prefixed } from '../check'
import { driveAsync, driveSync, type Steps } from '../drive'
import { KvtrimError, withCallerStack } from '../errors'
import { isDeviceTensor, type DeviceTensor } from '../tensor'
import type { TensorLike } from '../types'

/** One layer's evidence: its attention weights, or its window queries and its keys. */
export type UncertaintyLayer =
  /** Attention weights [batch, heads, queries, seqLen] (float32, or 16-bit bits), rows need not be normalised. */
  | { attention: TensorLike | DeviceTensor }
  /**
   * Queries of the observation window [batch, qHeads, window, headDim] and the layer's keys
   * [batch, kvHeads, seqLen, headDim]; qHeads a multiple of kvHeads (GQA).
   */
  | { queries: TensorLike | DeviceTensor; keys: TensorLike | DeviceTensor }

export interface UncertaintyOptions {
  /** Fraction of the attention mass to cover, in (0, 1]. Default 0.9. */
  threshold?: number
  /**
   * Window queries are the last `window` positions of the sequence and see only the keys up
   * to their own position (default true). Ignored for attention weights.
   */
  causal?: boolean
}

export interface UncertaintyResult {
  /** Per layer: the mean count over batch, heads and queries: ZigZagKV's LMBA. */
  scores: number[]
  /** Per layer, per (batch, head, query): the count, [B, H, q] (or [B, Hq, window]). */
  counts: Int32Array[]
}

function options(o: unknown): NativeUncertaintyOptions {
  if (o === undefined) return { threshold: 0.9, causal: true }
  checkObject(o)
  checkKnown(o, ['threshold', 'causal'])
  const { threshold = 0.9, causal = true } = o as UncertaintyOptions
  if (typeof threshold !== 'number' || !(threshold > 0 && threshold <= 1)) {
    throw invalid('INVALID_OPTION', 'a number in (0, 1]', 'threshold', threshold)
  }
  if (typeof causal !== 'boolean') throw invalid('INVALID_OPTION', 'a boolean', 'causal', causal)
  return { threshold, causal }
}

function inputs(layers: unknown): NativeUncertaintyInput[] {
  if (!Array.isArray(layers)) {
    throw invalid('INVALID_ARGUMENT', 'an array of per-layer { attention } or { queries, keys }', 'layers', layers)
  }
  // an index loop, not map: a hole in a sparse array is a missing layer (map would skip it)
  const out: NativeUncertaintyInput[] = []
  for (let i = 0; i < layers.length; i++) {
    const l: unknown = layers[i]
    const o = l as Record<string, unknown> | null
    // tensors go to native code as they are: it reads each field once before it takes a data
    // pointer (native/addon/args.h), and runs device tensors on their GPU
    if (o && typeof o === 'object' && o.attention !== undefined && o.queries === undefined) {
      out.push({ attention: o.attention } as NativeUncertaintyInput)
      continue
    }
    if (o && typeof o === 'object' && o.queries !== undefined && o.keys !== undefined && o.attention === undefined) {
      if (isDeviceTensor(o.queries) !== isDeviceTensor(o.keys)) {
        throw new KvtrimError(`Expected layers[${i}].queries and .keys both on a GPU or both on the host`, 'DEVICE_MISMATCH')
      }
      out.push({ queries: o.queries, keys: o.keys } as NativeUncertaintyInput)
      continue
    }
    throw invalid('INVALID_ARGUMENT', '{ attention } or { queries, keys }', `layers[${i}]`, l)
  }
  return out
}

const mean = (c: Int32Array): number => {
  let s = 0
  for (let i = 0; i < c.length; i++) s += c[i]
  return c.length === 0 ? 0 : s / c.length
}

/**
 * ZigZagKV's layer uncertainty (LMBA): per layer, the number of top-attended tokens whose
 * attention reaches `threshold` of the row's mass, averaged over batch, heads and queries.
 * Feed `scores` to compressCache's `budgets: { zigzag: scores }`.
 */
export function layerUncertaintySync(layers: readonly UncertaintyLayer[], o?: UncertaintyOptions): UncertaintyResult {
  return driveSync(counts(layers, o))
}

/** {@link layerUncertaintySync}, off the event loop (one layer after another). */
export function layerUncertainty(layers: readonly UncertaintyLayer[], o?: UncertaintyOptions): Promise<UncertaintyResult> {
  return withCallerStack(() => driveAsync(counts(layers, o)), layerUncertainty)
}

// Both forms, written once (lib/drive.ts): one native call per layer.
function* counts(layers: readonly UncertaintyLayer[], o: UncertaintyOptions | undefined): Steps<Int32Array, UncertaintyResult> {
  const opts = options(o)
  const out: UncertaintyResult = { scores: [], counts: [] }
  const ins = inputs(layers)
  for (let i = 0; i < ins.length; i++) {
    let c: Int32Array
    try {
      c = yield { sync: () => binding().uncertaintyCountsSync(ins[i], opts), async: () => binding().uncertaintyCounts(ins[i], opts) }
    } catch (err) {
      throw prefixed(err, i)
    }
    out.counts.push(c)
    out.scores.push(mean(c))
  }
  return out
}
