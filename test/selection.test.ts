// Selection modes (docs/policies.md "Selection modes: how many tokens each head keeps") against
// the oracle, bit for bit, on fresh random data: 'per-head', { threshold } (thresholds taken
// from the actual scores: quantiles, exactly a score, doubles that round to a score or past it,
// +-0, +-Infinity), 'adaptive' and { adaptive: { alpha } } (0, 0.2, 0.5, 1, random), and
// headKeep; every scorer, every dtype, Dk != Dv, odd head dims, ragged lengths, sink / recent,
// both orders; compress and compressSync, compressInPlace(Sync), compressCache(Sync) (per-layer
// budgets too). Given scores with NaN (any payload), +0 / -0 and ties inside and across heads
// exercise the cross-head tie-break. Invariants: adaptive's counts sum to H * k with every head
// at least p + f; alpha 1 is 'per-head'; a threshold keeps exactly the middle tokens whose score
// is >= fround(t); compress(score X, selection S) equals compress({ scores: tokenScores(X) },
// headKeep: its headLengths). KVTRIM_SEED=<n> replays a run; KVTRIM_PROPERTY_RUNS=<factor>
// lengthens the fast-check part.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import * as kvtrim from '../lib/index'
import type { CompressOptions, CompressResult, InPlaceResult } from '../lib/index'
import * as oracle from './oracle'
import { rawBinding } from '../lib/dev'
import { expectOracleResult, expectSameBits, expectSameResult } from './expect'
import { randomNaN } from './nan'
import { int, pick, randomTensor, rng, runSeed, type Rng } from './random'
import { ANY_MODE, NAMES, randomScores, scorer as scorerOf, windowArbitraries, type Name, type ScorerData } from './scorer-cases'

const { compress, compressSync, compressInPlace, compressInPlaceSync, compressCache, compressCacheSync, tokenScoresSync } = kvtrim
const opts = (o: oracle.OracleOptions): CompressOptions => o as unknown as CompressOptions

const DTYPES = ['float16', 'bfloat16', 'float32'] as const
const KINDS = ['per-head', 'threshold', 'adaptive', 'headKeep'] as const
type Kind = (typeof KINDS)[number]
const seed = runSeed()

// ---- data -----------------------------------------------------------------------------------

function tensors(r: Rng, type: oracle.DType, dims: number[], dv: number) {
  const keys = randomTensor(r, type, dims, { dupRows: 0.15, nanRows: 0.03, infRows: 0.02 })
  const values = randomTensor(r, type, [...dims.slice(0, 3), dv], { dupRows: 0.05, nanRows: 0.02 })
  return { keys, values }
}

// This suite's given scores take any of the modes: ties inside and across heads, raw bit patterns.
const DATA: ScorerData = { vectors: {}, scores: ANY_MODE }
type Score = oracle.OracleScore
const scorer = (r: Rng, name: Name, dims: number[]): Score => scorerOf(r, name, dims, DATA)

interface Case {
  type: oracle.DType
  dims: number[]
  dv: number
  /** order, sink, recent, lengths: what every selection of the case shares */
  base: oracle.OracleOptions
}

/** B 1..3, H 1..8, S 0..300, D 4..64 (odd ones too), at most `max` key elements. */
function randomCase(r: Rng, type: oracle.DType, max: number, inPlace = false): Case {
  const d = r() < 0.5 ? int(r, 4, 64) : pick(r, [4, 5, 7, 8, 9, 31, 33, 63, 64])
  const s = r() < 0.08 ? int(r, 0, 3) : int(r, 1, 300)
  let b = int(r, 1, 3), h = int(r, 1, 8)
  while (b * h * s * d > max && b * h > 1) (b > h ? (b = Math.ceil(b / 2)) : (h = Math.ceil(h / 2)))
  const base: oracle.OracleOptions = {}
  if (!inPlace && r() < 0.6) base.order = pick(r, ['position', 'norm'] as const)
  if (r() < 0.4) base.sink = int(r, 0, 8)
  if (r() < 0.4) base.recent = int(r, 0, 40)
  if (r() < 0.4) base.lengths = Array.from({ length: b }, () => int(r, 0, s))
  return { type, dims: [b, h, s, d], dv: r() < 0.4 ? d : int(r, 1, 70), base }
}

/** A random case of this dtype, with its keys and values. */
function caseWithData(r: Rng, type: oracle.DType, max: number, inPlace = false) {
  const c = randomCase(r, type, max, inPlace)
  return { c, ...tensors(r, type, c.dims, c.dv) }
}

/** A case of a random dtype, its keys and values, and the scorer of a random name. */
function anyCase(r: Rng, max: number) {
  const type = pick(r, DTYPES)
  const { c, keys, values } = caseWithData(r, type, max)
  return { type, c, keys, values, score: scorer(r, pick(r, NAMES), c.dims) }
}

const lensOf = (c: { dims: number[]; base: oracle.OracleOptions }) => Array.from({ length: c.dims[0] }, (_, b) => (c.base.lengths ? c.base.lengths[b] : c.dims[2]))

/** The next float32 above x (finite x). */
function nextUp(x: number): number {
  const f = new Float32Array([x])
  const u = new Uint32Array(f.buffer)
  if (x === 0) u[0] = 1
  else if (x > 0) u[0]++
  else u[0]--
  return f[0]
}

/** Every non-NaN middle score of the valid rows, sorted ascending. */
function middleScores(sc: Float32Array, dims: number[], lens: number[], o: oracle.OracleOptions): number[] {
  const [B, H, S] = dims
  const vals: number[] = []
  for (let b = 0; b < B; b++) {
    const { lo, hi } = oracle.protectedSpan(lens[b], o.sink, o.recent)
    for (let h = 0; h < H; h++) for (let i = lo; i < hi; i++) if (!Number.isNaN(sc[(b * H + h) * S + i])) vals.push(sc[(b * H + h) * S + i])
  }
  return vals.sort((a, b) => a - b)
}

