// The score engine (docs/policies.md "Scorers: which tokens a head keeps") against the oracle, on
// fresh random data: every scorer ('low-norm', 'high-norm', 'kv-norm', 'keydiff', { project },
// { scores }), every dtype, Dk != Dv, ragged lengths, sink / recent, both orders, keep and
// keepRatio, keys with NaN, Inf, zero, tiny (norm underflows to 0), huge (norm overflows) and
// duplicated rows. tokenScores equals the oracle's scores bit for bit; compress equals the
// oracle's compress bit for bit; compress with a scorer equals compress with the scores it
// returns. KVTRIM_SEED=<n> replays a run; KVTRIM_PROPERTY_RUNS=<factor> lengthens the fast-check part.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import * as kvtrim from '../lib/index'
import type { CompressOptions, HostTensor } from '../lib/index'
import * as oracle from './oracle'
import { CacheCompressor } from '../lib/cache/transformers'
import { expectOracleResult, expectSameBits, expectSameResult } from './expect'
import { int, pick, randomTensor, rng, runSeed, type Rng } from './random'
import { MIXED_OR_FEW, NAMES, randomScores, randomVectors, scorer as scorerOf, windowArbitraries, type Name, type ScorerData } from './scorer-cases'

// The API of NOTES.md "Score engine (issue 15)": typed loosely here so that this file states the
// contract rather than the declarations.
type Score = oracle.OracleScore
type ScoreOptions = { score?: unknown; lengths?: ArrayLike<number>; stream?: bigint }
const api = kvtrim as unknown as {
  tokenScoresSync(keys: unknown, values: unknown, o: ScoreOptions): Float32Array
  tokenScores(keys: unknown, values: unknown, o: ScoreOptions): Promise<Float32Array>
}
const { compress, compressSync, compressInPlace, compressInPlaceSync, compressCache, compressCacheSync, keyNormsSync, Compressor } = kvtrim
const opts = (o: oracle.OracleOptions): CompressOptions => o as unknown as CompressOptions

const DTYPES = ['float16', 'bfloat16', 'float32'] as const
const seed = runSeed()

// ---- data -----------------------------------------------------------------------------------

const ONE = { float16: 0x3c00, bfloat16: 0x3f80, float32: 1 } as const

/**
 * Rows that stress the scorers, written over a random tensor: zero rows (+0 and -0 elements),
 * tiny rows (nonzero, but the squares underflow: norm 0 for bfloat16 and float32), huge rows
 * (finite, but the squares overflow: norm Inf), rows of one repeated element. Never all zeros.
 */
function stress(r: Rng, t: oracle.OracleTensor, p: number): oracle.OracleTensor {
  const D = t.dims[3]
  const rows = t.dims[0] * t.dims[1] * t.dims[2]
  const bits = t.type === 'float32' ? new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length) : (t.data as Uint16Array)
  const sign = t.type === 'float32' ? 0x80000000 : 0x8000
  for (let row = 0; row < rows; row++) {
    const u = r()
    if (u >= p) continue
    const kind = int(r, 0, 3)
    for (let d = 0; d < D; d++) {
      const neg = r() < 0.5 ? sign : 0
      let b: number
      if (kind === 0) b = neg // zero
      else if (kind === 1) {
        // tiny: fp16 subnormals; bf16 exponents 1..40 (about 1e-38 .. 1e-26); f32 1e-38 .. 1e-17 (squares partly subnormal)
        if (t.type === 'float16') b = neg | int(r, 1, 0x3ff)
        else if (t.type === 'bfloat16') b = neg | (int(r, 1, 40) << 7) | int(r, 0, 0x7f)
        else b = (neg | (int(r, 1, 70) << 23) | int(r, 0, 0x7fffff)) >>> 0
      } else if (kind === 2) {
        // huge: finite elements whose squares overflow fp32 (fp16 cannot: its largest square is 4.3e9)
        if (t.type === 'float16') b = neg | (30 << 10) | int(r, 0, 0x3ff)
        else if (t.type === 'bfloat16') b = neg | (int(r, 200, 254) << 7) | int(r, 0, 0x7f)
        else b = (neg | (int(r, 200, 254) << 23) | int(r, 0, 0x7fffff)) >>> 0
      } else b = bits[row * D] // one value repeated
      bits[row * D + d] = b >>> 0
    }
  }
  if (t.data.length > 0 && t.data.every((x) => x === 0)) t.data[t.data.length >> 1] = ONE[t.type]
  return t
}

