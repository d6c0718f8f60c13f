// compressInPlace on the GPU: kept rows move to the front of the caller's device buffers.
// Rows move toward lower slots, so a row could be overwritten before it is read; the kernel
// loads every source of a copy round before any store (see kernels/compress.cuh). The priority
// schedule, where some warps run far ahead of others, is the one that would expose a missing
// barrier there, so every schedule runs with several seeds.
import { afterEach, expect, it } from 'vitest'
import { compressInPlace, compressInPlaceSync, type CompressOptions } from '../../lib/index'
import * as oracle from '../oracle'
import { expectSameBits } from '../expect'
import { int, pick, randomTensor, rng, runSeed } from '../random'
import { describeCuda, schedule, SCHEDULES, toDevice } from './gpu'

const seed = runSeed()

describeCuda('CUDA compressInPlace', () => {
  afterEach(() => schedule('deterministic', 0))

  for (const sch of SCHEDULES) {
    it(`${sch} schedule, 4 seeds: the front rows equal the oracle's kept rows (seed ${seed})`, async () => {
      const r = rng(seed ^ sch.length)
      for (let s = 0; s < 4; s++) {
        for (const type of ['float16', 'bfloat16', 'float32'] as const) {
          schedule(sch, seed + s)
          const dims = [int(r, 1, 2), int(r, 1, 3), int(r, 1, 1500), pick(r, [1, 8, 13, 64, 128])]
          const keys = randomTensor(r, type, dims, { dupRows: 0.2, nanRows: 0.02 })
          const values = randomTensor(r, type, dims)
          const o: CompressOptions = { keepRatio: pick(r, [0.1, 0.5, 0.9]), score: pick(r, ['low-norm', 'high-norm'] as const) }
          if (r() < 0.4) o.lengths = Array.from({ length: dims[0] }, () => int(r, 0, dims[2]))
          if (r() < 0.3) { o.sink = int(r, 0, 4); o.recent = int(r, 0, 16) }
          const want = oracle.compress(keys, values, o)
          const dk = toDevice(keys), dv = toDevice(values)
          const res = s % 2 ? await compressInPlace(dk, dv, o) : compressInPlaceSync(dk, dv, o)
          const what = `${sch} seed ${seed + s} ${type} ${dims} ${JSON.stringify(o)}`
          expectSameBits(res.indices, want.indices, `${what}: indices`)
          expect(res.kept).toBe(want.kept)
          const hk = dk.download(), hv = dv.download()
          const [B, H, S, D] = dims
          for (let b = 0; b < B; b++) {
            const k = want.lengths[b]
            for (let h = 0; h < H; h++) {
              const row = b * H + h
              expectSameBits(hk.data.subarray(row * S * D, (row * S + k) * D), want.keys.data.subarray(row * want.kept * D, (row * want.kept + k) * D), `${what} keys b${b}h${h}`)
              expectSameBits(hv.data.subarray(row * S * D, (row * S + k) * D), want.values.data.subarray(row * want.kept * D, (row * want.kept + k) * D), `${what} values b${b}h${h}`)
            }
          }
          dk.dispose()
          dv.dispose()
        }
      }
    })
  }
})
