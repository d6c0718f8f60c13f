// compressCache: every layer of a model's cache, with the reference l2_compress's rules
// (a layer shorter than pruneAfter, or listed in skipLayers, is returned as is).
import type { NativeCompressOptions, NativeDeviceCompressResult } from '../../binding'
import { binding } from '../binding'
import { describe, dims4, invalid, maxOf, prefixed } from '../check'
import { driveAsync, driveSync, type Steps } from '../drive'
import { KvtrimError, withCallerStack } from '../errors'
import { compressCall, deviceResult } from '../compress'
import { selectionSteps } from '../selection'
import { isDeviceTensor, type DeviceTensor } from '../tensor'
import type { CompressResult, TensorLike } from '../types'
import { cacheOptions, type CachePlan } from './options'
import type { CacheLayer, CacheOptions, CacheResult, LayerReport } from './types'

type AnyLayer = CacheLayer<TensorLike | DeviceTensor>
// a layer's options as native code decodes them, defaults left out
type LayerTask = { index: number; layer: AnyLayer; options: Partial<NativeCompressOptions> } | { index: number; skipped: LayerReport }

function seqLenOf(layer: unknown, index: number, lengths?: ArrayLike<number>): number {
  const keys = (layer as { keys?: unknown } | null)?.keys
  if (typeof keys !== 'object' || keys === null || typeof (layer as CacheLayer).values !== 'object') {
    throw new KvtrimError(
      `Expected layers[${index}] to be { keys, values } with keys.dims [batch, kvHeads, seqLen, headDim] ` +
        `but received ${describe(layer)}`,
      'INVALID_ARGUMENT',
    )
  }
  // the codes native code gives for a tensor's dims, so that compressCache and compress agree
  const dims = (keys as { dims?: unknown }).dims
  if (!Array.isArray(dims)) throw invalid('INVALID_DIMS', 'an array [batch, kvHeads, seqLen, headDim]', `layers[${index}].keys.dims`, dims)
  if (dims.length !== 4) {
    throw new KvtrimError(`Expected layers[${index}].keys.dims to have 4 entries [batch, kvHeads, seqLen, headDim] but received ${describe(dims)}`, 'INVALID_RANK')
  }
  const [batch, , seqLen] = dims4(dims, `layers[${index}].keys.dims`)
  if (lengths && lengths.length !== batch) {
    throw new KvtrimError(`layers[${index}]: Expected lengths to have one entry per batch entry (${batch}) but it has ${lengths.length}`, 'INVALID_LENGTHS')
  }
  return lengths && lengths.length > 0 ? maxOf(lengths) : seqLen
}

// The decoded options' defaults (native/addon/options.cc reads undefined as these).
const DEFAULTS = { order: 'position', score: 'low-norm', sink: 0, recent: 0 } as const

function plan(layers: readonly AnyLayer[], options: CacheOptions): LayerTask[] {
  if (!Array.isArray(layers)) throw new KvtrimError(`Expected layers to be an array but received ${describe(layers)}`, 'INVALID_ARGUMENT')
  const p: CachePlan = cacheOptions(options, layers.length)
  // index loops, not map: a sparse array's holes are layers too (and fail at the first one)
  const lens: number[] = []
  for (let index = 0; index < layers.length; index++) lens.push(seqLenOf(layers[index], index, p.base.lengths))
  // per-layer budgets are counted against the longest layer (all layers, skipped ones included)
  const budget = p.budget(maxOf(lens, 0))
  // each layer's options: the base's without keepRatio / keep, plus the layer's budget (built
  // by assignment: a spread then `delete` of the unused key cost ~3 us a layer)
  const { keepRatio: _ratio, keep: _keep, ...decoded } = p.base
  // and without the defaults (native code reads a missing option as its default): fewer
  // properties for the decoder to walk on every layer
  const rest: Partial<NativeCompressOptions> = {}
  for (const [k, v] of Object.entries(decoded) as [keyof NativeCompressOptions, unknown][]) {
    if (v !== DEFAULTS[k as keyof typeof DEFAULTS]) (rest as Record<string, unknown>)[k] = v
  }
  const tasks: LayerTask[] = []
  for (let index = 0; index < layers.length; index++) {
    const layer = layers[index]
    const len = lens[index]
    const reason = p.skip.has(index) ? 'skipLayers' : len < p.pruneAfter ? 'pruneAfter' : undefined
    if (reason) {
      tasks.push({ index, skipped: { layer: index, before: len, after: len, compressed: false, reason } })
      continue
    }
    const { keepRatio, keep } = budget(index, layer.keys.dims[2])
    const options = { ...rest } as NativeCompressOptions
    // a name is the same for every layer (and left out when the default); project / scores per layer
    if (typeof p.base.score === 'object') options.score = p.score(index)
    if (keepRatio !== undefined) options.keepRatio = keepRatio
    if (keep !== undefined) options.keep = keep
    tasks.push({ index, layer, options })
  }
  return tasks
}

