// Per-layer budgets: pyramid (PyramidKV) and zigzag (ZigZagKV) counts against an oracle written
// here (apportionment by sorting every candidate token, not lib/cache/budgets.ts's greedy), hand-checked
// schedules, degenerate inputs, and compressCache applying them at model level with sink/recent.
import { describe, expect, it } from 'vitest'
import { compressCache, compressCacheSync, layerBudgets, type Budgets, type CacheOptions } from '../lib/index'
import * as oracle from './oracle'
import { expectSameBits, expectCode } from './expect'
import { int, pick, randomTensor, rng, runSeed, type Rng } from './random'

const seed = runSeed()

// ---- the oracle -------------------------------------------------------------------------

interface Ctx {
  layers: number
  seqLen: number
  keepRatio?: number
  keep?: number
  sink?: number
  recent?: number
}

/** Uniform budget C: the count oracle.compress keeps on one layer. */
const uniform = (c: Ctx): number => oracle.keepCount({ keepRatio: c.keepRatio, keep: c.keep, sink: c.sink, recent: c.recent }, c.seqLen)
const protectedCount = (c: Ctx): number => Math.min(c.seqLen, (c.sink ?? 0) + (c.recent ?? 0))

/**
 * Largest remainder with bounds, by enumeration: every token a layer could still gain (or lose)
 * is a candidate valued x_l - m at the count m it would leave; candidates are sorted and the
 * best taken. Ties: the lower layer gains first, the higher layer loses first.
 */
function apportion(x: number[], total: number, lo: number[], hi: number[]): number[] {
  const n = x.map((v, l) => Math.min(hi[l], Math.max(lo[l], Math.floor(v))))
  const d = total - n.reduce((a, b) => a + b, 0)
  const cands: Array<{ l: number; v: number }> = []
  if (d > 0) {
    x.forEach((v, l) => {
      for (let m = n[l]; m < Math.min(hi[l], n[l] + d); m++) cands.push({ l, v: v - m })
    })
    cands.sort((a, b) => (a.v !== b.v ? b.v - a.v : a.l - b.l))
    for (const c of cands.slice(0, d)) n[c.l]++
  } else if (d < 0) {
    x.forEach((v, l) => {
      for (let m = n[l]; m > Math.max(lo[l], n[l] + d); m--) cands.push({ l, v: v - m })
    })
    cands.sort((a, b) => (a.v !== b.v ? a.v - b.v : b.l - a.l))
    for (const c of cands.slice(0, -d)) n[c.l]--
  }
  return n
}

function pyramid(c: Ctx, beta = 20): number[] {
  const C = uniform(c), w = protectedCount(c), L = c.layers
  const D = C - w, room = c.seqLen - w
  if (L === 1 || D === 0) return Array(L).fill(C)
  let bottom = 2 * D - D / beta, top = D / beta
  if (bottom > room) {
    bottom = room
    top = 2 * D - room
  }
  const x = Array.from({ length: L }, (_, l) => bottom - l * ((bottom - top) / (L - 1)))
  return apportion(x, L * D, Array(L).fill(0), Array(L).fill(room)).map((n) => n + w)
}

function zigzag(c: Ctx, scores: number[], minRatio = 0.2): number[] {
  const C = uniform(c), L = c.layers
  if (C === 0) return Array(L).fill(0)
  const total = scores.reduce((a, b) => a + b, 0)
  const bMin = minRatio * C
  const x = scores.map((s) => bMin + (C - bMin) * L * (s / total))
  const floor = Math.min(C, Math.max(1, Math.floor(bMin), protectedCount(c)))
  return apportion(x, L * C, Array(L).fill(floor), Array(L).fill(c.seqLen))
}

const sum = (a: number[]) => a.reduce((x, y) => x + y, 0)

function randomCtx(r: Rng): Ctx {
  const c: Ctx = { layers: pick(r, [1, 2, 3, int(r, 4, 40)]), seqLen: pick(r, [1, 2, int(r, 3, 100), int(r, 100, 3000)]) }
  if (r() < 0.5) c.keepRatio = pick(r, [0.07, 0.1, 0.25, 0.5, r() || 0.3, 1])
  else c.keep = int(r, 0, c.seqLen)
  if (r() < 0.5) c.sink = int(r, 0, 8)
  if (r() < 0.5) c.recent = int(r, 0, 64)
  return c
}

