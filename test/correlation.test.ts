// normAttentionCorrelation (the L2 paper's diagnostic): hand-checkable cases, GQA grouping,
// 16-bit attention, and random data against a plain O(n^2) Spearman oracle written here.
import { describe, expect, it } from 'vitest'
import { KvtrimError, normAttentionCorrelation, spearman } from '../lib/index'
import { rng, runSeed } from './random'

/** Spearman by definition: rank_i = 1 + #{x_j < x_i} + (#{x_j == x_i, j != i}) / 2, Pearson of the ranks. */
function oracleSpearman(x: number[], y: number[]): number {
  const rank = (v: number[]) => v.map((a) => 1 + v.filter((b) => b < a).length + (v.filter((b) => b === a).length - 1) / 2)
  const rx = rank(x), ry = rank(y)
  const mx = rx.reduce((s, a) => s + a, 0) / rx.length, my = ry.reduce((s, a) => s + a, 0) / ry.length
  let sxy = 0, sxx = 0, syy = 0
  rx.forEach((a, i) => {
    sxy += (a - mx) * (ry[i] - my)
    sxx += (a - mx) ** 2
    syy += (ry[i] - my) ** 2
  })
  return sxy / Math.sqrt(sxx * syy)
}

const f32 = (data: number[], dims: number[]) => ({ type: 'float32' as const, data: Float32Array.from(data), dims })

describe('normAttentionCorrelation', () => {
  it('is -1 when attention falls as the norm grows, +1 when it rises', () => {
    // one head, 4 keys of norms 1, 2, 3, 4
    const keys = f32([1, 0, 0, 2, 0, 0, 3, 0, 0, 4, 0, 0], [1, 1, 4, 3])
    const falling = normAttentionCorrelation(keys, f32([0.4, 0.3, 0.2, 0.1], [1, 1, 1, 4]))
    expect(falling.perHead[0]).toBeCloseTo(-1, 12)
    expect(Array.from(falling.norms)).toEqual([1, 2, 3, 4])
    expect(normAttentionCorrelation(keys, f32([0.1, 0.2, 0.3, 0.4], [1, 1, 1, 4])).mean).toBeCloseTo(1, 12)
    // ties share their mean rank: ranks (1, 2, 3, 4) against (1.5, 1.5, 3.5, 3.5)
    expect(normAttentionCorrelation(keys, f32([0.1, 0.1, 0.4, 0.4], [1, 1, 1, 4])).mean).toBeCloseTo(oracleSpearman([1, 2, 3, 4], [1, 1, 4, 4]), 12)
    // constant attention: no ranking
    expect(normAttentionCorrelation(keys, f32([0.25, 0.25, 0.25, 0.25], [1, 1, 1, 4])).perHead[0]).toBeNaN()
  })

  it('sums over the queries and the query heads of a KV head (GQA), ignoring columns past the cached keys', () => {
    // 1 KV head, 2 query heads, 2 queries, 3 cached keys + 2 new columns
    const keys = f32([3, 1, 2], [1, 1, 3, 1])
    const att = new Array(2 * 2 * 5).fill(0)
    // received: key0 gets 0.1 + 0.1, key1 0.9 + 0, key2 0.2 + 0.3 (over 2 heads x 2 queries); columns 3/4 large but ignored
    att.splice(0, 5, 0.1, 0.5, 0.1, 9, 9)
    att.splice(5, 5, 0, 0.4, 0.1, 9, 9)
    att.splice(10, 5, 0.1, 0, 0.2, 9, 9)
    att.splice(15, 5, 0, 0, 0.1, 9, 9)
    const r = normAttentionCorrelation(keys, f32(att, [1, 2, 2, 5]))
    expect(Array.from(r.received).map((x) => +x.toFixed(6))).toEqual([0.2, 0.9, 0.5])
    expect(r.perHead[0]).toBeCloseTo(oracleSpearman([3, 1, 2], [0.2, 0.9, 0.5]), 12) // = -1
  })

  it('matches the oracle on random keys and attention, float32 and float16 attention', () => {
    const seed = runSeed()
    const r = rng(seed)
    const B = 2, Hkv = 2, Hq = 4, S = 40, Q = 6, D = 8
    const keys = f32(Array.from({ length: B * Hkv * S * D }, () => r() * 2 - 1), [B, Hkv, S, D])
    const att = Array.from({ length: B * Hq * Q * S }, () => Math.round(r() * 1000) / 1024)
    const res = normAttentionCorrelation(keys, f32(att, [B, Hq, Q, S]))
    // float16 bits of the same weights (exact: multiples of 1/1024 below 1)
    const half = Uint16Array.from(att, (x) => (x === 0 ? 0 : (() => { const e = Math.floor(Math.log2(x)); return ((e + 15) << 10) | Math.round((x / 2 ** e - 1) * 1024) })()))
    const res16 = normAttentionCorrelation(keys, { type: 'float16', data: half, dims: [B, Hq, Q, S] })
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < Hkv; h++) {
        const norms: number[] = [], got: number[] = []
        for (let j = 0; j < S; j++) {
          let ss = 0
          for (let i = 0; i < D; i++) ss += keys.data[((b * Hkv + h) * S + j) * D + i] ** 2
          norms.push(Math.sqrt(ss))
          let sum = 0
          for (let g = 0; g < 2; g++) for (let q = 0; q < Q; q++) sum += att[((b * Hq + h * 2 + g) * Q + q) * S + j]
          got.push(sum)
        }
        expect(res.perHead[b * Hkv + h], `seed ${seed}`).toBeCloseTo(oracleSpearman(norms, got), 9)
        expect(res16.perHead[b * Hkv + h], `seed ${seed}`).toBeCloseTo(res.perHead[b * Hkv + h], 12)
      }
    }
    expect(spearman([1, 2, 3], [3, 2, 1])).toBe(-1)
  })

  it('refuses shapes that do not fit', () => {
    const keys = f32(new Array(2 * 4 * 2).fill(1), [1, 2, 4, 2])
    const bad = (dims: number[]) => () => normAttentionCorrelation(keys, f32(new Array(dims.reduce((a, b) => a * b, 1)).fill(0), dims))
    expect(bad([1, 3, 1, 4])).toThrow(KvtrimError) // 3 query heads over 2 KV heads
    expect(bad([1, 2, 1, 3])).toThrow(/at least 4/) // fewer columns than cached keys
    expect(bad([2, 2, 1, 4])).toThrow(KvtrimError) // batch
    expect(() => normAttentionCorrelation(keys, { type: 'float32', data: new Float32Array(3), dims: [1, 2, 1, 4] })).toThrow(/DATA_LENGTH|product of dims/)
  })
})
