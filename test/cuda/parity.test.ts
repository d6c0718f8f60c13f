// The fused CUDA kernel against the oracle and the CPU path, bit for bit: norms, indices and
// gathered rows, over shapes that force every path (head_dim 1..256 with non-multiples of 8,
// ragged lengths, ties, NaN rows, sink/recent, both orders and scores, the split-row path),
// under the emulator's deterministic, random and priority schedules with several seeds.
import { afterEach, expect, it } from 'vitest'
import { compress, compressCache, compressCacheSync, compressSync, keyNormsSync, type CompressOptions, type CompressResult, type DeviceTensor } from '../../lib/index'
import * as oracle from '../oracle'
import { expectSameBits } from '../expect'
import { canonicalNaNs, nanPayloadTensor } from '../nan'
import { int, pick, randomTensor, rng, runSeed, type Rng } from '../random'
import { describeCuda, forceSplit, schedule, SCHEDULES, toDevice } from './gpu'

const seed = runSeed()
const DTYPES = ['float16', 'bfloat16', 'float32'] as const

function check(res: CompressResult<DeviceTensor>, want: oracle.OracleCompressResult, cpu: CompressResult, what: string) {
  expect(res.kept, `${what}: kept`).toBe(want.kept)
  expect(res.keys.dims, `${what}: dims`).toEqual(want.keys.dims)
  expectSameBits(res.lengths, want.lengths, `${what}: lengths`)
  expectSameBits(res.indices, want.indices, `${what}: indices`)
  const k = res.keys.download(), v = res.values.download()
  expectSameBits(k.data, want.keys.data, `${what}: keys`)
  expectSameBits(v.data, want.values.data, `${what}: values`)
  expectSameBits(res.indices, cpu.indices, `${what}: indices vs CPU`)
  expectSameBits(k.data, cpu.keys.data, `${what}: keys vs CPU`)
  res.keys.dispose()
  res.values.dispose()
}

function randomCase(r: Rng, type: oracle.DType) {
  const d = r() < 0.5 ? int(r, 1, 40) : pick(r, [64, 72, 100, 128, 256])
  const s = Math.max(1, Math.round(Math.exp(r() * Math.log(3000))))
  let b = int(r, 1, 4), h = int(r, 1, 4)
  while (b * h * s * d > 120_000 && b * h > 1) (b > h ? (b = Math.ceil(b / 2)) : (h = Math.ceil(h / 2)))
  const o: CompressOptions = { order: pick(r, ['position', 'norm'] as const), score: pick(r, ['low-norm', 'high-norm'] as const) }
  if (r() < 0.7) o.keepRatio = pick(r, [0.07, 0.1, 0.5, 0.9, 1])
  else o.keep = int(r, 0, s)
  if (r() < 0.3) o.sink = int(r, 0, 8)
  if (r() < 0.3) o.recent = int(r, 0, 64)
  if (r() < 0.3) o.lengths = Array.from({ length: b }, () => int(r, 0, s))
  return { dims: [b, h, s, d], dv: r() < 0.8 ? d : int(r, 1, 96), o }
}