// This suite's vectors have -0 elements and are plain arrays at times; its scores mostly of any scale.
const DATA: ScorerData = { vectors: { negativeZero: true, plainArrays: true }, scores: MIXED_OR_FEW }
const scorer = (r: Rng, name: Name, dims: number[]): Score => scorerOf(r, name, dims, DATA)

function tensors(r: Rng, type: oracle.DType, dims: number[], dv: number) {
  const keys = stress(r, randomTensor(r, type, dims, { dupRows: 0.15, nanRows: 0.03, infRows: 0.02 }), 0.06)
  const values = stress(r, randomTensor(r, type, [...dims.slice(0, 3), dv], { dupRows: 0.05, nanRows: 0.03, infRows: 0.02 }), 0.06)
  return { keys, values }
}

interface Case {
  type: oracle.DType
  dims: number[]
  dv: number
  options: oracle.OracleOptions
}

function randomCase(r: Rng, type: oracle.DType, maxElements: number, inPlace = false): Case {
  const d = r() < 0.5 ? int(r, 1, 40) : pick(r, [63, 64, 72, 96, 128, 129, 256])
  const s = Math.max(1, Math.round(Math.exp(r() * Math.log(2500))))
  let b = int(r, 1, 4), h = int(r, 1, 5)
  while (b * h * s * d > maxElements && b * h > 1) (b > h ? (b = Math.ceil(b / 2)) : (h = Math.ceil(h / 2)))
  const options: oracle.OracleOptions = {}
  if (!inPlace && r() < 0.5) options.order = pick(r, ['position', 'norm'] as const)
  if (r() < 0.7) options.keepRatio = pick(r, [0.07, 0.1, 0.25, 0.5, 0.75, 1, r() || 0.5])
  else options.keep = int(r, 0, s)
  if (r() < 0.3) options.sink = int(r, 0, 8)
  if (r() < 0.3) options.recent = int(r, 0, 40)
  if (r() < 0.4) options.lengths = Array.from({ length: b }, () => int(r, 0, s))
  return { type, dims: [b, h, s, d], dv: r() < 0.3 ? d : int(r, 1, 100), options }
}

const describeCase = (c: Case, score: Score) =>
  `${c.type} dims ${c.dims} dv ${c.dv} ${JSON.stringify(c.options)} score ${typeof score === 'string' ? score : Object.keys(score)[0]}`

// ---- comparisons ------------------------------------------------------------------------------

/**
 * The kept rows of an in-place compress (rows [0, lengths[b]) of each head) against the oracle:
 * they are packed into the oracle's [B, H, K, D] layout (zero rows past a batch entry's length,
 * as the oracle pads) and compared in one go.
 */
function expectFront(keys: oracle.OracleTensor, values: oracle.OracleTensor, want: oracle.OracleCompressResult, what: string) {
  const [B, H, S] = keys.dims
  const pack = (t: oracle.OracleTensor, like: Float32Array | Uint16Array) => {
    const D = t.dims[3]
    const out = like.slice().fill(0)
    for (let row = 0; row < B * H; row++) {
      const n = want.lengths[Math.floor(row / H)] * D
      out.set(t.data.subarray(row * S * D, row * S * D + n), row * want.kept * D)
    }
    return out
  }
  expectSameBits(pack(keys, want.keys.data), want.keys.data, `${what}: keys`)
  expectSameBits(pack(values, want.values.data), want.values.data, `${what}: values`)
}

const copy = (t: oracle.OracleTensor): oracle.OracleTensor => ({ type: t.type, data: t.data.slice(), dims: [...t.dims] })
const f32 = (xs: number[]) => Float32Array.from(xs)
const bitsOf = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length))

// ---- the oracle itself, worked by hand ----------------------------------------------------------

