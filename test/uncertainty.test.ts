// layerUncertainty (ZigZagKV's LMBA): hand-checkable attention, random attention against a
// plain-TS oracle (exact: the same double arithmetic in the same order), and window queries
// against keys (GQA, causal) where the oracle's exp may differ from libm's in the last bit: a
// count may then differ by one only where the cumulative mass is within 1e-6 of the threshold.
import { describe, expect, it } from 'vitest'
import { expectCode } from './expect'
import { compressCacheSync, layerBudgets, layerUncertainty, layerUncertaintySync } from '../lib/index'
import * as oracle from './oracle'
import { int, pick, randomTensor, rng, runSeed, type Rng } from './random'

const seed = runSeed()

// ---- the oracle -------------------------------------------------------------------------

/** The count of one row, and how close its boundary is (|cum - target| / total at c - 1 and c). */
function rowCount(w: number[], threshold: number): { count: number; margin: number } {
  const sorted = [...w].sort((a, b) => b - a)
  let total = 0
  for (const x of sorted) total += x
  const target = threshold * total
  let cum = 0
  let c = 0
  while (c < sorted.length && cum < target) cum += sorted[c++]
  const before = cum - (c > 0 ? sorted[c - 1] : 0)
  const margin = total === 0 ? Infinity : Math.min(Math.abs(cum - target), Math.abs(target - before)) / total
  return { count: c, margin }
}

function attentionCounts(att: oracle.OracleTensor, threshold: number) {
  const [B, H, Q, S] = att.dims
  const out: Array<{ count: number; margin: number }> = []
  for (let r = 0; r < B * H * Q; r++) {
    out.push(rowCount(Array.from({ length: S }, (_, j) => oracle.element(att, r * S + j)), threshold))
  }
  return out
}

function windowCounts(q: oracle.OracleTensor, k: oracle.OracleTensor, threshold: number, causal: boolean) {
  const [B, Hq, W, D] = q.dims
  const [, Hkv, S] = k.dims
  const group = Hq / Hkv
  const out: Array<{ count: number; margin: number }> = []
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const kvh = Math.floor(h / group)
      for (let i = 0; i < W; i++) {
        const visible = causal ? S - W + i + 1 : S
        const logits: number[] = []
        for (let j = 0; j < visible; j++) {
          let dot = 0
          for (let d = 0; d < D; d++) {
            dot += oracle.element(q, ((b * Hq + h) * W + i) * D + d) * oracle.element(k, ((b * Hkv + kvh) * S + j) * D + d)
          }
          logits.push(dot / Math.sqrt(D))
        }
        const m = Math.max(...logits)
        out.push(rowCount(logits.map((x) => Math.exp(x - m)), threshold))
      }
    }
  }
  return out
}

const mean = (xs: number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length)
const f32 = (data: number[], dims: number[]): oracle.OracleTensor => ({ type: 'float32', data: Float32Array.from(data), dims })

/** Random attention rows: softmax of random logits with a random temperature, some exact zeros and ties. */
function randomAttention(r: Rng, dims: number[]): oracle.OracleTensor {
  const [B, H, Q, S] = dims
  const data = new Float32Array(B * H * Q * S)
  for (let row = 0; row < B * H * Q; row++) {
    const temp = pick(r, [0.1, 1, 5, 30])
    const logits = Array.from({ length: S }, (_, j) => (j > 0 && r() < 0.1 ? -Infinity : r() < 0.1 ? 0 : (r() - 0.5) * temp))
    const m = Math.max(...logits)
    const e = logits.map((x) => Math.exp(x - m))
    const z = e.reduce((a, b) => a + b, 0)
    e.forEach((x, j) => (data[row * S + j] = r() < 0.5 ? x / z : x))
  }
  return { type: 'float32', data, dims }
}

// ---- hand-checkable attention -----------------------------------------------------------

