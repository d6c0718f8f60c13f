// compress and compressInPlace. Native code validates the arguments (one options decoder for
// every operation, host and device, sync and async: native/addon/options.cc) and runs the work
// where the tensors live (host tensors on the CPU path, device tensors on their GPU); here only
// the results of device work become DeviceTensors. Each sync / Promise pair is one function.
import type { NativeCompressOptions, NativeCompressResult, NativeDeviceCompressResult } from '../binding'
import { binding } from './binding'
import { type Call, driveAsync, driveSync } from './drive'
import { withCallerStack } from './errors'
import { selectionSteps, wantsSelection } from './selection'
import { DeviceTensor } from './tensor'
import type { CompressOptions, CompressResult, HostTensor, InPlaceResult, TensorLike } from './types'

type AnyTensor = TensorLike | DeviceTensor

/**
 * @internal compress's options as native code decodes them (the rules of README "Options": one
 * message per rule); `budgets`: compressCache's, where pruneAfter, skipLayers and budgets are
 * known too and per-layer budgets may stand in for keepRatio / keep.
 */
export function decodeCompressOptions(options: unknown, budgets: boolean): NativeCompressOptions {
  return binding().decodeOptions(options, budgets)
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
    headLengths: r.headLengths,
    kept: r.kept,
  }
}

function shaped(keys: AnyTensor, values: AnyTensor, r: NativeCompressResult | NativeDeviceCompressResult): CompressResult<HostTensor | DeviceTensor> {
  return 'keyBuffer' in r ? deviceResult(keys as DeviceTensor, values as DeviceTensor, r) : r
}

/**
 * @internal compress on either backend, now (sync) or as a Promise; `options` as the caller
 * gave them or as decodeCompressOptions returned them (native code checks them either way).
 */
export function compressChecked(keys: AnyTensor, values: AnyTensor, options: CompressOptions | Partial<NativeCompressOptions>, sync: true): CompressResult<HostTensor | DeviceTensor>
export function compressChecked(keys: AnyTensor, values: AnyTensor, options: CompressOptions | Partial<NativeCompressOptions>, sync: false): Promise<CompressResult<HostTensor | DeviceTensor>>
export function compressChecked(keys: AnyTensor, values: AnyTensor, options: CompressOptions | Partial<NativeCompressOptions>, sync: boolean): unknown {
  const b = binding()
  if (sync) return shaped(keys, values, b.compressSync(keys, values, options))
  return b.compress(keys, values, options).then((r) => shaped(keys, values, r))
}

/** @internal compress of decoded options as one native call in both forms (lib/selection.ts's last step) */
export function compressCall(keys: AnyTensor, values: AnyTensor): (o: Partial<NativeCompressOptions>) => Call<CompressResult<HostTensor | DeviceTensor>> {
  return (o) => ({ sync: () => compressChecked(keys, values, o, true), async: () => compressChecked(keys, values, o, false) })
}

function inPlaceCall(keys: AnyTensor, values: AnyTensor): (o: Partial<NativeCompressOptions>) => Call<InPlaceResult> {
  return (o) => ({ sync: () => binding().compressInPlaceSync(keys, values, o), async: () => binding().compressInPlace(keys, values, o) })
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
  if (wantsSelection(options)) return driveSync(selectionSteps(keys, values, decodeCompressOptions(options, false), compressCall(keys, values)))
  return compressChecked(keys, values, options, true)
}

/** {@link compressSync}, off the event loop (settled when the CPU or GPU work is done; host work on at most 32 KiB of input runs at once, as it takes less than the hop to a worker thread). */
export function compress(keys: DeviceTensor, values: DeviceTensor, options: CompressOptions): Promise<CompressResult<DeviceTensor>>
export function compress(keys: TensorLike, values: TensorLike, options: CompressOptions): Promise<CompressResult>
export function compress(keys: TensorLike | DeviceTensor, values: TensorLike | DeviceTensor, options: CompressOptions): Promise<CompressResult<HostTensor | DeviceTensor>>
export function compress(keys: TensorLike | DeviceTensor, values: TensorLike | DeviceTensor, options: CompressOptions): Promise<CompressResult<HostTensor | DeviceTensor>> {
  return withCallerStack(() => {
    if (wantsSelection(options)) return driveAsync(selectionSteps(keys, values, decodeCompressOptions(options, false), compressCall(keys, values)))
    return compressChecked(keys, values, options, false)
  }, compress) as Promise<CompressResult<HostTensor | DeviceTensor>>
}

/**
 * Compresses a cache in its own memory, for a preallocated (static) cache whose dims[2] is a
 * capacity: per head, the kept rows move to the front in position order and the new valid
 * length of each batch entry is returned; rows past it are left unspecified. Only order
 * 'position'. The one operation that modifies its inputs (keys and values), host or device.
 */
export function compressInPlaceSync(keys: TensorLike | DeviceTensor, values: TensorLike | DeviceTensor, options: CompressOptions): InPlaceResult {
  if (wantsSelection(options)) return driveSync(selectionSteps(keys, values, decodeCompressOptions(options, false), inPlaceCall(keys, values)))
  return binding().compressInPlaceSync(keys, values, options)
}

/** {@link compressInPlaceSync}, off the event loop. Do not touch the tensors until it settles. */
export function compressInPlace(keys: TensorLike | DeviceTensor, values: TensorLike | DeviceTensor, options: CompressOptions): Promise<InPlaceResult> {
  return withCallerStack(() => {
    if (wantsSelection(options)) return driveAsync(selectionSteps(keys, values, decodeCompressOptions(options, false), inPlaceCall(keys, values)))
    return binding().compressInPlace(keys, values, options)
  }, compressInPlace) as Promise<InPlaceResult>
}
