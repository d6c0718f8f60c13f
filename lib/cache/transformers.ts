// kvtrim/transformers: the integration for transformers.js and onnxruntime-node decode loops.
// A CacheCompressor takes a model's cache as those stacks give it (`past_key_values.{l}.key` /
// `.value` feeds, or `present.{l}.key` / `.value` outputs: tensors with { type, data, dims }),
// compresses it after the prefill (compressCache) and while decoding (the Compressor), returns it
// in the same form (the input tensors' own class), and tracks the absolute position of the next
// token: after compression the cache holds fewer tokens than were seen, so the loop must pass
// position_ids explicitly (transformers.js derives them from the attention mask otherwise, which
// is then wrong). It needs neither package: their tensors are used through their fields.
import { compressCache, compressCacheSync } from './cache'
import { Compressor, refuseRaggedHeads, sameKind, view, type CompressorOptions, type StepResult } from './compressor'
import { checkKnown, intList, invalid, isArrayLike, isInt, maxOf, readOptions } from '../check'
import { KvtrimError } from '../errors'
import type { TensorLike } from '../types'
import type { Budgets, CacheOptions, LayerReport } from './types'

export interface CacheCompressorOptions {
  /** After the prefill (compressCache): keep ceil(keepRatio * len) tokens per layer and head; or `keep`, or `budgets`. Omit all three to leave the prefill as is. */
  keepRatio?: number
  keep?: number
  budgets?: Budgets
  /** compressCache's: layers shorter than this are left as is (the reference's default is 2048). */
  pruneAfter?: number
  /** Layers never compressed: refused while `sharedMask` is true (they would keep more tokens than the others). */
  skipLayers?: readonly number[]
  /** Always kept at every compression: the first `sink` and the last `recent` tokens. */
  sink?: number
  recent?: number
  /** Only 'per-head' (the default): the decoder's one attention mask per batch entry cannot take per-head lengths (docs/policies.md "Selection modes"). */
  selection?: 'per-head'
  /**
   * The scorer (docs/policies.md): 'low-norm' (default, the paper), 'high-norm', 'kv-norm',
   * 'keydiff', or { project: one Float32Array per layer }; after the prefill and while decoding.
   */
  score?: CompressorOptions['score']
  /**
   * While decoding: every `every` new tokens, compress each layer back to `target` tokens
   * (default: each layer's length after afterPrefill). Omit to compress only after the prefill.
   */
  decode?: { every: number; target?: number }
  /**
   * true (default): one attention mask serves every layer, as in transformers.js and
   * onnxruntime-node exports, so every layer must hold the same number of tokens: per-layer
   * budgets that differ between layers are refused. false: a runtime with a mask per layer.
   */
  sharedMask?: boolean
}

export interface CacheCompressorResult<C> {
  /** The cache in the form it was given (the same object when nothing was compressed). */
  cache: C
  /** Whether any layer was compressed. */
  compressed: boolean
  /** Tokens held per layer after this call. */
  lengths: number[]
  /** The position id of the next token: the absolute positions seen, whatever the cache holds. */
  position: number
  /** afterPrefill: compressCache's report per layer. */
  report?: LayerReport[]
  /** afterStep: the Compressor's step. */
  step?: StepResult<C>
}

/** An int64 tensor as transformers.js and onnxruntime-node take them (or built with their Tensor class). */
export interface Int64Tensor {
  type: 'int64'
  data: BigInt64Array
  dims: number[]
}

export type TensorClass<T> = new (type: 'int64', data: BigInt64Array, dims: number[]) => T

/** The most tokens {@link CacheCompressor.nextInputs} makes inputs for in one call: 2^24. */
export const MAX_NEXT_TOKENS = 2 ** 24
const PRESENT = /^present\.(\d+)\.(key|value)$/

/**
 * Renames a model's outputs `present.{l}.key` / `.value` to the inputs of the next step,
 * `past_key_values.{l}.key` / `.value` (the same tensors; other outputs such as logits are left out).
 */
export function pastFromPresent<T>(outputs: Record<string, T>): Record<string, T> {
  if (typeof outputs !== 'object' || outputs === null || Array.isArray(outputs)) {
    throw invalid('INVALID_ARGUMENT', "a model's outputs object { 'present.0.key': tensor, ... }", 'outputs', outputs)
  }
  const past: Record<string, T> = {}
  for (const [name, t] of Object.entries(outputs)) {
    const m = PRESENT.exec(name)
    if (m) past[`past_key_values.${m[1]}.${m[2]}`] = t
  }
  if (Object.keys(past).length === 0) {
    throw new KvtrimError(`Expected outputs named present.{layer}.key / .value but received ${Object.keys(outputs).join(', ') || 'none'}`, 'INVALID_ARGUMENT')
  }
  return past
}

