// keyNorms against the oracle, bit for bit, on fresh random data of many shapes and all dtypes.
import { execFileSync } from 'node:child_process'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { keyNorms, keyNormsSync } from '../lib/index'
import * as oracle from './oracle'
import { int, randomTensor, rng, runSeed } from './random'
import { expectSameBits } from './expect'
import { canonicalNaNs, nanPayloadTensor } from './nan'

const DTYPES = ['float16', 'bfloat16', 'float32'] as const
const HEAD_DIMS = [...Array.from({ length: 40 }, (_, i) => i + 1), 63, 64, 65, 72, 80, 96, 100, 127, 128, 129, 192, 200, 255, 256, 1024]

describe('keyNorms', () => {
  const seed = runSeed()
  for (const type of DTYPES) {
    it(`${type}: every head_dim 1..40 and up to 1024 match the oracle bit for bit (seed ${seed})`, () => {
      const r = rng(seed)
      for (const d of HEAD_DIMS) {
        const dims = [int(r, 1, 2), int(r, 1, 3), int(r, 1, 40), d]
        const keys = randomTensor(r, type, dims, { nanRows: 0.05, infRows: 0.02 })
        expectSameBits(keyNormsSync(keys), oracle.keyNorms(keys), `${type} dims ${dims}`)
      }
    })
  }

  it(`async form equals the sync form and leaves the input untouched (seed ${seed})`, async () => {
    const r = rng(seed + 1)
    const keys = randomTensor(r, 'float16', [2, 4, 300, 128])
    const before = keys.data.slice()
    const norms = await keyNorms(keys)
    expectSameBits(norms, oracle.keyNorms(keys), 'async')
    expect(Buffer.from(keys.data.buffer).equals(Buffer.from(before.buffer))).toBe(true)
  })

  it('accepts a typed array that is a view at an offset into a larger buffer', () => {
    const r = rng(runSeed())
    const t = randomTensor(r, 'bfloat16', [1, 2, 33, 24])
    const big = new Uint16Array(t.data.length + 7)
    big.set(t.data, 5)
    const view = { type: 'bfloat16', data: big.subarray(5, 5 + t.data.length), dims: t.dims }
    expectSameBits(keyNormsSync(view), oracle.keyNorms(t), 'offset view')
  })

  it('returns an empty array for an empty cache (seqLen 0)', () => {
    const n = keyNormsSync({ type: 'float16', data: new Uint16Array(0), dims: [1, 8, 0, 64] })
    expect(n.length).toBe(0)
  })

  it(`the portable path (KVTRIM_ISA=portable) gives the same bits as the SIMD path (seed ${seed})`, () => {
    // Child process: the ISA is chosen once per process, at first use.
    const script = path.join(__dirname, 'fixtures', 'norms-child.ts')
    const out = execFileSync(process.execPath, ['--import', 'tsx', script, String(seed)], {
      env: { ...process.env, KVTRIM_ISA: 'portable' },
      encoding: 'utf8',
    })
    const child = JSON.parse(out) as { isa: string; cases: Array<{ type: oracle.DType; dims: number[]; nan: boolean; bits: number[] }> }
    expect(child.isa).toBe('portable')
    const r = rng(seed)
    let nans = 0
    for (const c of child.cases) {
      const keys = c.nan ? nanPayloadTensor(r, c.type, c.dims) : randomTensor(r, c.type, c.dims, { nanRows: 0.05 })
      const portable = new Float32Array(Uint32Array.from(c.bits).buffer)
      expectSameBits(portable, keyNormsSync(keys), `${c.type} ${c.dims}${c.nan ? ' (NaN payloads)' : ''}`)
      expectSameBits(portable, oracle.keyNorms(keys), `${c.type} ${c.dims} portable vs oracle`)
      const { count, bad } = canonicalNaNs(portable)
      expect(bad, `${c.type} ${c.dims}: non-canonical NaN norms`).toEqual([])
      nans += count
    }
    expect(nans, 'NaN norms compared').toBeGreaterThan(50)
  })

  it(`every NaN norm has the canonical bits 0x7fc00000, whatever the inputs' NaN payloads (seed ${seed})`, () => {
    const r = rng(seed + 2)
    let nans = 0
    for (const type of DTYPES) {
      // rows % 8 != 0: both the 8-row SIMD blocks and the scalar tail of a block see NaN rows
      for (const d of [1, 3, 8, 9, 16, 17, 64, 100, 128, 129, 256, 1024]) {
        const dims = [int(r, 1, 2), int(r, 1, 3), int(r, 1, 40), d]
        const keys = nanPayloadTensor(r, type, dims)
        const norms = keyNormsSync(keys)
        const { count, bad } = canonicalNaNs(norms)
        expect(bad, `${type} dims ${dims}: non-canonical NaN norms`).toEqual([])
        expectSameBits(norms, oracle.keyNorms(keys), `${type} dims ${dims}`)
        nans += count
      }
    }
    expect(nans, 'NaN norms seen').toBeGreaterThan(50)
  })

  it('a NaN and an Inf in one row, in either order, give the canonical NaN (not Inf, not a payload)', () => {
    // x86 propagates the first NaN operand's payload; the sign of -NaN would survive a plain sqrt
    const f16 = new Uint16Array(2 * 16 * 9)
    for (let row = 0; row < 32; row++) {
      f16[row * 9 + (row % 9)] = row % 2 ? 0xfe01 : 0x7c00 | (row + 1)
      f16[row * 9 + ((row + 4) % 9)] = row % 3 ? 0xfc00 : 0x7c00
    }
    const norms = keyNormsSync({ type: 'float16', data: f16, dims: [1, 2, 16, 9] })
    expect(Array.from(new Uint32Array(norms.buffer))).toEqual(new Array(32).fill(0x7fc00000))
  })
})