describe('the oracle scorers, by hand', () => {
  const t = (data: number[], dims: number[]): oracle.OracleTensor => ({ type: 'float32', data: f32(data), dims })

  it('low-norm is -norm (a zero key scores +0: zeros are +0), high-norm the norm, kv-norm their product, NaN canonical at padding', () => {
    const keys = t([3, 4, 0, 0, 6, 8], [1, 1, 3, 2])
    const values = t([1, 0, 5, 5, 0, 0.5], [1, 1, 3, 2])
    expect(bitsOf(oracle.scores(keys, values, 'low-norm'))).toEqual(bitsOf(f32([-5, 0, -10])))
    expect(bitsOf(oracle.scores(keys, values, 'low-norm'))[1]).toBe(0)
    expect(Array.from(oracle.scores(keys, values, 'high-norm'))).toEqual([5, 0, 10])
    expect(Array.from(oracle.scores(keys, values, 'kv-norm'))).toEqual([5, 0, 5])
    expect(bitsOf(oracle.scores(keys, values, 'kv-norm', [2]))[2]).toBe(oracle.CANONICAL_NAN_BITS)
  })

  it('keydiff: the anchor sums unit keys (zero and infinite keys add nothing); s = -(k . a) / |k|', () => {
    // units (1,0), (0,1), (1,0); the zero key and the infinite key add nothing: a = (2, 1)
    const keys = t([2, 0, 0, 3, 5, 0, 0, 0, Infinity, 1], [1, 1, 5, 2])
    const s = oracle.scores(keys, keys, 'keydiff')
    expect(Array.from(s.subarray(0, 3))).toEqual([-2, -1, -2])
    expect(bitsOf(s)[3]).toBe(0) // zero norm: +0
    expect(bitsOf(s)[4]).toBe(oracle.CANONICAL_NAN_BITS) // infinite norm: NaN
    // the most different key is kept first; ties to the earlier token
    expect(oracle.selectTop(s, 5, { keep: 3, order: 'norm' })).toEqual([3, 1, 0])
    // the anchor counts only the valid tokens: with length 2, a = (1, 1)
    expect(Array.from(oracle.scores(keys, keys, 'keydiff', [2]).subarray(0, 2))).toEqual([-1, -1])
  })

  it('keydiff sums its anchor in chunks of 32 tokens and a pairwise tree, not left to right', () => {
    // 70 tokens of D = 2 whose unit components round: chunk sums over tokens 0-31, 32-63, 64-69,
    // padded to 4 chunks, then the tree: (c0 + c2) + (c1 + 0)
    const n = 70
    const data: number[] = []
    for (let j = 0; j < n; j++) data.push(1, (j % 7) / 3 + 0.1)
    const x = f32(data)
    const norms = Array.from({ length: n }, (_, j) => oracle.normOf(x, j * 2, 2))
    const a = oracle.keydiffAnchor(x, norms, 0, n, 2)
    // the contract's order, spelt out: three chunk sums (32, 32, 6) padded to 4, then the tree
    const chunk = (lo: number, hi: number, d: number) => {
      let s = 0
      for (let j = lo; j < hi; j++) s = Math.fround(s + Math.fround(x[j * 2 + d] / norms[j]))
      return s
    }
    for (const d of [0, 1]) {
      const [c0, c1, c2] = [chunk(0, 32, d), chunk(32, 64, d), chunk(64, 70, d)]
      expect(a[d]).toBe(Math.fround(Math.fround(c0 + c2) + c1))
    }
  })

  it('project: s = -(f_h . k_i) with f_h per head, the dot in chunks of 8 from the first product', () => {
    const keys = t([3, 4, 1, 1, 2, 0, 0, -1], [1, 2, 2, 2])
    const s = oracle.scores(keys, keys, { project: [1, 2, -1, 0.5] })
    expect(Array.from(s)).toEqual([-11, -3, 2, 0.5])
    // a zero dot scores +0 whatever the signs of its products (every zero score is +0)
    const z = t(new Array(8).fill(0), [1, 1, 1, 8])
    expect(bitsOf(oracle.scores(z, z, { project: new Array(8).fill(-1) }))).toEqual([0])
    expect(bitsOf(oracle.scores(z, z, { project: new Array(8).fill(1) }))).toEqual([0])
    expect(oracle.dotOf(new Array(8).fill(1), 0, new Array(8).fill(-0), 0, 8)).toBe(-0)
    // the vector is taken as fp32: 0.1 rounds to 0x3dcccccd
    const one = t([1], [1, 1, 1, 1])
    expect(oracle.scores(one, one, { project: [0.1] })[0]).toBe(-Math.fround(0.1))
  })

  it('given scores: kept bit for bit but NaNs canonical and -0 as +0; keep-highest, +0 == -0, NaN last', () => {
    const given = new Float32Array(6)
    const g = new Uint32Array(given.buffer)
    g.set([0x80000000, 0, 0xffc00001, 0x3f800000, 0x7f800001, 0xbf800000])
    const keys = t(new Array(6).fill(1), [1, 1, 6, 1])
    const s = oracle.scores(keys, keys, { scores: { data: given, dims: [1, 1, 6] } })
    expect(bitsOf(s)).toEqual([0, 0, 0x7fc00000, 0x3f800000, 0x7fc00000, 0xbf800000])
    expect(oracle.selectTop(s, 6, { keep: 6, order: 'norm' })).toEqual([3, 0, 1, 5, 2, 4])
    expect(oracle.selectTop(s, 6, { keep: 2, sink: 1 })).toEqual([0, 3])
  })

  it('low-norm and high-norm select exactly as the norm ranking always has', () => {
    const r = rng(seed + 1)
    const keys = randomTensor(r, 'float16', [2, 3, 200, 24], { dupRows: 0.3, nanRows: 0.05 })
    const norms = oracle.keyNorms(keys)
    for (const high of [false, true]) {
      for (let row = 0; row < 6; row++) {
        const n = norms.subarray(row * 200, row * 200 + 200)
        const byNorm = Array.from({ length: 200 }, (_, i) => i).sort((a, b) => {
          const na = Number.isNaN(n[a]), nb = Number.isNaN(n[b])
          if (na !== nb) return na ? 1 : -1
          if (!na && n[a] !== n[b]) return (high ? -1 : 1) * (n[a] < n[b] ? -1 : 1)
          return a - b
        })
        const s = oracle.scores({ ...keys, dims: [1, 1, 200, 24], data: keys.data.subarray(row * 200 * 24, (row + 1) * 200 * 24) }, keys, high ? 'high-norm' : 'low-norm')
        expect(oracle.selectTop(s, 200, { keep: 200, order: 'norm' })).toEqual(byNorm)
      }
    }
  })
})

