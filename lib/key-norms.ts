// keyNorms: native code checks the keys and the options and runs where the keys live; device
// norms come back as a float32 DeviceTensor.
import type { NativeDeviceBuffer } from '../binding'
import { binding } from './binding'
import { withCallerStack } from './errors'
import { DeviceTensor } from './tensor'
import type { TensorLike } from './types'

function norms(keys: TensorLike | DeviceTensor, options: unknown, sync: true): Float32Array | DeviceTensor
function norms(keys: TensorLike | DeviceTensor, options: unknown, sync: false): Promise<Float32Array | DeviceTensor>
function norms(keys: TensorLike | DeviceTensor, options: unknown, sync: boolean): unknown {
  const shaped = (r: Float32Array | NativeDeviceBuffer) =>
    r instanceof Float32Array ? r : new DeviceTensor('float32', (keys as DeviceTensor).dims.slice(0, 3), r)
  const b = binding()
  return sync ? shaped(b.keyNormsSync(keys, options)) : b.keyNorms(keys, options).then(shaped)
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
  return norms(keys, options, true)
}

/** {@link keyNormsSync}, off the event loop. */
export function keyNorms(keys: DeviceTensor, options?: { stream?: bigint }): Promise<DeviceTensor>
export function keyNorms(keys: TensorLike): Promise<Float32Array>
export function keyNorms(keys: TensorLike | DeviceTensor, options?: { stream?: bigint }): Promise<Float32Array | DeviceTensor>
export function keyNorms(keys: TensorLike | DeviceTensor, options?: { stream?: bigint }): Promise<Float32Array | DeviceTensor> {
  return withCallerStack(() => norms(keys, options, false), keyNorms)
}