function randomScores(r: Rng, L: number): number[] {
  const kind = int(r, 0, 4)
  if (kind === 0) return Array(L).fill(pick(r, [1, 0.1, 7.25]))
  if (kind === 1) return Array.from({ length: L }, (_, l) => (l === int(r, 0, L - 1) ? 1000 : r() * 3))
  if (kind === 2) return Array.from({ length: L }, () => (r() < 0.3 ? 0 : int(r, 1, 500))).map((v, l) => (l === 0 ? v + 1 : v))
  return Array.from({ length: L }, () => r() * 100 + 1e-9)
}

// ---- the schedules --------------------------------------------------------------------------

describe('layerBudgets: pyramid (PyramidKV)', () => {
  it('hand-checked: an exact arithmetic sequence equals PyramidKV\'s integer formula', () => {
    // C = 232, w = 32: D = 200; min = 200 // 20 = 10, max = 400 - 10 = 390, steps = 380 // 4 = 95
    const got = layerBudgets('pyramid', { layers: 5, seqLen: 1000, keep: 232, recent: 32 })
    const pyramidKV = [0, 1, 2, 3, 4].map((l) => 390 - l * 95 + 32)
    expect(got).toEqual(pyramidKV)
    expect(got).toEqual([422, 327, 232, 137, 42])
    expect(sum(got)).toBe(5 * 232)
  })

  it('hand-checked: largest remainder, the extra tokens to the largest fractions', () => {
    // C = 200, w = 8, D = 192: x = 374.4 - l * 52.114..., floors sum to 1532, 4 extra tokens go to
    // layers 4..7 (fractions .94, .83, .71, .6)
    expect(layerBudgets('pyramid', { layers: 8, seqLen: 1000, keepRatio: 0.2, sink: 4, recent: 4 })).toEqual([382, 330, 278, 226, 174, 122, 70, 18])
  })

  it('max capped at the tokens there are: max = seqLen - w, min = 2 D - max', () => {
    // C = 90, w = 0, seqLen 100: 2 * 90 - 4.5 = 175.5 > 100, so max = 100, min = 80
    expect(layerBudgets('pyramid', { layers: 3, seqLen: 100, keepRatio: 0.9 })).toEqual([100, 90, 80])
    expect(layerBudgets({ pyramid: { beta: 1 } }, { layers: 4, seqLen: 100, keep: 30 })).toEqual([30, 30, 30, 30])
  })

  it('degenerate: one layer, nothing beside the protected tokens, keep 0, seqLen 0', () => {
    expect(layerBudgets('pyramid', { layers: 1, seqLen: 500, keepRatio: 0.3 })).toEqual([150])
    expect(layerBudgets('pyramid', { layers: 4, seqLen: 500, keep: 10, sink: 4, recent: 8 })).toEqual([12, 12, 12, 12])
    expect(layerBudgets('pyramid', { layers: 3, seqLen: 500, keep: 0 })).toEqual([0, 0, 0])
    expect(layerBudgets('pyramid', { layers: 3, seqLen: 0, keepRatio: 0.5 })).toEqual([0, 0, 0])
    expect(layerBudgets('pyramid', { layers: 0, seqLen: 10, keepRatio: 0.5 })).toEqual([])
  })

  it(`random contexts: equal to the oracle, total L * C, non-increasing, in [w, seqLen] (seed ${seed})`, () => {
    const r = rng(seed)
    for (let i = 0; i < 400; i++) {
      const c = randomCtx(r)
      const beta = pick(r, [undefined, 1, 2, 20, 7.5, 100])
      const policy: Budgets = beta === undefined ? 'pyramid' : { pyramid: { beta } }
      const got = layerBudgets(policy, c)
      const what = `case ${i}: ${JSON.stringify({ ...c, beta })}`
      expect(got, what).toEqual(pyramid(c, beta))
      expect(sum(got), what).toBe(c.layers * uniform(c))
      got.forEach((n, l) => {
        expect(n, what).toBeGreaterThanOrEqual(protectedCount(c))
        expect(n, what).toBeLessThanOrEqual(c.seqLen)
        if (l > 0) expect(n, what).toBeLessThanOrEqual(got[l - 1])
      })
    }
  })
})

