// compress against the oracle, bit for bit (indices, kept rows, lengths), on fresh random data:
// every dtype, head_dim 1..256, seqLen 1..5000, batch and heads 1..8, both orders and scores,
// sink/recent, ragged lengths, duplicated rows (exact ties) and NaN / infinite rows.
import { describe, expect, it } from 'vitest'
import { compress, compressSync, type CompressOptions, type CompressResult } from '../lib/index'
import * as oracle from './oracle'
import { expectSameBits } from './expect'
import { int, pick, randomTensor, rng, runSeed, type Rng } from './random'

const DTYPES = ['float16', 'bfloat16', 'float32'] as const

interface Case {
  type: oracle.DType
  dims: number[]
  valueDim: number
  options: CompressOptions
}

function randomCase(r: Rng, type: oracle.DType): Case {
  const d = r() < 0.5 ? int(r, 1, 40) : pick(r, [63, 64, 72, 96, 100, 128, 129, 192, 256])
  const s = Math.max(1, Math.round(Math.exp(r() * Math.log(5000))))
  let b = int(r, 1, 8), h = int(r, 1, 8)
  while (b * h * s * d > 300_000 && b * h > 1) (b > h ? (b = Math.ceil(b / 2)) : (h = Math.ceil(h / 2)))
  const options: CompressOptions = {
    order: pick(r, ['position', 'norm'] as const),
    score: pick(r, ['low-norm', 'high-norm'] as const),
  }
  if (r() < 0.7) options.keepRatio = pick(r, [0.07, 0.1, 0.25, 0.5, 0.75, 0.9, 1, r()]) || 0.5
  else options.keep = int(r, 0, s)
  if (r() < 0.3) options.sink = int(r, 0, 8)
  if (r() < 0.3) options.recent = int(r, 0, 64)
  if (r() < 0.3) options.lengths = Array.from({ length: b }, () => int(r, 0, s))
  return { type, dims: [b, h, s, d], valueDim: r() < 0.8 ? d : int(r, 1, 96), options }
}

function check(actual: CompressResult, want: oracle.OracleCompressResult, what: string): void {
  expect(actual.kept, `${what}: kept`).toBe(want.kept)
  expect(actual.keys.dims, `${what}: keys.dims`).toEqual(want.keys.dims)
  expect(actual.values.dims, `${what}: values.dims`).toEqual(want.values.dims)
  expect(actual.keys.type).toBe(want.keys.type)
  expectSameBits(actual.lengths, want.lengths, `${what}: lengths`)
  expectSameBits(actual.indices, want.indices, `${what}: indices`)
  expectSameBits(actual.keys.data, want.keys.data, `${what}: keys`)
  expectSameBits(actual.values.data, want.values.data, `${what}: values`)
}

