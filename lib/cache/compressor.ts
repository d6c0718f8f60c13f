// Compressor: decode-time compression for generation loops, like kvpress's DecodingPress. It
// holds a target size per layer and an interval; step(cache) compresses a layer back to its
// target when it holds more than target + interval tokens. Caches are taken and returned in
// their own form: an array of { keys, values }, or a transformers.js / onnxruntime
// `past_key_values` object ({ 'past_key_values.0.key': Tensor, ... }).
import { checkKnown, describe, dims4, intList, invalid, isInt, maxOf, prefixed, readOptions } from '../check'
import { driveAsync, driveSync, type Steps } from '../drive'
import { KvtrimError } from '../errors'
import { keepCount } from '../keep-count'
import { compress, compressInPlace, compressInPlaceSync, compressSync, decodeCompressOptions } from '../compress'
import { tokenScores, tokenScoresSync } from '../scores'
import { layerScores } from './options'
import { ScoreMemory } from './score-memory'
import type { NativeScore } from '../../binding'
import { isDeviceTensor } from '../tensor'
import type { CompressOptions, CompressResult, HostTensor, InPlaceResult, TensorLike } from '../types'
import type { CacheLayer } from './types'

export interface CompressorOptions {
  /** Tokens each layer keeps after a compression: one count, or one per layer. */
  target?: number | readonly number[]
  /** Or the target as a fraction of each layer's length at the first step (the prefill): ceil(keepRatio * len). */
  keepRatio?: number
  /** A layer is compressed when it holds more than target + interval tokens (a non-negative integer). */
  interval: number
  /**
   * 'dynamic' (default): dims[2] is each layer's length; compressed layers come back as new
   * tensors. 'static': dims[2] is a capacity; the valid length is tracked here and layers are
   * compressed in their own memory (compressInPlace), so the cache object comes back as is.
   */
  mode?: 'dynamic' | 'static'
  /** compress's options, applied at every compression (the kept tokens stay in position order). */
  sink?: number
  recent?: number
  /**
   * The scorer (docs/policies.md): a name, or { project: one Float32Array per layer }. Given
   * scores ({ scores }) are compressCache's and compress's only.
   */
  score?: 'low-norm' | 'high-norm' | 'kv-norm' | 'keydiff' | { project: readonly (Float32Array | readonly number[])[] }
  /**
   * Whether to remember the scores of the tokens a layer keeps and score only the tokens
   * appended since (host caches; default true). The result is bit-identical either way; turn it
   * off only if you modify the kept keys or values between steps (e.g. re-rotate keys), which a
   * one-row probe would not always notice. keydiff always rescores (its anchor is a mean).
   */
  reuseScores?: boolean
  /** Only 'per-head' (the default): decoders take one length per layer, not per head (docs/policies.md "Selection modes"). */
  selection?: 'per-head'
  /** Layers never compressed. */
  skipLayers?: readonly number[]
  /**
   * Absolute positions seen at the first step: the tokens the model has processed so far (default:
   * the first step's longest layer). Give it when the cache was already compressed (by
   * compressCache after the prefill): the prefill length.
   */
  position?: number
}

/**
 * @internal The Compressor and CacheCompressor hand caches to decoders whose attention takes
 * one length (or mask) per batch entry, shared by every head: ragged per-head counts
 * (selection, headKeep) cannot go there (docs/policies.md "Who can use per-head lengths").
 * Checked by `in`, before any option is read.
 */
export function refuseRaggedHeads(options: object, who: string): void {
  for (const name of ['selection', 'headKeep']) {
    // selection: 'per-head' (the default) is what these do anyway
    if (name in options && !(name === 'selection' && isPerHead((options as { selection?: unknown }).selection))) {
      throw new KvtrimError(
        `Expected no ${name} option in ${who}: its caches have one length per layer, shared by every head (an ONNX or ` +
          'transformers.js decoder takes one attention mask per batch entry). Per-head counts are for runtimes that take a length per ' +
          'head: use compress / compressInPlace / compressCache with selection, and their headLengths (docs/policies.md "Selection modes")',
        'INVALID_OPTION',
      )
    }
  }
}

