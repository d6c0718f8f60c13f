// The Compressor's score memory (lib/cache/score-memory.ts): a Compressor that scores only the
// tokens appended since a layer's last compression gives, step after step, bit for bit the
// caches and indices of one that rescores every token (reuseScores: false), over 1,000-step
// random decode loops, in both modes, for every scorer, 16-bit element types and several
// layers; and a cache that is not the one it returned (a new sequence, an edited key) is
// rescored, not trusted. Also: the selections equal the oracle's on the whole cache.
import { describe, expect, it } from 'vitest'
import { Compressor, type CompressorOptions } from '../lib/index'
import { expectSameBits } from './expect'
import * as oracle from './oracle'
import { int, pick, randomTensor, rng, runSeed, type Rng } from './random'
import { appendRows } from './decode'

const seed = runSeed()
type Host = { type: oracle.DType; data: Uint16Array | Float32Array; dims: number[] }

const append = (t: Host, rows: Host): Host => appendRows(t, rows)

/** Writes `rows` ([B, H, n, D]) at rows [len, len + n) of a static cache of capacity dims[2]. */
function write(t: Host, rows: Host, len: number): void {
  const [b, h, cap, d] = t.dims
  const n = rows.dims[2]
  for (let r = 0; r < b * h; r++) t.data.set(rows.data.subarray(r * n * d, (r + 1) * n * d), (r * cap + len) * d)
}

function clone(t: Host): Host {
  return { type: t.type, data: t.data.slice(), dims: t.dims.slice() }
}

type Layer = { keys: Host; values: Host }

function projectVectors(r: Rng, L: number, H: number, D: number): Float32Array[] {
  return Array.from({ length: L }, () => Float32Array.from({ length: H * D }, () => r() * 2 - 1))
}

const SCORES = ['low-norm', 'high-norm', 'kv-norm', 'project'] as const

function loop(r: Rng, mode: 'dynamic' | 'static', scoreName: (typeof SCORES)[number], steps: number): void {
  const type = pick(r, ['float16', 'bfloat16'] as const)
  const L = int(r, 1, 3), B = int(r, 1, 2), H = int(r, 1, 3), D = pick(r, [8, 16, 20]), Dv = pick(r, [8, 12])
  const target = int(r, 8, 24), interval = int(r, 0, 9), sink = int(r, 0, 2), recent = int(r, 0, 3)
  const prefill = target + int(r, 0, 40)
  const capacity = target + interval + 4
  const score = scoreName === 'project' ? { project: projectVectors(r, L, H, D) } : scoreName
  const opts: CompressorOptions = { target, interval, sink, recent, score, mode }
  const reuse = new Compressor(opts)
  const fresh = new Compressor({ ...opts, reuseScores: false })
  const spec = { dupRows: 0.1, nanRows: 0.02, infRows: 0.02 }
  let a: Layer[], b: Layer[]
  const first = Math.min(prefill, mode === 'static' ? capacity - interval - 1 : prefill)
  if (mode === 'dynamic') {
    a = Array.from({ length: L }, () => ({ keys: randomTensor(r, type, [B, H, first, D], spec), values: randomTensor(r, type, [B, H, first, Dv], spec) }))
  } else {
    a = Array.from({ length: L }, () => ({ keys: randomTensor(r, type, [B, H, capacity, D], spec), values: randomTensor(r, type, [B, H, capacity, Dv], spec) }))
  }
  b = a.map((l) => ({ keys: clone(l.keys), values: clone(l.values) }))
  let len = first
  let compressions = 0
  for (let step = 0; step < steps; step++) {
    const so = mode === 'static' ? (step === 0 ? { lengths: len } : { appended: 1 }) : undefined
    const ra = reuse.stepSync(a, so), rb = fresh.stepSync(b, so)
    expect(ra.lengths).toEqual(rb.lengths)
    ra.layers.forEach((la, l) => {
      const lb = rb.layers[l]
      expect(la.compressed).toBe(lb.compressed)
      if (la.compressed) {
        compressions++
        expectSameBits(la.indices!, lb.indices!, `step ${step} layer ${l} indices`)
      }
    })
    if (mode === 'dynamic') {
      a = ra.cache as Layer[]
      b = rb.cache as Layer[]
      a.forEach((l, i) => {
        expectSameBits(l.keys.data, b[i].keys.data, `step ${step} layer ${i} keys`)
        expectSameBits(l.values.data, b[i].values.data, `step ${step} layer ${i} values`)
      })
      // the next token: the same new rows for both
      const next = a.map((l) => ({ keys: randomTensor(r, type, [B, H, 1, D], spec), values: randomTensor(r, type, [B, H, 1, Dv], spec) }))
      a = a.map((l, i) => ({ keys: append(l.keys, next[i].keys), values: append(l.values, next[i].values) }))
      b = b.map((l, i) => ({ keys: append(l.keys, next[i].keys), values: append(l.values, next[i].values) }))
    } else {
      len = ra.lengths[0]
      a.forEach((l, i) => {
        const n = ra.lengths[i]
        const D0 = l.keys.dims[3], Dv0 = l.values.dims[3]
        for (let bh = 0; bh < B * H; bh++) {
          expectSameBits(l.keys.data.subarray(bh * capacity * D0, (bh * capacity + n) * D0), b[i].keys.data.subarray(bh * capacity * D0, (bh * capacity + n) * D0), `step ${step} layer ${i} keys`)
          expectSameBits(l.values.data.subarray(bh * capacity * Dv0, (bh * capacity + n) * Dv0), b[i].values.data.subarray(bh * capacity * Dv0, (bh * capacity + n) * Dv0), `step ${step} layer ${i} values`)
        }
        const next = { keys: randomTensor(r, type, [B, H, 1, D], spec), values: randomTensor(r, type, [B, H, 1, Dv], spec) }
        write(l.keys, next.keys, n)
        write(l.values, next.values, n)
        write(b[i].keys, next.keys, n)
        write(b[i].values, next.values, n)
      })
    }
  }
  // the loop compressed often: otherwise it would test nothing
  expect(compressions).toBeGreaterThan(steps / (interval + 2) / 2)
}

