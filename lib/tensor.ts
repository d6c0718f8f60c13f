// Tensors on the GPU, and tensor(): one call that puts data where it should run.
import type { NativeDeviceBuffer, NativeDeviceTensor } from '../binding'
import { binding } from './binding'
import { KvtrimError } from './errors'
import type { DType, HostTensor } from './types'
import { describe, invalid } from './validate'

const DISPOSE: symbol = (Symbol as { dispose?: symbol }).dispose ?? Symbol.for('nodejs.dispose')

/**
 * A tensor in GPU memory, [batch, kvHeads, seqLen, headDim] like host tensors. Either owned by
 * kvtrim (freed by dispose(), `using`, or as a safety net when garbage-collected) or wrapping a
 * device pointer that another library owns ({@link fromDevicePointer}; never freed by kvtrim).
 * Operations on device tensors run on that GPU and return device tensors.
 */
export class DeviceTensor {
  /** @internal */
  readonly buffer: NativeDeviceBuffer

  /** @internal use {@link tensor} or {@link fromDevicePointer} */
  constructor(
    readonly type: DType,
    readonly dims: readonly number[],
    buffer: NativeDeviceBuffer,
  ) {
    this.buffer = buffer
  }

  /** The device ordinal (cuda:N). */
  get device(): number {
    return this.buffer.device
  }

  /** The device address, for handing to another native library. */
  get ptr(): bigint {
    return this.buffer.ptr
  }

  get byteLength(): number {
    return this.buffer.bytes
  }

  get disposed(): boolean {
    return this.buffer.freed
  }

  /** Whether kvtrim frees this memory (false for wrapped pointers). */
  get owned(): boolean {
    return this.buffer.owned
  }

  /** Copies the tensor to the host: `{ type, data, dims }`, as host operations return. */
  download(): HostTensor {
    this.check('download')
    const n = this.buffer.bytes / (this.type === 'float32' ? 4 : 2)
    const data = this.type === 'float32' ? new Float32Array(n) : new Uint16Array(n)
    this.buffer.download(data)
    return { type: this.type, data, dims: [...this.dims] }
  }

  /** {@link download} as a Promise, for symmetry with the operations. */
  toHost(): Promise<HostTensor> {
    try {
      return Promise.resolve(this.download())
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** Frees owned GPU memory now (a no-op for wrapped pointers and after the first call). */
  dispose(): void {
    this.buffer.free()
  }

  [DISPOSE](): void {
    this.dispose()
  }

  /** @internal */
  native(name: string): NativeDeviceTensor {
    if (this.disposed) {
      throw new KvtrimError(`Expected ${name} to be a live device tensor but it was disposed`, 'DISPOSED')
    }
    return { type: this.type, buffer: this.buffer, dims: this.dims }
  }

  private check(what: string): void {
    if (this.disposed) throw new KvtrimError(`Cannot ${what} a disposed device tensor`, 'DISPOSED')
  }
}

export type Device = 'auto' | 'cpu' | 'cuda' | number

export interface TensorOptions {
  /** Element type; default 'float32' for a Float32Array, 'float16' for a Uint16Array. */
  type?: DType
  /**
   * Where the tensor lives: 'cpu' (a host tensor, data used as is), 'cuda' or a device ordinal
   * (copied to GPU memory), or 'auto' (the default): the GPU when one is usable, else the host.
   */
  device?: Device
}

function elementCount(dims: readonly number[]): number {
  if (!Array.isArray(dims) || !dims.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw invalid('INVALID_DIMS', 'an array of non-negative integers', 'dims', dims)
  }
  return dims.reduce((a, b) => a * b, 1)
}

function resolveDevice(device: Device): number | 'cpu' {
  if (device === 'cpu') return 'cpu'
  if (device === 'auto') {
    const usable = process.env.KVTRIM_FORCE_CPU !== '1' && binding().backend().cuda.usable
    return usable ? 0 : 'cpu'
  }
  if (device === 'cuda') return 0
  if (typeof device === 'number' && Number.isSafeInteger(device) && device >= 0) return device
  throw invalid('INVALID_OPTION', "'auto', 'cpu', 'cuda' or a device ordinal", 'device', device)
}

/**
 * A tensor where it should run: `tensor(data, dims, { device: 'auto' })` is a device tensor
 * when a GPU is usable and a host tensor otherwise, so one program runs on both. `data` null
 * with a GPU device allocates an uninitialised device tensor of `dims`.
 */
export function tensor(data: Float32Array | Uint16Array | null, dims: readonly number[], options: TensorOptions = {}): HostTensor | DeviceTensor {
  const type: DType = options.type ?? (data instanceof Float32Array ? 'float32' : 'float16')
  if (type !== 'float16' && type !== 'bfloat16' && type !== 'float32') {
    throw invalid('INVALID_DTYPE', "'float16', 'bfloat16' or 'float32'", 'type', type)
  }
  const n = elementCount(dims)
  if (data !== null) {
    const ok = type === 'float32' ? data instanceof Float32Array : data instanceof Uint16Array || (ArrayBuffer.isView(data) && (data as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT === 2)
    if (!ok) throw invalid('INVALID_ARGUMENT', type === 'float32' ? 'a Float32Array' : 'a Uint16Array of raw bits', 'data', data)
    if (data.length !== n) {
      throw new KvtrimError(`Expected data to hold ${n} elements (the product of dims [${dims.join(', ')}]) but it holds ${data.length}`, 'DATA_LENGTH')
    }
  }
  const where = resolveDevice(options.device ?? 'auto')
  if (where === 'cpu') {
    if (data === null) {
      return { type, data: type === 'float32' ? new Float32Array(n) : new Uint16Array(n), dims: [...dims] }
    }
    return { type, data, dims: [...dims] }
  }
  const b = binding()
  const buffer = new b.DeviceBuffer(where, n * (type === 'float32' ? 4 : 2))
  if (data !== null) buffer.upload(data)
  return new DeviceTensor(type, [...dims], buffer)
}

/**
 * Wraps GPU memory that another native library owns (a CUDA device pointer as a bigint),
 * without copying. kvtrim never frees it; keep the owner alive while kvtrim uses it.
 */
export function fromDevicePointer(ptr: bigint, dims: readonly number[], options: { type: DType; device?: number }): DeviceTensor {
  if (typeof ptr !== 'bigint' || ptr <= 0n) throw invalid('INVALID_ARGUMENT', 'a non-zero bigint device pointer', 'ptr', ptr)
  const type = options?.type
  if (type !== 'float16' && type !== 'bfloat16' && type !== 'float32') {
    throw invalid('INVALID_DTYPE', "'float16', 'bfloat16' or 'float32'", 'options.type', type)
  }
  const device = resolveDevice(options.device ?? 0)
  if (device === 'cpu') throw new KvtrimError(`Expected a GPU device for a device pointer but received ${describe(options.device)}`, 'INVALID_OPTION')
  const bytes = elementCount(dims) * (type === 'float32' ? 4 : 2)
  return new DeviceTensor(type, [...dims], new (binding().DeviceBuffer)(device, bytes, ptr))
}

export function isDeviceTensor(t: unknown): t is DeviceTensor {
  return t instanceof DeviceTensor
}
