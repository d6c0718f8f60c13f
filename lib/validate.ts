// Option checks with one message template (sharp's "Expected <what> for <name> but received
// <value>"). Tensor checks live in native/core so that every backend applies the same rules.
import type { NativeCompressOptions } from '../binding'
import { binding } from './binding'
import { KvtrimError, type KvtrimErrorCode } from './errors'
import { budgetKind, checkCounts, checkRatios, layerBudgets } from './budgets'
import type { Budgets, CacheOptions } from './types'

export function describe(value: unknown): string {
  try {
    if (value === null) return 'null'
    if (Array.isArray(value)) return `an array of length ${value.length}`
    if (ArrayBuffer.isView(value)) return `a ${value.constructor.name}`
    if (typeof value === 'string') return `'${value.length > 40 ? `${value.slice(0, 40)}...` : value}' of type string`
    if (typeof value === 'object') return 'an object'
    if (typeof value === 'function') return 'a function'
    return `${String(value)} of type ${typeof value}`
  } catch {
    // a revoked Proxy, a throwing constructor getter: describing must not replace the error
    return `a value of type ${typeof value}`
  }
}

export function invalid(code: KvtrimErrorCode, expected: string, name: string, value: unknown): KvtrimError {
  return new KvtrimError(`Expected ${expected} for ${name} but received ${describe(value)}`, code)
}

export const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v)

/** An array or a typed array (not a DataView): what kvtrim takes for a list of numbers. */
export function isArrayLike(v: unknown): v is ArrayLike<unknown> {
  return Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView))
}

/**
 * A copy of a list of safe integers as a plain array (so that later reads see what was
 * checked, and no getter runs later), or undefined when `v` is not one. Holes fail, and a
 * huge sparse array fails at its first hole instead of being walked.
 */
export function intList(v: unknown): number[] | undefined {
  if (!isArrayLike(v)) return undefined
  const n = v.length
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const x = v[i]
    if (!isInt(x)) return undefined
    out.push(x)
  }
  return out
}

/**
 * The known options of an options object, each read once (own or inherited, getters included),
 * into a plain object: what is checked afterwards is what is used. Unset ones are left out.
 */
export function readOptions<T extends object>(options: object, known: readonly string[]): T {
  const out: Record<string, unknown> = {}
  for (const key of known) {
    const v = (options as Record<string, unknown>)[key]
    if (v !== undefined) out[key] = v
  }
  return out as T
}

/** max(floor, ...xs) by a loop: spreading a long list into Math.max overflows the stack. */
export function maxOf(xs: ArrayLike<number>, floor = -Infinity): number {
  let m = floor
  for (let i = 0; i < xs.length; i++) if (xs[i] > m) m = xs[i]
  return m
}

/** A CUDA stream or device pointer as a bigint: lossless, in [0, 2^64). */
export function isU64(v: unknown): v is bigint {
  return typeof v === 'bigint' && v >= 0n && v < 1n << 64n
}

/**
 * Not needed by compress or keyNorms any more (native code reads every field once, a Proxy of
 * an array as the array it is, before it takes a pointer: native/addon/args.h); its last user
 * is layerUncertainty, which can pass host tensors as they are and then this can go.
 * A host tensor as native code gets it: its fields read once each, here, and dims copied to a
 * plain array. So no getter or Proxy trap of the caller's runs while native code holds a data
 * pointer, a Proxy of an array is read as the array it is, and what native code checks is what
 * it uses. Anything that is not a tensor-like object goes as it is (native code says why not).
 * No copy of the data.
 */
export function hostSnapshot(t: unknown): unknown {
  if (typeof t !== 'object' || t === null) return t
  const o = t as { type?: unknown; data?: unknown; dims?: unknown }
  const type = o.type, data = o.data, dims = o.dims
  // a long dims array goes as it is: its rank is wrong anyway, and it is not walked here
  const copy = Array.isArray(dims) && dims.length <= 64 ? Array.from({ length: dims.length }, (_, i) => dims[i] as unknown) : dims
  return { type, data, dims: copy }
}

/**
 * The dims of a [batch, kvHeads, seqLen, headDim] tensor as the facade needs them before native
 * code sees the tensor (for arithmetic of its own): 4 safe non-negative integers. Returns a
 * copy; the full checks (headDim, rows, data length) stay native.
 */
export function dims4(dims: unknown, name: string): [number, number, number, number] {
  if (!Array.isArray(dims)) throw invalid('INVALID_DIMS', 'an array [batch, kvHeads, seqLen, headDim]', name, dims)
  if (dims.length !== 4) throw invalid('INVALID_RANK', '4 entries [batch, kvHeads, seqLen, headDim]', name, dims)
  const out = [0, 0, 0, 0] as [number, number, number, number]
  for (let i = 0; i < 4; i++) {
    const d = dims[i]
    if (!isInt(d) || d < 0) throw invalid('INVALID_DIMS', 'a non-negative integer', `${name}[${i}]`, d)
    out[i] = d
  }
  return out
}

function checkObject(options: unknown): asserts options is object {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalid('INVALID_ARGUMENT', 'an options object', 'options', options)
  }
}

/**
 * @deprecated the rules live in native code now (native/addon/options.cc, the one options
 * decoder); use decodeCompressOptions from './compress'. Kept only for cacheOptions below.
 */
function compressOptions(options: unknown, budgetGiven = false): NativeCompressOptions {
  return binding().decodeOptions(options, budgetGiven)
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
  const budgets: unknown = o.budgets
  const kind = budgetKind(budgets)
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
  const givenPrune: unknown = o.pruneAfter
  const pruneAfter = givenPrune ?? 0
  if (!isInt(pruneAfter) || pruneAfter < 0) {
    throw invalid('INVALID_OPTION', 'a non-negative integer', 'pruneAfter', givenPrune)
  }
  const givenSkip: unknown = o.skipLayers
  const skipLayers = givenSkip === undefined ? [] : Array.isArray(givenSkip) ? intList(givenSkip) : undefined
  if (skipLayers === undefined) {
    throw invalid('INVALID_OPTION', 'an array of layer indices', 'skipLayers', givenSkip)
  }
  let budget: CachePlan['budget'] = () => () => ({ keepRatio: base.keepRatio, keep: base.keep })
  if (kind === 'ratios' || kind === 'counts') {
    if (given) throw new KvtrimError('Expected either per-layer budgets or keepRatio / keep, not both', 'INVALID_OPTION')
    if (kind === 'ratios') {
      const ratios = checkRatios(budgets as readonly unknown[], layerCount)
      budget = () => (l) => ({ keepRatio: ratios[l] })
    } else {
      const keep = checkCounts(budgets as { keep: unknown; total?: unknown }, layerCount)
      budget = () => (l) => ({ keep: keep[l] })
    }
  } else if (kind === 'pyramid' || kind === 'zigzag') {
    const policy = budgets as Budgets
    const ctx = { layers: layerCount, keepRatio: base.keepRatio, keep: base.keep, sink: base.sink, recent: base.recent }
    budget = (seqLen) => {
      const counts = layerBudgets(policy, { ...ctx, seqLen })
      // a layer shorter than the longest keeps at most its own length
      return (l, capacity) => ({ keepRatio: undefined, keep: Math.min(counts[l], capacity) })
    }
  }
  return { base, pruneAfter, skip: new Set(skipLayers), budget }
}