function isPerHead(s: unknown): boolean {
  return s === undefined || s === null || s === 'per-head'
}

export interface StepOptions {
  /**
   * Static mode: the valid length of every layer (one number, or one per layer). Required at
   * the first step; later steps default to the length after the previous step + `appended`.
   */
  lengths?: number | readonly number[]
  /** Static mode: tokens written since the previous step when `lengths` is not given (default 1). */
  appended?: number
}

export interface LayerStep {
  layer: number
  /** valid tokens before the step */
  before: number
  /** valid tokens after the step */
  after: number
  compressed: boolean
  /** for a compressed layer, [B, H, after]: the kept rows' positions in the cache before the step */
  indices?: Int32Array
}

export interface StepResult<C> {
  /** The cache, in the form it was given: a new object with new tensors (dynamic mode), or the same object (static mode). */
  cache: C
  /** Whether any layer was compressed in this step. */
  compressed: boolean
  layers: LayerStep[]
  /** Valid tokens per layer after the step (static mode: write the next token at this row). */
  lengths: number[]
  /**
   * Absolute positions seen so far: the position id of the next token. After a compression
   * the cache holds fewer tokens than this; pass position_ids explicitly.
   */
  position: number
}

/** A transformers.js / onnxruntime-style cache: `{prefix}.{layer}.key` / `.value` properties. */
export type NamedCache = Record<string, unknown>

type Layer = CacheLayer<TensorLike>

export interface View {
  layers: Layer[]
  /** per layer: keys.dims, read once and checked to be 4 non-negative integers */
  shapes: Array<[number, number, number, number]>
  rebuild(next: Layer[]): unknown
}

const NAME = /^(.+)\.(\d+)\.(key|value)$/
// A host tensor ({ type, data, dims }) or a device tensor (its layer then runs on the GPU).
const isTensor = (t: unknown): t is TensorLike =>
  isDeviceTensor(t) ||
  (typeof t === 'object' && t !== null && 'dims' in t && 'data' in t && 'type' in t && Array.isArray((t as TensorLike).dims))

/** A kvtrim output tensor in the form of `like`: its class (when it takes (type, data, dims)) and data kind. */
export function sameKind(like: TensorLike, out: HostTensor): TensorLike {
  if (isDeviceTensor(out) || isDeviceTensor(like)) return out // device results are device tensors already
  let data: ArrayBufferView = out.data
  const ctor = (like.data as object).constructor as { new (b: ArrayBufferLike, o: number, n: number): ArrayBufferView; BYTES_PER_ELEMENT?: number }
  if (ctor !== out.data.constructor && ctor.BYTES_PER_ELEMENT === out.data.BYTES_PER_ELEMENT) {
    data = new ctor(out.data.buffer, out.data.byteOffset, out.data.length) // Float16Array in, Float16Array out
  }
  const cls = (like as object).constructor
  if (typeof cls === 'function' && cls !== Object) {
    try {
      const t = new (cls as new (type: string, data: ArrayBufferView, dims: number[]) => TensorLike)(out.type, data, out.dims)
      if (isTensor(t) && t.type === out.type && t.data === data && t.dims.length === 4 && t.dims.every((d, i) => d === out.dims[i])) return t
    } catch {
      // not a (type, data, dims) constructor: a plain object below
    }
  }
  return { type: out.type, data: data as TensorLike['data'], dims: out.dims }
}