describe('layerUncertainty: hand-checkable attention', () => {
  it('uniform attention over S tokens needs ceil(0.9 S); one-hot needs 1; zeros need 0', () => {
    for (const S of [1, 2, 7, 10, 11, 100, 999]) {
      const res = layerUncertaintySync([{ attention: f32(Array(S).fill(1), [1, 1, 1, S]) }])
      expect(res.scores, `S = ${S}`).toEqual([Math.ceil(0.9 * S)])
      const oneHot = Array(S).fill(0)
      oneHot[S >> 1] = 0.75
      expect(layerUncertaintySync([{ attention: f32(oneHot, [1, 1, 1, S]) }]).scores).toEqual([1])
    }
    expect(layerUncertaintySync([{ attention: f32([0, 0, 0], [1, 1, 1, 3]) }]).scores).toEqual([0])
    expect(layerUncertaintySync([{ attention: f32([], [1, 1, 1, 0]) }]).counts[0]).toEqual(Int32Array.from([0]))
  })

  it('the threshold: sort descending, count until the cumulative sum reaches threshold * total', () => {
    const att = f32([0.0625, 0.5, 0.1875, 0.25], [1, 1, 1, 4]) // sorted: 0.5, 0.25, 0.1875, 0.0625 (sums exact)
    expect(layerUncertaintySync([{ attention: att }], { threshold: 0.5 }).scores).toEqual([1])
    expect(layerUncertaintySync([{ attention: att }], { threshold: 0.7 }).scores).toEqual([2])
    expect(layerUncertaintySync([{ attention: att }]).scores).toEqual([3]) // default 0.9
    expect(layerUncertaintySync([{ attention: att }], { threshold: 1 }).scores).toEqual([4])
    // exactly on the threshold counts as reached: 0.5 + 0.25 = 0.75 of a total of 1 (exact in binary)
    expect(layerUncertaintySync([{ attention: f32([0.25, 0.5, 0.125, 0.125], [1, 1, 1, 4]) }], { threshold: 0.75 }).scores).toEqual([2])
    expect(layerUncertaintySync([{ attention: f32([1, 0, 0, 3], [1, 1, 1, 4]) }], { threshold: 1 }).scores).toEqual([2])
  })

  it('the mean over batch, heads and queries, one score per layer', () => {
    // rows: one-hot (1), uniform over 4 (4), two halves (2), uniform over 2 of 4 with zeros (2)
    const att = f32([0, 1, 0, 0, 1, 1, 1, 1, 0.5, 0.5, 0, 0, 0, 2, 2, 0], [2, 2, 1, 4])
    const res = layerUncertaintySync([{ attention: att }, { attention: f32([1, 1, 1, 1], [1, 1, 1, 4]) }])
    expect(Array.from(res.counts[0])).toEqual([1, 4, 2, 2])
    expect(res.scores).toEqual([9 / 4, 4])
  })

  it('window queries: zero queries attend uniformly to the visible keys (causal), GQA maps heads', () => {
    const S = 20, W = 4, D = 16
    const q = f32(Array(1 * 4 * W * D).fill(0), [1, 4, W, D])
    const k = randomTensor(rng(seed), 'float16', [1, 2, S, D])
    const causal = layerUncertaintySync([{ queries: q, keys: k }])
    expect(Array.from(causal.counts[0])).toEqual([0, 1, 2, 3].flatMap(() => [0, 1, 2, 3].map((i) => Math.ceil(0.9 * (S - W + i + 1)))))
    const full = layerUncertaintySync([{ queries: q, keys: k }], { causal: false })
    expect(Array.from(full.counts[0])).toEqual(Array(16).fill(Math.ceil(0.9 * S)))
    // kv head 0: one key aligned with every query, the others zero; kv head 1: all keys zero.
    // Query heads 0, 1 read kv head 0 (one token needed), heads 2, 3 kv head 1 (uniform).
    const ones = f32(Array(4 * W * D).fill(1), [1, 4, W, D])
    const keys = new Float32Array(2 * S * D)
    keys.fill(4, 3 * D, 4 * D)
    const res = layerUncertaintySync([{ queries: ones, keys: { type: 'float32', data: keys, dims: [1, 2, S, D] } }], { causal: false })
    expect(Array.from(res.counts[0])).toEqual([...Array(8).fill(1), ...Array(8).fill(Math.ceil(0.9 * S))])
  })
})

// ---- random data against the oracle ---------------------------------------------------------

