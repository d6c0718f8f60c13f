// The oracle itself, against values worked out by hand: if these fail, nothing else can be trusted.
import { describe, expect, it } from 'vitest'
import { bf16ToNumber, compress, f16ToNumber, keepCount, rowNorm, selectRow } from './oracle'

describe('oracle', () => {
  it('decodes float16 bits', () => {
    expect(f16ToNumber(0x3c00)).toBe(1)
    expect(f16ToNumber(0xc000)).toBe(-2)
    expect(f16ToNumber(0x7bff)).toBe(65504)
    expect(f16ToNumber(0x0001)).toBe(2 ** -24)
    expect(f16ToNumber(0x03ff)).toBe(1023 * 2 ** -24)
    expect(f16ToNumber(0x7c00)).toBe(Infinity)
    expect(f16ToNumber(0x7e00)).toBeNaN()
  })

  it('decodes bfloat16 bits', () => {
    expect(bf16ToNumber(0x3f80)).toBe(1)
    expect(bf16ToNumber(0xc040)).toBe(-3)
    expect(bf16ToNumber(0x0001)).toBe(2 ** -133)
  })

  it('follows the chunked, pairwise norm order', () => {
    const t = { type: 'float32' as const, data: Float32Array.from([3, 4]), dims: [1, 1, 1, 2] }
    expect(rowNorm(t, 0, 2)).toBe(5)
    // 9 elements: chunk sums 8 and 1 -> sqrt(9) = 3
    const ones = { type: 'float32' as const, data: new Float32Array(9).fill(1), dims: [1, 1, 1, 9] }
    expect(rowNorm(ones, 0, 9)).toBe(3)
    // 4096 then eight 1s: squares 2^24 and 1s. Left to right in fp32, 2^24 + 1 rounds back to
    // 2^24, so the first chunk loses its seven 1s and the tree's 2^24 + 1 loses the last: 4096,
    // where the exact norm sqrt(2^24 + 8) would round to 4096 + 2 ulps.
    const big = Float32Array.from([4096, 1, 1, 1, 1, 1, 1, 1, 1])
    const n = rowNorm({ type: 'float32', data: big, dims: [1, 1, 1, 9] }, 0, 9)
    expect(n).toBe(4096)
    expect(Math.fround(Math.sqrt(2 ** 24 + 8))).not.toBe(4096)
  })

  it('computes k in double as Python does', () => {
    expect(keepCount({ keepRatio: 0.07 }, 100)).toBe(8) // 0.07 * 100 = 7.000000000000001
    expect(keepCount({ keepRatio: 0.5 }, 5)).toBe(3)
    expect(keepCount({ keep: 9 }, 4)).toBe(4)
    expect(keepCount({ keep: 1, sink: 2, recent: 2 }, 10)).toBe(4)
    expect(keepCount({ keep: 1, sink: 8, recent: 8 }, 10)).toBe(10)
  })

  it('ranks NaN last, ties to the earlier position, high-norm descending', () => {
    const norms = [2, NaN, 1, 2, 0.5]
    expect(selectRow(norms, 5, { keep: 3 })).toEqual([0, 2, 4])
    expect(selectRow(norms, 5, { keep: 3, order: 'norm' })).toEqual([4, 2, 0])
    expect(selectRow(norms, 5, { keep: 3, score: 'high-norm', order: 'norm' })).toEqual([0, 3, 2])
    expect(selectRow(norms, 5, { keep: 5, order: 'norm' })).toEqual([4, 2, 0, 3, 1])
    expect(selectRow(norms, 5, { keep: 2, sink: 1, recent: 1 })).toEqual([0, 4])
    expect(selectRow(norms, 5, { keep: 3, sink: 1, recent: 1, order: 'norm' })).toEqual([4, 2, 0])
  })

  it('gathers rows and pads ragged batch entries', () => {
    const keys = { type: 'float32' as const, data: Float32Array.from([5, 1, 3, 9, 2, 7]), dims: [2, 1, 3, 1] }
    const values = { type: 'float32' as const, data: Float32Array.from([10, 11, 12, 13, 14, 15]), dims: [2, 1, 3, 1] }
    const r = compress(keys, values, { keepRatio: 0.5, lengths: [3, 1] })
    expect(r.kept).toBe(2)
    expect(Array.from(r.lengths)).toEqual([2, 1])
    expect(Array.from(r.indices)).toEqual([1, 2, 0, -1])
    expect(Array.from(r.keys.data)).toEqual([1, 3, 9, 0])
    expect(Array.from(r.values.data)).toEqual([11, 12, 13, 0])
  })
})