export function view(cache: unknown): View {
  if (Array.isArray(cache)) {
    // an index loop, not forEach: a hole is a missing layer (forEach would skip it)
    const shapes: View['shapes'] = []
    for (let i = 0; i < cache.length; i++) {
      const l: unknown = cache[i]
      if (typeof l !== 'object' || l === null || !isTensor((l as Layer).keys) || !isTensor((l as Layer).values)) {
        throw invalid('INVALID_ARGUMENT', '{ keys, values } tensors', `cache[${i}]`, l)
      }
      shapes.push(dims4((l as Layer).keys.dims, `cache[${i}].keys.dims`))
    }
    return { layers: cache as Layer[], shapes, rebuild: (next) => next.map((l, i) => (l === cache[i] ? cache[i] : { keys: l.keys, values: l.values })) }
  }
  if (typeof cache !== 'object' || cache === null) {
    throw invalid('INVALID_ARGUMENT', "an array of { keys, values } or a past_key_values object ('past_key_values.0.key', ...)", 'cache', cache)
  }
  const o = cache as NamedCache
  const names: Array<{ key?: string; value?: string }> = []
  for (const name of Object.keys(o)) {
    const m = NAME.exec(name)
    if (!m) continue
    const l = Number(m[2])
    if (!(l < 2 ** 32 - 1)) continue // not an array index
    names[l] = names[l] ?? {}
    names[l][m[3] as 'key' | 'value'] = name
  }
  if (names.length === 0) {
    throw invalid('INVALID_ARGUMENT', "an array of { keys, values } or a past_key_values object ('past_key_values.0.key', ...)", 'cache', cache)
  }
  const layers: Layer[] = []
  const shapes: View['shapes'] = []
  for (let l = 0; l < names.length; l++) {
    const n = names[l]
    const keys = n?.key ? o[n.key] : undefined, values = n?.value ? o[n.value] : undefined
    if (!isTensor(keys) || !isTensor(values)) {
      throw new KvtrimError(`Expected cache to hold a key and a value tensor for every layer 0..${names.length - 1} but layer ${l} has ${describe(n ? o[n.key ?? n.value ?? ''] : undefined)}`, 'INVALID_ARGUMENT')
    }
    shapes.push(dims4(keys.dims, `${n.key}.dims`))
    layers.push({ keys, values })
  }
  return {
    layers,
    shapes,
    rebuild(next) {
      const out: NamedCache = { ...o }
      next.forEach((l, i) => {
        out[names[i].key as string] = l.keys
        out[names[i].value as string] = l.values
      })
      return out
    },
  }
}

/**
 * Static mode's lengths option: every batch entry at `len`. None when the layer has no rows
 * (batch * kvHeads = 0: the kept count is the same without), or when keys.data cannot hold
 * `batch` rows (not a valid tensor: native code then says why), so that no list longer than the
 * caller's own data is ever made.
 */
function staticLengths(keys: TensorLike, shape: readonly number[], len: number): Int32Array | undefined {
  const [batch, heads] = shape
  if (batch * heads === 0) return undefined
  const room = isDeviceTensor(keys) ? keys.byteLength / 2 : ArrayBuffer.isView(keys.data) ? (keys.data as Uint16Array).length : 0
  if (!(batch <= room)) return undefined
  return new Int32Array(batch).fill(len)
}

type CompressorScore = NonNullable<CompressorOptions['score']>

/**
 * The Compressor's score option, checked by the one native decoder as compressCache's (a name,
 * or { project } with one vector list per layer, copied); given scores are refused: they fit
 * one compress or compressCache, not the decode steps.
 */
function compressorScore(score: unknown): CompressorScore | undefined {
  if (score === undefined) return undefined
  const decoded = decodeCompressOptions({ score }, true).score
  if (typeof decoded === 'object' && 'scores' in decoded) {
    throw new KvtrimError('Expected score to be a name or { project } in a Compressor: given scores (score.scores) fit one compress or compressCache, not the decode steps', 'INVALID_OPTION')
  }
  return decoded as CompressorScore
}

interface Work {
  cache: unknown
  view: View
  before: number[]
  /** per layer: compress options when it is compressed this step */
  ops: Array<CompressOptions | undefined>
  position: number
}

/**
 * Decode-time compression: `new Compressor({ target: 512, interval: 64 })`, then
 * `({ cache } = compressor.stepSync(cache))` after every generation step.
 */
export class Compressor {
  readonly mode: 'dynamic' | 'static'
  readonly interval: number
  readonly #options: CompressorOptions
  readonly #skip: Set<number>
  #targets: number[] | undefined
  /** per layer: its score option (known from the first step on, with the layer count) */
  #scoreOf: ((layer: number) => NativeScore) | undefined
  #lengths: number[] | undefined
  #position = 0
  #busy = false
  readonly #memory = new ScoreMemory()