/**
 * A threshold from the actual score distribution: a quantile, exactly a score, a double that
 * rounds to a score in fp32 (kept: fround(t) == s), a double that rounds past it (not kept),
 * +-0, +-Infinity.
 */
function randomThreshold(r: Rng, vals: number[]): number {
  const finite = vals.filter(Number.isFinite)
  const u = r()
  if (finite.length === 0 || u < 0.1) return pick(r, [Infinity, -Infinity, 0, -0, vals.length ? pick(r, vals) : 1])
  if (u < 0.4) return vals[Math.min(vals.length - 1, Math.floor(pick(r, [0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1]) * vals.length))]
  if (u < 0.55) return pick(r, vals)
  const s = pick(r, finite)
  const up = nextUp(s)
  if (!Number.isFinite(up)) return s
  if (u < 0.75) {
    const t = s + (up - s) * 0.25 // a double strictly between s and the next float32: rounds to s
    return Math.fround(t) === s ? t : s
  }
  if (u < 0.9) {
    const t = s + (up - s) * 0.75 // rounds to the next float32 above s: s is not kept
    return Math.fround(t) === up ? t : up
  }
  return pick(r, [Infinity, -Infinity])
}

/** headKeep of every row: an integer in [min(L, sink + recent), L], as a plain array or a typed one. */
function randomHeadKeep(r: Rng, c: Case): ArrayLike<number> {
  const [B, H] = c.dims
  const lens = lensOf(c)
  const counts: number[] = []
  for (let b = 0; b < B; b++) {
    const lo = Math.min(lens[b], (c.base.sink ?? 0) + (c.base.recent ?? 0))
    for (let h = 0; h < H; h++) counts.push(pick(r, [lo, lens[b], int(r, lo, lens[b])]))
  }
  const form = int(r, 0, 2)
  return form === 0 ? counts : form === 1 ? Int32Array.from(counts) : Float64Array.from(counts)
}

function randomKeep(r: Rng, S: number): oracle.OracleOptions {
  return r() < 0.6 ? { keepRatio: pick(r, [0.05, 0.1, 0.25, 0.5, 0.75, 1, r() || 0.5]) } : { keep: int(r, 0, S) }
}

const ALPHAS = [0, 0.2, 0.5, 1, undefined, 'string', 'random'] as const

/** The selection options of one kind, drawn for this case and these scores. */
function selectionOptions(r: Rng, kind: Kind, c: Case, sc: Float32Array): oracle.OracleOptions {
  const S = c.dims[2]
  if (kind === 'per-head') return { ...randomKeep(r, S), ...(r() < 0.5 ? { selection: 'per-head' as const } : {}) }
  if (kind === 'threshold') return { selection: { threshold: randomThreshold(r, middleScores(sc, c.dims, lensOf(c), c.base)) } }
  if (kind === 'headKeep') return { headKeep: randomHeadKeep(r, c) }
  const a = pick(r, ALPHAS)
  const selection: oracle.OracleSelection = a === 'string' ? 'adaptive' : a === undefined ? { adaptive: {} } : { adaptive: { alpha: a === 'random' ? r() : a } }
  return { ...randomKeep(r, S), selection }
}

const describeOptions = (o: oracle.OracleOptions) =>
  JSON.stringify({ ...o, score: undefined, headKeep: o.headKeep ? Array.from(o.headKeep) : undefined }, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : Object.is(v, -0) ? '-0' : v))

// ---- comparisons ------------------------------------------------------------------------------

/** compressInPlace's result and the caller's buffers against the oracle's (rows past a head's count: as they were). */
function checkInPlace(res: InPlaceResult, k: oracle.OracleTensor, v: oracle.OracleTensor, want: oracle.OracleCompressResult, what: string): void {
  expect(res.kept, `${what}: kept`).toBe(want.kept)
  expectSameBits(res.headLengths, want.headLengths, `${what}: headLengths`)
  expectSameBits(res.lengths, want.lengths, `${what}: lengths`)
  expectSameBits(res.indices, want.indices, `${what}: indices`)
  expectSameBits(k.data, want.keys.data, `${what}: keys`)
  expectSameBits(v.data, want.values.data, `${what}: values`)
}

/** The invariants of the selection's counts (native headLengths), besides equality with the oracle. */
function checkInvariants(res: CompressResult, sc: Float32Array, c: Case, o: oracle.OracleOptions, what: string): void {
  const [B, H, S] = c.dims
  const lens = lensOf(c)
  const alpha = oracle.adaptiveAlpha(o.selection)
  for (let b = 0; b < B; b++) {
    const L = lens[b]
    const { p, lo, hi } = oracle.protectedSpan(L, o.sink, o.recent)
    const heads = Array.from(res.headLengths.subarray(b * H, (b + 1) * H))
    expect(res.lengths[b], `${what}: lengths[${b}] is the most of its heads`).toBe(H ? Math.max(...heads) : res.lengths[b])
    for (const n of heads) {
      expect(n, `${what}: b ${b} count within [p, L]`).toBeGreaterThanOrEqual(p)
      expect(n, `${what}: b ${b} count within [p, L]`).toBeLessThanOrEqual(L)
    }
    if (alpha !== undefined) {
      const k = oracle.keepCount(o, L)
      const f = Math.floor(alpha * (k - p))
      expect(heads.reduce((x, y) => x + y, 0), `${what}: b ${b} adaptive counts sum to H * k`).toBe(H * k)
      for (const n of heads) expect(n, `${what}: b ${b} adaptive count >= p + f`).toBeGreaterThanOrEqual(p + f)
    }
    const thr = typeof o.selection === 'object' && 'threshold' in o.selection ? Math.fround(o.selection.threshold) : undefined
    for (let h = 0; h < H; h++) {
      const row = b * H + h
      const kept = Array.from(res.indices.subarray(row * res.kept, row * res.kept + heads[h]))
      expect(res.indices.subarray(row * res.kept + heads[h], (row + 1) * res.kept).every((x) => x === -1), `${what}: row ${row} padding -1`).toBe(true)
      if (thr !== undefined) {
        // exactly the middle tokens whose score is at or above fround(t), plus sink and recent
        const want: number[] = []
        for (let i = 0; i < L; i++) if (i < lo || i >= hi || sc[row * S + i] >= thr) want.push(i)
        expect(kept.sort((x, y) => x - y), `${what}: row ${row} threshold keeps exactly score >= t`).toEqual(want)
      }
    }
  }
}