// ---- the native scorers against the oracle --------------------------------------------------------

describe('tokenScores and compress with every scorer', () => {
  for (const type of DTYPES) {
    it(`${type}: 14 random shapes x 6 scorers: tokenScoresSync, compressSync and compress({ scores }) equal the oracle bit for bit (seed ${seed})`, () => {
      const r = rng(seed ^ (type.length * 7919))
      for (let i = 0; i < 14; i++) {
        const c = randomCase(r, type, 60_000)
        const { keys, values } = tensors(r, type, c.dims, c.dv)
        const kb = keys.data.slice(), vb = values.data.slice()
        for (const name of NAMES) {
          const score = scorer(r, name, c.dims)
          const what = `case ${i} ${describeCase(c, score)}`
          const o = { ...c.options, score }
          const given = typeof score === 'object' && 'scores' in score ? (score.scores.data as Float32Array).slice() : undefined
          const vectors = typeof score === 'object' && 'project' in score ? Array.from(score.project) : undefined
          const got = api.tokenScoresSync(keys, values, { score, lengths: c.options.lengths })
          expect(got).toBeInstanceOf(Float32Array)
          expectSameBits(got, oracle.scores(keys, values, score, c.options.lengths), `${what}: tokenScores`)
          const res = compressSync(keys, values, opts(o))
          expectOracleResult(res, oracle.compress(keys, values, o), `${what}: compress`)
          expectSameResult(compressSync(keys, values, opts({ ...c.options, score: { scores: { type: 'float32', data: got, dims: c.dims.slice(0, 3) } } })), res, `${what}: compress({ scores: tokenScores })`)
          // nothing the caller passed is modified
          expectSameBits(keys.data, kb, `${what}: keys unchanged`)
          expectSameBits(values.data, vb, `${what}: values unchanged`)
          if (given) expectSameBits((score as { scores: { data: Float32Array } }).scores.data, given, `${what}: scores unchanged`)
          if (vectors) expect(Array.from((score as { project: ArrayLike<number> }).project), `${what}: vectors unchanged`).toEqual(vectors)
        }
      }
    })
  }

  it(`long rows: seqLen 3000 (94 anchor chunks), head_dim 128, fp16 and bf16, with sink and recent (seed ${seed})`, () => {
    const r = rng(seed + 3)
    for (const type of ['float16', 'bfloat16'] as const) {
      const { keys, values } = tensors(r, type, [1, 2, 3000, 128], 96)
      for (const name of ['kv-norm', 'keydiff', 'project'] as const) {
        const score = scorer(r, name, [1, 2, 3000, 128])
        const o: oracle.OracleOptions = { keepRatio: 0.3, score, sink: 4, recent: 32, order: 'norm', lengths: [2999] }
        expectSameBits(api.tokenScoresSync(keys, values, { score, lengths: [2999] }), oracle.scores(keys, values, score, [2999]), `${type} ${name}: tokenScores`)
        expectOracleResult(compressSync(keys, values, opts(o)), oracle.compress(keys, values, o), `${type} ${name}: compress`)
      }
    }
  })

  it(`'low-norm' scores are the negated keyNorms and 'high-norm' the keyNorms, bit for bit (seed ${seed})`, () => {
    const r = rng(seed + 5)
    for (const type of DTYPES) {
      const { keys, values } = tensors(r, type, [2, 3, 300, 40], 24)
      const norms = keyNormsSync(keys)
      const neg = norms.map((n) => (n === 0 ? 0 : -n))
      const nb = new Uint32Array(neg.buffer)
      norms.forEach((n, i) => { if (Number.isNaN(n)) nb[i] = oracle.CANONICAL_NAN_BITS })
      expectSameBits(api.tokenScoresSync(keys, values, { score: 'low-norm' }), neg, `${type} low-norm`)
      expectSameBits(api.tokenScoresSync(keys, values, { score: 'high-norm' }), norms, `${type} high-norm`)
    }
  })

  it(`a row of identical keys: every scorer ties, so the earliest tokens are kept (seed ${seed})`, () => {
    const r = rng(seed + 7)
    const keys = randomTensor(r, 'bfloat16', [1, 2, 50, 16])
    for (let row = 1; row < 100; row++) keys.data.copyWithin(row * 16, 0, 16)
    const values = randomTensor(r, 'bfloat16', [1, 2, 50, 16])
    // kv-norm ties only where the values tie too: identical value rows
    for (let row = 1; row < 100; row++) values.data.copyWithin(row * 16, 0, 16)
    for (const score of ['low-norm', 'high-norm', 'kv-norm', 'keydiff', { project: randomVectors(r, 2, 16, DATA.vectors) }] as Score[]) {
      const res = compressSync(keys, values, opts({ keep: 10, order: 'norm', score }))
      expect(Array.from(res.indices.subarray(0, 10)), JSON.stringify(score)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
      expectOracleResult(res, oracle.compress(keys, values, { keep: 10, order: 'norm', score }), JSON.stringify(score))
    }
  })

  it(`property (fast-check): small shapes, any scorer and option set equal the oracle (seed ${seed})`, () => {
    fc.assert(
      fc.property(
        fc.record({
          type: fc.constantFrom<oracle.DType>('float16', 'bfloat16', 'float32'),
          B: fc.integer({ min: 0, max: 3 }),
          H: fc.integer({ min: 1, max: 3 }),
          S: fc.oneof(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 13, max: 80 })),
          D: fc.oneof(fc.integer({ min: 1, max: 20 }), fc.constantFrom(64, 65)),
          Dv: fc.integer({ min: 1, max: 20 }),
          name: fc.constantFrom(...NAMES),
          data: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
          ratio: fc.option(fc.double({ min: Number.MIN_VALUE, max: 1, noNaN: true }), { nil: undefined }),
          keep: fc.nat(),
          ...windowArbitraries(10),
        }),
        (g) => {
          const r = rng(g.data)
          const dims = [g.B, g.H, g.S, g.D]
          const { keys, values } = tensors(r, g.type, dims, g.Dv)
          const score = scorer(r, g.name, dims)
          const o: oracle.OracleOptions = { score, order: g.order, sink: g.sink, recent: g.recent }
          if (g.ratio !== undefined) o.keepRatio = g.ratio
          else o.keep = g.keep % (g.S + 1)
          if (g.ragged) o.lengths = Array.from({ length: g.B }, () => int(r, 0, g.S))
          const what = `${g.type} ${dims} dv ${g.Dv} ${g.name} ${JSON.stringify({ ...o, score: undefined })}`
          expectSameBits(api.tokenScoresSync(keys, values, { score, lengths: o.lengths }), oracle.scores(keys, values, score, o.lengths), `${what}: tokenScores`)
          expectOracleResult(compressSync(keys, values, opts(o)), oracle.compress(keys, values, o), what)
        },
      ),
      // KVTRIM_PROPERTY_RUNS=<factor> multiplies the runs, as in test/property.test.ts
      { seed, numRuns: Math.max(1, Math.round(150 * Number(process.env.KVTRIM_PROPERTY_RUNS ?? 1))), endOnFailure: true },
    )
  })
})

