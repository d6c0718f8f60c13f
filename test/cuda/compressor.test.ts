// The decode-time Compressor on device tensors: the same steps as on the host, dynamic (new
// device tensors) and static (in place in the caller's device buffers).
import { expect, it } from 'vitest'
import { Compressor, type DeviceTensor } from '../../lib/index'
import { expectSameBits } from '../expect'
import { randomTensor, rng, runSeed } from '../random'
import { describeCuda, toDevice } from './gpu'

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