// ---- the oracle itself, worked by hand ----------------------------------------------------------

describe('the selection oracle, by hand', () => {
  const f32 = (xs: number[]) => Float32Array.from(xs)

  it('per-head: every head keeps keepCount; threshold: p + the middle scores >= fround(t), NaN never', () => {
    // B 1, H 2, S 6, sink 1, recent 1: middle [1, 5)
    const sc = f32([9, 1, 2, 3, NaN, 9, 9, -1, 5, 5, 5, 9])
    expect(Array.from(oracle.selectionCountsOracle(sc, 1, 2, 6, { keep: 3, sink: 1, recent: 1 }))).toEqual([3, 3])
    expect(Array.from(oracle.selectionCountsOracle(sc, 1, 2, 6, { selection: { threshold: 2 }, sink: 1, recent: 1 }))).toEqual([4, 5])
    expect(Array.from(oracle.selectionCountsOracle(sc, 1, 2, 6, { selection: { threshold: 5 }, sink: 1, recent: 1 }))).toEqual([2, 5])
    expect(Array.from(oracle.selectionCountsOracle(sc, 1, 2, 6, { selection: { threshold: -Infinity }, sink: 1, recent: 1 }))).toEqual([5, 6])
    expect(Array.from(oracle.selectionCountsOracle(sc, 1, 2, 6, { selection: { threshold: Infinity }, sink: 1, recent: 1 }))).toEqual([2, 2])
    // t is rounded to float32 first: 2 + 2^-30 rounds to 2 (kept), 2 + 2^-22 does not
    expect(Array.from(oracle.selectionCountsOracle(sc, 1, 2, 6, { selection: { threshold: 2 + 2 ** -30 }, sink: 1, recent: 1 }))).toEqual([4, 5])
    expect(Array.from(oracle.selectionCountsOracle(sc, 1, 2, 6, { selection: { threshold: 2 + 2 ** -22 }, sink: 1, recent: 1 }))).toEqual([3, 5])
    // ragged: entry length 3 -> middle [1, 2)
    expect(Array.from(oracle.selectionCountsOracle(sc, 1, 2, 6, { selection: { threshold: 0 }, sink: 1, recent: 1, lengths: [3] }))).toEqual([3, 2])
    // +0 and -0 are one score
    const z = new Float32Array(4)
    new Uint32Array(z.buffer).set([0x80000000, 0, 0x80000000, 0])
    expect(Array.from(oracle.selectionCountsOracle(z, 1, 1, 4, { selection: { threshold: 0 } }))).toEqual([4])
    expect(Array.from(oracle.selectionCountsOracle(z, 1, 1, 4, { selection: { threshold: -0 } }))).toEqual([4])
  })

  it('adaptive: the floor per head, then the best remaining across heads; ties to the lower head, then the earlier position', () => {
    // H 3, S 10, keep 4, no sink / recent: m = 4, 12 slots. All scores equal: alpha 0 gives
    // head 0 its 10 tokens, head 1 the next 2, head 2 none; alpha 0.5 (f = 2): 2 each, then the
    // 6 other slots all to head 0 (the lower head wins every tie)
    const eq = new Float32Array(30).fill(1)
    expect(Array.from(oracle.selectionCountsOracle(eq, 1, 3, 10, { keep: 4, selection: { adaptive: { alpha: 0 } } }))).toEqual([10, 2, 0])
    expect(Array.from(oracle.selectionCountsOracle(eq, 1, 3, 10, { keep: 4, selection: { adaptive: { alpha: 0.5 } } }))).toEqual([8, 2, 2])
    expect(Array.from(oracle.selectionCountsOracle(eq, 1, 3, 10, { keep: 4, selection: { adaptive: { alpha: 1 } } }))).toEqual([4, 4, 4])
    // default alpha 0.2: f = floor(0.8) = 0, the pure global pick
    expect(Array.from(oracle.selectionCountsOracle(eq, 1, 3, 10, { keep: 4, selection: 'adaptive' }))).toEqual([10, 2, 0])
    // +0 and -0 tie across heads (head 0 -0, head 1 +0): the lower head wins
    const z = new Float32Array(8)
    new Uint32Array(z.buffer).set([0x80000000, 0x80000000, 0x80000000, 0x80000000, 0, 0, 0, 0])
    expect(Array.from(oracle.selectionCountsOracle(z, 1, 2, 4, { keep: 2, selection: { adaptive: { alpha: 0 } } }))).toEqual([4, 0])
    // NaN last: head 1's numbers go before head 0's NaNs; the highest score first across heads
    const s = f32([NaN, NaN, 7, 1, -5, -6, -7, -8, 3, 2, 9, 0])
    // H 3, S 4, keep 2, alpha 0: 6 slots: 9 (h2), 7 (h0), 3 (h2), 2 (h2), 1 (h0), 0 (h2)
    expect(Array.from(oracle.selectionCountsOracle(s, 1, 3, 4, { keep: 2, selection: { adaptive: { alpha: 0 } } }))).toEqual([2, 0, 4])
    // with sink 1: p = 1, k = 2, m = 1, 3 slots over the middles [1, 4): 9 (h2), 7 (h0), 2 (h2)
    expect(Array.from(oracle.selectionCountsOracle(s, 1, 3, 4, { keep: 2, sink: 1, selection: { adaptive: { alpha: 0 } } }))).toEqual([2, 1, 3])
    // a NaN is taken only when the numbers run out: keep 4 of 4 -> every token
    expect(Array.from(oracle.selectionCountsOracle(s, 1, 3, 4, { keep: 4, selection: 'adaptive' }))).toEqual([4, 4, 4])
    // per batch entry: entry 0 (k 1, 2 slots) gives both to head 1; entry 1 (length 1, k 1) one each
    expect(Array.from(oracle.selectionCountsOracle(f32([1, 1, 5, 5, 1, 1, 5, 5]), 2, 2, 2, { keepRatio: 0.5, selection: { adaptive: { alpha: 0 } }, lengths: [2, 1] }))).toEqual([0, 2, 1, 1])
  })

  it('the compress path with per-row counts: each row its own k, zero rows and -1 past it, lengths the most of the heads', () => {
    const keys: oracle.OracleTensor = { type: 'float32', data: f32([1, 2, 3, 4, 5, 6, 7, 8]), dims: [1, 2, 4, 1] }
    const given = { scores: { type: 'float32', data: f32([4, 3, 2, 1, 1, 2, 3, 4]), dims: [1, 2, 4] } }
    const res = oracle.compress(keys, keys, { headKeep: [1, 3], score: given })
    expect(res.kept).toBe(3)
    expect(Array.from(res.headLengths)).toEqual([1, 3])
    expect(Array.from(res.lengths)).toEqual([3])
    expect(Array.from(res.indices)).toEqual([0, -1, -1, 1, 2, 3])
    expect(Array.from(res.keys.data)).toEqual([1, 0, 0, 6, 7, 8])
    expect(Array.from(oracle.compress(keys, keys, { headKeep: [1, 3], score: given, order: 'norm' }).indices)).toEqual([0, -1, -1, 3, 2, 1])
    // in place: each head's front, the rest as it was
    const ip = oracle.compressInPlace(keys, keys, { headKeep: [1, 3], score: given })
    expect(Array.from(ip.keys.data)).toEqual([1, 2, 3, 4, 6, 7, 8, 8])
    // 'per-head' is the old path: every head the entry's keep count
    const ph = oracle.compress(keys, keys, { keep: 2, score: given })
    expect(Array.from(ph.headLengths)).toEqual([2, 2])
    expect(Array.from(ph.indices)).toEqual([0, 1, 2, 3])
  })
})