/** Why per-layer budgets would differ between layers, or undefined when they cannot. */
function differingBudgets(o: CacheCompressorOptions): string | undefined {
  const skip: unknown = o.skipLayers
  if (Array.isArray(skip) && skip.length > 0) return `skipLayers [${skip.map(String).join(', ')}] keep every token of those layers while the others are compressed`
  const b: unknown = o.budgets
  if (b === undefined || b === 'uniform') return undefined
  const obj = typeof b === 'object' && b !== null
  if (b === 'pyramid' || (obj && 'pyramid' in b)) return "budgets 'pyramid' give lower layers more tokens than upper ones"
  if (obj && 'zigzag' in b) return 'budgets { zigzag } give each layer its own number of tokens'
  const list: unknown = Array.isArray(b) ? b : obj && 'keep' in b ? (b as { keep: unknown }).keep : undefined
  if (isArrayLike(list)) {
    const xs = Array.prototype.slice.call(list, 0, Math.min(list.length, 2 ** 20)) as unknown[]
    if (xs.some((x) => x !== xs[0])) return `per-layer budgets [${xs.map(String).join(', ')}] differ between layers`
  }
  return undefined
}

function sharedMaskError(why: string): KvtrimError {
  return new KvtrimError(
    `Expected every layer to keep the same number of tokens, but ${why}: one attention mask serves every layer ` +
      'in transformers.js and onnxruntime-node exports (its length must be the cache length + new tokens in every layer). ' +
      'Use one keepRatio / keep for all layers (heads may still keep different tokens), or sharedMask: false for a runtime with a mask per layer',
    'INVALID_BUDGETS',
  )
}

/**
 * Compression for a decode loop over a transformers.js / onnxruntime-node cache:
 *
 * ```ts
 * const kv = new CacheCompressor({ keepRatio: 0.5, decode: { every: 8 } })
 * let { cache: past } = await kv.afterPrefill(pastFromPresent(prefillOutputs))
 * for (;;) {
 *   const out = await session.run({ input_ids, ...kv.nextInputs(1, Tensor), ...past })
 *   ;({ cache: past } = await kv.afterStep(pastFromPresent(out)))
 * }
 * ```
 */
export class CacheCompressor {
  readonly #o: CacheCompressorOptions
  readonly #prefill: CacheOptions | undefined
  #decoder: Compressor | undefined
  #lengths: number[] | undefined
  #position = 0
  #busy = false

  constructor(options: CacheCompressorOptions = {}) {
    if (typeof options !== 'object' || options === null) throw invalid('INVALID_ARGUMENT', 'an options object', 'options', options)
    refuseRaggedHeads(options, 'a CacheCompressor')
    const known = ['keepRatio', 'keep', 'budgets', 'pruneAfter', 'skipLayers', 'sink', 'recent', 'score', 'selection', 'decode', 'sharedMask']
    checkKnown(options, known)
    const o = readOptions<CacheCompressorOptions>(options, known) // each read once: what is checked is what is used
    refuseRaggedHeads(o, 'a CacheCompressor') // the copy: a getter may answer differently the second time
    if (o.skipLayers !== undefined) {
      const skip = Array.isArray(o.skipLayers) ? intList(o.skipLayers) : undefined
      if (!skip) throw invalid('INVALID_OPTION', 'an array of layer indices', 'skipLayers', o.skipLayers)
      o.skipLayers = skip
    }
    if (o.sharedMask !== undefined && typeof o.sharedMask !== 'boolean') throw invalid('INVALID_OPTION', 'a boolean', 'sharedMask', o.sharedMask)
    if (o.decode !== undefined) {
      if (typeof o.decode !== 'object' || o.decode === null || !isInt(o.decode.every) || o.decode.every < 1) {
        throw invalid('INVALID_OPTION', '{ every: a positive integer, target?: a non-negative integer }', 'decode', o.decode)
      }
      if (o.decode.target !== undefined && (!isInt(o.decode.target) || o.decode.target < 0)) {
        throw invalid('INVALID_OPTION', 'a non-negative integer (one count: every layer keeps the same)', 'decode.target', o.decode.target)
      }
      checkKnown(o.decode, ['every', 'target'], { prefix: 'decode.', label: 'known' })
      o.decode = { every: o.decode.every, ...(o.decode.target !== undefined && { target: o.decode.target }) }
    }
    if (o.decode !== undefined && typeof o.score === 'object' && o.score !== null && 'scores' in o.score) {
      throw new KvtrimError('Expected score to be a name or { project } with decode: given scores ({ scores }) fit one compressCache, not the decode steps', 'INVALID_OPTION')
    }
    if (o.sharedMask !== false) {
      const why = differingBudgets(o)
      if (why) throw sharedMaskError(why)
    }
    this.#o = { ...o }
    if (o.keepRatio !== undefined || o.keep !== undefined || o.budgets !== undefined) {
      const c: CacheOptions = {}
      for (const k of ['keepRatio', 'keep', 'budgets', 'pruneAfter', 'skipLayers', 'sink', 'recent', 'score'] as const) {
        if (o[k] !== undefined) (c as Record<string, unknown>)[k] = o[k]
      }
      this.#prefill = c
    }
  }