describe('layerBudgets: zigzag (ZigZagKV)', () => {
  it('hand-checked: budget_l = B_min + (B_avg - B_min) * L * u_l, rounded to the total', () => {
    // C = 100, B_min = 20: x = 20 + 80 * 4 * [0.1, 0.2, 0.3, 0.4] = [52, 84, 116, 148]
    expect(layerBudgets({ zigzag: [1, 2, 3, 4] }, { layers: 4, seqLen: 1000, keep: 100 })).toEqual([52, 84, 116, 148])
    // minRatio 0.5: x = 50 + 50 * 3 * [1/6, 2/6, 3/6] = [75, 100, 125]
    expect(layerBudgets({ zigzag: [1, 2, 3], minRatio: 0.5 }, { layers: 3, seqLen: 1000, keep: 100 })).toEqual([75, 100, 125])
    // minRatio 1: uniform whatever the scores
    expect(layerBudgets({ zigzag: [1, 50, 3], minRatio: 1 }, { layers: 3, seqLen: 1000, keepRatio: 0.1 })).toEqual([100, 100, 100])
  })

  it('all-equal scores give the uniform budget; one layer gets C', () => {
    expect(layerBudgets({ zigzag: [0.1, 0.1, 0.1] }, { layers: 3, seqLen: 1000, keepRatio: 0.3 })).toEqual([300, 300, 300])
    expect(layerBudgets({ zigzag: [7] }, { layers: 1, seqLen: 64, keep: 9 })).toEqual([9])
  })

  it('clamped to seqLen, the excess moved to the other layers; the floor kept', () => {
    // C = 80 of 100; x = [16 + 64 * 3 * 0.98, 16 + 64 * 3 * 0.01, ...] = [204.16, 17.92, 17.92]
    const got = layerBudgets({ zigzag: [98, 1, 1] }, { layers: 3, seqLen: 100, keep: 80 })
    expect(got).toEqual([100, 70, 70])
    // minRatio 0 and a zero score: the floor is 1 token
    expect(layerBudgets({ zigzag: [0, 1], minRatio: 0 }, { layers: 2, seqLen: 100, keep: 10 })).toEqual([1, 19])
    // the protected tokens are a floor too
    expect(layerBudgets({ zigzag: [0, 1], minRatio: 0 }, { layers: 2, seqLen: 100, keep: 10, sink: 2, recent: 3 })).toEqual([5, 15])
  })

  it(`random scores: equal to the oracle, total L * C, floors and seqLen respected (seed ${seed})`, () => {
    const r = rng(seed + 1)
    for (let i = 0; i < 400; i++) {
      const c = randomCtx(r)
      const scores = randomScores(r, c.layers)
      const minRatio = pick(r, [undefined, 0, 0.2, 0.5, 1])
      const got = layerBudgets(minRatio === undefined ? { zigzag: scores } : { zigzag: scores, minRatio }, c)
      const what = `case ${i}: ${JSON.stringify({ ...c, scores, minRatio })}`
      expect(got, what).toEqual(zigzag(c, scores, minRatio))
      const C = uniform(c)
      expect(sum(got), what).toBe(c.layers * C)
      const floor = C === 0 ? 0 : Math.min(C, Math.max(1, Math.floor((minRatio ?? 0.2) * C), protectedCount(c)))
      for (const n of got) {
        expect(n, what).toBeGreaterThanOrEqual(floor)
        expect(n, what).toBeLessThanOrEqual(c.seqLen)
      }
    }
  })
})

describe('layerBudgets: uniform and explicit forms', () => {
  it('uniform is C everywhere; ratios and counts as compress counts them', () => {
    // ceil(0.07 * 100) is 8 in double, as Python and compress compute it
    expect(layerBudgets('uniform', { layers: 3, seqLen: 100, keepRatio: 0.07 })).toEqual([8, 8, 8])
    expect(layerBudgets([0.5, 0.07, 1], { layers: 3, seqLen: 100, sink: 4, recent: 4 })).toEqual([50, 8, 100])
    expect(layerBudgets({ keep: [3, 200, 0] }, { layers: 3, seqLen: 100 })).toEqual([3, 100, 0])
    expect(layerBudgets({ keep: [3, 7], total: 10 }, { layers: 2, seqLen: 100 })).toEqual([3, 7])
  })
})

// ---- compressCache with per-layer budgets ------------------------------------------------------

