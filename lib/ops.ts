// keyNorms and compress: an operation runs where its data lives (host tensors on the CPU path,
// device tensors on their GPU). Option checks here, everything else native.
import type { NativeCompressOptions, NativeDeviceCompressResult, NativeTensor } from '../binding'
import { binding } from './binding'
import { KvtrimError, withCallerStack } from './errors'
import { DeviceTensor, isDeviceTensor } from './tensor'
import type { CompressOptions, CompressResult, HostTensor, InPlaceResult, TensorLike } from './types'
import { invalid } from './check'
import { checkLengthsCount, checkStream, compressOptions, hostSnapshot } from './validate'

// Host tensors go to native code as a snapshot of their fields (never a copy of the data);
// native code checks them.
const host = (t: TensorLike): NativeTensor => hostSnapshot(t) as NativeTensor

/** Which backend a (keys, values) pair runs on; mixed host and device is an error. */
function onDevice(keys: unknown, values: unknown): boolean {
  const k = isDeviceTensor(keys), v = isDeviceTensor(values)
  if (k !== v) {
    throw new KvtrimError(
      `Expected keys and values both on the host or both on a GPU, but keys are ${k ? 'a device tensor' : 'on the host'} ` +
        `and values ${v ? 'a device tensor' : 'on the host'}; move one with tensor(...) or .download()`,
      'DEVICE_MISMATCH',
    )
  }
  return k
}

/** @internal a native device result as device tensors */
export function deviceResult(keys: DeviceTensor, values: DeviceTensor, r: NativeDeviceCompressResult): CompressResult<DeviceTensor> {
  const [b, h, , dk] = keys.dims
  const dv = values.dims[3]
  return {
    keys: new DeviceTensor(keys.type, [b, h, r.kept, dk], r.keyBuffer),
    values: new DeviceTensor(values.type, [b, h, r.kept, dv], r.valueBuffer),
    indices: r.indices,
    lengths: r.lengths,
    kept: r.kept,
  }
}

/**
 * L2 norm of every key row, [batch, kvHeads, seqLen], computed in the canonical fp32 order of
 * the numeric contract (bit-identical on every backend for 16-bit keys). Host keys give a
 * Float32Array; device keys a float32 device tensor of dims [batch, kvHeads, seqLen].
 */
export function keyNormsSync(keys: DeviceTensor, options?: { stream?: bigint }): DeviceTensor
export function keyNormsSync(keys: TensorLike): Float32Array
export function keyNormsSync(keys: TensorLike | DeviceTensor, options?: { stream?: bigint }): Float32Array | DeviceTensor
export function keyNormsSync(keys: TensorLike | DeviceTensor, options?: { stream?: bigint }): Float32Array | DeviceTensor {
  const o = streamOption(options)
  if (isDeviceTensor(keys)) {
    const buf = binding().cudaKeyNormsSync(keys.native('keys'), o)
    return new DeviceTensor('float32', keys.dims.slice(0, 3), buf)
  }
  noStream(o)
  return binding().keyNormsSync(host(keys))
}

/** keyNorms's options: undefined, or an object with an optional stream (device keys only). */
function streamOption(options: unknown): { stream?: bigint } {
  if (options === undefined) return {}
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalid('INVALID_ARGUMENT', 'an options object { stream? }', 'options', options)
  }
  for (const key of Object.keys(options)) {
    if (key !== 'stream') throw new KvtrimError(`Unknown option '${key}'; known options: stream`, 'INVALID_OPTION')
  }
  const stream = checkStream((options as { stream?: unknown }).stream, 'options.stream')
  return stream === undefined ? {} : { stream }
}

/** {@link keyNormsSync}, off the event loop. */
export function keyNorms(keys: DeviceTensor, options?: { stream?: bigint }): Promise<DeviceTensor>
export function keyNorms(keys: TensorLike): Promise<Float32Array>
export function keyNorms(keys: TensorLike | DeviceTensor, options?: { stream?: bigint }): Promise<Float32Array | DeviceTensor>
export function keyNorms(keys: TensorLike | DeviceTensor, options?: { stream?: bigint }): Promise<Float32Array | DeviceTensor> {
  return withCallerStack(async () => {
    const o = streamOption(options)
    if (isDeviceTensor(keys)) {
      const buf = await binding().cudaKeyNorms(keys.native('keys'), o)
      return new DeviceTensor('float32', keys.dims.slice(0, 3), buf)
    }
    noStream(o)
    return binding().keyNorms(host(keys))
  }, keyNorms)
}

