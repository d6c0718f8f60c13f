// Ragged selections (docs/policies.md "Selection modes"): a threshold or AdaKV's head-adaptive
// budgets give every (batch entry, head) row its own kept count. The counts depend on the
// scores, and the outputs must be sized before the gather writes them, so such a compress is
// up to three native operations, written once for sync and async (lib/drive.ts): the scores
// (tokenScores, unless given), the counts (selectionCounts: native/core/selection.cc, on the
// host), then compress of those scores with `headKeep: counts`.
import type { NativeCompressOptions } from '../binding'
import { binding } from './binding'
import { KvtrimError } from './errors'
import type { Call, Steps } from './drive'
import { tokenScores, tokenScoresSync } from './scores'
import { type DeviceTensor, isDeviceTensor } from './tensor'
import type { ScoreTensor, TensorLike, TokenScoresOptions } from './types'

type AnyTensor = TensorLike | DeviceTensor
type Decoded = Partial<NativeCompressOptions>

/**
 * Whether `options` ask for a ragged selection: read once here, then native code decodes the
 * options once more and its copy is the one used (a getter that changes its answer between the
 * two reads gets the decoded answer).
 */
export function wantsSelection(options: unknown): boolean {
  if (typeof options !== 'object' || options === null) return false
  const s = (options as { selection?: unknown }).selection
  return s !== undefined && s !== null && s !== 'per-head'
}

function given(score: unknown): ScoreTensor | undefined {
  return typeof score === 'object' && score !== null && 'scores' in score ? (score as { scores: ScoreTensor }).scores : undefined
}

/**
 * @internal The steps of one compress (or compressInPlace, or a cache layer's compress) whose
 * options are decoded already (decodeCompressOptions): `run(options)` is the native call for
 * a 'per-head' selection, made at once; else the scores, the counts, then `run` with the
 * scores given and `headKeep`. A device scores tensor made here is freed when it is done.
 */
export function* selectionSteps<R>(keys: AnyTensor, values: AnyTensor, options: Decoded, run: (options: Decoded) => Call<R>): Steps<unknown, R> {
  if (options.selection === undefined) return (yield run(options)) as R
  const b = binding()
  const { selection: _selection, keepRatio: _ratio, keep: _keep, ...rest } = options
  let scores = given(options.score)
  const computed = scores === undefined
  let owned: DeviceTensor | undefined
  if (scores === undefined) {
    const o = { score: options.score, lengths: options.lengths, stream: options.stream } as TokenScoresOptions
    const s = (yield { sync: () => tokenScoresSync(keys, values, o), async: () => tokenScores(keys, values, o) }) as Float32Array | DeviceTensor
    if (isDeviceTensor(s)) {
      scores = owned = s
    } else {
      // keys.dims once more: if a getter changed them, compress's check of score.scores against the keys fails
      const [batch, heads, seqLen] = keys.dims
      scores = { type: 'float32', data: s, dims: [batch, heads, seqLen] } as TensorLike
    }
  }
  try {
    const t = scores as TensorLike
    const counts = (yield { sync: () => b.selectionCountsSync(t, options), async: () => b.selectionCounts(t, options) }) as Int32Array
    try {
      return (yield run({ ...rest, score: { scores: t }, headKeep: counts })) as R
    } catch (err) {
      // tokenScores accepted these keys and values: if they are now detached or of another
      // length, they changed between the calls (while the Promise was pending, or by a getter)
      throw computed ? changed(err) : err
    }
  } finally {
    owned?.dispose()
  }
}

function changed(err: unknown): unknown {
  if (!(err instanceof KvtrimError) || (err.code !== 'DATA_LENGTH' && err.code !== 'DETACHED_BUFFER')) return err
  return new KvtrimError(`An input changed between the scoring and the selection of a ragged compress: ${err.message}`, 'INPUT_CHANGED')
}