describe('compressInPlace with every scorer', () => {
  for (const type of DTYPES) {
    it(`${type}: random shapes, ragged lengths, sink / recent: the oracle's rows at the front (seed ${seed})`, () => {
      const r = rng(seed ^ (type.length * 104729))
      for (let i = 0; i < 6; i++) {
        const c = randomCase(r, type, 30_000, true)
        const { keys, values } = tensors(r, type, c.dims, c.dv)
        for (const name of NAMES) {
          const score = scorer(r, name, c.dims)
          const o = { ...c.options, score }
          const want = oracle.compress(keys, values, o)
          const [k, v] = [copy(keys), copy(values)]
          const res = compressInPlaceSync(k, v, opts(o))
          const what = `case ${i} ${describeCase(c, score)}`
          expectSameBits(res.indices, want.indices, `${what}: indices`)
          expectSameBits(res.lengths, want.lengths, `${what}: lengths`)
          expect(res.kept, `${what}: kept`).toBe(want.kept)
          expectFront(k, v, want, what)
        }
      }
    })
  }
})

describe('the Promise forms and compressCache', () => {
  it(`tokenScores, compress and compressInPlace settle with the sync forms' results (seed ${seed})`, async () => {
    const r = rng(seed + 11)
    const dims = [2, 3, 400, 72]
    const { keys, values } = tensors(r, 'float16', dims, 40)
    const lengths = [400, 257]
    const score = scorer(r, 'keydiff', dims)
    const got = await api.tokenScores(keys, values, { score, lengths })
    expect(got).toBeInstanceOf(Float32Array)
    expectSameBits(got, oracle.scores(keys, values, score, lengths), 'tokenScores keydiff')
    const project = scorer(r, 'project', dims)
    const o = { keepRatio: 0.4, order: 'norm' as const, lengths, score: project }
    expectOracleResult(await compress(keys, values, opts(o)), oracle.compress(keys, values, o), 'compress project')
    const given = scorer(r, 'scores', dims)
    const ip = { keep: 100, sink: 2, recent: 8, lengths, score: given }
    const [k, v] = [copy(keys), copy(values)]
    const want = oracle.compress(keys, values, ip)
    const res = await compressInPlace(k, v, opts(ip))
    expectSameBits(res.indices, want.indices, 'compressInPlace scores: indices')
    expectFront(k, v, want, 'compressInPlace scores')
  })

  it(`compressCache with string scorers, { project: per layer } and { scores: per layer } (seed ${seed})`, async () => {
    const r = rng(seed + 13)
    const lens = [int(r, 20, 300), int(r, 20, 300), int(r, 20, 300)]
    const type = pick(r, DTYPES)
    const layers = lens.map((s) => tensors(r, type, [2, 3, s, 24], 16))
    // lengths describe every layer: each at most the shortest layer's capacity
    const ragged = [int(r, 0, Math.min(...lens)), Math.min(...lens)]
    const budgets = { keep: [5, 0, 17] }
    const layerCheck = (got: { keys: HostTensor | kvtrim.TensorLike; values: HostTensor | kvtrim.TensorLike; indices?: Int32Array }, want: oracle.OracleCompressResult, what: string) => {
      expectSameBits(got.indices as Int32Array, want.indices, `${what}: indices`)
      expectSameBits(got.keys.data as Uint16Array, want.keys.data, `${what}: keys`)
      expectSameBits(got.values.data as Uint16Array, want.values.data, `${what}: values`)
      expect(got.keys.dims, `${what}: dims`).toEqual(want.keys.dims)
    }
    for (const score of ['high-norm', 'kv-norm', 'keydiff'] as const) {
      const res = compressCacheSync(layers, { keepRatio: 0.3, sink: 1, recent: 3, score })
      layers.forEach((l, i) => layerCheck(res.layers[i], oracle.compress(l.keys, l.values, { keepRatio: 0.3, sink: 1, recent: 3, score }), `${score} layer ${i}`))
    }
    // one project vector set per layer (each [kvHeads * keyDim]), per-layer budgets, ragged lengths
    const project = layers.map(() => randomVectors(r, 3, 24, DATA.vectors))
    const res = await compressCache(layers, { budgets, order: 'norm', lengths: ragged, score: { project } } as never)
    layers.forEach((l, i) => layerCheck(res.layers[i], oracle.compress(l.keys, l.values, { keep: budgets.keep[i], order: 'norm', lengths: ragged, score: { project: project[i] } }), `project layer ${i}`))
    const sync = compressCacheSync(layers, { budgets, order: 'norm', lengths: ragged, score: { project } } as never)
    sync.layers.forEach((l, i) => expectSameBits(l.indices as Int32Array, res.layers[i].indices as Int32Array, `project sync layer ${i}`))
    // given scores, one [B, H, S] tensor per layer
    const scores = layers.map((l) => ({ type: 'float32', data: randomScores(r, 2, 3, l.keys.dims[2], DATA.scores), dims: l.keys.dims.slice(0, 3) }))
    const given = compressCacheSync(layers, { keepRatio: 0.5, score: { scores } } as never)
    layers.forEach((l, i) => layerCheck(given.layers[i], oracle.compress(l.keys, l.values, { keepRatio: 0.5, score: { scores: scores[i] } }), `scores layer ${i}`))
  })
})