describeCuda('CUDA compress', () => {
  afterEach(() => {
    forceSplit(undefined)
    schedule('deterministic', 0)
  })

  for (const type of DTYPES) {
    for (const sch of SCHEDULES) {
      it(`${type}, ${sch} schedule: 12 random shapes equal the oracle and the CPU path (seed ${seed})`, () => {
        const r = rng(seed ^ (type.length * 31 + sch.length))
        for (let i = 0; i < 12; i++) {
          schedule(sch, seed + i)
          const c = randomCase(r, type)
          const keys = randomTensor(r, type, c.dims, { dupRows: 0.2, nanRows: 0.03, infRows: 0.01 })
          const values = randomTensor(r, type, [...c.dims.slice(0, 3), c.dv])
          const what = `case ${i} ${type} ${sch} dims ${c.dims} dv ${c.dv} ${JSON.stringify(c.o)}`
          const dk = toDevice(keys), dv = toDevice(values)
          check(compressSync(dk, dv, c.o), oracle.compress(keys, values, c.o), compressSync(keys, values, c.o), what)
          dk.dispose()
          dv.dispose()
        }
      })
    }
  }

  for (const sch of SCHEDULES) {
    it(`split rows (2, 3 and 5 blocks per row, ${sch} schedule) equal the single-block result (seed ${seed})`, () => {
      const r = rng(seed + 5)
      for (const split of [2, 3, 5]) {
        for (const type of DTYPES) {
          schedule(sch, seed + split)
          forceSplit(split)
          const dims = [1, 2, int(r, 500, 2500), pick(r, [8, 64, 128, 13])]
          const keys = randomTensor(r, type, dims, { dupRows: 0.3, nanRows: 0.02 })
          const values = randomTensor(r, type, dims)
          const o: CompressOptions = { keepRatio: pick(r, [0.1, 0.5, 0.77]), sink: int(r, 0, 3), recent: int(r, 0, 40), score: pick(r, ['low-norm', 'high-norm'] as const) }
          if (r() < 0.5) o.lengths = [int(r, 1, dims[2])]
          const dk = toDevice(keys), dv = toDevice(values)
          check(compressSync(dk, dv, o), oracle.compress(keys, values, o), compressSync(keys, values, o), `split ${split} ${type} ${dims} ${JSON.stringify(o)}`)
          dk.dispose()
          dv.dispose()
        }
      }
    })
  }

  it(`a small emulated device (4 SMs): more rows than resident blocks run in waves; few rows split (seed ${seed})`, () => {
    const r = rng(seed + 31)
    for (const sch of SCHEDULES) {
      schedule(sch, seed, 4)
      for (const dims of [[4, 8, 300, 16], [1, 2, 3000, 64]]) {
        const keys = randomTensor(r, 'float16', dims, { dupRows: 0.2, nanRows: 0.02 })
        const values = randomTensor(r, 'float16', dims)
        const o: CompressOptions = { keepRatio: 0.3, sink: 2, recent: 8 }
        const dk = toDevice(keys), dv = toDevice(values)
        check(compressSync(dk, dv, o), oracle.compress(keys, values, o), compressSync(keys, values, o), `4 SMs ${sch} ${dims}`)
        dk.dispose()
        dv.dispose()
      }
    }
  })

  it(`keyNorms on the device: every head_dim 1..40 and 64..256, all dtypes (seed ${seed})`, () => {
    const r = rng(seed + 9)
    for (const type of DTYPES) {
      for (const d of [...Array.from({ length: 40 }, (_, i) => i + 1), 64, 72, 96, 128, 129, 200, 256, 1024]) {
        const keys = randomTensor(r, type, [1, 2, int(r, 1, 50), d], { nanRows: 0.05, infRows: 0.02 })
        const dk = toDevice(keys)
        const n = keyNormsSync(dk)
        expect(n.dims).toEqual(keys.dims.slice(0, 3))
        expectSameBits(n.download().data, oracle.keyNorms(keys), `${type} d ${d}`)
        n.dispose()
        dk.dispose()
      }
    }
  })

  it(`NaN norms: the canonical bits 0x7fc00000 on the device, the CPU and the oracle, whatever the NaN payloads; NaN rows ranked last (seed ${seed})`, () => {
    const r = rng(seed + 17)
    let nans = 0
    for (const type of DTYPES) {
      for (const d of [1, 5, 8, 9, 16, 64, 100, 128, 129, 256, 1024]) {
        const dims = [int(r, 1, 2), int(r, 1, 3), int(r, 1, 40), d]
        const keys = nanPayloadTensor(r, type, dims)
        const dk = toDevice(keys)
        const n = keyNormsSync(dk)
        const gpu = n.download().data as Float32Array
        const { count, bad } = canonicalNaNs(gpu)
        expect(bad, `${type} dims ${dims}: non-canonical NaN norms on the device`).toEqual([])
        expectSameBits(gpu, keyNormsSync(keys), `${type} dims ${dims}: device vs CPU`)
        expectSameBits(gpu, oracle.keyNorms(keys), `${type} dims ${dims}: device vs oracle`)
        nans += count
        n.dispose()
        // the fused kernel's norm phase ranks the same rows last on both paths
        const values = randomTensor(r, type, [...dims.slice(0, 3), 8])
        const o: CompressOptions = { keepRatio: pick(r, [0.3, 0.8, 1]), order: pick(r, ['position', 'norm'] as const), score: pick(r, ['low-norm', 'high-norm'] as const) }
        const dv = toDevice(values)
        check(compressSync(dk, dv, o), oracle.compress(keys, values, o), compressSync(keys, values, o), `NaN payloads ${type} ${dims} ${JSON.stringify(o)}`)
        dk.dispose()
        dv.dispose()
      }
    }
    expect(nans, 'NaN norms compared').toBeGreaterThan(50)
  })

  it(`all rows equal: ties resolved to the earliest positions on every schedule (seed ${seed})`, () => {
    const r = rng(seed + 3)
    const keys = randomTensor(r, 'float16', [2, 2, 700, 16])
    for (let row = 1; row < 2 * 2 * 700; row++) keys.data.copyWithin(row * 16, 0, 16)
    const values = randomTensor(r, 'float16', [2, 2, 700, 16])
    for (const sch of SCHEDULES) {
      schedule(sch, seed)
      for (const order of ['position', 'norm'] as const) {
        const o = { keep: 123, order }
        const dk = toDevice(keys), dv = toDevice(values)
        check(compressSync(dk, dv, o), oracle.compress(keys, values, o), compressSync(keys, values, o), `ties ${sch} ${order}`)
      }
    }
  })

  it('the Promise form resolves with the same result', async () => {
    const r = rng(seed + 4)
    const keys = randomTensor(r, 'bfloat16', [2, 3, 333, 64], { dupRows: 0.1 })
    const values = randomTensor(r, 'bfloat16', [2, 3, 333, 64])
    const o: CompressOptions = { keepRatio: 0.3, order: 'norm', lengths: [333, 100] }
    check(await compress(toDevice(keys), toDevice(values), o), oracle.compress(keys, values, o), compressSync(keys, values, o), 'async')
  })
})

