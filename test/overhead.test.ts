// What the per-call overhead work (bench/overhead.ts) changed, pinned: tiny host work in the
// Promise forms runs at once but still settles asynchronously; a call's small outputs are views
// of one ArrayBuffer that do not overlap; host results are plain data objects, made without
// running any setter a caller put on Object.prototype.
import { describe, expect, it } from 'vitest'
import { compress, compressInPlace, compressInPlaceSync, compressSync, type CompressResult } from '../lib/index'
import { rawBinding } from '../lib/dev'
import { expectSameBits } from './expect'
import { randomTensor, rng } from './random'

const r = rng(0x5eed)
const pair = (dims: number[], type: 'float16' | 'float32' = 'float16') => ({ keys: randomTensor(r, type, dims), values: randomTensor(r, type, dims) })

function sameResult(a: CompressResult, b: CompressResult): void {
  expect(Array.from(a.indices)).toEqual(Array.from(b.indices))
  expect(Array.from(a.lengths)).toEqual(Array.from(b.lengths))
  expect(a.kept).toBe(b.kept)
  expect(a.keys.dims).toEqual(b.keys.dims)
  expectSameBits(a.keys.data, b.keys.data, 'keys')
  expectSameBits(a.values.data, b.values.data, 'values')
}

describe('per-call overhead', () => {
  it('tiny host work: the Promise is settled later, as any Promise, with the sync result', async () => {
    const { keys, values } = pair([1, 2, 16, 64])
    let settled = false
    const p = compress(keys, values, { keep: 8 }).then((x) => {
      settled = true
      return x
    })
    expect(settled).toBe(false)
    sameResult((await p) as CompressResult, compressSync(keys, values, { keep: 8 }) as CompressResult)
    expect(settled).toBe(true)
  })

  it('tiny host work: errors still reject (never throw) and in-place work still writes the inputs', async () => {
    const { keys, values } = pair([1, 1, 16, 8])
    const bad = compress(keys, values, { keep: 99 })
    await expect(bad).rejects.toMatchObject({ code: 'INVALID_KEEP' })
    const a = pair([2, 2, 16, 8]), b = { keys: { ...a.keys, data: a.keys.data.slice() }, values: { ...a.values, data: a.values.data.slice() } }
    const want = compressInPlaceSync(a.keys, a.values, { keep: 5 })
    const got = await compressInPlace(b.keys, b.values, { keep: 5 })
    expect(Array.from(got.indices)).toEqual(Array.from(want.indices))
    expectSameBits(b.keys.data, a.keys.data, 'keys in place')
    expectSameBits(b.values.data, a.values.data, 'values in place')
  })

  it('small outputs are disjoint views of one ArrayBuffer; large ones have their own', () => {
    for (const type of ['float16', 'float32'] as const) {
      const { keys, values } = pair([2, 3, 20, 24], type)
      const res = compressSync(keys, values, { keep: 7 }) as CompressResult
      const views = [res.indices, res.lengths, res.keys.data, res.values.data]
      const buffer = views[0].buffer
      const spans = views.map((v) => {
        expect(v.buffer).toBe(buffer)
        expect(v.byteOffset % 8).toBe(0)
        return [v.byteOffset, v.byteOffset + v.byteLength] as const
      }).sort((x, y) => x[0] - y[0])
      for (let i = 1; i < spans.length; i++) expect(spans[i][0]).toBeGreaterThanOrEqual(spans[i - 1][1])
      expect(res.indices.length).toBe(2 * 3 * 7)
      expect(res.lengths.length).toBe(2)
      expect(res.keys.data.length).toBe(2 * 3 * 7 * 24)
      // writing one output leaves the others as they were
      const before = Array.from(res.indices)
      res.keys.data.fill(0)
      res.values.data.fill(0)
      expect(Array.from(res.indices)).toEqual(before)
      expect(Array.from(res.lengths)).toEqual([7, 7])
    }
    const big = pair([1, 4, 512, 64])
    const res = compressSync(big.keys, big.values, { keepRatio: 0.5 }) as CompressResult
    expect(res.keys.data.buffer).not.toBe(res.values.data.buffer)
    expect(res.keys.data.byteOffset).toBe(0)
  })

  it('host results are plain objects, made without running setters on Object.prototype', () => {
    const { keys, values } = pair([1, 1, 16, 8])
    const touched: string[] = []
    const names = ['keys', 'values', 'indices', 'lengths', 'headLengths', 'kept', 'type', 'data', 'dims']
    for (const n of names) {
      Object.defineProperty(Object.prototype, n, { configurable: true, set() { touched.push(n) } })
    }
    let sync: CompressResult | undefined, raw: CompressResult | undefined
    try {
      sync = compressSync(keys, values, { keep: 4 }) as CompressResult
      raw = rawBinding().compressSync(keys, values, { keep: 4 }) as unknown as CompressResult
    } finally {
      for (const n of names) delete (Object.prototype as Record<string, unknown>)[n]
    }
    expect(touched).toEqual([])
    for (const res of [sync!, raw!]) {
      expect(Object.keys(res)).toEqual(['keys', 'values', 'indices', 'lengths', 'headLengths', 'kept'])
      expect(Object.keys(res.keys)).toEqual(['type', 'data', 'dims'])
      expect(res.keys.type).toBe('float16')
      expect(res.keys.dims).toEqual([1, 1, 4, 8])
      expect(res.kept).toBe(4)
    }
  })
})