// ---- the native selection against the oracle ---------------------------------------------------

/** Oracle scores, computed once per case and scorer; the oracle then selects from them as given scores. */
function givenScores(sc: Float32Array, dims: number[]): Score {
  return { scores: { type: 'float32', data: sc, dims: dims.slice(0, 3) } }
}

describe('compress with every selection mode equals the oracle', () => {
  for (const type of DTYPES) {
    it(`${type}: random shapes x 6 scorers x every mode; sync, and the invariants (seed ${seed})`, () => {
      const r = rng(seed ^ (type.length * 7919))
      for (let i = 0; i < 14; i++) {
        const { c, keys, values } = caseWithData(r, type, 60_000)
        const kb = keys.data.slice(), vb = values.data.slice()
        for (const name of NAMES) {
          const score = scorer(r, name, c.dims)
          const sc = oracle.scores(keys, values, score, lensOf(c))
          for (const kind of KINDS) {
            const o: oracle.OracleOptions = { ...c.base, ...selectionOptions(r, kind, c, sc), score }
            const what = `case ${i} ${type} dims ${c.dims} dv ${c.dv} ${name} ${kind} ${describeOptions(o)}`
            const want = oracle.compress(keys, values, { ...o, score: givenScores(sc, c.dims) })
            const res = compressSync(keys, values, opts(o))
            expectOracleResult(res, want, what)
            checkInvariants(res, sc, c, o, what)
          }
        }
        expectSameBits(keys.data, kb, `case ${i}: keys unchanged`)
        expectSameBits(values.data, vb, `case ${i}: values unchanged`)
      }
    })
  }

  it(`the Promise form settles with the sync result; compress(X, selection) equals compress({ scores: tokenScores(X) }, headKeep) (seed ${seed})`, async () => {
    const r = rng(seed + 1)
    for (let i = 0; i < 8; i++) {
      const type = pick(r, DTYPES)
      const { c, keys, values } = caseWithData(r, type, 40_000)
      for (const name of NAMES) {
        const score = scorer(r, name, c.dims)
        const ts = tokenScoresSync(keys, values, { score: score as kvtrim.Score, lengths: c.base.lengths })
        for (const kind of ['threshold', 'adaptive', 'headKeep'] as const) {
          const o: oracle.OracleOptions = { ...c.base, ...selectionOptions(r, kind, c, ts), score }
          const what = `case ${i} ${type} dims ${c.dims} ${name} ${kind} ${describeOptions(o)}`
          const sync = compressSync(keys, values, opts(o))
          expectSameResult(await compress(keys, values, opts(o)), sync, `${what}: Promise`)
          // the two passes, spelt out by the caller: the scores, then the counts as headKeep
          const given = { ...c.base, score: { scores: { type: 'float32', data: ts, dims: c.dims.slice(0, 3) } }, headKeep: sync.headLengths }
          expectSameResult(compressSync(keys, values, opts(given)), sync, `${what}: given scores + headKeep`)
          // and the counts are the oracle's counts of those scores
          expectSameBits(sync.headLengths, oracle.rowCounts(ts, c.dims, { ...o, lengths: lensOf(c) }), `${what}: counts of tokenScores`)
        }
      }
    }
  })

  it(`200 Promises of every mode in flight at once (compress and compressInPlace): each equals its sync result (seed ${seed})`, async () => {
    const r = rng(seed + 12)
    const type = pick(r, DTYPES)
    const { c, keys, values } = caseWithData(r, type, 30_000, true)
    const jobs = Array.from({ length: 200 }, (_, i) => {
      const score = scorer(r, pick(r, NAMES), c.dims)
      const sc = oracle.scores(keys, values, score, lensOf(c))
      const o = { ...c.base, ...selectionOptions(r, KINDS[i % KINDS.length], c, sc), score }
      const inPlace = i % 5 === 4
      const k = { ...keys, data: keys.data.slice() }, v = { ...values, data: values.data.slice() }
      return { o, sc, inPlace, k, v, p: inPlace ? compressInPlace(k, v, opts(o)) : compress(keys, values, opts(o)) }
    })
    for (const [i, j] of jobs.entries()) {
      const what = `job ${i} ${describeOptions(j.o)}`
      if (j.inPlace) checkInPlace(await (j.p as Promise<InPlaceResult>), j.k, j.v, oracle.compressInPlace(keys, values, { ...j.o, score: givenScores(j.sc, c.dims) }), what)
      else expectSameResult(await (j.p as Promise<CompressResult>), compressSync(keys, values, opts(j.o)), what)
    }
  })

  it(`adaptive alpha 1 is 'per-head'; alpha 0 and the default keep the same total (seed ${seed})`, () => {
    const r = rng(seed + 2)
    for (let i = 0; i < 12; i++) {
      const { type, c, keys, values, score } = anyCase(r, 50_000)
      const keep = randomKeep(r, c.dims[2])
      const what = `case ${i} ${type} dims ${c.dims} ${describeOptions({ ...c.base, ...keep })}`
      const perHead = compressSync(keys, values, opts({ ...c.base, ...keep, score }))
      expectSameResult(compressSync(keys, values, opts({ ...c.base, ...keep, score, selection: { adaptive: { alpha: 1 } } })), perHead, `${what}: alpha 1`)
      expectSameResult(compressSync(keys, values, opts({ ...c.base, ...keep, score, selection: 'per-head' })), perHead, `${what}: 'per-head'`)
      // per-head: every head of entry b keeps lengths[b]
      for (let b = 0; b < c.dims[0]; b++) {
        for (let h = 0; h < c.dims[1]; h++) expect(perHead.headLengths[b * c.dims[1] + h], `${what}: per-head headLengths`).toBe(perHead.lengths[b])
      }
      for (const selection of ['adaptive', { adaptive: { alpha: 0 } }, { adaptive: {} }] as const) {
        const res = compressSync(keys, values, opts({ ...c.base, ...keep, score, selection }))
        for (let b = 0; b < c.dims[0]; b++) {
          const sum = (a: Int32Array) => a.subarray(b * c.dims[1], (b + 1) * c.dims[1]).reduce((x, y) => x + y, 0)
          expect(sum(res.headLengths), `${what}: ${JSON.stringify(selection)} total`).toBe(sum(perHead.headLengths))
        }
      }
    }
  })

  it(`a threshold at -Infinity keeps every non-NaN token, at +Infinity only the sink, recent and +Inf scores (seed ${seed})`, () => {
    const r = rng(seed + 3)
    const dims = [2, 4, 120, 16]
    const { keys, values } = tensors(r, 'float16', dims, 16)
    const given = randomScores(r, 2, 4, 120, DATA.scores)
    const score = { scores: { type: 'float32', data: given, dims: [2, 4, 120] } }
    const o = { sink: 2, recent: 5, lengths: [120, 77] }
    for (const t of [-Infinity, Infinity]) {
      const res = compressSync(keys, values, opts({ ...o, score, selection: { threshold: t } }))
      for (let b = 0; b < 2; b++) {
        for (let h = 0; h < 4; h++) {
          const row = (b * 4 + h) * 120
          let n = 0
          for (let i = 2; i < o.lengths[b] - 5; i++) if (t === -Infinity ? !Number.isNaN(given[row + i]) : given[row + i] === Infinity) n++
          expect(res.headLengths[b * 4 + h], `t ${t} b ${b} h ${h}`).toBe(7 + n)
        }
      }
      expectOracleResult(res, oracle.compress(keys, values, { ...o, score, selection: { threshold: t } }), `threshold ${t}`)
    }
  })

  it(`ties everywhere: heads that are copies of each other (zeros of either sign), NaN rows; adaptive picks the lower head first (seed ${seed})`, () => {
    const r = rng(seed + 4)
    for (let i = 0; i < 20; i++) {
      const H = int(r, 2, 8), S = int(r, 1, 60), B = int(r, 1, 3)
      const dims = [B, H, S, int(r, 4, 12)]
      const { keys, values } = tensors(r, pick(r, DTYPES), dims, int(r, 1, 9))
      const data = new Float32Array(B * H * S)
      const bits = new Uint32Array(data.buffer)
      // one row of few distinct values (zeros of both signs, NaNs of any payload), copied to every head
      for (let b = 0; b < B; b++) {
        for (let s = 0; s < S; s++) {
          const u = r()
          const v = u < 0.2 ? randomNaN(r, 'float32') : u < 0.5 ? pick(r, [0, 0x80000000]) : new Uint32Array(new Float32Array([int(r, -2, 2)]).buffer)[0]
          for (let h = 0; h < H; h++) bits[(b * H + h) * S + s] = (v & 0x7fffffff) === 0 ? pick(r, [0, 0x80000000]) : v
        }
      }
      const score = { scores: { type: 'float32', data, dims: [B, H, S] } }
      const base: oracle.OracleOptions = { sink: int(r, 0, 3), recent: int(r, 0, 3), order: pick(r, ['position', 'norm'] as const) }
      if (r() < 0.5) base.lengths = Array.from({ length: B }, () => int(r, 0, S))
      for (const selection of [{ adaptive: { alpha: 0 } }, 'adaptive', { adaptive: { alpha: 0.5 } }, { threshold: 0 }, { threshold: -0 }, { threshold: 1 }] as const) {
        const keep = typeof selection === 'object' && 'threshold' in selection ? {} : randomKeep(r, S)
        const o: oracle.OracleOptions = { ...base, ...keep, score, selection }
        const res = compressSync(keys, values, opts(o))
        const what = `case ${i} dims ${dims} ${describeOptions(o)}`
        expectOracleResult(res, oracle.compress(keys, values, o), what)
        if (typeof selection === 'object' && 'adaptive' in selection) {
          // every head ties with every other: the counts never increase with the head
          for (let b = 0; b < B; b++) {
            for (let h = 1; h < H; h++) expect(res.headLengths[b * H + h], `${what}: b ${b} h ${h}`).toBeLessThanOrEqual(res.headLengths[b * H + h - 1])
          }
        }
      }
    }
  })

  it(`headKeep: every count from the smallest to the length, sink / recent, both orders, Promise form (seed ${seed})`, async () => {
    const r = rng(seed + 5)
    for (let i = 0; i < 10; i++) {
      const { type, c, keys, values, score } = anyCase(r, 40_000)
      const headKeep = randomHeadKeep(r, c)
      const o = { ...c.base, score, headKeep }
      const what = `case ${i} ${type} dims ${c.dims} ${describeOptions(o)}`
      const want = oracle.compress(keys, values, o)
      expectOracleResult(compressSync(keys, values, opts(o)), want, what)
      expectOracleResult(await compress(keys, values, opts(o)), want, `${what} (Promise)`)
      expectSameBits(want.headLengths, Int32Array.from(headKeep), `${what}: headLengths are headKeep`)
    }
  })

  it(`long rows (seqLen 1000..4000, kvHeads 4..8): given scores of any bit pattern, NaN, ties across heads; adaptive and threshold (seed ${seed})`, () => {
    const r = rng(seed + 8)
    for (let i = 0; i < 4; i++) {
      const B = int(r, 1, 2), H = int(r, 4, 8), S = int(r, 1000, 4000)
      const dims = [B, H, S, pick(r, [4, 5])]
      const type = pick(r, DTYPES)
      const { keys, values } = tensors(r, type, dims, int(r, 1, 4))
      const given = randomScores(r, B, H, S, DATA.scores)
      const score: Score = { scores: { type: 'float32', data: given, dims: [B, H, S] } }
      const c: Case = { type, dims, dv: values.dims[3], base: { sink: int(r, 0, 8), recent: int(r, 0, 64), order: pick(r, ['position', 'norm'] as const) } }
      if (r() < 0.5) c.base.lengths = Array.from({ length: B }, () => int(r, 0, S))
      const sc = oracle.scores(keys, values, score, lensOf(c))
      for (const kind of ['adaptive', 'adaptive', 'threshold', 'threshold'] as const) {
        const o: oracle.OracleOptions = { ...c.base, ...selectionOptions(r, kind, c, sc), score }
        const what = `long case ${i} ${type} dims ${dims} ${describeOptions(o)}`
        const res = compressSync(keys, values, opts(o))
        expectOracleResult(res, oracle.compress(keys, values, o), what)
        checkInvariants(res, sc, c, o, what)
      }
    }
  })

  it(`property (fast-check): small shapes, any scorer, any selection equal the oracle (seed ${seed})`, () => {
    fc.assert(
      fc.property(
        fc.record({
          type: fc.constantFrom<oracle.DType>(...DTYPES),
          B: fc.integer({ min: 1, max: 3 }),
          H: fc.integer({ min: 1, max: 8 }),
          S: fc.oneof(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 13, max: 80 })),
          D: fc.integer({ min: 4, max: 20 }),
          Dv: fc.integer({ min: 1, max: 20 }),
          name: fc.constantFrom(...NAMES),
          kind: fc.constantFrom(...KINDS),
          data: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
          ...windowArbitraries(6),
        }),
        (g) => {
          const r = rng(g.data)
          const dims = [g.B, g.H, g.S, g.D]
          const c: Case = { type: g.type, dims, dv: g.Dv, base: { order: g.order, sink: g.sink, recent: g.recent } }
          if (g.ragged) c.base.lengths = Array.from({ length: g.B }, () => int(r, 0, g.S))
          const { keys, values } = tensors(r, g.type, dims, g.Dv)
          const score = scorer(r, g.name, dims)
          const sc = oracle.scores(keys, values, score, lensOf(c))
          const o: oracle.OracleOptions = { ...c.base, ...selectionOptions(r, g.kind, c, sc), score }
          const what = `${g.type} ${dims} dv ${g.Dv} ${g.name} ${describeOptions(o)}`
          const res = compressSync(keys, values, opts(o))
          expectOracleResult(res, oracle.compress(keys, values, { ...o, score: givenScores(sc, dims) }), what)
          checkInvariants(res, sc, c, o, what)
        },
      ),
      { seed, numRuns: Math.max(1, Math.round(250 * Number(process.env.KVTRIM_PROPERTY_RUNS ?? 1))), endOnFailure: true },
    )
  })
})

