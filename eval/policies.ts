// The policies the evaluation compares, as kvtrim options for a budget of k tokens per head:
// the paper's low-norm, its high-norm ablation, a random choice, a recent window, sink + recent
// (StreamingLLM; PoD's proximal tokens), low-norm with sink + recent, and the other scorers of
// docs/policies.md: kv-norm (CurDKV), keydiff (KeyDiff) and project (Q-Filters' idea, with the
// vectors of queryFilters below: the mean query of each KV head over the prompt); then the
// selection modes of docs/policies.md, whose heads keep different counts: AdaKV's adaptive
// budgets over the low-norm and keydiff scores, and a low-norm threshold calibrated per layer
// (thresholdFor below).
import { compressSync, tokenScoresSync, type CompressOptions } from '../lib/index'
import type { DecoderConfig } from './decoder'
import type { F32Tensor, KvCache, KvLayer } from './llama2c'

export const POLICIES = [
  'low-norm', 'high-norm', 'random', 'recent', 'sink+recent', 'low-norm+sink+recent', 'kv-norm', 'keydiff', 'project',
  'adaptive-low-norm', 'adaptive-keydiff', 'threshold-low-norm',
] as const
export type Policy = (typeof POLICIES)[number]
/** Policies the decode-time Compressor can run (random is not a kvtrim policy; the CacheCompressor refuses ragged selections). */
export const DECODE_POLICIES: readonly Policy[] = ['low-norm', 'high-norm', 'recent', 'sink+recent', 'low-norm+sink+recent']
/** Policies whose heads keep different counts (compress's headLengths): they need a decoder with perHeadLengths. */
export const RAGGED_POLICIES: readonly Policy[] = ['adaptive-low-norm', 'adaptive-keydiff', 'threshold-low-norm']

export const SINK = 4
export const RECENT = 16

/**
 * Q-Filters (Godey et al. 2025, arXiv 2503.02812) scores a key by its projection on one direction
 * per head estimated from queries. Approximated here from the prompt itself: per layer and KV
 * head, the mean of the queries (after RoPE, as they meet the cached keys) of the query heads it
 * serves, over every prompt position. kvtrim's project score is -(f . k), so f = -mean(q) keeps
 * the keys with the highest mean-query logit mean(q) . k. `queries`: per layer [nHeads, T, headDim].
 */
export function queryFilters(queries: readonly Float32Array[], c: Pick<DecoderConfig, 'nHeads' | 'nKvHeads' | 'headDim'>): Float32Array[] {
  const group = c.nHeads / c.nKvHeads
  return queries.map((q) => {
    const T = q.length / (c.nHeads * c.headDim)
    const f = new Float64Array(c.nKvHeads * c.headDim)
    for (let h = 0; h < c.nHeads; h++) {
      const kh = Math.floor(h / group)
      for (let t = 0; t < T; t++) for (let d = 0; d < c.headDim; d++) f[kh * c.headDim + d] += q[(h * T + t) * c.headDim + d]
    }
    return Float32Array.from(f, (x) => -x / (group * T))
  })
}

/**
 * sink / recent / score for a budget of k tokens (k = ceil(keepRatio * len)); `project`: the
 * layer's vectors ([kvHeads * headDim], queryFilters') for the project policy.
 */
export function policyOptions(policy: Policy, k: number, project?: Float32Array): Pick<CompressOptions, 'sink' | 'recent' | 'score' | 'selection'> {
  switch (policy) {
    case 'adaptive-low-norm':
      return { selection: 'adaptive' }
    case 'adaptive-keydiff':
      return { score: 'keydiff', selection: 'adaptive' }
    case 'threshold-low-norm':
      throw new Error('threshold-low-norm calibrates its threshold on the layer (thresholdFor); compressPrefill does it')
    case 'low-norm':
      return {}
    case 'high-norm':
      return { score: 'high-norm' }
    case 'kv-norm':
      return { score: 'kv-norm' }
    case 'keydiff':
      return { score: 'keydiff' }
    case 'project':
      if (!project) throw new Error('project needs query vectors (queryFilters), which this decoder does not give')
      return { score: { project } }
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

/**
 * The threshold-low-norm policy's t for one layer of the prompt: the low-norm scores (-‖k‖) of
 * every KV head's tokens, ranked together, and t the (H · k)-th highest, k = ceil(keepRatio · S).
 * Each head then keeps its tokens scoring at least t, so the heads keep H · k tokens in all (more
 * where scores tie at t): the budget of the other policies on average, split by the scores. It is
 * calibrated on the very prompt it compresses (an oracle calibration: a deployed threshold would
 * be fixed beforehand on other text, and the kept share would then vary with the prompt).
 */
export function thresholdFor(layer: KvLayer, keepRatio: number): number {
  const [, H, S] = layer.keys.dims
  const k = Math.ceil(keepRatio * S)
  if (k <= 0 || H * S === 0) return Infinity
  const scores = Float32Array.from(tokenScoresSync(layer.keys, layer.values, { score: 'low-norm' }) as Float32Array)
  scores.sort((a, b) => (Number.isNaN(a) ? 1 : Number.isNaN(b) ? -1 : b - a)) // highest first, NaN last
  return scores[Math.min(H * k, scores.length) - 1]
}

/** A compress result as a cache layer; ragged heads carry their lengths (KvLayer.heads). */
function asLayer(r: { keys: unknown; values: unknown; headLengths: Int32Array; kept: number }): KvLayer {
  const layer: KvLayer = { keys: r.keys as F32Tensor, values: r.values as F32Tensor }
  if (r.headLengths.some((n) => n !== r.kept)) layer.heads = { lengths: Int32Array.from(r.headLengths), padEnd: r.kept }
  return layer
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

/**
 * The cache after compressing every layer to k = ceil(keepRatio * len) tokens with `policy`
 * (ragged policies: k per head on average, each head its own count, KvLayer.heads);
 * `project`: per layer the project policy's vectors (queryFilters of the prompt's queries).
 */
export function compressPrefill(cache: KvCache, policy: Policy, keepRatio: number, o: PrefillCompression, random: () => number, project?: readonly Float32Array[]): KvCache {
  return cache.map((layer, l) => {
    const S = layer.keys.dims[2], H = layer.keys.dims[1]
    if (o.skipLayers.includes(l) || S < o.pruneAfter) return layer
    const k = Math.ceil(keepRatio * S)
    if (policy === 'random') {
      const keep = Array.from({ length: H }, () => randomKeep(S, k, random))
      return { keys: gather(layer.keys, H, keep), values: gather(layer.values, H, keep) }
    }
    if (policy === 'threshold-low-norm') return asLayer(compressSync(layer.keys, layer.values, { selection: { threshold: thresholdFor(layer, keepRatio) } }))
    return asLayer(compressSync(layer.keys, layer.values, { keepRatio, ...policyOptions(policy, k, project?.[l]) }))
  })
}