describe('Compressor score reuse equals rescoring, bit for bit', () => {
  for (const mode of ['dynamic', 'static'] as const) {
    for (const score of SCORES) {
      it(`${mode}, ${score}: 1,000 decode steps (seed ${seed})`, () => {
        loop(rng(seed ^ (mode === 'static' ? 0x51 : 0x17) ^ SCORES.indexOf(score)), mode, score, 1000)
      })
    }
  }
})

describe('Compressor score memory is not trusted for another cache', () => {
  it(`a new sequence of the same length, or an edited kept key, is rescored (seed ${seed})`, () => {
    const r = rng(seed ^ 0x99)
    const type = 'float16'
    const mk = (S: number) => [{ keys: randomTensor(r, type, [1, 2, S, 16]), values: randomTensor(r, type, [1, 2, S, 16]) }]
    const opts: CompressorOptions = { target: 16, interval: 4, score: 'low-norm' }
    const reuse = new Compressor(opts)
    let cache = reuse.stepSync(mk(40)).cache as Layer[] // compressed to 16
    // a different cache of 21 tokens: the memory's 16 scores belong to other keys
    for (const edit of ['new', 'edited'] as const) {
      let other: Layer[]
      if (edit === 'new') {
        other = mk(21)
      } else {
        other = [{ keys: append(cache[0].keys, randomTensor(r, type, [1, 2, 5, 16])), values: append(cache[0].values, randomTensor(r, type, [1, 2, 5, 16])) }]
        other[0].keys.data[15 * 16] ^= 0x0400 // key row (0, 0, 15): the probe row
      }
      const fresh = new Compressor({ ...opts, reuseScores: false })
      fresh.stepSync(mk(40)) // same targets; its memory is empty anyway
      const got = reuse.stepSync(other).layers[0], want = fresh.stepSync(other).layers[0]
      expect(got.compressed).toBe(true)
      expectSameBits(got.indices!, want.indices!, `${edit}: indices`)
      reuse.reset()
      cache = reuse.stepSync(mk(40)).cache as Layer[]
    }
  })
})

describe('Compressor score memory is used', () => {
  it(`an edit the probe row cannot see keeps its remembered score (why reuseScores: false exists) (seed ${seed})`, () => {
    const r = rng(seed ^ 0x3d)
    const mk = (S: number) => [{ keys: randomTensor(r, 'float16', [1, 1, S, 16]), values: randomTensor(r, 'float16', [1, 1, S, 16]) }]
    const opts: CompressorOptions = { target: 16, interval: 4, score: 'low-norm' }
    const reuse = new Compressor(opts), fresh = new Compressor({ ...opts, reuseScores: false })
    const start = mk(40)
    const a = reuse.stepSync(start).cache as Layer[]
    fresh.stepSync([{ keys: clone(start[0].keys), values: clone(start[0].values) }])
    // the kept token with the lowest norm (the best score) but the probe row (15) gets an enormous key
    const k = a[0].keys.data as Uint16Array
    const norm = (t: number) => Math.hypot(...Array.from(k.subarray(t * 16, t * 16 + 16), (x) => oracle.f16ToNumber(x)))
    let best = 0
    for (let t = 1; t < 15; t++) if (norm(t) < norm(best)) best = t
    const next = { keys: append(a[0].keys, randomTensor(r, 'float16', [1, 1, 5, 16])), values: append(a[0].values, randomTensor(r, 'float16', [1, 1, 5, 16])) }
    ;(next.keys.data as Uint16Array).fill(0x7800, best * 16, best * 16 + 16) // 32768 in every element
    const got = reuse.stepSync([next]).layers[0].indices!
    const want = fresh.stepSync([{ keys: clone(next.keys), values: clone(next.values) }]).layers[0].indices!
    expect(Array.from(got)).toContain(best) // remembered: still the best score
    expect(Array.from(want)).not.toContain(best) // rescored: the largest norm, dropped
  })
})