describe('the Compressor and CacheCompressor with every scorer', () => {
  it(`a first step / afterPrefill keeps the oracle's tokens (project: one vector set per layer) (seed ${seed})`, () => {
    const r = rng(seed + 17)
    const type = pick(r, DTYPES)
    const S = int(r, 60, 200) // one length: the CacheCompressor's shared attention mask wants every layer alike
    const layers = [0, 1].map(() => tensors(r, type, [1, 3, S, 16], 12))
    const project = layers.map(() => randomVectors(r, 3, 16, DATA.vectors))
    const copyLayers = () => layers.map((l) => ({ keys: copy(l.keys), values: copy(l.values) }))
    for (const name of ['low-norm', 'high-norm', 'kv-norm', 'keydiff', 'project'] as const) {
      const score = name === 'project' ? { project } : name
      const layerScore = (l: number): Score => (name === 'project' ? { project: project[l] } : name)
      // Compressor: layers above target + interval go back to target, order position, sink / recent
      const step = new Compressor({ target: 20, interval: 8, sink: 2, recent: 3, score } as never).stepSync(copyLayers())
      layers.forEach((l, i) => {
        const want = oracle.compress(l.keys, l.values, { keep: 20, sink: 2, recent: 3, score: layerScore(i) })
        expectSameBits(step.layers[i].indices as Int32Array, want.indices, `Compressor ${name} layer ${i}: indices`)
        expectSameBits(step.cache[i].keys.data as Uint16Array, want.keys.data, `Compressor ${name} layer ${i}: keys`)
      })
      // CacheCompressor: compressCache after the prefill
      const kv = new CacheCompressor({ keepRatio: 0.4, score } as never).afterPrefillSync(copyLayers())
      layers.forEach((l, i) => {
        const want = oracle.compress(l.keys, l.values, { keepRatio: 0.4, score: layerScore(i) })
        expectSameBits((kv.cache as Array<{ keys: oracle.OracleTensor }>)[i].keys.data, want.keys.data, `CacheCompressor ${name} layer ${i}: keys`)
      })
    }
  })
})
