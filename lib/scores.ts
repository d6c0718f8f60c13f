// tokenScores: every token's score under a scorer (docs/policies.md), computed by the same
// native scoring phase as compress, so compress with a scorer and compress with
// `{ scores: tokenScores(...) }` select the same tokens.
import type { NativeDeviceBuffer } from '../binding'
import { binding } from './binding'
import { withCallerStack } from './errors'
import { DeviceTensor } from './tensor'
import type { TensorLike, TokenScoresOptions } from './types'

type AnyTensor = TensorLike | DeviceTensor

function scores(keys: AnyTensor, values: AnyTensor, options: unknown, sync: true): Float32Array | DeviceTensor
function scores(keys: AnyTensor, values: AnyTensor, options: unknown, sync: false): Promise<Float32Array | DeviceTensor>
function scores(keys: AnyTensor, values: AnyTensor, options: unknown, sync: boolean): unknown {
  const shaped = (r: Float32Array | NativeDeviceBuffer) =>
    r instanceof Float32Array ? r : new DeviceTensor('float32', (keys as DeviceTensor).dims.slice(0, 3), r)
  const b = binding()
  return sync ? shaped(b.tokenScoresSync(keys, values, options)) : b.tokenScores(keys, values, options).then(shaped)
}

/**
 * Every token's score, [batch, kvHeads, seqLen], under `options.score` (default 'low-norm'):
 * the numbers compress ranks, higher kept first (so 'low-norm' gives -norm). Bit-identical on
 * every backend for 16-bit inputs; NaN at positions past a batch entry's `lengths`. Host
 * tensors give a Float32Array, device tensors a float32 DeviceTensor.
 */
export function tokenScoresSync(keys: DeviceTensor, values: DeviceTensor, options?: TokenScoresOptions): DeviceTensor
export function tokenScoresSync(keys: TensorLike, values: TensorLike, options?: TokenScoresOptions): Float32Array
export function tokenScoresSync(keys: AnyTensor, values: AnyTensor, options?: TokenScoresOptions): Float32Array | DeviceTensor
export function tokenScoresSync(keys: AnyTensor, values: AnyTensor, options?: TokenScoresOptions): Float32Array | DeviceTensor {
  return scores(keys, values, options === undefined ? {} : options, true)
}

/** {@link tokenScoresSync}, off the event loop. */
export function tokenScores(keys: DeviceTensor, values: DeviceTensor, options?: TokenScoresOptions): Promise<DeviceTensor>
export function tokenScores(keys: TensorLike, values: TensorLike, options?: TokenScoresOptions): Promise<Float32Array>
export function tokenScores(keys: AnyTensor, values: AnyTensor, options?: TokenScoresOptions): Promise<Float32Array | DeviceTensor>
export function tokenScores(keys: AnyTensor, values: AnyTensor, options?: TokenScoresOptions): Promise<Float32Array | DeviceTensor> {
  return withCallerStack(() => scores(keys, values, options === undefined ? {} : options, false), tokenScores)
}
