import { describe, expect, it } from 'vitest'
import { backend } from '../lib/index'

describe('backend()', () => {
  it('reports the CPU path and says why CUDA is not used', () => {
    const b = backend()
    expect(b.default).toBe('cpu')
    expect(b.cpu.available).toBe(true)
    expect(b.cpu.threads).toBeGreaterThan(0)
    expect(['avx2+f16c', 'portable']).toContain(b.cpu.isa)
    expect(typeof b.cuda.compiled).toBe('boolean')
    expect(b.cuda.used).toBe(false)
    expect(b.cuda.reason.length).toBeGreaterThan(10)
    if (b.cuda.compiled) {
      expect(b.cuda.runtimeVersion).toBeGreaterThanOrEqual(13000)
      expect(b.cuda.architectures).toMatch(/90/)
    }
    if (!b.cuda.usable && b.cuda.compiled && b.cuda.driverVersion === 0) {
      expect(b.cuda.reason).toMatch(/no NVIDIA driver/)
    }
  })
})
