// layerUncertainty on device tensors against the CPU path (itself checked against an oracle in
// test/uncertainty.test.ts): counts from attention weights are identical; from a query window
// they are identical under the emulator (the same exp) and within one token on a GPU, where
// CUDA's exp may differ from glibc's by an ulp.
import { expect, it } from 'vitest'
import { KvtrimError, layerUncertainty, layerUncertaintySync } from '../../lib/index'
import { int, pick, randomTensor, rng, runSeed } from '../random'
import type { OracleTensor } from '../oracle'
import { describeCuda, emulated, schedule, SCHEDULES, toDevice } from './gpu'

const seed = runSeed()

// Random non-negative attention weights: a few large, many small, some exact ties and zeros.
function attention(r: () => number, dims: number[]): OracleTensor {
  const n = dims.reduce((a, b) => a * b, 1)
  const data = new Float32Array(n)
  for (let i = 0; i < n; i++) {
    const u = r()
    data[i] = u < 0.05 ? 0 : u < 0.1 ? 0.25 : Math.fround(Math.exp(8 * r() - 6))
  }
  return { type: 'float32', data, dims }
}

describeCuda('CUDA layerUncertainty', () => {
  for (const sch of SCHEDULES) {
    it(`attention weights: counts identical to the CPU path, ${sch} schedule (seed ${seed})`, async () => {
      schedule(sch, seed)
      const r = rng(seed ^ sch.length)
      for (let i = 0; i < 4; i++) {
        const a = attention(r, [int(r, 1, 2), int(r, 1, 4), int(r, 1, 6), int(r, 1, 700)])
        const threshold = pick(r, [0.5, 0.9, 0.99, 1])
        const host = layerUncertaintySync([{ attention: a }], { threshold })
        const dev = i % 2 ? await layerUncertainty([{ attention: toDevice(a) }], { threshold }) : layerUncertaintySync([{ attention: toDevice(a) }], { threshold })
        expect(Array.from(dev.counts[0]), `${a.dims} threshold ${threshold}`).toEqual(Array.from(host.counts[0]))
        expect(dev.scores[0]).toBe(host.scores[0])
      }
    })
  }

  it(`a query window against the keys (GQA, causal and not): counts as the CPU path's (seed ${seed})`, () => {
    const r = rng(seed + 1)
    for (const type of ['float16', 'bfloat16', 'float32'] as const) {
      for (const causal of [true, false]) {
        const S = int(r, 20, 400), W = int(r, 1, Math.min(8, S)), D = pick(r, [8, 16, 64])
        const queries = randomTensor(r, type, [1, 4, W, D])
        const keys = randomTensor(r, type, [1, 2, S, D])
        const host = layerUncertaintySync([{ queries, keys }], { causal, threshold: 0.9 })
        const dev = layerUncertaintySync([{ queries: toDevice(queries), keys: toDevice(keys) }], { causal, threshold: 0.9 })
        const h = Array.from(host.counts[0]), d = Array.from(dev.counts[0])
        if (emulated) expect(d, `${type} causal ${causal}`).toEqual(h)
        else d.forEach((c, i) => expect(Math.abs(c - h[i]), `${type} causal ${causal} row ${i}`).toBeLessThanOrEqual(1))
      }
    }
  })

  it('negative or non-finite weights, and queries on the GPU with keys on the host, are errors', () => {
    const a = attention(rng(seed + 2), [1, 2, 3, 40])
    a.data[2 * 40 + 7] = -1
    let err: unknown
    try { layerUncertaintySync([{ attention: toDevice(a) }]) } catch (e) { err = e }
    expect((err as KvtrimError).code).toBe('INVALID_ARGUMENT')
    expect((err as KvtrimError).message).toMatch(/attention\[0, 0, 2, 7\]/)
    const q = randomTensor(rng(seed), 'float16', [1, 2, 2, 8]), k = randomTensor(rng(seed), 'float16', [1, 2, 10, 8])
    err = undefined
    try { layerUncertaintySync([{ queries: toDevice(q), keys: k }]) } catch (e) { err = e }
    expect((err as KvtrimError).code).toBe('DEVICE_MISMATCH')
  })
})
