// Option checks with one message template (sharp's "Expected <what> for <name> but received
// <value>"). Tensor checks live in native/core so that every backend applies the same rules.
import type { NativeCompressOptions } from '../binding'
import { checkKnown as known, checkObject, intList, invalid, isInt, isU64 } from './check'
import { KvtrimError } from './errors'
import type { CompressOptions } from './types'

/** Checks a `stream` option (device tensors only): a cudaStream_t as a bigint in [0, 2^64). */
export function checkStream(stream: unknown, name = 'stream'): bigint | undefined {
  if (stream === undefined) return undefined
  if (!isU64(stream)) throw invalid('INVALID_OPTION', 'a cudaStream_t as a bigint in [0, 2^64)', name, stream)
  return stream
}

/**
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

const COMPRESS_KEYS = ['keepRatio', 'keep', 'order', 'score', 'sink', 'recent', 'lengths', 'stream'] as const
const CACHE_KEYS = [...COMPRESS_KEYS, 'pruneAfter', 'skipLayers', 'budgets'] as const

/**
 * Types of every compress option; ranges that depend on the tensors (keep <= seqLen, lengths
 * <= capacity) and keepRatio's range are checked natively, in one place for all backends.
 * `budgetGiven`: compressCache's per-layer budgets stand in for keepRatio / keep.
 */
export function compressOptions(options: unknown, budgetGiven = false): NativeCompressOptions {
  checkObject(options)
  known(options, budgetGiven ? CACHE_KEYS : COMPRESS_KEYS, { hint: true })
  // each option read once: a getter sees one read, and what is checked is what native code gets
  const o = options as CompressOptions
  const keepRatio: unknown = o.keepRatio, keep: unknown = o.keep
  if (keepRatio !== undefined && (typeof keepRatio !== 'number' || Number.isNaN(keepRatio))) {
    throw invalid('INVALID_KEEP_RATIO', 'a number in (0, 1]', 'keepRatio', keepRatio)
  }
  if (keep !== undefined && !isInt(keep)) {
    throw invalid('INVALID_KEEP', 'an integer in [0, seqLen]', 'keep', keep)
  }
  if (keepRatio !== undefined && keep !== undefined) {
    throw new KvtrimError('Expected one of keepRatio or keep, not both', 'INVALID_OPTION')
  }
  if (keepRatio === undefined && keep === undefined && !budgetGiven) {
    throw new KvtrimError('Expected keepRatio (in (0, 1]) or keep (a token count) in options', 'INVALID_OPTION')
  }
  const givenOrder: unknown = o.order
  const order = givenOrder ?? 'position'
  if (order !== 'position' && order !== 'norm') {
    throw invalid('INVALID_OPTION', "'position' or 'norm'", 'order', givenOrder)
  }
  const givenScore: unknown = o.score
  const score = givenScore ?? 'low-norm'
  if (score !== 'low-norm' && score !== 'high-norm') {
    throw invalid('INVALID_OPTION', "'low-norm' or 'high-norm'", 'score', givenScore)
  }
  const givenSink: unknown = o.sink
  const sink = givenSink ?? 0
  if (!isInt(sink) || sink < 0) throw invalid('INVALID_SINK', 'a non-negative integer', 'sink', givenSink)
  const givenRecent: unknown = o.recent
  const recent = givenRecent ?? 0
  if (!isInt(recent) || recent < 0) throw invalid('INVALID_RECENT', 'a non-negative integer', 'recent', givenRecent)
  const givenLengths: unknown = o.lengths
  let lengths: number[] | undefined
  if (givenLengths !== undefined) {
    lengths = intList(givenLengths)
    if (lengths === undefined) {
      throw invalid('INVALID_LENGTHS', 'an array of integers (one valid length per batch entry)', 'lengths', givenLengths)
    }
  }
  const out: NativeCompressOptions = { order, score, sink, recent }
  if (keepRatio !== undefined) out.keepRatio = keepRatio as number
  if (keep !== undefined) out.keep = keep as number
  if (lengths !== undefined) out.lengths = lengths
  const stream = checkStream(o.stream)
  if (stream !== undefined) out.stream = stream
  return out
}

/**
 * lengths: [] for a batch of more than 0 entries is an error (one entry per batch entry), not
 * "every entry full". Read from keys' dims when they are plain enough to tell; anything else
 * is left to native code's checks of the tensor.
 */
export function checkLengthsCount(keys: unknown, o: NativeCompressOptions): void {
  if (o.lengths === undefined || o.lengths.length !== 0) return
  const dims = typeof keys === 'object' && keys !== null ? (keys as { dims?: unknown }).dims : undefined
  const batch = Array.isArray(dims) ? (dims[0] as unknown) : undefined
  if (isInt(batch) && batch > 0) {
    throw new KvtrimError(`Expected lengths to have one entry per batch entry (${batch}) but it has 0`, 'INVALID_LENGTHS')
  }
}
