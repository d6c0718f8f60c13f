// Where the CUDA suites run: a real GPU, or the emulator (KVTRIM_EMULATE_CUDA=1 with the
// addon from `npm run build:emu`). They skip elsewhere, and KVTRIM_REQUIRE_CUDA=1 (set by
// `npm run test:emu` and on the GPU machine) turns that skip into a failure.
import { afterEach, describe } from 'vitest'
import { backend, tensor, type DeviceTensor } from '../../lib/index'
import { devHooks } from '../../lib/dev'
import type { OracleTensor } from '../oracle'

const info = backend()
export const cudaUsable = info.cuda.usable
export const emulated = info.cuda.emulated

if (!cudaUsable && process.env.KVTRIM_REQUIRE_CUDA === '1') {
  throw new Error(`KVTRIM_REQUIRE_CUDA=1 but CUDA is not usable: ${info.cuda.reason}`)
}

export const describeCuda = cudaUsable ? describe : describe.skip

export function toDevice(t: OracleTensor): DeviceTensor {
  return tensor(t.data, t.dims, { type: t.type, device: 'cuda' }) as DeviceTensor
}

/** fn with device copies of keys and values, disposed when it returns or throws (fn is synchronous). */
export function withDevice<T>(keys: OracleTensor, values: OracleTensor, fn: (dk: DeviceTensor, dv: DeviceTensor) => T): T {
  const dk = toDevice(keys), dv = toDevice(values)
  try {
    return fn(dk, dv)
  } finally {
    dk.dispose()
    dv.dispose()
  }
}

export type Schedule = 'deterministic' | 'random' | 'priority'

/** Under the emulator: the schedule, seed and SM count of the next launches; no-op on a GPU. */
export function schedule(s: Schedule, seed: number, sms = 0): void {
  if (emulated) devHooks().emulator({ schedule: s, seed, sms })
}

/** Forces the split-row path (blocks per row) for the next launches; undefined restores. */
export function forceSplit(n: number | undefined): void {
  if (n === undefined) delete process.env.KVTRIM_SPLIT
  else process.env.KVTRIM_SPLIT = String(n)
}

export const SCHEDULES: Schedule[] = emulated ? ['deterministic', 'random', 'priority'] : ['deterministic']

/** After each test of the suite: no forced split, the emulator's deterministic schedule. */
export function resetLaunchesAfterEach(): void {
  afterEach(() => {
    forceSplit(undefined)
    schedule('deterministic', 0)
  })
}