  constructor(options: CompressorOptions) {
    if (typeof options !== 'object' || options === null) throw invalid('INVALID_ARGUMENT', 'an options object', 'options', options)
    refuseRaggedHeads(options, 'a Compressor')
    const known = ['target', 'keepRatio', 'interval', 'mode', 'sink', 'recent', 'score', 'selection', 'reuseScores', 'skipLayers', 'position']
    checkKnown(options, known)
    const o = readOptions<CompressorOptions>(options, known) // each read once: what is checked is what is used
    refuseRaggedHeads(o, 'a Compressor') // the copy: a getter may answer differently the second time
    if ((o.target === undefined) === (o.keepRatio === undefined)) {
      throw new KvtrimError('Expected one of target (tokens per layer) or keepRatio (of the prefill) in options', 'INVALID_OPTION')
    }
    const target: unknown = o.target
    if (target !== undefined) {
      const list = Array.isArray(target) ? intList(target) : undefined
      const ok = isInt(target) ? target >= 0 : list !== undefined && list.every((t) => t >= 0)
      if (!ok) throw invalid('INVALID_OPTION', 'a non-negative integer or one per layer', 'target', target)
      if (list) o.target = list
    }
    if (o.keepRatio !== undefined && (typeof o.keepRatio !== 'number' || !(o.keepRatio > 0 && o.keepRatio <= 1))) {
      throw invalid('INVALID_KEEP_RATIO', 'a number in (0, 1]', 'keepRatio', o.keepRatio)
    }
    if (!isInt(o.interval) || o.interval < 0) throw invalid('INVALID_OPTION', 'a non-negative integer', 'interval', o.interval)
    const mode = o.mode ?? 'dynamic'
    if (mode !== 'dynamic' && mode !== 'static') throw invalid('INVALID_OPTION', "'dynamic' or 'static'", 'mode', o.mode)
    if (o.sink !== undefined && (!isInt(o.sink) || o.sink < 0)) throw invalid('INVALID_SINK', 'a non-negative integer', 'sink', o.sink)
    if (o.recent !== undefined && (!isInt(o.recent) || o.recent < 0)) throw invalid('INVALID_RECENT', 'a non-negative integer', 'recent', o.recent)
    o.score = compressorScore(o.score)
    if (o.reuseScores !== undefined && typeof o.reuseScores !== 'boolean') {
      throw invalid('INVALID_OPTION', 'a boolean', 'reuseScores', o.reuseScores)
    }
    if (o.skipLayers !== undefined) {
      const skip = Array.isArray(o.skipLayers) ? intList(o.skipLayers) : undefined
      if (!skip) throw invalid('INVALID_OPTION', 'an array of layer indices', 'skipLayers', o.skipLayers)
      o.skipLayers = skip
    }
    if (o.position !== undefined && (!isInt(o.position) || o.position < 0)) {
      throw invalid('INVALID_OPTION', 'a non-negative integer', 'position', o.position)
    }
    this.mode = mode
    this.interval = o.interval
    this.#options = { ...o }
    this.#skip = new Set(o.skipLayers ?? [])
  }

  /** Target size per layer (known from the first step on). */
  get targets(): readonly number[] | undefined {
    return this.#targets
  }

  /** Valid tokens per layer after the last step. */
  get lengths(): readonly number[] | undefined {
    return this.#lengths
  }

  /** Absolute positions seen: the position id of the next token. */
  get position(): number {
    return this.#position
  }

  /** Forgets the sequence: the next step is a first step again (new targets from keepRatio, new position). */
  reset(): void {
    this.#targets = undefined
    this.#lengths = undefined
    this.#position = 0
    this.#memory.forget()
  }