function finish(task: CompressTask, r: AnyResult, out: AnyCache): void {
  out.layers.push({ keys: r.keys, values: r.values, indices: r.indices, lengths: r.lengths, headLengths: r.headLengths })
  out.report.push({ layer: task.index, before: seqLenOf(task.layer, task.index, task.options.lengths), after: r.kept, compressed: true })
}

type CompressTask = Extract<LayerTask, { layer: AnyLayer }>
type AnyResult = CompressResult<TensorLike | DeviceTensor>
type AnyCache = CacheResult<TensorLike | DeviceTensor>

// The walk over the layers: it yields each layer's compress call and receives its result.
function* walk(layers: readonly AnyLayer[], tasks: LayerTask[]): Steps<unknown, AnyCache> {
  const out: AnyCache = { layers: [], report: [] }
  for (const task of tasks) {
    if ('skipped' in task) {
      out.layers.push(layers[task.index])
      out.report.push(task.skipped)
      continue
    }
    const { keys, values } = task.layer
    let r: AnyResult
    try {
      // a ragged selection is three native calls (lib/selection.ts); 'per-head' is one
      r = (yield* selectionSteps(keys, values, task.options, compressCall(keys, values))) as AnyResult
    } catch (err) {
      throw prefixed(err, task.index)
    }
    finish(task, r, out)
  }
  return out
}

// Every layer to compress on the GPU (and more than one): then one native call, one launch
// where the layers share dtype and alignment, instead of a launch and a sync per layer.
function onGpu(tasks: LayerTask[]): CompressTask[] | undefined {
  const todo = tasks.filter((t): t is CompressTask => !('skipped' in t))
  // a ragged selection sizes each layer's outputs from its scores first: layer by layer
  if (todo.some((t) => t.options.selection !== undefined)) return undefined
  const device = todo.length > 1 && todo.every((t) => isDeviceTensor(t.layer.keys) && isDeviceTensor(t.layer.values))
  return device ? todo : undefined
}

function batchArgs(todo: CompressTask[]) {
  return [
    // device tensors go as they are (native code reads type, buffer and dims)
    todo.map((t) => t.layer.keys as DeviceTensor),
    todo.map((t) => t.layer.values as DeviceTensor),
    todo.map((t) => t.options as NativeCompressOptions), // defaults left out: native code fills them in
    todo.map((t) => t.index),
  ] as const
}

// Feeds the batch's results to the walk, in order.
function fromBatch(layers: readonly AnyLayer[], tasks: LayerTask[], todo: CompressTask[], rs: NativeDeviceCompressResult[]): AnyCache {
  const steps = walk(layers, tasks)
  let s = steps.next()
  for (let i = 0; !s.done; i++) {
    const t = todo[i]
    s = steps.next(deviceResult(t.layer.keys as DeviceTensor, t.layer.values as DeviceTensor, rs[i]))
  }
  return s.value
}

// compressCache written once (lib/drive.ts): device layers in one native call, host layers one
// after another.
function* cache(layers: readonly AnyLayer[], options: CacheOptions): Steps<unknown, AnyCache> {
  const tasks = plan(layers, options)
  const todo = onGpu(tasks)
  if (!todo) return yield* walk(layers, tasks)
  const args = batchArgs(todo)
  const rs = yield { sync: () => binding().cudaCompressLayersSync(...args), async: () => binding().cudaCompressLayers(...args) }
  return fromBatch(layers, tasks, todo, rs as NativeDeviceCompressResult[])
}

/** Compresses every layer of a cache; see {@link CacheOptions}. */
export function compressCacheSync<T extends TensorLike | DeviceTensor>(layers: readonly CacheLayer<T>[], options: CacheOptions): CacheResult<T> {
  return driveSync(cache(layers, options)) as CacheResult<T>
}

/**
 * {@link compressCacheSync}, off the event loop: host layers one after another, device layers
 * in one launch.
 */
export function compressCache<T extends TensorLike | DeviceTensor>(layers: readonly CacheLayer<T>[], options: CacheOptions): Promise<CacheResult<T>> {
  return withCallerStack(() => driveAsync(cache(layers, options)), compressCache) as Promise<CacheResult<T>>
}
