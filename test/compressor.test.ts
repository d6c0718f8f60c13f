// Compressor: a 1000-step synthetic decode loop in both modes. The cache never holds more than
// target + interval tokens after a step, and its kept tokens are, bit for bit, what calling
// compressSync by hand on the same data gives (and what the oracle gives); the static cache
// holds the same rows at its front. transformers.js-style caches come back in their own form.
import { describe, expect, it } from 'vitest'
import { Compressor, compressSync, type CompressorOptions, type StepResult } from '../lib/index'
import * as oracle from './oracle'
import { expectSameBits, expectCode } from './expect'
import { randomTensor, rng, runSeed, type Rng } from './random'
import { appendRows } from './decode'

const seed = runSeed()
const B = 1, H = 2, D = 16

/** transformers.js / onnxruntime's Tensor: constructed as new Tensor(type, data, dims). */
class Tensor {
  constructor(
    public type: oracle.DType,
    public data: Uint16Array | Float32Array,
    public dims: number[],
  ) {}
}

type Host = { type: oracle.DType; data: Uint16Array | Float32Array; dims: number[] }

/** [B, H, S, D] + one new row per (b, h) -> [B, H, S + 1, D] */
const append = (t: Host, rows: Host): Host => appendRows(t, rows)

/** Rows [0, len) of every (b, h) of a static cache of capacity dims[2]. */
function front(t: Host, len: number): Uint16Array {
  const [b, h, cap, d] = t.dims
  const out = new Uint16Array(b * h * len * d)
  for (let r = 0; r < b * h; r++) out.set(t.data.subarray(r * cap * d, (r * cap + len) * d), r * len * d)
  return out
}

const newRows = (r: Rng) => randomTensor(r, 'float16', [B, H, 1, D], { dupRows: 0 })

describe('Compressor: a 1000-step decode loop', () => {
  const target = 24, interval = 16, prefill = 64, L = 2
  const options: CompressorOptions = { target, interval, sink: 2, recent: 4 }

  it(`dynamic transformers.js cache: never above target + interval, the same tokens as compress by hand (seed ${seed})`, () => {
    const r = rng(seed)
    let ref: Array<{ keys: Host; values: Host }> = Array.from({ length: L }, () => ({
      keys: randomTensor(r, 'float16', [B, H, prefill, D], { dupRows: 0.1 }),
      values: randomTensor(r, 'float16', [B, H, prefill, D]),
    }))
    const named = (layers: typeof ref): Record<string, unknown> => {
      const o: Record<string, unknown> = { logits: 'untouched' }
      layers.forEach((l, i) => {
        o[`past_key_values.${i}.key`] = new Tensor(l.keys.type, l.keys.data.slice(), l.keys.dims)
        o[`past_key_values.${i}.value`] = new Tensor(l.values.type, l.values.data.slice(), l.values.dims)
      })
      return o
    }
    let cache = named(ref)
    const c = new Compressor(options)
    let compressions = 0
    for (let step = 0; step <= 1000; step++) {
      if (step > 0) {
        // the model appends one token to every layer
        const next: Record<string, unknown> = { ...cache }
        ref = ref.map((l, i) => {
          const k = newRows(r), v = newRows(r)
          next[`past_key_values.${i}.key`] = new Tensor('float16', append(cache[`past_key_values.${i}.key`] as Host, k).data, append(l.keys, k).dims)
          next[`past_key_values.${i}.value`] = new Tensor('float16', append(cache[`past_key_values.${i}.value`] as Host, v).data, append(l.values, v).dims)
          return { keys: append(l.keys, k), values: append(l.values, v) }
        })
        cache = next
      }
      const res: StepResult<Record<string, unknown>> = c.stepSync(cache)
      // by hand: compress every layer that exceeds target + interval back to target
      ref = ref.map((l, i) => {
        if (l.keys.dims[2] <= target + interval) return l
        const o = { keep: target, sink: 2, recent: 4 }
        const hand = compressSync(l.keys, l.values, o)
        const want = oracle.compress(l.keys, l.values, o)
        expectSameBits(hand.indices, want.indices, `step ${step} layer ${i}: compress vs oracle`)
        expectSameBits(res.layers[i].indices as Int32Array, hand.indices, `step ${step} layer ${i}: indices`)
        return { keys: hand.keys, values: hand.values }
      })
      if (res.compressed) compressions++
      cache = res.cache
      expect(res.position).toBe(prefill + step)
      expect(Object.keys(cache).sort()).toEqual(['logits', 'past_key_values.0.key', 'past_key_values.0.value', 'past_key_values.1.key', 'past_key_values.1.value'])
      expect(cache.logits).toBe('untouched')
      ref.forEach((l, i) => {
        const k = cache[`past_key_values.${i}.key`] as Tensor, v = cache[`past_key_values.${i}.value`] as Tensor
        expect(k).toBeInstanceOf(Tensor)
        expect(k.dims[2]).toBeLessThanOrEqual(target + interval)
        expect(res.lengths[i]).toBe(k.dims[2])
        expectSameBits(k.data as Uint16Array, l.keys.data as Uint16Array, `step ${step} layer ${i} keys`)
        expectSameBits(v.data as Uint16Array, l.values.data as Uint16Array, `step ${step} layer ${i} values`)
      })
    }
    // the prefill, then one compression every interval + 1 tokens
    expect(compressions).toBe(1 + Math.floor(1000 / (interval + 1)))
  })

  it(`static cache with capacity: compressed in its own memory, the same rows at the front (seed ${seed})`, () => {
    const r = rng(seed + 1)
    const capacity = target + interval + 1
    const start = 40
    const layers = Array.from({ length: L }, () => ({
      keys: randomTensor(r, 'float16', [B, H, capacity, D]),
      values: randomTensor(r, 'float16', [B, H, capacity, D]),
    }))
    // the reference: a dynamic cache fed the same tokens
    let ref: Array<{ keys: Host; values: Host }> = layers.map((l) => ({
      keys: { type: l.keys.type, data: front(l.keys, start), dims: [B, H, start, D] },
      values: { type: l.values.type, data: front(l.values, start), dims: [B, H, start, D] },
    }))
    const c = new Compressor({ ...options, mode: 'static' })
    const d = new Compressor(options)
    let res = c.stepSync(layers, { lengths: start })
    for (let step = 1; step <= 1000; step++) {
      layers.forEach((l, i) => {
        const k = newRows(r), v = newRows(r)
        const at = res.lengths[i]
        for (let row = 0; row < B * H; row++) {
          l.keys.data.set(k.data.subarray(row * D, (row + 1) * D), (row * capacity + at) * D)
          l.values.data.set(v.data.subarray(row * D, (row + 1) * D), (row * capacity + at) * D)
        }
        ref[i] = { keys: append(ref[i].keys, k), values: append(ref[i].values, v) }
      })
      res = c.stepSync(layers)
      expect(res.cache).toBe(layers)
      const dyn = d.stepSync(ref)
      ref = dyn.cache as Array<{ keys: Host; values: Host }>
      expect(res.position).toBe(dyn.position)
      expect(res.compressed).toBe(dyn.compressed)
      layers.forEach((l, i) => {
        expect(l.keys.dims[2]).toBe(capacity)
        expect(res.lengths[i]).toBeLessThanOrEqual(target + interval)
        expect(res.lengths[i]).toBe(dyn.lengths[i])
        expectSameBits(front(l.keys, res.lengths[i]), ref[i].keys.data as Uint16Array, `step ${step} layer ${i} keys`)
        expectSameBits(front(l.values, res.lengths[i]), ref[i].values.data as Uint16Array, `step ${step} layer ${i} values`)
      })
    }
    expect(res.position).toBe(start + 1000)
  })
})

