// Device tensors: placement, download, dispose and its errors, wrapping foreign pointers,
// and errors that name the problem (mixed host/device, disposed tensors, bad pointers).
import { expect, it } from 'vitest'
import { backend, compress, compressSync, DeviceTensor, fromDevicePointer, KvtrimError, keyNormsSync, tensor } from '../../lib/index'
import * as oracle from '../oracle'
import { expectSameBits } from '../expect'
import { randomTensor, rng, runSeed } from '../random'
import { devHooks, rawBinding } from '../../lib/dev'
import { describeCuda, emulated, toDevice } from './gpu'

const seed = runSeed()

function code(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(KvtrimError)
    return (e as KvtrimError).code
  }
  return undefined
}

describeCuda('device tensors', () => {
  it("backend() reports the device; tensor(..., { device: 'auto' }) puts data on it", () => {
    const b = backend()
    expect(b.default).toBe('cuda')
    expect(b.cuda.used).toBe(true)
    expect(b.cuda.devices.length).toBeGreaterThan(0)
    expect(b.cuda.emulated).toBe(emulated)
    const t = tensor(new Float32Array(24), [1, 2, 3, 4])
    expect(t).toBeInstanceOf(DeviceTensor)
    expect((t as DeviceTensor).byteLength).toBe(96)
    const h = tensor(new Float32Array(24), [1, 2, 3, 4], { device: 'cpu' })
    expect(h).not.toBeInstanceOf(DeviceTensor)
  })

  it('round-trips data exactly and disposes once', () => {
    const r = rng(seed)
    const t = randomTensor(r, 'bfloat16', [2, 2, 17, 24])
    const d = toDevice(t)
    expectSameBits(d.download().data, t.data, 'round trip')
    d.dispose()
    expect(d.disposed).toBe(true)
    d.dispose()
    expect(code(() => d.download())).toBe('DISPOSED')
    expect(code(() => keyNormsSync(d))).toBe('DISPOSED')
  })

  it('Symbol.dispose frees the tensor (using declarations)', () => {
    const d = toDevice(randomTensor(rng(seed), 'float16', [1, 1, 4, 8]))
    const dispose = (d as unknown as Record<symbol, () => void>)[(Symbol as { dispose?: symbol }).dispose ?? Symbol.for('nodejs.dispose')]
    dispose.call(d)
    expect(d.disposed).toBe(true)
  })

  it('wraps a foreign device pointer without copying or freeing it', () => {
    const r = rng(seed + 1)
    const t = randomTensor(r, 'float16', [1, 2, 50, 32])
    const owner = toDevice(t)
    const view = fromDevicePointer(owner.ptr, t.dims, { type: 'float16' })
    expect(view.owned).toBe(false)
    expectSameBits(keyNormsSync(view).download().data, oracle.keyNorms(t), 'norms through a wrapped pointer')
    view.dispose()
    expectSameBits(owner.download().data, t.data, 'the owner is untouched after the view is disposed')
    owner.dispose()
    expect(code(() => fromDevicePointer(0n, [1], { type: 'float16' }))).toBe('INVALID_ARGUMENT')
  })

  it('keys on the GPU and values on the host is an error that says what to do', () => {
    const r = rng(seed + 2)
    const t = randomTensor(r, 'float16', [1, 1, 10, 8])
    let err: unknown
    try { compressSync(toDevice(t) as never, t as never, { keepRatio: 0.5 }) } catch (e) { err = e }
    expect((err as KvtrimError).code).toBe('DEVICE_MISMATCH')
    expect((err as KvtrimError).message).toMatch(/download/)
  })

  it('bad shapes on device tensors get the same codes as on the host', () => {
    const r = rng(seed + 3)
    const t = randomTensor(r, 'float16', [1, 2, 10, 8])
    const d = toDevice(t)
    const wrong = new DeviceTensor('float16', [1, 2, 11, 8], d.buffer)
    expect(code(() => compressSync(wrong, wrong, { keepRatio: 0.5 }))).toBe('DATA_LENGTH')
    expect(code(() => compressSync(d, d, { keepRatio: 1.5 }))).toBe('INVALID_KEEP_RATIO')
    const v = toDevice(randomTensor(r, 'float16', [1, 2, 9, 8]))
    expect(code(() => compressSync(d, v, { keepRatio: 0.5 }))).toBe('DIMS_MISMATCH')
  })

  it('the raw DeviceBuffer counts a host array by its bytes, whatever its element type', () => {
    const b = new (rawBinding().DeviceBuffer)(0, 16)
    try {
      const src = Uint8Array.from({ length: 16 }, (_, i) => i + 1)
      b.upload(src)
      // 8 bytes into a 16-byte buffer (2 bytes per element was assumed once: an overflow)
      expect(() => b.download(new Uint8Array(8))).toThrow(expect.objectContaining({ code: 'DATA_LENGTH' }))
      expect(() => b.upload(new Float64Array(8))).toThrow(expect.objectContaining({ code: 'DATA_LENGTH' }))
      const back = new Float64Array(2)
      b.download(back)
      expect(new Uint8Array(back.buffer)).toEqual(src)
    } finally {
      b.free()
    }
  })

  it('an allocation the device cannot hold is OUT_OF_MEMORY, not a crash', () => {
    expect(code(() => tensor(null, [1024, 1024, 1024, 1024], { type: 'float32', device: 'cuda' }))).toBe('OUT_OF_MEMORY')
  })
})

