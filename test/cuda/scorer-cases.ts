// What the CUDA scorer suites (test/cuda/scores.test.ts, test/cuda/selection.test.ts) share:
// given scores, the same scorer for the host and the device call, random caches, and the
// device-against-host checks. Each suite says what it stresses through the specs below; they
// draw exactly what each suite drew before it shared this file, so a KVTRIM_SEED from an older
// report replays the same data.
import { expect } from 'vitest'
import { compressInPlaceSync, type CacheScore, type CompressOptions, type CompressResult, type DeviceTensor, type Score } from '../../lib/index'
import type { DType, OracleTensor } from '../oracle'
import { expectSameBits } from '../expect'
import { randomNaN } from '../nan'
import { int, pick, randomTensor, type Rng, type TensorSpec } from '../random'
import { toDevice, withDevice } from './gpu'

export type Scorer = 'low-norm' | 'kv-norm' | 'keydiff' | 'project' | 'scores'

/**
 * How float32 scores are drawn, element by element from u in [0, 1): a NaN (any sign and payload)
 * below `nan`, +0 / -0 below `zero`, +-Inf below `inf`, an exact copy of an earlier element below
 * `dup`, else a value of any scale.
 */
export interface ScoresMix {
  nan: number
  zero: number
  inf: number
  dup: number
  /** chance that a run has few distinct values (integers -2..2): ties within and across heads */
  few?: number
  /** chance that a run is raw bit patterns from a small pool: subnormals, huge values, NaNs of either sign */
  raw?: number
}

/** float32 scores [b, h, s] as `mix` says. */
export function randomScores(r: Rng, dims: number[], mix: ScoresMix): OracleTensor {
  const [B, H, S] = dims
  const bits = new Uint32Array(B * H * S)
  const f = new Float32Array(bits.buffer)
  const few = mix.few !== undefined && r() < mix.few
  const raw = mix.raw !== undefined && r() < mix.raw
  const pool = mix.raw !== undefined ? Array.from({ length: int(r, 1, 30) }, () => int(r, 0, 2 ** 32 - 1) >>> 0) : []
  for (let i = 0; i < bits.length; i++) {
    const u = r()
    if (raw) bits[i] = pick(r, pool)
    else if (u < mix.nan) bits[i] = randomNaN(r, 'float32')
    else if (u < mix.zero) bits[i] = r() < 0.5 ? 0x80000000 : 0
    else if (u < mix.inf) bits[i] = (r() < 0.5 ? 0x80000000 : 0) | 0x7f800000
    else if (u < mix.dup && i > 0) bits[i] = bits[int(r, 0, i - 1)]
    else f[i] = few ? int(r, -2, 2) : (r() - 0.5) * 10 ** int(r, -3, 3)
  }
  return { type: 'float32', data: f, dims: dims.slice(0, 3) }
}

/** The same scorer for the host and the device call ({ scores } takes a tensor in each place). */
export function scorerFor(r: Rng, s: Scorer, dims: number[], mix: ScoresMix): { host: Score; device: Score; free: () => void } {
  if (s === 'project') {
    const v = Float32Array.from({ length: dims[1] * dims[3] }, () => (r() - 0.5) * 4)
    return { host: { project: v }, device: { project: v }, free: () => {} }
  }
  if (s === 'scores') {
    const t = randomScores(r, dims, mix)
    const d = toDevice(t)
    return { host: { scores: t }, device: { scores: d }, free: () => d.dispose() }
  }
  return { host: s, device: s, free: () => {} }
}

/** compressCache's score from one scorerFor per layer: per-layer vectors or scores, or the name. */
export function cacheScore(s: Scorer, per: Array<{ host: Score; device: Score }>, which: 'host' | 'device'): CacheScore {
  if (s === 'project') return { project: per.map((p) => (p[which] as { project: Float32Array }).project) }
  if (s === 'scores') return { scores: per.map((p) => (p[which] as { scores: OracleTensor | DeviceTensor }).scores) }
  return s
}

/** A device compress result equals the host's, bit for bit (headLengths too); its tensors are disposed after. */
export function expectDeviceResult(got: CompressResult<DeviceTensor>, want: CompressResult, what: string): void {
  try {
    expect(got.kept, `${what}: kept`).toBe(want.kept)
    expect(got.keys.dims, `${what}: dims`).toEqual(want.keys.dims)
    expectSameBits(got.headLengths, want.headLengths, `${what}: headLengths`)
    expectSameBits(got.lengths, want.lengths, `${what}: lengths`)
    expectSameBits(got.indices, want.indices, `${what}: indices`)
    expectSameBits(got.keys.download().data, want.keys.data, `${what}: keys`)
    expectSameBits(got.values.download().data, want.values.data, `${what}: values`)
  } finally {
    got.keys.dispose()
    got.values.dispose()
  }
}

/** compressInPlace on device copies of keys and values equals it on the host tensors (which it compresses), bit for bit. */
export function checkInPlace(keys: OracleTensor, values: OracleTensor, o: CompressOptions, sc: { host: Score; device: Score }, what: string): void {
  withDevice(keys, values, (dk, dv) => {
    const got = compressInPlaceSync(dk, dv, { ...o, score: sc.device })
    const want = compressInPlaceSync(keys, values, { ...o, score: sc.host })
    expect(got.kept, `${what}: kept`).toBe(want.kept)
    expectSameBits(got.headLengths, want.headLengths, `${what}: headLengths`)
    expectSameBits(got.lengths, want.lengths, `${what}: lengths`)
    expectSameBits(got.indices, want.indices, `${what}: indices`)
    expectSameBits(dk.download().data, keys.data, `${what}: keys`)
    expectSameBits(dv.download().data, values.data, `${what}: values`)
  })
}

/** What a suite's caches hold: each tensor's spec, and the fraction of rows zeroed afterwards (if any). */
export interface CacheSpec {
  keys: TensorSpec
  values: TensorSpec
  /** a zero key: keydiff's zero score; kv-norm's zero product */
  zeroRows?: number
}

function zeroRows(r: Rng, t: OracleTensor, frac: number): OracleTensor {
  const d = t.dims[3]
  for (let row = 0; row < t.data.length / d; row++) if (r() < frac) t.data.fill(0, row * d, (row + 1) * d)
  return t
}

/** Random keys [B, H, S, D] and values [B, H, S, dv] as `spec` says. */
export function randomCache(r: Rng, type: DType, dims: number[], dv: number, spec: CacheSpec) {
  const zero = (t: OracleTensor) => (spec.zeroRows === undefined ? t : zeroRows(r, t, spec.zeroRows))
  const keys = zero(randomTensor(r, type, dims, spec.keys))
  const values = zero(randomTensor(r, type, [...dims.slice(0, 3), dv], spec.values))
  return { keys, values }
}
