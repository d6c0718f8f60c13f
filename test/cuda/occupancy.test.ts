// The emulator's occupancy is the card's: for every kernel, the resident blocks per SM it
// computes from nvcc's sm_90 registers and shared memory (native/cuda/emu/ptxas_sm90.inc, made
// by `node scripts/ptxas-report.js --emu-table`, checked against nvcc by
// scripts/test-emu-tsan.sh where nvcc exists) equal the ptxas-derived figure. So split factors,
// waves and cooperative co-residency under test are the ones a card would have.
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { keyNormsSync } from '../../lib/index'
import { devHooks, rawBinding } from '../../lib/dev'
import { randomTensor, rng } from '../random'
import { describeCuda, emulated, schedule, toDevice } from './gpu'

const report = join(mkdtempSync(join(tmpdir(), 'kvtrim-occupancy-')), 'occupancy.jsonl')
const table = readFileSync(join(__dirname, '../../native/cuda/emu/ptxas_sm90.inc'), 'utf8')
  .split('\n').filter((l) => l.startsWith('{"'))

describeCuda('emulated occupancy', () => {
  it.runIf(emulated)('every kernel: blocks per SM from the sm_90 registers equal the ptxas-derived figure', () => {
    process.env.KVTRIM_EMU_OCCUPANCY_REPORT = report  // written at the next launch
    try {
      keyNormsSync(toDevice(randomTensor(rng(1), 'float16', [1, 1, 4, 8])))
    } finally {
      delete process.env.KVTRIM_EMU_OCCUPANCY_REPORT
    }
    const rows = readFileSync(report, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kernel: string, found: boolean, regs: number, emulated: number, ptxas: number })
    expect(rows.length).toBe(table.length)
    expect(rows.length).toBeGreaterThanOrEqual(16)
    for (const r of rows) {
      expect(r.found, `${r.kernel} is in the emulated addon`).toBe(true)
      expect(r.regs, `${r.kernel} registers known`).toBeGreaterThan(0)
      expect(r.emulated, `${r.kernel} blocks per SM`).toBe(r.ptxas)
    }
  })

  it.runIf(emulated)("compress's launch geometry: 2 blocks of 512 per SM (64 registers), not the 4 that threads alone allow", () => {
    schedule('deterministic', 0, 132)
    const emu = rawBinding()
    const dims = [1, 8, 4096, 128]
    const n = dims.reduce((a, c) => a * c, 1) * 2
    const t = { type: 'float16' as const, buffer: new emu.DeviceBuffer(0, n, 1n << 20n), dims }
    const g = devHooks().geometry(t, t, { keepRatio: 0.5, order: 'position', score: 'low-norm', sink: 0, recent: 0 })
    expect(g.multiprocessors).toBe(132)
    expect(g.residentBlocks).toBe(132 * 2)
    expect(g.blocksPerRow).toBe(Math.min(Math.floor(264 / 8), Math.ceil(4096 / 512)))
    schedule('deterministic', 0)
  })
})