/** @internal compress on either backend, with options already checked. */
export function compressChecked(keys: TensorLike | DeviceTensor, values: TensorLike | DeviceTensor, o: NativeCompressOptions, sync: true): CompressResult<HostTensor | DeviceTensor>
export function compressChecked(keys: TensorLike | DeviceTensor, values: TensorLike | DeviceTensor, o: NativeCompressOptions, sync: false): Promise<CompressResult<HostTensor | DeviceTensor>>
export function compressChecked(keys: TensorLike | DeviceTensor, values: TensorLike | DeviceTensor, o: NativeCompressOptions, sync: boolean): unknown {
  const b = binding()
  if (onDevice(keys, values)) {
    const k = keys as DeviceTensor, v = values as DeviceTensor
    checkLengthsCount(k, o)
    if (sync) return deviceResult(k, v, b.cudaCompressSync(k.native('keys'), v.native('values'), o))
    return b.cudaCompress(k.native('keys'), v.native('values'), o).then((r) => deviceResult(k, v, r))
  }
  noStream(o)
  const k = host(keys as TensorLike), v = host(values as TensorLike)
  checkLengthsCount(k, o)
  return sync ? b.compressSync(k, v, o) : b.compress(k, v, o)
}

function noStream(o: { stream?: bigint }): void {
  if (o.stream !== undefined) {
    throw new KvtrimError('Expected no stream option for host tensors: a stream applies to device tensors', 'INVALID_OPTION')
  }
}

/**
 * Keeps, per batch entry and KV head, the k tokens whose keys have the lowest L2 norm (or the
 * highest, with score 'high-norm'), and returns the compacted keys, values and the kept
 * positions. The inputs are never modified. Device tensors in, device tensors out.
 */
export function compressSync(keys: DeviceTensor, values: DeviceTensor, options: CompressOptions): CompressResult<DeviceTensor>
export function compressSync(keys: TensorLike, values: TensorLike, options: CompressOptions): CompressResult
/** Either kind, as tensor(..., { device: 'auto' }) returns it: the result is of the same kind. */
export function compressSync(keys: TensorLike | DeviceTensor, values: TensorLike | DeviceTensor, options: CompressOptions): CompressResult<HostTensor | DeviceTensor>
export function compressSync(keys: TensorLike | DeviceTensor, values: TensorLike | DeviceTensor, options: CompressOptions): CompressResult<HostTensor | DeviceTensor> {
  return compressChecked(keys, values, compressOptions(options), true)
}

/** {@link compressSync}, off the event loop (settled when the CPU or GPU work is done). */
export function compress(keys: DeviceTensor, values: DeviceTensor, options: CompressOptions): Promise<CompressResult<DeviceTensor>>
export function compress(keys: TensorLike, values: TensorLike, options: CompressOptions): Promise<CompressResult>
export function compress(keys: TensorLike | DeviceTensor, values: TensorLike | DeviceTensor, options: CompressOptions): Promise<CompressResult<HostTensor | DeviceTensor>>
export function compress(keys: TensorLike | DeviceTensor, values: TensorLike | DeviceTensor, options: CompressOptions): Promise<CompressResult<HostTensor | DeviceTensor>> {
  return withCallerStack(() => compressChecked(keys, values, compressOptions(options), false), compress)
}

/**
 * Compresses a cache in its own memory, for a preallocated (static) cache whose dims[2] is a
 * capacity: per head, the kept rows move to the front in position order and the new valid
 * length of each batch entry is returned; rows past it are left unspecified. Only order
 * 'position'. The one operation that modifies its inputs (keys and values), host or device.
 */
export function compressInPlaceSync(keys: TensorLike | DeviceTensor, values: TensorLike | DeviceTensor, options: CompressOptions): InPlaceResult {
  const o = compressOptions(options)
  const b = binding()
  if (onDevice(keys, values)) {
    checkLengthsCount(keys, o)
    return b.cudaCompressInPlaceSync((keys as DeviceTensor).native('keys'), (values as DeviceTensor).native('values'), o)
  }
  noStream(o)
  const k = host(keys as TensorLike), v = host(values as TensorLike)
  checkLengthsCount(k, o)
  return b.compressInPlaceSync(k, v, o)
}

/** {@link compressInPlaceSync}, off the event loop. Do not touch the tensors until it settles. */
export function compressInPlace(keys: TensorLike | DeviceTensor, values: TensorLike | DeviceTensor, options: CompressOptions): Promise<InPlaceResult> {
  return withCallerStack(async () => {
    const o = compressOptions(options)
    const b = binding()
    if (onDevice(keys, values)) {
      checkLengthsCount(keys, o)
      return b.cudaCompressInPlace((keys as DeviceTensor).native('keys'), (values as DeviceTensor).native('values'), o)
    }
    noStream(o)
    const k = host(keys as TensorLike), v = host(values as TensorLike)
    checkLengthsCount(k, o)
    return b.compressInPlace(k, v, o)
  }, compressInPlace)
}