describe('Compressor: forms and options', () => {
  it(`step (Promise) and stepSync agree; keepRatio sets the target from the prefill; skipLayers (seed ${seed})`, async () => {
    const r = rng(seed + 2)
    const mk = () => Array.from({ length: 3 }, () => ({ keys: randomTensor(r, 'bfloat16', [2, 2, 100, 8]), values: randomTensor(r, 'bfloat16', [2, 2, 100, 4]) }))
    let a = mk()
    let s = a.map((l) => ({ keys: { ...l.keys }, values: { ...l.values } }))
    const ca = new Compressor({ keepRatio: 0.25, interval: 8, skipLayers: [1], position: 500 })
    const cs = new Compressor({ keepRatio: 0.25, interval: 8, skipLayers: [1], position: 500 })
    for (let step = 0; step < 60; step++) {
      if (step > 0) {
        const rows = a.map(() => ({ k: randomTensor(r, 'bfloat16', [2, 2, 1, 8]), v: randomTensor(r, 'bfloat16', [2, 2, 1, 4]) }))
        a = a.map((l, i) => ({ keys: append(l.keys, rows[i].k), values: appendV(l.values, rows[i].v) }))
        s = s.map((l, i) => ({ keys: append(l.keys, rows[i].k), values: appendV(l.values, rows[i].v) }))
      }
      const ra = await ca.step(a), rs = cs.stepSync(s)
      expect(ra.layers.map((x) => [x.before, x.after, x.compressed])).toEqual(rs.layers.map((x) => [x.before, x.after, x.compressed]))
      ra.cache.forEach((l, i) => expectSameBits(l.keys.data as Uint16Array, rs.cache[i].keys.data as Uint16Array, `step ${step} layer ${i}`))
      a = ra.cache
      s = rs.cache
      expect(ra.position).toBe(500 + step)
      expect(ra.layers[1].compressed).toBe(false)
      expect(ra.lengths[1]).toBe(100 + step)
    }
    expect(ca.targets).toEqual([25, 25, 25])
  })

  it('plain { type, data, dims } tensors come back as plain objects; a step that compresses nothing returns the same object', () => {
    const r = rng(seed + 3)
    const cache = { 'present.0.key': randomTensor(r, 'float32', [1, 1, 10, 8]), 'present.0.value': randomTensor(r, 'float32', [1, 1, 10, 8]) }
    const c = new Compressor({ target: 4, interval: 2 })
    const res = c.stepSync(cache)
    expect(res.compressed).toBe(true)
    expect(res.cache['present.0.key'].constructor).toBe(Object)
    expect(res.cache['present.0.key'].dims).toEqual([1, 1, 4, 8])
    expect(res.cache['present.0.key'].data).toBeInstanceOf(Float32Array)
    const again = c.stepSync(res.cache)
    expect(again.compressed).toBe(false)
    expect(again.cache).toBe(res.cache)
  })
})