describeCuda('CUDA errors', () => {
  it.runIf(emulated)('a failing launch becomes a KvtrimError CUDA_ERROR carrying the emulator diagnosis', async () => {
    const { forceSplit } = await import('./gpu')
    const r = rng(seed + 7)
    const t = randomTensor(r, 'float16', [1, 1, 4000, 64])
    const k = toDevice(t), v = toDevice(t)
    // With a spin-wait limit of 1, the split path's row barrier is reported as a livelock.
    devHooks().emulator({ schedule: 'deterministic', seed: 1, spinLimit: 1 })
    forceSplit(4)
    let err: unknown
    try {
      compressSync(k, v, { keepRatio: 0.5 })
    } catch (e) {
      err = e
    } finally {
      forceSplit(undefined)
      devHooks().emulator({ schedule: 'deterministic', seed: 0 })
    }
    expect(err).toBeInstanceOf(KvtrimError)
    expect((err as KvtrimError).code).toBe('CUDA_ERROR')
    expect((err as KvtrimError).message).toMatch(/livelock/)
    // and the device is usable again afterwards
    expect(compressSync(k, v, { keepRatio: 0.5 }).kept).toBe(2000)
  })
})

describeCuda('CUDA streams', () => {
  it("work goes on the caller's stream (options.stream); a stream with host tensors is an error", async () => {
    const r = rng(seed + 11)
    const t = randomTensor(r, 'float16', [1, 2, 300, 64], { dupRows: 0.1 })
    const v = randomTensor(r, 'float16', [1, 2, 300, 64])
    const stream = devHooks().streamCreate(0)
    try {
      const dk = toDevice(t), dv = toDevice(v)
      const want = oracle.compress(t, v, { keepRatio: 0.4 })
      const res = await compress(dk, dv, { keepRatio: 0.4, stream })
      expectSameBits(res.indices, want.indices, 'indices on a stream')
      expectSameBits(res.keys.download().data, want.keys.data, 'keys on a stream')
      expectSameBits(keyNormsSync(dk, { stream }).download().data, oracle.keyNorms(t), 'norms on a stream')
      expect(code(() => compressSync(t, v, { keepRatio: 0.4, stream }))).toBe('INVALID_OPTION')
      expect(code(() => compressSync(dk, dv, { keepRatio: 0.4, stream: 5 as never }))).toBe('INVALID_OPTION')
    } finally {
      devHooks().streamDestroy(0, stream)
    }
  })
})