function model(r: Rng, L: number, S: number, type: oracle.DType = 'float16') {
  return Array.from({ length: L }, () => ({
    keys: randomTensor(r, type, [2, 2, S, 16], { dupRows: 0.1 }),
    values: randomTensor(r, type, [2, 2, S, 8]),
  }))
}

function expectLayer(got: { keys: { data: unknown }; values: { data: unknown }; indices?: Int32Array }, layer: { keys: oracle.OracleTensor; values: oracle.OracleTensor }, o: oracle.OracleOptions, what: string) {
  const want = oracle.compress(layer.keys, layer.values, o)
  expectSameBits(got.indices as Int32Array, want.indices, `${what}: indices`)
  expectSameBits(got.keys.data as Uint16Array, want.keys.data, `${what}: keys`)
  expectSameBits(got.values.data as Uint16Array, want.values.data, `${what}: values`)
}

describe('compressCache with per-layer budgets', () => {
  it(`pyramid and zigzag: every layer is compress with its count, sink and recent kept (seed ${seed})`, async () => {
    const r = rng(seed + 2)
    const S = int(r, 100, 300)
    const layers = model(r, 6, S)
    const base = { keepRatio: 0.25, sink: 4, recent: 16 }
    const ctx = { layers: 6, seqLen: S, ...base }
    for (const budgets of ['pyramid', { zigzag: [3, 1, 4, 1, 5, 9] }] as Budgets[]) {
      const counts = layerBudgets(budgets, ctx)
      const res = budgets === 'pyramid' ? compressCacheSync(layers, { ...base, budgets }) : await compressCache(layers, { ...base, budgets })
      expect(sum(res.report.map((x) => x.after))).toBe(6 * Math.ceil(0.25 * S))
      counts.forEach((keep, l) => {
        expect(res.report[l]).toEqual({ layer: l, before: S, after: keep, compressed: true })
        expectLayer(res.layers[l], layers[l], { keep, sink: 4, recent: 16 }, `${JSON.stringify(budgets)} layer ${l}`)
        // the proximal windows (StreamingLLM's sink, the recent window) in every head of every layer
        const idx = res.layers[l].indices as Int32Array
        for (let row = 0; row < 4; row++) {
          const kept = new Set(idx.subarray(row * keep, (row + 1) * keep))
          for (let p = 0; p < 4; p++) expect(kept.has(p)).toBe(true)
          for (let p = S - 16; p < S; p++) expect(kept.has(p)).toBe(true)
        }
      })
    }
  })

  it(`pruneAfter and skipLayers: skipped layers as they are; the others keep their schedule's count (seed ${seed})`, () => {
    const r = rng(seed + 3)
    const layers = model(r, 5, 120).map((l, i) => (i === 3 ? model(r, 1, 40)[0] : l))
    const res = compressCacheSync(layers, { keep: 60, budgets: 'pyramid', skipLayers: [1], pruneAfter: 50, recent: 8 })
    const counts = layerBudgets('pyramid', { layers: 5, seqLen: 120, keep: 60, recent: 8 })
    expect(res.layers[1]).toBe(layers[1])
    expect(res.layers[3]).toBe(layers[3])
    expect(res.report).toEqual([
      { layer: 0, before: 120, after: counts[0], compressed: true },
      { layer: 1, before: 120, after: 120, compressed: false, reason: 'skipLayers' },
      { layer: 2, before: 120, after: counts[2], compressed: true },
      { layer: 3, before: 40, after: 40, compressed: false, reason: 'pruneAfter' },
      { layer: 4, before: 120, after: counts[4], compressed: true },
    ])
    for (const l of [0, 2, 4]) expectLayer(res.layers[l], layers[l], { keep: counts[l], recent: 8 }, `layer ${l}`)
  })

  it(`ragged lengths: budgets from the longest entry, each entry keeps at most its length (seed ${seed})`, () => {
    const r = rng(seed + 4)
    const layers = model(r, 4, 200, 'bfloat16')
    const lengths = [200, 37]
    const res = compressCacheSync(layers, { keepRatio: 0.3, budgets: { zigzag: [1, 2, 3, 4] }, lengths })
    const counts = layerBudgets({ zigzag: [1, 2, 3, 4] }, { layers: 4, seqLen: 200, keepRatio: 0.3 })
    counts.forEach((keep, l) => expectLayer(res.layers[l], layers[l], { keep, lengths }, `layer ${l}`))
  })

  it('explicit counts with a total, and a layer shorter than the longest', () => {
    const r = rng(seed + 5)
    const layers = [model(r, 1, 100)[0], model(r, 1, 30)[0]]
    const res = compressCacheSync(layers, { budgets: { keep: [10, 20], total: 30 } })
    expect(res.report.map((x) => x.after)).toEqual([10, 20])
    // pyramid counts from the longest layer (100 tokens): 97.5 and 2.5, the tie to the lower layer;
    // a count above a short layer's length would be clamped to it
    expect(layerBudgets('pyramid', { layers: 2, seqLen: 100, keepRatio: 0.5 })).toEqual([98, 2])
    expect(compressCacheSync(layers, { keepRatio: 0.5, budgets: 'pyramid' }).report.map((x) => x.after)).toEqual([98, 2])
    const inverted = [layers[1], layers[0]]
    expect(compressCacheSync(inverted, { keepRatio: 0.5, budgets: 'pyramid' }).report.map((x) => x.after)).toEqual([30, 2])
  })
})

