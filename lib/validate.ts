// Option checks with one message template (sharp's "Expected <what> for <name> but received
// <value>"). Tensor checks live in native/core so that every backend applies the same rules.
import type { NativeCompressOptions } from '../binding'
import { KvtrimError, type KvtrimErrorCode } from './errors'
import { budgetKind, checkCounts, checkRatios, layerBudgets } from './budgets'
import type { Budgets, CacheOptions, CompressOptions } from './types'

export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return `an array of length ${value.length}`
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name}`
  if (typeof value === 'string') return `'${value}' of type string`
  if (typeof value === 'object') return 'an object'
  return `${String(value)} of type ${typeof value}`
}

export function invalid(code: KvtrimErrorCode, expected: string, name: string, value: unknown): KvtrimError {
  return new KvtrimError(`Expected ${expected} for ${name} but received ${describe(value)}`, code)
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v)

const COMPRESS_KEYS = ['keepRatio', 'keep', 'order', 'score', 'sink', 'recent', 'lengths', 'stream'] as const
const CACHE_KEYS = [...COMPRESS_KEYS, 'pruneAfter', 'skipLayers', 'budgets'] as const

function checkKnown(options: object, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      const near = known.find((k) => k.toLowerCase() === key.toLowerCase())
      throw new KvtrimError(
        `Unknown option '${key}'` + (near ? `; did you mean '${near}'?` : `; known options: ${known.join(', ')}`),
        'INVALID_OPTION',
      )
    }
  }
}

function checkObject(options: unknown): asserts options is object {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalid('INVALID_ARGUMENT', 'an options object', 'options', options)
  }
}

/**
 * Types of every compress option; ranges that depend on the tensors (keep <= seqLen, lengths
 * <= capacity) and keepRatio's range are checked natively, in one place for all backends.
 * `budgetGiven`: compressCache's per-layer budgets stand in for keepRatio / keep.
 */
export function compressOptions(options: unknown, budgetGiven = false): NativeCompressOptions {
  checkObject(options)
  checkKnown(options, budgetGiven ? CACHE_KEYS : COMPRESS_KEYS)
  const o = options as CompressOptions
  if (o.keepRatio !== undefined && (typeof o.keepRatio !== 'number' || Number.isNaN(o.keepRatio))) {
    throw invalid('INVALID_KEEP_RATIO', 'a number in (0, 1]', 'keepRatio', o.keepRatio)
  }
  if (o.keep !== undefined && !isInt(o.keep)) {
    throw invalid('INVALID_KEEP', 'an integer in [0, seqLen]', 'keep', o.keep)
  }
  if (o.keepRatio !== undefined && o.keep !== undefined) {
    throw new KvtrimError('Expected one of keepRatio or keep, not both', 'INVALID_OPTION')
  }
  if (o.keepRatio === undefined && o.keep === undefined && !budgetGiven) {
    throw new KvtrimError('Expected keepRatio (in (0, 1]) or keep (a token count) in options', 'INVALID_OPTION')
  }
  const order = o.order ?? 'position'
  if (order !== 'position' && order !== 'norm') {
    throw invalid('INVALID_OPTION', "'position' or 'norm'", 'order', o.order)
  }
  const score = o.score ?? 'low-norm'
  if (score !== 'low-norm' && score !== 'high-norm') {
    throw invalid('INVALID_OPTION', "'low-norm' or 'high-norm'", 'score', o.score)
  }
  const sink = o.sink ?? 0
  if (!isInt(sink) || sink < 0) throw invalid('INVALID_SINK', 'a non-negative integer', 'sink', o.sink)
  const recent = o.recent ?? 0
  if (!isInt(recent) || recent < 0) throw invalid('INVALID_RECENT', 'a non-negative integer', 'recent', o.recent)
  let lengths: ArrayLike<number> | undefined
  if (o.lengths !== undefined) {
    const l = o.lengths as unknown
    const arrayLike = Array.isArray(l) || (ArrayBuffer.isView(l) && !(l instanceof DataView))
    if (!arrayLike || !Array.from(l as ArrayLike<unknown>).every(isInt)) {
      throw invalid('INVALID_LENGTHS', 'an array of integers (one valid length per batch entry)', 'lengths', l)
    }
    lengths = l as ArrayLike<number>
  }
  const out: NativeCompressOptions = { order, score, sink, recent }
  if (o.keepRatio !== undefined) out.keepRatio = o.keepRatio
  if (o.keep !== undefined) out.keep = o.keep
  if (lengths !== undefined) out.lengths = lengths
  if (o.stream !== undefined) {
    if (typeof o.stream !== 'bigint' || o.stream < 0n) throw invalid('INVALID_OPTION', 'a cudaStream_t as a bigint', 'stream', o.stream)
    out.stream = o.stream
  }
  return out
}

export interface CachePlan {
  base: NativeCompressOptions
  pruneAfter: number
  skip: Set<number>
  /**
   * per layer: the keepRatio / keep to use, given the longest valid length over the layers
   * (seqLen) and the layer's own dims[2] (capacity)
   */
  budget: (seqLen: number) => (layer: number, capacity: number) => { keepRatio?: number; keep?: number }
}

export function cacheOptions(options: unknown, layerCount: number): CachePlan {
  checkObject(options)
  const o = options as CacheOptions
  const kind = budgetKind(o.budgets)
  const base = compressOptions(options, true)
  const given = base.keepRatio !== undefined || base.keep !== undefined
  if (!given && (kind === 'uniform' || kind === 'pyramid' || kind === 'zigzag')) {
    throw new KvtrimError(
      kind === 'uniform'
        ? 'Expected keepRatio, keep or per-layer budgets in options'
        : `Expected keepRatio or keep (the average per-layer budget) with budgets '${kind}'`,
      'INVALID_OPTION',
    )
  }
  const pruneAfter = o.pruneAfter ?? 0
  if (!isInt(pruneAfter) || pruneAfter < 0) {
    throw invalid('INVALID_OPTION', 'a non-negative integer', 'pruneAfter', o.pruneAfter)
  }
  const skipLayers = o.skipLayers ?? []
  if (!Array.isArray(skipLayers) || !skipLayers.every(isInt)) {
    throw invalid('INVALID_OPTION', 'an array of layer indices', 'skipLayers', o.skipLayers)
  }
  let budget: CachePlan['budget'] = () => () => ({ keepRatio: base.keepRatio, keep: base.keep })
  if (kind === 'ratios' || kind === 'counts') {
    if (given) throw new KvtrimError('Expected either per-layer budgets or keepRatio / keep, not both', 'INVALID_OPTION')
    if (kind === 'ratios') {
      const ratios = checkRatios(o.budgets as readonly unknown[], layerCount)
      budget = () => (l) => ({ keepRatio: ratios[l] })
    } else {
      const keep = checkCounts(o.budgets as { keep: unknown; total?: unknown }, layerCount)
      budget = () => (l) => ({ keep: keep[l] })
    }
  } else if (kind === 'pyramid' || kind === 'zigzag') {
    const policy = o.budgets as Budgets
    const ctx = { layers: layerCount, keepRatio: base.keepRatio, keep: base.keep, sink: base.sink, recent: base.recent }
    budget = (seqLen) => {
      const counts = layerBudgets(policy, { ...ctx, seqLen })
      // a layer shorter than the longest keeps at most its own length
      return (l, capacity) => ({ keepRatio: undefined, keep: Math.min(counts[l], capacity) })
    }
  }
  return { base, pruneAfter, skip: new Set(skipLayers), budget }
}