  /** The position id of the next token (the absolute positions seen so far). */
  get position(): number {
    return this.#position
  }

  /** Tokens the cache holds per layer after the last call (undefined before afterPrefill). */
  get lengths(): readonly number[] | undefined {
    return this.#lengths
  }

  /** Forgets the sequence: the next call must be afterPrefill. */
  reset(): void {
    this.#decoder = undefined
    this.#lengths = undefined
    this.#position = 0
  }

  /**
   * Inputs for the next `count` tokens: position_ids [1, count] from the absolute position, and an
   * attention_mask of ones [1, cache length + count]; int64, built with `Tensor` when given
   * (transformers.js's or onnxruntime-node's `Tensor` class). `count` is at most
   * {@link MAX_NEXT_TOKENS} (2^24: 128 MiB per int64 tensor), and the positions stay below 2^31
   * (kvtrim's limit on a cache's rows).
   */
  nextInputs<T = Int64Tensor>(count = 1, Tensor?: TensorClass<T>): { position_ids: T; attention_mask: T } {
    if (this.#lengths === undefined) throw new KvtrimError('Expected afterPrefill(cache) before nextInputs()', 'INVALID_ARGUMENT')
    if (!isInt(count) || count < 1 || count > MAX_NEXT_TOKENS) {
      throw invalid('INVALID_ARGUMENT', `a positive integer of at most ${MAX_NEXT_TOKENS} (2^24 tokens per step)`, 'count', count)
    }
    const maskLength = this.#maskLength() + count
    if (this.#position + count > 2 ** 31 - 1 || maskLength > 2 ** 31 - 1) {
      throw new KvtrimError(
        `Expected the next positions and the attention mask to stay below 2^31 but position ${this.#position} + count ${count} ` +
          `and mask length ${maskLength} do not`,
        'INVALID_ARGUMENT',
      )
    }
    if (Tensor !== undefined && typeof Tensor !== 'function') {
      throw invalid('INVALID_ARGUMENT', "a Tensor class (new Tensor('int64', data, dims))", 'Tensor', Tensor)
    }
    const ids = new BigInt64Array(count)
    for (let i = 0; i < count; i++) ids[i] = BigInt(this.#position + i)
    const mask = new BigInt64Array(maskLength).fill(1n)
    const make = (data: BigInt64Array): T =>
      Tensor ? new Tensor('int64', data, [1, data.length]) : ({ type: 'int64', data, dims: [1, data.length] } as unknown as T)
    return { position_ids: make(ids), attention_mask: make(mask) }
  }

  /** Compresses the cache right after the prefill (when a keepRatio / keep / budgets was given); its length is the position of the next token. */
  afterPrefillSync<C>(cache: C): CacheCompressorResult<C> {
    const v = this.#start(cache)
    if (!this.#prefill) return this.#prefilled(cache, v.shapes.map((d) => d[2]), false)
    const r = compressCacheSync(v.layers, this.#prefill)
    return this.#prefillDone(cache, v, r.layers, r.report)
  }

  /** {@link afterPrefillSync}, off the event loop. */
  async afterPrefill<C>(cache: C): Promise<CacheCompressorResult<C>> {
    const v = this.#start(cache)
    if (!this.#prefill) return this.#prefilled(cache, v.shapes.map((d) => d[2]), false)
    this.#busy = true
    try {
      const r = await compressCache(v.layers, this.#prefill)
      return this.#prefillDone(cache, v, r.layers, r.report)
    } finally {
      this.#busy = false
    }
  }

  /** After a decoding step (the cache holds the new tokens): compresses every `decode.every` tokens back to the target. */
  afterStepSync<C>(cache: C): CacheCompressorResult<C> {
    const appended = this.#stepStart(cache)
    const decoder = this.#decoderFor(appended)
    if (!decoder) return this.#stepped(cache, appended)
    return this.#stepDone(decoder.stepSync(cache), appended)
  }

  /** {@link afterStepSync}, off the event loop. */
  async afterStep<C>(cache: C): Promise<CacheCompressorResult<C>> {
    const appended = this.#stepStart(cache)
    const decoder = this.#decoderFor(appended)
    if (!decoder) return this.#stepped(cache, appended)
    this.#busy = true
    try {
      return this.#stepDone(await decoder.step(cache), appended)
    } finally {
      this.#busy = false
    }
  }

  #maskLength(): number {
    return maxOf(this.#lengths!, 0)
  }

  #start(cache: unknown): ReturnType<typeof view> {
    if (this.#busy) throw new KvtrimError('Expected one call at a time: the previous one has not settled', 'INVALID_ARGUMENT')
    const v = view(cache)
    if (this.#o.sharedMask !== false) this.#checkEqual(v.shapes.map((d) => d[2]), 'the cache given has layers of different lengths')
    return v
  }

  #checkEqual(lengths: readonly number[], why: string): void {
    if (lengths.some((x) => x !== lengths[0])) throw sharedMaskError(`${why} (${lengths.join(', ')} tokens)`)
  }

  #prefillDone<C>(cache: C, v: ReturnType<typeof view>, out: ReadonlyArray<{ keys: TensorLike; values: TensorLike }>, report: LayerReport[]): CacheCompressorResult<C> {
    const lengths = out.map((l) => l.keys.dims[2])
    if (this.#o.sharedMask !== false) this.#checkEqual(lengths, 'the per-layer budgets kept different numbers of tokens')
    const compressed = report.some((r) => r.compressed)
    const next = out.map((l, i) =>
      l.keys === v.layers[i].keys ? v.layers[i] : { keys: sameKind(v.layers[i].keys, l.keys as never), values: sameKind(v.layers[i].values, l.values as never) },
    )
    const res = this.#prefilled((compressed ? v.rebuild(next) : cache) as C, lengths, compressed)
    res.report = report
    // position: the prefill's length, not what the cache holds now
    this.#position = maxOf(report.map((r) => r.before), 0)
    res.position = this.#position
    return res
  }

  #prefilled<C>(cache: C, lengths: number[], compressed: boolean): CacheCompressorResult<C> {
    this.#lengths = lengths
    this.#position = maxOf(lengths, 0)
    this.#decoder = undefined // made at the first afterStep, when the position it starts from is known
    return { cache, compressed, lengths: lengths.slice(), position: this.#position }
  }

  #stepStart(cache: unknown): number {
    if (this.#lengths === undefined) throw new KvtrimError('Expected afterPrefill(cache) before afterStep(cache)', 'INVALID_ARGUMENT')
    const v = this.#start(cache)
    const lens = v.shapes.map((d) => d[2])
    if (lens.length !== this.#lengths.length) throw new KvtrimError(`Expected a cache of ${this.#lengths.length} layers, as after the prefill, but received ${lens.length}`, 'INVALID_ARGUMENT')
    const appended = lens[0] - this.#lengths[0]
    lens.forEach((len, l) => {
      if (len - this.#lengths![l] !== appended || appended < 0) {
        throw new KvtrimError(
          `Expected every layer to have grown by the same number of tokens since the last call, but layer ${l} went from ${this.#lengths![l]} to ${len} ` +
            `(layer 0: ${this.#lengths![0]} to ${lens[0]}); pass the cache the model returned for the last tokens, or reset() for a new sequence`,
          'INVALID_ARGUMENT',
        )
      }
    })
    return appended
  }

  /** The decode-time Compressor (kvtrim's DecodingPress), made at the first step after the prefill. */
  #decoderFor(appended: number): Compressor | undefined {
    const d = this.#o.decode
    if (!d || this.#decoder) return this.#decoder
    const o = this.#o
    // interval every - 1: a layer at target + every tokens (every new ones) goes back to target
    this.#decoder = new Compressor({
      target: d.target ?? this.#lengths!.slice(), // each layer's length after the prefill
      interval: d.every - 1,
      position: this.#position + appended,
      ...(o.sink !== undefined && { sink: o.sink }),
      ...(o.recent !== undefined && { recent: o.recent }),
      ...(o.score !== undefined && { score: o.score }),
      ...(o.skipLayers !== undefined && { skipLayers: o.skipLayers }),
    })
    return this.#decoder
  }

  #stepped<C>(cache: C, appended: number): CacheCompressorResult<C> {
    this.#lengths = this.#lengths!.map((x) => x + appended)
    this.#position += appended
    return { cache, compressed: false, lengths: this.#lengths.slice(), position: this.#position }
  }

  #stepDone<C>(s: StepResult<C>, appended: number): CacheCompressorResult<C> {
    if (this.#o.sharedMask !== false) this.#checkEqual(s.lengths, 'the decode-time compression kept different numbers of tokens')
    this.#lengths = s.lengths.slice()
    this.#position += appended
    return { cache: s.cache, compressed: s.compressed, lengths: s.lengths.slice(), position: this.#position, step: s }
  }
}