  /** Compresses the layers that hold more than target + interval tokens back to target. */
  stepSync<C>(cache: C, options?: StepOptions): StepResult<C> {
    return driveSync(this.#steps<C>(this.#begin(cache, options)))
  }

  /** {@link stepSync}, off the event loop (one layer after another). Do not touch the cache until it settles. */
  async step<C>(cache: C, options?: StepOptions): Promise<StepResult<C>> {
    const w = this.#begin(cache, options)
    this.#busy = true
    try {
      return await driveAsync(this.#steps<C>(w))
    } finally {
      this.#busy = false
    }
  }

  // One step, written once (lib/drive.ts): yields each layer's compress call, in layer order.
  *#steps<C>(w: Work): Steps<unknown, StepResult<C>> {
    const next = w.view.layers.slice()
    const layers: LayerStep[] = []
    for (let l = 0; l < w.ops.length; l++) {
      const o = w.ops[l]
      const { keys, values } = w.view.layers[l]
      if (!o) {
        layers.push({ layer: l, before: w.before[l], after: w.before[l], compressed: false })
        continue
      }
      try {
        // score only what was appended since this layer's last compression (score-memory.ts)
        const score = o.score
        const plan = this.#options.reuseScores !== false && ScoreMemory.reusable(score) ? this.#memory.plan(l, keys, values, w.before[l]) : undefined
        this.#memory.drop(l)
        let all: Float32Array | undefined
        let oc = o
        if (plan) {
          const so = { score }
          const fresh = (yield { sync: () => tokenScoresSync(plan.keys, plan.values, so), async: () => tokenScores(plan.keys, plan.values, so) }) as Float32Array
          all = plan.assemble(fresh)
          const scores: TensorLike = { type: 'float32', data: all, dims: keys.dims.slice(0, 3) }
          oc = { ...o, score: { scores } }
        }
        let kept: { indices: Int32Array; kept: number }
        if (this.mode === 'static') {
          const r = (yield { sync: () => compressInPlaceSync(keys, values, oc), async: () => compressInPlace(keys, values, oc) }) as InPlaceResult
          layers.push(this.#inPlaceDone(l, w.before[l], r))
          kept = r
        } else {
          const r = (yield { sync: () => compressSync(keys, values, oc), async: () => compress(keys, values, oc) }) as CompressResult
          layers.push(this.#done(l, w.before[l], w.view.layers[l], r, next))
          kept = r
        }
        if (all) this.#memory.kept(l, all, keys.dims, kept.indices, kept.kept, this.mode === 'static' ? keys : next[l].keys)
      } catch (err) {
        throw prefixed(err, l)
      }
    }
    return this.#finish(w, layers, next)
  }

  #begin(cache: unknown, so: StepOptions | undefined): Work {
    if (this.#busy) throw new KvtrimError('Expected one step at a time: the previous step has not settled', 'INVALID_ARGUMENT')
    const v = view(cache)
    const L = v.layers.length
    const first = this.#lengths === undefined
    if (!first && L !== this.#lengths!.length) {
      throw new KvtrimError(`Expected a cache of ${this.#lengths!.length} layers, as at the first step, but received ${L}; call reset() for a new model`, 'INVALID_ARGUMENT')
    }
    const capacity = v.shapes.map((d) => d[2])
    const before = this.#lengthsNow(v, capacity, so, first)
    if (first) {
      const o = this.#options
      let targets: number[]
      if (Array.isArray(o.target)) {
        if (o.target.length !== L) throw invalid('INVALID_OPTION', `${L} targets (one per layer)`, 'target', o.target)
        targets = o.target.slice()
      } else if (o.target !== undefined) {
        targets = new Array<number>(L).fill(o.target as number)
      } else {
        targets = before.map((len) => keepCount(len, { keepRatio: o.keepRatio }))
      }
      this.#scoreOf = o.score === undefined ? undefined : layerScores(o.score as NativeScore, L)
      const protect = (o.sink ?? 0) + (o.recent ?? 0)
      targets.forEach((t, l) => {
        if (t < protect) {
          throw new KvtrimError(`Expected target at least sink + recent = ${protect} (the tokens always kept) but layer ${l}'s target is ${t}`, 'INVALID_OPTION')
        }
        if (this.mode === 'static' && t + this.interval >= capacity[l]) {
          throw new KvtrimError(
            `Expected target + interval (${t} + ${this.interval}) below the capacity of layer ${l} (${capacity[l]}), ` +
              'so that a static cache has room for the token after it',
            'INVALID_OPTION',
          )
        }
      })
      this.#targets = targets
    }
    const appended = first ? 0 : Math.max(0, before[0] - this.#lengths![0])
    const position = first ? (this.#options.position ?? maxOf(before, 0)) : this.#position + appended
    const targets = this.#targets!
    const ops = before.map((len, l): CompressOptions | undefined => {
      if (this.#skip.has(l) || len <= targets[l] + this.interval) return undefined
      const o: CompressOptions = { keep: targets[l], order: 'position' }
      if (this.#options.sink !== undefined) o.sink = this.#options.sink
      if (this.#options.recent !== undefined) o.recent = this.#options.recent
      if (this.#scoreOf) o.score = this.#scoreOf(l) as CompressOptions['score']
      if (this.mode === 'static') {
        const lengths = staticLengths(v.layers[l].keys, v.shapes[l], len)
        if (lengths) o.lengths = lengths
      }
      return o
    })
    return { cache, view: v, before, ops, position }
  }

  #lengthsNow(v: View, capacity: number[], so: StepOptions | undefined, first: boolean): number[] {
    const L = v.layers.length
    if (this.mode === 'dynamic') {
      if (so?.lengths !== undefined || so?.appended !== undefined) {
        throw new KvtrimError("Expected no lengths / appended in a dynamic cache's step (dims[2] is the length); use mode 'static' for a cache with capacity", 'INVALID_OPTION')
      }
      if (!first) {
        capacity.forEach((len, l) => {
          if (len < this.#lengths![l]) {
            throw new KvtrimError(`Expected layer ${l} to hold at least the ${this.#lengths![l]} tokens of the last step but it holds ${len}; call reset() for a new sequence`, 'INVALID_ARGUMENT')
          }
        })
      }
      return capacity.slice()
    }
    let lens: number[]
    if (so?.lengths !== undefined) {
      const given = so.lengths
      lens = typeof given === 'number' ? new Array<number>(L).fill(given) : (Array.isArray(given) && intList(given)) || []
      if (lens.length !== L || !lens.every((x) => isInt(x) && x >= 0)) {
        throw invalid('INVALID_LENGTHS', `a non-negative integer or ${L} (one per layer)`, 'lengths', given)
      }
    } else if (first) {
      throw new KvtrimError("Expected { lengths } at a static cache's first step (its valid length after the prefill)", 'INVALID_LENGTHS')
    } else {
      const appended = so?.appended ?? 1
      if (!isInt(appended) || appended < 0) throw invalid('INVALID_OPTION', 'a non-negative integer', 'appended', appended)
      lens = this.#lengths!.map((x) => x + appended)
    }
    lens.forEach((len, l) => {
      if (len > capacity[l]) {
        throw new KvtrimError(`Expected layer ${l}'s valid length (${len}) at most its capacity (dims[2] = ${capacity[l]})`, 'INVALID_LENGTHS')
      }
    })
    return lens
  }

  #done(l: number, before: number, layer: Layer, r: CompressResult, next: Layer[]): LayerStep {
    next[l] = { keys: sameKind(layer.keys, r.keys), values: sameKind(layer.values, r.values) }
    return { layer: l, before, after: r.kept, compressed: true, indices: r.indices }
  }

  #inPlaceDone(l: number, before: number, r: InPlaceResult): LayerStep {
    return { layer: l, before, after: r.kept, compressed: true, indices: r.indices }
  }

  #finish<C>(w: Work, layers: LayerStep[], next: Layer[]): StepResult<C> {
    const lengths = layers.map((s) => s.after)
    this.#lengths = lengths
    this.#position = w.position
    const compressed = layers.some((s) => s.compressed)
    // static mode and steps that compressed nothing give the caller's object back as is
    const cache = this.mode === 'dynamic' && compressed ? w.view.rebuild(next) : w.cache
    return { cache: cache as C, compressed, layers, lengths: lengths.slice(), position: w.position }
  }
}
