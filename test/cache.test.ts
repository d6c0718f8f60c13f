// compressCache: the reference l2_compress's pruneAfter / skipLayers rules, per-layer budgets,
// and every compressed layer equal to the oracle's compress of that layer.
import { describe, expect, it } from 'vitest'
import { compressCache, compressCacheSync, type CacheResult } from '../lib/index'
import * as oracle from './oracle'
import { expectSameBits } from './expect'
import { int, randomTensor, rng, runSeed } from './random'

const seed = runSeed()

function model(lengths: number[], type: oracle.DType = 'float16') {
  const r = rng(seed)
  return lengths.map((s) => ({
    keys: randomTensor(r, type, [1, 4, s, 32], { dupRows: 0.1 }),
    values: randomTensor(r, type, [1, 4, s, 32]),
  }))
}

function expectLayer(got: CacheResult['layers'][number], layer: ReturnType<typeof model>[number], o: oracle.OracleOptions, what: string) {
  const want = oracle.compress(layer.keys, layer.values, o)
  expectSameBits(got.indices as Int32Array, want.indices, `${what}: indices`)
  expectSameBits(got.keys.data as Uint16Array, want.keys.data, `${what}: keys`)
  expectSameBits(got.values.data as Uint16Array, want.values.data, `${what}: values`)
  expect(got.keys.dims).toEqual(want.keys.dims)
}

describe('compressCache', () => {
  it(`leaves layers shorter than pruneAfter and listed in skipLayers as they are (seed ${seed})`, () => {
    const layers = model([100, 40, 100, 100])
    const res = compressCacheSync(layers, { keepRatio: 0.25, pruneAfter: 50, skipLayers: [2] })
    expect(res.layers[1]).toBe(layers[1])
    expect(res.layers[2]).toBe(layers[2])
    expect(res.report).toEqual([
      { layer: 0, before: 100, after: 25, compressed: true },
      { layer: 1, before: 40, after: 40, compressed: false, reason: 'pruneAfter' },
      { layer: 2, before: 100, after: 100, compressed: false, reason: 'skipLayers' },
      { layer: 3, before: 100, after: 25, compressed: true },
    ])
    expectLayer(res.layers[0], layers[0], { keepRatio: 0.25 }, 'layer 0')
    expectLayer(res.layers[3], layers[3], { keepRatio: 0.25 }, 'layer 3')
  })

  it('a layer exactly pruneAfter long is compressed (the reference skips only seq_len < prune_after)', () => {
    const layers = model([64])
    expect(compressCacheSync(layers, { keepRatio: 0.5, pruneAfter: 64 }).report[0].compressed).toBe(true)
    expect(compressCacheSync(layers, { keepRatio: 0.5, pruneAfter: 65 }).report[0].compressed).toBe(false)
  })

  it(`per-layer ratios and counts; the other options apply to every layer (seed ${seed})`, async () => {
    const r = rng(seed + 3)
    const layers = model([int(r, 20, 200), int(r, 20, 200), int(r, 20, 200)], 'bfloat16')
    const ratios = [0.9, 0.5, 0.1]
    const res = await compressCache(layers, { budgets: ratios, order: 'norm', sink: 2, recent: 4 })
    ratios.forEach((keepRatio, l) => expectLayer(res.layers[l], layers[l], { keepRatio, order: 'norm', sink: 2, recent: 4 }, `ratio layer ${l}`))
    const counts = [3, 0, 17]
    const res2 = compressCacheSync(layers, { budgets: { keep: counts }, score: 'high-norm' })
    counts.forEach((keep, l) => expectLayer(res2.layers[l], layers[l], { keep, score: 'high-norm' }, `count layer ${l}`))
  })

  it(`the Promise and sync forms agree (seed ${seed})`, async () => {
    const layers = model([300, 200])
    const a = await compressCache(layers, { keepRatio: 0.3 })
    const s = compressCacheSync(layers, { keepRatio: 0.3 })
    expect(a.report).toEqual(s.report)
    a.layers.forEach((l, i) => expectSameBits(l.keys.data as Uint16Array, s.layers[i].keys.data as Uint16Array, `layer ${i}`))
  })
})