// ---- bad options ----------------------------------------------------------------------------


describe('bad budgets', () => {
  const r = rng(seed + 6)
  const layers = model(r, 3, 50)
  const bad = (o: CacheOptions) => () => compressCacheSync(layers, o)
  it('give KvtrimError INVALID_BUDGETS or INVALID_OPTION naming the option', () => {
    expectCode(bad({ keepRatio: 0.5, budgets: { zigzag: [1, 2] } }), 'INVALID_BUDGETS', /3 per-layer scores .*budgets\.zigzag/)
    expectCode(bad({ keepRatio: 0.5, budgets: { zigzag: [1, -2, 3] } }), 'INVALID_BUDGETS', /budgets\.zigzag\[1\] but received -2/)
    expectCode(bad({ keepRatio: 0.5, budgets: { zigzag: [1, NaN, 3] } }), 'INVALID_BUDGETS', /budgets\.zigzag\[1\]/)
    expectCode(bad({ keepRatio: 0.5, budgets: { zigzag: [0, 0, 0] } }), 'INVALID_BUDGETS', /positive sum/)
    expectCode(bad({ keepRatio: 0.5, budgets: { zigzag: 'high' as never } }), 'INVALID_BUDGETS', /budgets\.zigzag/)
    expectCode(bad({ keepRatio: 0.5, budgets: { zigzag: [1, 2, 3], minRatio: 1.5 } }), 'INVALID_BUDGETS', /budgets\.minRatio/)
    expectCode(bad({ keepRatio: 0.5, budgets: { pyramid: { beta: 0 } } }), 'INVALID_BUDGETS', /budgets\.pyramid\.beta/)
    expectCode(bad({ keepRatio: 0.5, budgets: { pyramid: { gamma: 2 } } as never }), 'INVALID_BUDGETS', /budgets\.pyramid/)
    expectCode(bad({ budgets: { keep: [1, 2, 3], total: 7 } }), 'INVALID_BUDGETS', /sum to budgets\.total = 7 but they sum to 6/)
    expectCode(bad({ budgets: 'pyramid' }), 'INVALID_OPTION', /keepRatio or keep .* 'pyramid'/)
    expectCode(bad({ budgets: { zigzag: [1, 2, 3] } }), 'INVALID_OPTION', /keepRatio or keep .* 'zigzag'/)
    expectCode(bad({ keepRatio: 0.5, budgets: { zigzag: [1, 2, 3], floor: 2 } as never }), 'INVALID_OPTION', /budgets\.floor/)
    expectCode(bad({ keepRatio: 0.5, budgets: 'pyramidal' as never }), 'INVALID_OPTION', /budgets/)
    expectCode(() => layerBudgets('pyramid', { layers: 2, seqLen: 10 }), 'INVALID_OPTION', /keepRatio or keep/)
    expectCode(() => layerBudgets('pyramid', { layers: 2, seqLen: 10, keep: 11 }), 'INVALID_KEEP', /keep/)
    expectCode(() => layerBudgets('uniform', { layers: -1, seqLen: 10, keep: 1 }), 'INVALID_ARGUMENT', /layers/)
    expectCode(() => layerBudgets([0.5, 2], { layers: 2, seqLen: 10 }), 'INVALID_KEEP_RATIO', /budgets\[1\]/)
  })
})