describe('the selectionCounts binding (the counts alone)', () => {
  it(`equals the oracle's counts for given scores of any bits, ragged lengths, sink / recent; refuses 'per-head' (seed ${seed})`, async () => {
    const r = rng(seed + 10)
    const b = rawBinding()
    for (let i = 0; i < 40; i++) {
      const [B, H, S] = [int(r, 0, 3), int(r, 0, 8), r() < 0.1 ? 0 : int(r, 1, 400)]
      const data = randomScores(r, B, H, S, DATA.scores)
      const scores = { type: 'float32' as const, data, dims: [B, H, S] }
      const c: Case = { type: 'float32', dims: [B, H, S, 1], dv: 1, base: { sink: int(r, 0, 6), recent: int(r, 0, 20) } }
      if (r() < 0.5) c.base.lengths = Array.from({ length: B }, () => int(r, 0, S))
      // the scores as the contract reads them (NaN canonical, +0 for -0, NaN past each length)
      const dummy: oracle.OracleTensor = { type: 'float32', data: new Float32Array(0), dims: [B, H, S, 1] }
      const sc = oracle.scores(dummy, dummy, { scores }, lensOf(c))
      const o = { ...c.base, ...selectionOptions(r, pick(r, ['threshold', 'adaptive'] as const), c, sc) }
      const want = oracle.selectionCountsOracle(sc, B, H, S, { ...o, lengths: lensOf(c) })
      const what = `case ${i} dims ${[B, H, S]} ${describeOptions(o)}`
      expectSameBits(b.selectionCountsSync(scores, o), want, `${what}: sync`)
      expectSameBits(await b.selectionCounts(scores, o), want, `${what}: Promise`)
    }
    const scores = { type: 'float32' as const, data: new Float32Array(8).fill(1), dims: [1, 2, 4] }
    for (const o of [{ keep: 2 }, { keep: 2, selection: 'per-head' }]) {
      let err: unknown
      try { b.selectionCountsSync(scores, o) } catch (e) { err = e }
      expect((err as kvtrim.KvtrimError).code, JSON.stringify(o)).toBe('INVALID_OPTION')
    }
  })
})