function appendV(t: Host, rows: Host): Host {
  return append(t, rows)
}


describe('Compressor: bad options', () => {
  const r = rng(seed + 4)
  const layer = () => ({ keys: randomTensor(r, 'float16', [1, 2, 32, 8]), values: randomTensor(r, 'float16', [1, 2, 32, 8]) })
  it('give KvtrimError with a code, naming the option', () => {
    expectCode(() => new Compressor({ interval: 4 }), 'INVALID_OPTION', /target .* or keepRatio/)
    expectCode(() => new Compressor({ target: 4, keepRatio: 0.5, interval: 4 }), 'INVALID_OPTION', /target .* or keepRatio/)
    expectCode(() => new Compressor({ target: -1, interval: 4 }), 'INVALID_OPTION', /for target/)
    expectCode(() => new Compressor({ keepRatio: 2, interval: 4 }), 'INVALID_KEEP_RATIO', /keepRatio/)
    expectCode(() => new Compressor({ target: 4 } as never), 'INVALID_OPTION', /for interval/)
    expectCode(() => new Compressor({ target: 4, interval: 4, mode: 'paged' as never }), 'INVALID_OPTION', /for mode/)
    expectCode(() => new Compressor({ target: 4, interval: 4, intervall: 3 } as never), 'INVALID_OPTION', /intervall/)
    expectCode(() => new Compressor({ target: 4, interval: 4, sink: -1 }), 'INVALID_SINK', /sink/)
    // a target larger than the capacity, or no room for the next token
    expectCode(() => new Compressor({ target: 40, interval: 4, mode: 'static' }).stepSync([layer()], { lengths: 10 }), 'INVALID_OPTION', /capacity of layer 0 \(32\)/)
    expectCode(() => new Compressor({ target: 28, interval: 4, mode: 'static' }).stepSync([layer()], { lengths: 10 }), 'INVALID_OPTION', /target \+ interval \(28 \+ 4\)/)
    expectCode(() => new Compressor({ target: 8, interval: 4, mode: 'static' }).stepSync([layer()]), 'INVALID_LENGTHS', /first step/)
    expectCode(() => new Compressor({ target: 8, interval: 4, mode: 'static' }).stepSync([layer()], { lengths: 33 }), 'INVALID_LENGTHS', /capacity/)
    expectCode(() => new Compressor({ target: 8, interval: 4 }).stepSync([layer()], { lengths: 3 }), 'INVALID_OPTION', /dynamic/)
    expectCode(() => new Compressor({ target: [8, 8], interval: 4 }).stepSync([layer()]), 'INVALID_OPTION', /1 targets/)
    expectCode(() => new Compressor({ target: 3, interval: 4, sink: 2, recent: 2 }).stepSync([layer()]), 'INVALID_OPTION', /sink \+ recent = 4/)
    expectCode(() => new Compressor({ target: 8, interval: 4 }).stepSync({ cache: 1 }), 'INVALID_ARGUMENT', /past_key_values/)
    expectCode(() => new Compressor({ target: 8, interval: 4 }).stepSync({ 'past_key_values.0.key': layer().keys }), 'INVALID_ARGUMENT', /layer 0/)
    const c = new Compressor({ target: 8, interval: 4 })
    const l = layer()
    c.stepSync([l, l])
    expectCode(() => c.stepSync([l]), 'INVALID_ARGUMENT', /2 layers/)
    const d = new Compressor({ target: 30, interval: 4 })
    d.stepSync([layer()])
    expectCode(() => d.stepSync([{ keys: randomTensor(r, 'float16', [1, 2, 8, 8]), values: randomTensor(r, 'float16', [1, 2, 8, 8]) }]), 'INVALID_ARGUMENT', /reset\(\)/)
    d.reset()
    expect(d.stepSync([{ keys: randomTensor(r, 'float16', [1, 2, 8, 8]), values: randomTensor(r, 'float16', [1, 2, 8, 8]) }]).position).toBe(8)
  })
})
