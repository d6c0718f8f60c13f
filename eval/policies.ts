// The policies the evaluation compares, as kvtrim options for a budget of k tokens per head:
// the paper's low-norm, its high-norm ablation, a random choice, a recent window, sink + recent
// (StreamingLLM; PoD's proximal tokens) and low-norm with sink + recent.
import { compressSync, type CompressOptions } from '../lib/index'
import type { F32Tensor, KvCache } from './llama2c'

export const POLICIES = ['low-norm', 'high-norm', 'random', 'recent', 'sink+recent', 'low-norm+sink+recent'] as const
export type Policy = (typeof POLICIES)[number]
/** Policies the decode-time Compressor can run (random is not a kvtrim policy). */
export const DECODE_POLICIES: readonly Policy[] = ['low-norm', 'high-norm', 'recent', 'sink+recent', 'low-norm+sink+recent']

export const SINK = 4
export const RECENT = 16

/** sink / recent / score for a budget of k tokens (k = ceil(keepRatio * len)). */
export function policyOptions(policy: Policy, k: number): Pick<CompressOptions, 'sink' | 'recent' | 'score'> {
  switch (policy) {
    case 'low-norm':
      return {}
    case 'high-norm':
      return { score: 'high-norm' }
    case 'recent':
      return { recent: k }
    case 'sink+recent':
      return { sink: Math.min(SINK, k), recent: Math.max(0, k - SINK) }
    case 'low-norm+sink+recent':
      return { sink: Math.min(SINK, k), recent: Math.max(0, Math.min(RECENT, k - SINK)) }
    case 'random':
      throw new Error('random has no kvtrim options')
  }
}

/** Keeps `indices` (ascending, per head) of a [1, H, S, D] tensor. */
function gather(t: F32Tensor, H: number, keep: Int32Array[]): F32Tensor {
  const [, , S, D] = t.dims
  const k = keep[0].length
  const out = new Float32Array(H * k * D)
  keep.forEach((idx, h) => idx.forEach((j, i) => out.set(t.data.subarray((h * S + j) * D, (h * S + j + 1) * D), (h * k + i) * D)))
  return { type: 'float32', data: out, dims: [1, H, k, D] }
}

/** k random positions per head, ascending (a partial Fisher-Yates shuffle). */
function randomKeep(S: number, k: number, random: () => number): Int32Array {
  const all = Array.from({ length: S }, (_, i) => i)
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(random() * (S - i))
    ;[all[i], all[j]] = [all[j], all[i]]
  }
  return Int32Array.from(all.slice(0, k)).sort()
}

export interface PrefillCompression {
  pruneAfter: number
  skipLayers: readonly number[]
}

/** The cache after compressing every layer to k = ceil(keepRatio * len) tokens with `policy`. */
export function compressPrefill(cache: KvCache, policy: Policy, keepRatio: number, o: PrefillCompression, random: () => number): KvCache {
  return cache.map((layer, l) => {
    const S = layer.keys.dims[2], H = layer.keys.dims[1]
    if (o.skipLayers.includes(l) || S < o.pruneAfter) return layer
    const k = Math.ceil(keepRatio * S)
    if (policy === 'random') {
      const keep = Array.from({ length: H }, () => randomKeep(S, k, random))
      return { keys: gather(layer.keys, H, keep), values: gather(layer.values, H, keep) }
    }
    const r = compressSync(layer.keys, layer.values, { keepRatio, ...policyOptions(policy, k) })
    return { keys: r.keys as F32Tensor, values: r.values as F32Tensor }
  })
}