describe('kvHeads 0', () => {
  const none = { type: 'float16', data: new Uint16Array(0), dims: [2, 0, 16, 8] }

  it("'per-head' keeps saying each entry's keep count; a ragged selection has no head counts", () => {
    const res = compressSync(none, none, { keepRatio: 0.5, sink: 2, recent: 1, lengths: [16, 5] })
    expect(Array.from(res.lengths)).toEqual([8, 3])
    expect(res.headLengths.length).toBe(0)
    for (const o of [{ keepRatio: 0.5, selection: 'adaptive' }, { selection: { threshold: 0 } }, { headKeep: [] }] as CompressOptions[]) {
      expect(compressSync(none, none, o).headLengths.length, JSON.stringify(o)).toBe(0)
    }
  })

  // Found by this suite (fixed in a370f46): an empty count list was read as no headKeep, so
  // kvHeads 0 with a ragged selection reported lengths min(len, sink + recent).
  it('kvHeads 0, a ragged selection with sink / recent: lengths are 0, the most of no heads', () => {
    for (const o of [{ selection: { threshold: 0 } }, { headKeep: [] }, { keepRatio: 0.5, selection: 'adaptive' }] as CompressOptions[]) {
      const res = compressSync(none, none, { ...o, sink: 2, recent: 1 })
      expect(Array.from(res.lengths), JSON.stringify(o)).toEqual([0, 0])
      expect(res.kept).toBe(0)
    }
  })
})