describe('layerUncertainty: random data against the oracle', () => {
  it(`attention weights (float32, float16): counts equal the oracle's exactly (seed ${seed})`, async () => {
    const r = rng(seed + 1)
    for (let i = 0; i < 12; i++) {
      const dims = [int(r, 1, 2), int(r, 1, 4), int(r, 1, 6), pick(r, [1, 5, 64, int(r, 2, 700)])]
      const threshold = pick(r, [0.9, 0.5, 0.99, 1, r() || 0.3])
      let att = randomAttention(r, dims)
      if (i % 3 === 2) {
        // float16 weights: the same rows rounded to half (bits via the oracle's decoder)
        const bits = new Uint16Array(att.data.length)
        for (let j = 0; j < bits.length; j++) bits[j] = toHalfBits(att.data[j])
        att = { type: 'float16', data: bits, dims }
      }
      const want = attentionCounts(att, threshold)
      const res = i % 2 ? await layerUncertainty([{ attention: att }], { threshold }) : layerUncertaintySync([{ attention: att }], { threshold })
      expect(Array.from(res.counts[0]), `case ${i} ${att.type} ${dims} threshold ${threshold}`).toEqual(want.map((x) => x.count))
      expect(res.scores[0]).toBe(mean(want.map((x) => x.count)))
    }
  })

  it(`window queries against keys (GQA, causal or not, every dtype): within the float tolerance (seed ${seed})`, async () => {
    const r = rng(seed + 2)
    let near = 0
    for (let i = 0; i < 10; i++) {
      const Hkv = pick(r, [1, 2]), group = pick(r, [1, 2, 4])
      const S = int(r, 1, 300), W = int(r, 1, Math.min(S, 8)), D = pick(r, [8, 16, 64])
      const q = randomTensor(r, pick(r, ['float16', 'bfloat16', 'float32'] as const), [2, Hkv * group, W, D])
      const k = randomTensor(r, pick(r, ['float16', 'bfloat16', 'float32'] as const), [2, Hkv, S, D])
      // keep the logits finite and informative: rescale to roughly unit entries
      for (const t of [q, k]) normalise(t)
      const causal = r() < 0.7
      const threshold = pick(r, [0.9, 0.5, 0.95])
      const want = windowCounts(q, k, threshold, causal)
      const res = i % 2 ? await layerUncertainty([{ queries: q, keys: k }], { threshold, causal }) : layerUncertaintySync([{ queries: q, keys: k }], { threshold, causal })
      const got = Array.from(res.counts[0])
      got.forEach((c, j) => {
        if (c === want[j].count) return
        near++
        expect(Math.abs(c - want[j].count), `case ${i} row ${j}`).toBe(1)
        expect(want[j].margin, `case ${i} row ${j}: a difference only at the threshold`).toBeLessThan(1e-6)
      })
    }
    expect(near).toBeLessThan(3)
  })

  it(`several layers, Promise and sync agree; the scores feed zigzag budgets (seed ${seed})`, async () => {
    const r = rng(seed + 3)
    const layers = [0.1, 1, 10].map((temp) => ({ attention: randomAttention(r, [1, 2, 4, 128]), temp }))
    const a = await layerUncertainty(layers.map(({ attention }) => ({ attention })))
    const s = layerUncertaintySync(layers.map(({ attention }) => ({ attention })))
    expect(a.scores).toEqual(s.scores)
    const cache = layers.map(() => ({ keys: randomTensor(r, 'float16', [1, 2, 128, 16]), values: randomTensor(r, 'float16', [1, 2, 128, 16]) }))
    const res = compressCacheSync(cache, { keepRatio: 0.25, budgets: { zigzag: s.scores } })
    expect(res.report.map((x) => x.after)).toEqual(layerBudgets({ zigzag: s.scores }, { layers: 3, seqLen: 128, keepRatio: 0.25 }))
    expect(res.report.reduce((t, x) => t + x.after, 0)).toBe(3 * 32)
  })
})

// ---- bad input --------------------------------------------------------------------------------