describe('compress', () => {
  const seed = runSeed()

  for (const type of DTYPES) {
    it(`${type}: 40 random shapes and option sets equal the oracle bit for bit (seed ${seed})`, () => {
      const r = rng(seed ^ type.length)
      for (let i = 0; i < 40; i++) {
        const c = randomCase(r, type)
        const keys = randomTensor(r, type, c.dims, { dupRows: 0.2, nanRows: 0.03, infRows: 0.01 })
        const values = randomTensor(r, type, [...c.dims.slice(0, 3), c.valueDim])
        const what = `case ${i} ${type} dims ${c.dims} dv ${c.valueDim} ${JSON.stringify(c.options)}`
        check(compressSync(keys, values, c.options), oracle.compress(keys, values, c.options), what)
      }
    })
  }

  it(`the long rows: seqLen 5000, head_dim 128, fp16, both scores (seed ${seed})`, () => {
    const r = rng(seed + 7)
    const keys = randomTensor(r, 'float16', [1, 2, 5000, 128], { dupRows: 0.1, nanRows: 0.01 })
    const values = randomTensor(r, 'float16', [1, 2, 5000, 128])
    for (const score of ['low-norm', 'high-norm'] as const) {
      const o: CompressOptions = { keepRatio: 0.3, score, sink: 4, recent: 32 }
      check(compressSync(keys, values, o), oracle.compress(keys, values, o), score)
    }
  })

  it(`many heads: batch 8 x 8 heads, and ties everywhere (all rows equal) go to the earliest (seed ${seed})`, () => {
    const r = rng(seed + 11)
    const keys = randomTensor(r, 'bfloat16', [8, 8, 60, 16], { dupRows: 0.5 })
    const values = randomTensor(r, 'bfloat16', [8, 8, 60, 16])
    check(compressSync(keys, values, { keepRatio: 0.5 }), oracle.compress(keys, values, { keepRatio: 0.5 }), 'batch 8')
    const same = { ...keys, data: keys.data.slice() }
    for (let row = 1; row < 8 * 8 * 60; row++) same.data.copyWithin(row * 16, 0, 16)
    const res = compressSync(same, values, { keep: 10, order: 'norm' })
    expect(Array.from(res.indices.subarray(0, 10))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    check(res, oracle.compress(same, values, { keep: 10, order: 'norm' }), 'all ties')
  })

  it(`rows whose norms are all NaN are dropped first, then kept in position order (seed ${seed})`, () => {
    const r = rng(seed + 13)
    const keys = randomTensor(r, 'float16', [1, 1, 50, 8], { nanRows: 0.5 })
    const values = randomTensor(r, 'float16', [1, 1, 50, 8])
    for (const keep of [5, 25, 40, 50]) {
      check(compressSync(keys, values, { keep, order: 'norm' }), oracle.compress(keys, values, { keep, order: 'norm' }), `keep ${keep}`)
    }
  })

  it(`the Promise form equals the sync form and neither modifies its inputs (seed ${seed})`, async () => {
    const r = rng(seed + 17)
    for (const type of DTYPES) {
      const keys = randomTensor(r, type, [2, 4, 700, 64], { dupRows: 0.1 })
      const values = randomTensor(r, type, [2, 4, 700, 64])
      const kb = keys.data.slice(), vb = values.data.slice()
      const o: CompressOptions = { keepRatio: 0.4, order: 'norm', lengths: [700, 333] }
      const [a, s] = [await compress(keys, values, o), compressSync(keys, values, o)]
      check(a, oracle.compress(keys, values, o), `async ${type}`)
      check(s, oracle.compress(keys, values, o), `sync ${type}`)
      expectSameBits(keys.data, kb, 'keys unchanged')
      expectSameBits(values.data, vb, 'values unchanged')
    }
  })

  it('keepRatio 0.07 of 100 keeps 8 (k in double, as Python computes it)', () => {
    const r = rng(runSeed())
    const keys = randomTensor(r, 'float16', [1, 1, 100, 8])
    expect(compressSync(keys, keys, { keepRatio: 0.07 }).kept).toBe(8)
  })

  it('keep 0 and an empty cache give empty outputs with the right dims', () => {
    const r = rng(runSeed())
    const keys = randomTensor(r, 'float16', [2, 3, 10, 8])
    const none = compressSync(keys, keys, { keep: 0 })
    expect(none.kept).toBe(0)
    expect(none.keys.dims).toEqual([2, 3, 0, 8])
    const empty = { type: 'float16', data: new Uint16Array(0), dims: [1, 8, 0, 64] }
    const e = compressSync(empty, empty, { keepRatio: 0.5 })
    expect(e.keys.dims).toEqual([1, 8, 0, 64])
    expect(e.indices.length).toBe(0)
  })

  it('works on onnxruntime / transformers.js style Tensor objects with extra fields', () => {
    const r = rng(runSeed())
    const t = randomTensor(r, 'float32', [1, 4, 30, 8])
    class FakeOrtTensor {
      readonly location = 'cpu'
      constructor(readonly type: string, readonly data: Float32Array, readonly dims: readonly number[]) {}
      get size() { return this.data.length }
    }
    const keys = new FakeOrtTensor('float32', t.data as Float32Array, t.dims)
    check(compressSync(keys, keys, { keepRatio: 0.5 }), oracle.compress(t, t, { keepRatio: 0.5 }), 'ort tensor')
  })
})