describe('compressInPlace with every selection mode', () => {
  it(`each head's kept rows at the front of its own row, the rest as it was; sync and Promise (seed ${seed})`, async () => {
    const r = rng(seed + 6)
    for (let i = 0; i < 12; i++) {
      const type = pick(r, DTYPES)
      const { c, keys, values } = caseWithData(r, type, 40_000, true)
      for (const name of NAMES) {
        const score = scorer(r, name, c.dims)
        const sc = oracle.scores(keys, values, score, lensOf(c))
        const kind = KINDS[(i + NAMES.indexOf(name)) % KINDS.length]
        const o: oracle.OracleOptions = { ...c.base, ...selectionOptions(r, kind, c, sc), score }
        const what = `case ${i} ${type} dims ${c.dims} dv ${c.dv} ${name} ${kind} ${describeOptions(o)}`
        const want = oracle.compressInPlace(keys, values, { ...o, score: givenScores(sc, c.dims) })
        const k = { ...keys, data: keys.data.slice() }, v = { ...values, data: values.data.slice() }
        const res = name === 'keydiff' || i % 2 ? await compressInPlace(k, v, opts(o)) : compressInPlaceSync(k, v, opts(o))
        checkInPlace(res, k, v, want, what)
      }
    }
  })
})

describe('compressCache with a selection', () => {
  type Layer = { keys: oracle.OracleTensor; values: oracle.OracleTensor }
  const layerCheck = (got: { keys: unknown; values: unknown; indices?: Int32Array; lengths?: Int32Array; headLengths?: Int32Array }, want: oracle.OracleCompressResult, what: string) => {
    const k = got.keys as oracle.OracleTensor, v = got.values as oracle.OracleTensor
    expect(k.dims, `${what}: dims`).toEqual(want.keys.dims)
    expectSameBits(got.indices as Int32Array, want.indices, `${what}: indices`)
    expectSameBits(got.lengths as Int32Array, want.lengths, `${what}: lengths`)
    expectSameBits(got.headLengths as Int32Array, want.headLengths, `${what}: headLengths`)
    expectSameBits(k.data, want.keys.data, `${what}: keys`)
    expectSameBits(v.data, want.values.data, `${what}: values`)
  }

  it(`every layer equals the oracle: threshold, adaptive (uniform, per-layer keep and ratio budgets), any scorer; sync and Promise (seed ${seed})`, async () => {
    const r = rng(seed + 7)
    for (let round = 0; round < 6; round++) {
      const type = pick(r, DTYPES)
      const [B, H, D] = [int(r, 1, 3), int(r, 1, 6), pick(r, [5, 8, 16, 33])]
      const caps = Array.from({ length: int(r, 2, 4) }, () => int(r, 8, 200))
      const layers: Layer[] = caps.map((s) => tensors(r, type, [B, H, s, D], int(r, 1, 24)))
      const base: oracle.OracleOptions = { sink: int(r, 0, 3), recent: int(r, 0, 6) }
      if (r() < 0.5) base.order = pick(r, ['position', 'norm'] as const)
      if (r() < 0.5) base.lengths = Array.from({ length: B }, () => int(r, 0, Math.min(...caps)))
      const name = pick(r, NAMES)
      const per = layers.map((l) => scorer(r, name, l.keys.dims))
      const cacheScore = name === 'project' ? { project: per.map((p) => (p as { project: Float32Array }).project) }
        : name === 'scores' ? { scores: per.map((p) => (p as { scores: oracle.OracleScoresTensor }).scores) } : name
      const lens = (l: Layer) => Array.from({ length: B }, (_, b) => (base.lengths ? base.lengths[b] : l.keys.dims[2]))
      const sc = layers.map((l, i) => oracle.scores(l.keys, l.values, per[i], lens(l)))
      const alpha = pick(r, [0, 0.2, 0.5, 1])
      // [cache options, the options of layer i for the oracle]
      const variants: Array<[string, Record<string, unknown>, (i: number) => oracle.OracleOptions]> = [
        ['adaptive uniform', { keepRatio: 0.4, selection: { adaptive: { alpha } } }, () => ({ keepRatio: 0.4, selection: { adaptive: { alpha } } })],
        ['adaptive keep budgets', { budgets: { keep: caps.map((s) => int(r, 0, s)) }, selection: 'adaptive' }, (i) => ({ keep: (variants[1][1].budgets as { keep: number[] }).keep[i], selection: 'adaptive' })],
        ['adaptive ratio budgets', { budgets: caps.map(() => pick(r, [0.1, 0.3, 0.7, 1])), selection: { adaptive: { alpha } } }, (i) => ({ keepRatio: (variants[2][1].budgets as number[])[i], selection: { adaptive: { alpha } } })],
        ['threshold', { selection: { threshold: randomThreshold(r, middleScores(sc[0], layers[0].keys.dims, lens(layers[0]), base)) } }, () => ({ selection: variants[3][1].selection as oracle.OracleSelection })],
      ]
      for (const [label, extra, layerOptions] of variants) {
        const o = { ...base, ...extra, score: cacheScore }
        const what = `round ${round} ${type} ${label} ${name} ${describeOptions({ ...base, ...(extra as oracle.OracleOptions) })}`
        const sync = compressCacheSync(layers, o as never)
        const res = await compressCache(layers, o as never)
        layers.forEach((l, i) => {
          const want = oracle.compress(l.keys, l.values, { ...base, ...layerOptions(i), score: givenScores(sc[i], l.keys.dims) })
          layerCheck(sync.layers[i], want, `${what} layer ${i} (sync)`)
          layerCheck(res.layers[i], want, `${what} layer ${i} (Promise)`)
        })
      }
    }
  })
  it(`pyramid and zigzag budgets with adaptive: each layer's count is the per-head run's, then shared across its heads (seed ${seed})`, async () => {
    const r = rng(seed + 9)
    for (let round = 0; round < 4; round++) {
      const type = pick(r, DTYPES)
      const [B, H] = [int(r, 1, 2), int(r, 2, 6)]
      const S = int(r, 40, 200) // one length for every layer: each layer's kept count is its budget
      const nLayers = int(r, 3, 6)
      const layers: Layer[] = Array.from({ length: nLayers }, () => tensors(r, type, [B, H, S, pick(r, [4, 9, 16])], int(r, 1, 12)))
      const budgets = pick(r, ['pyramid', { zigzag: layers.map(() => r() + 0.01) }] as const)
      const base = { keepRatio: pick(r, [0.2, 0.4, 0.6]), sink: int(r, 0, 3), recent: int(r, 0, 5), budgets }
      const selection = pick(r, ['adaptive', { adaptive: { alpha: 0 } }, { adaptive: { alpha: 0.5 } }] as const)
      // the per-head run says each layer's budget (its kept count)
      const perHead = compressCacheSync(layers, base as never)
      const keeps = perHead.layers.map((l) => (l.keys.dims as number[])[2])
      const res = await compressCache(layers, { ...base, selection } as never)
      layers.forEach((l, i) => {
        const want = oracle.compress(l.keys, l.values, { keep: keeps[i], sink: base.sink, recent: base.recent, selection })
        layerCheck(res.layers[i], want, `round ${round} ${JSON.stringify(budgets)} ${JSON.stringify(selection)} layer ${i} keep ${keeps[i]}`)
      })
    }
  })
})