describe('layerUncertainty: bad input', () => {
  const att = f32([0.5, 0.5], [1, 1, 1, 2])
  it('gives KvtrimError with a code and the option or element named', async () => {
    expectCode(() => layerUncertaintySync([{ attention: att }], { threshold: 0 }), 'INVALID_OPTION', /threshold/)
    expectCode(() => layerUncertaintySync([{ attention: att }], { threshold: 1.5 }), 'INVALID_OPTION', /threshold/)
    expectCode(() => layerUncertaintySync([{ attention: att }], { treshold: 0.5 } as never), 'INVALID_OPTION', /treshold/)
    expectCode(() => layerUncertaintySync([{ attention: att }], { causal: 'yes' } as never), 'INVALID_OPTION', /causal/)
    expectCode(() => layerUncertaintySync({} as never), 'INVALID_ARGUMENT', /layers/)
    expectCode(() => layerUncertaintySync([att] as never), 'INVALID_ARGUMENT', /layers\[0\]/)
    expectCode(() => layerUncertaintySync([{ attention: att }, { attention: f32([1, -0.5, 2], [1, 1, 1, 3]) }]), 'INVALID_ARGUMENT', /^layers\[1\]: .*attention\[0, 0, 0, 1\] is -0\.5/)
    expectCode(() => layerUncertaintySync([{ attention: f32([1, NaN], [1, 1, 1, 2]) }]), 'INVALID_ARGUMENT', /finite and non-negative/)
    expectCode(() => layerUncertaintySync([{ attention: f32([1, 2], [1, 2]) }]), 'INVALID_RANK', /attention\.dims/)
    expectCode(() => layerUncertaintySync([{ attention: f32([1, 2], [1, 1, 1, 3]) }]), 'DATA_LENGTH', /attention\.data/)
    const q = f32(Array(3 * 2 * 8).fill(0.1), [1, 3, 2, 8])
    const k = f32(Array(2 * 4 * 8).fill(0.1), [1, 2, 4, 8])
    expectCode(() => layerUncertaintySync([{ queries: q, keys: k }]), 'DIMS_MISMATCH', /multiple of keys' kvHeads/)
    const long = f32(Array(2 * 6 * 8).fill(0.1), [1, 2, 6, 8])
    expectCode(() => layerUncertaintySync([{ queries: long, keys: k }]), 'DIMS_MISMATCH', /observation window/)
    expect(layerUncertaintySync([{ queries: long, keys: k }], { causal: false }).scores).toEqual([4])
    const inf = f32(Array(2 * 4 * 8).fill(0.1), [1, 2, 4, 8])
    inf.data[9] = Infinity
    await expect(layerUncertainty([{ queries: f32(Array(2 * 2 * 8).fill(0.1), [1, 2, 2, 8]), keys: inf }])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
  })
})

// ---- helpers --------------------------------------------------------------------------------

/** Round a number to the nearest float16 and return its bits (round half to even). */
function toHalfBits(x: number): number {
  if (x === 0) return 0
  let best = 0, bestErr = Infinity
  // weights are in [0, 1]: search exponents exactly with the oracle's decoder
  let lo = 0, hi = 0x3c00
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (oracle.f16ToNumber(mid) <= x) lo = mid
    else hi = mid - 1
  }
  for (const c of [lo, Math.min(lo + 1, 0x3c00)]) {
    const err = Math.abs(oracle.f16ToNumber(c) - x)
    if (err < bestErr || (err === bestErr && (c & 1) === 0)) {
      best = c
      bestErr = err
    }
  }
  return best
}

/** Scales a random tensor's elements to about unit size in place (16-bit: re-encoded). */
function normalise(t: oracle.OracleTensor): void {
  if (t.type === 'float32') {
    let m = 0
    for (const x of t.data) m = Math.max(m, Math.abs(x))
    for (let i = 0; i < t.data.length; i++) t.data[i] = Math.fround(t.data[i] / (m || 1))
    return
  }
  // 16-bit: keep sign and mantissa, pull every exponent into a narrow band around 1
  for (let i = 0; i < t.data.length; i++) {
    const b = t.data[i]
    if (t.type === 'float16') t.data[i] = (b & 0x83ff) | (((((b >> 10) & 0x1f) % 4) + 13) << 10)
    else t.data[i] = (b & 0x807f) | (((((b >> 7) & 0xff) % 4) + 125) << 7)
  }
}
