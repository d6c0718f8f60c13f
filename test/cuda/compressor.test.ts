// The decode-time Compressor on device tensors: the same steps as on the host, dynamic (new
// device tensors) and static (in place in the caller's device buffers).
import { expect, it } from 'vitest'
import { Compressor, type DeviceTensor } from '../../lib/index'
import { expectSameBits } from '../expect'
import { randomTensor, rng, runSeed } from '../random'
import { describeCuda, toDevice } from './gpu'
import { appendRows } from '../decode'

const seed = runSeed()

describeCuda('CUDA Compressor', () => {
  it(`a dynamic and a static step on device layers equal the same steps on host layers (seed ${seed})`, async () => {
    const r = rng(seed)
    const host = [0, 1].map(() => ({ keys: randomTensor(r, 'float16', [1, 2, 50, 16], { dupRows: 0.2 }), values: randomTensor(r, 'float16', [1, 2, 50, 16]) }))
    const copy = () => host.map((l) => ({ keys: { ...l.keys, data: l.keys.data.slice() }, values: { ...l.values, data: l.values.data.slice() } }))

    const hostDyn = new Compressor({ target: 20, interval: 8, sink: 2, recent: 4 }).stepSync(copy())
    const devDyn = await new Compressor({ target: 20, interval: 8, sink: 2, recent: 4 }).step(host.map((l) => ({ keys: toDevice(l.keys), values: toDevice(l.values) })))
    expect(devDyn.lengths).toEqual(hostDyn.lengths)
    devDyn.layers.forEach((s, l) => {
      expectSameBits(s.indices as Int32Array, hostDyn.layers[l].indices as Int32Array, `dynamic layer ${l} indices`)
      const k = (devDyn.cache[l].keys as unknown as DeviceTensor).download()
      expectSameBits(k.data, hostDyn.cache[l].keys.data as Uint16Array, `dynamic layer ${l} keys`)
    })

    const hostCache = copy()
    const hostStatic = new Compressor({ target: 20, interval: 8, mode: 'static' }).stepSync(hostCache, { lengths: 40 })
    const devCache = host.map((l) => ({ keys: toDevice(l.keys), values: toDevice(l.values) }))
    const devStatic = new Compressor({ target: 20, interval: 8, mode: 'static' }).stepSync(devCache, { lengths: 40 })
    expect(devStatic.cache).toBe(devCache)
    expect(devStatic.lengths).toEqual(hostStatic.lengths)
    devCache.forEach((l, i) => {
      const n = hostStatic.lengths[i] * 16
      for (const [h, part] of [[0, 'keys'], [1, 'keys'], [0, 'values'], [1, 'values']] as const) {
        const got = l[part].download().data.subarray(h * 50 * 16, h * 50 * 16 + n)
        const want = hostCache[i][part].data.subarray(h * 50 * 16, h * 50 * 16 + n)
        expectSameBits(got, want, `static layer ${i} head ${h} ${part}`)
      }
    })
  })
})

// Issue 16: a host Compressor remembers its kept tokens' scores and scores only appended ones; a
// device Compressor rescores on the GPU. Over a 1,000-step decode loop with every reusable
// scorer the two give the same caches and indices, bit for bit, at every step.
type HostT = { type: 'float16'; data: Uint16Array; dims: number[] }
const appendRow = (t: HostT, row: HostT): HostT => appendRows(t, row)

describeCuda('CUDA Compressor, 1,000 decode steps', () => {
  for (const score of ['low-norm', 'kv-norm', 'project'] as const) {
    it(`${score}: device steps (rescoring) equal host steps (score memory), bit for bit (seed ${seed})`, () => {
      const r = rng(seed ^ score.length)
      const L = 2, H = 2, D = 16
      const opts = { target: 12, interval: 5, sink: 1, recent: 2, score: score === 'project' ? { project: [0, 1].map(() => Float32Array.from({ length: H * D }, () => r() * 2 - 1)) } : score }
      const hostC = new Compressor(opts), devC = new Compressor(opts)
      let host = Array.from({ length: L }, () => ({ keys: randomTensor(r, 'float16', [1, H, 20, D], { dupRows: 0.2 }) as HostT, values: randomTensor(r, 'float16', [1, H, 20, D]) as HostT }))
      let compressions = 0
      for (let step = 0; step < 1000; step++) {
        const dev = host.map((l) => ({ keys: toDevice(l.keys), values: toDevice(l.values) }))
        const a = hostC.stepSync(host), b = devC.stepSync(dev)
        expect(b.lengths).toEqual(a.lengths)
        const next = a.cache as typeof host
        b.layers.forEach((s, l) => {
          expect(s.compressed).toBe(a.layers[l].compressed)
          if (!s.compressed) return
          compressions++
          expectSameBits(s.indices as Int32Array, a.layers[l].indices as Int32Array, `step ${step} layer ${l} indices`)
          const got = b.cache[l] as unknown as { keys: DeviceTensor; values: DeviceTensor }
          expectSameBits(got.keys.download().data, next[l].keys.data, `step ${step} layer ${l} keys`)
          expectSameBits(got.values.download().data, next[l].values.data, `step ${step} layer ${l} values`)
          got.keys.dispose()
          got.values.dispose()
        })
        for (const l of dev) {
          l.keys.dispose()
          l.values.dispose()
        }
        host = next.map((l) => ({ keys: appendRow(l.keys, randomTensor(r, 'float16', [1, H, 1, D]) as HostT), values: appendRow(l.values, randomTensor(r, 'float16', [1, H, 1, D]) as HostT) }))
      }
      expect(compressions).toBeGreaterThan(2 * 1000 / 7)
    })
  }
})
