// compressInPlace: per head, the kept rows (the oracle's, in position order) at the front of
// the caller's own buffers; rows past the new length are not specified.
import { describe, expect, it } from 'vitest'
import { compressInPlace, compressInPlaceSync, KvtrimError, type CompressOptions } from '../lib/index'
import * as oracle from './oracle'
import { expectSameBits } from './expect'
import { int, pick, randomTensor, rng, runSeed } from './random'

const seed = runSeed()

function expectFront(keys: oracle.OracleTensor, values: oracle.OracleTensor, want: oracle.OracleCompressResult, what: string) {
  const [B, H, S, D] = keys.dims
  const Dv = values.dims[3]
  const K = want.kept
  for (let b = 0; b < B; b++) {
    const k = want.lengths[b]
    for (let h = 0; h < H; h++) {
      const row = b * H + h
      expectSameBits(keys.data.subarray(row * S * D, (row * S + k) * D), want.keys.data.subarray(row * K * D, (row * K + k) * D), `${what} keys b${b} h${h}`)
      expectSameBits(values.data.subarray(row * S * Dv, (row * S + k) * Dv), want.values.data.subarray(row * K * Dv, (row * K + k) * Dv), `${what} values b${b} h${h}`)
    }
  }
}

describe('compressInPlace', () => {
  for (const type of ['float16', 'bfloat16', 'float32'] as const) {
    it(`${type}: random shapes, ragged lengths, sink/recent, both scores (seed ${seed})`, async () => {
      const r = rng(seed ^ type.length)
      for (let i = 0; i < 25; i++) {
        const dims = [int(r, 1, 3), int(r, 1, 4), int(r, 1, 900), pick(r, [1, 7, 8, 64, 128])]
        const keys = randomTensor(r, type, dims, { dupRows: 0.2, nanRows: 0.02 })
        const values = randomTensor(r, type, dims)
        const o: CompressOptions = { keepRatio: pick(r, [0.1, 0.5, 0.9, 1]), score: pick(r, ['low-norm', 'high-norm'] as const) }
        if (r() < 0.4) o.lengths = Array.from({ length: dims[0] }, () => int(r, 0, dims[2]))
        if (r() < 0.3) { o.sink = int(r, 0, 4); o.recent = int(r, 0, 16) }
        const want = oracle.compress(keys, values, o)
        const res = i % 2 ? await compressInPlace(keys, values, o) : compressInPlaceSync(keys, values, o)
        expectSameBits(res.indices, want.indices, `case ${i} indices`)
        expectSameBits(res.lengths, want.lengths, `case ${i} lengths`)
        expect(res.kept).toBe(want.kept)
        expectFront(keys, values, want, `case ${i} ${type} ${dims} ${JSON.stringify(o)}`)
      }
    })
  }

  it('refuses order norm and keys and values in the same memory', () => {
    const r = rng(seed)
    const keys = randomTensor(r, 'float16', [1, 1, 8, 8])
    expect(() => compressInPlaceSync(keys, randomTensor(r, 'float16', [1, 1, 8, 8]), { keep: 2, order: 'norm' })).toThrowError(KvtrimError)
    let err: unknown
    try { compressInPlaceSync(keys, keys, { keep: 2 }) } catch (e) { err = e }
    expect((err as KvtrimError).code).toBe('INVALID_ARGUMENT')
    expect((err as KvtrimError).message).toMatch(/overlap/)
  })
})