describeCuda('CUDA compressCache', () => {
  it(`device layers compress on the GPU to the oracle's result, with skipLayers and pruneAfter (seed ${seed})`, async () => {
    const r = rng(seed + 21)
    const lens = [300, 40, 257, 500]
    const host = lens.map((s) => ({ keys: randomTensor(r, 'bfloat16', [1, 2, s, 64], { dupRows: 0.1 }), values: randomTensor(r, 'bfloat16', [1, 2, s, 64]) }))
    const layers = host.map((l) => ({ keys: toDevice(l.keys), values: toDevice(l.values) }))
    const res = await compressCache(layers, { keepRatio: 0.25, pruneAfter: 100, skipLayers: [3], order: 'norm' })
    expect(res.report.map((x) => x.compressed)).toEqual([true, false, true, false])
    expect(res.layers[1]).toBe(layers[1])
    for (const l of [0, 2]) {
      const want = oracle.compress(host[l].keys, host[l].values, { keepRatio: 0.25, order: 'norm' })
      const got = res.layers[l]
      expectSameBits(got.indices as Int32Array, want.indices, `layer ${l} indices`)
      expectSameBits(got.keys.download().data, want.keys.data, `layer ${l} keys`)
      expectSameBits(got.values.download().data, want.values.data, `layer ${l} values`)
    }
  })

  it(`many layers in one launch: heads, lengths, ratios and dtypes differ per layer; a bad layer is named (seed ${seed})`, () => {
    const r = rng(seed + 23)
    for (const sch of SCHEDULES) {
      schedule(sch, seed)
      const specs = [
        { type: 'float16', dims: [2, 4, 333, 64] }, { type: 'float16', dims: [2, 2, 1000, 128] },
        { type: 'float16', dims: [2, 8, 50, 8] }, { type: 'float16', dims: [2, 1, 777, 72] },
      ] as const
      const host = specs.map((sp) => ({ keys: randomTensor(r, sp.type, [...sp.dims], { dupRows: 0.2, nanRows: 0.02 }), values: randomTensor(r, sp.type, [...sp.dims]) }))
      const layers = host.map((l) => ({ keys: toDevice(l.keys), values: toDevice(l.values) }))
      const ratios = [0.9, 0.5, 0.3, 0.1]
      const res = compressCacheSync(layers, { budgets: ratios, sink: 1, recent: 4, lengths: [40, 20] })
      ratios.forEach((keepRatio, l) => {
        const o = { keepRatio, sink: 1, recent: 4, lengths: [40, 20] }
        const want = oracle.compress(host[l].keys, host[l].values, o)
        expectSameBits(res.layers[l].indices as Int32Array, want.indices, `${sch} layer ${l} indices`)
        expectSameBits(res.layers[l].keys.download().data, want.keys.data, `${sch} layer ${l} keys`)
        expectSameBits(res.layers[l].values.download().data, want.values.data, `${sch} layer ${l} values`)
      })
      // mixed dtypes cannot share a launch: the same call falls back to one launch per layer
      const mixed = [layers[0], { keys: toDevice(randomTensor(r, 'bfloat16', [1, 2, 90, 16])), values: toDevice(randomTensor(r, 'bfloat16', [1, 2, 90, 16])) }]
      expect(compressCacheSync(mixed, { keepRatio: 0.5 }).report.map((x) => x.after)).toEqual([167, 45])
      let err: unknown
      try { compressCacheSync([layers[0], { keys: layers[1].keys, values: layers[0].values }], { keepRatio: 0.5 }) } catch (e) { err = e }
      expect((err as Error).message).toMatch(/^layers\[1\]: Expected keys and values to agree/)
    }
  })
})
