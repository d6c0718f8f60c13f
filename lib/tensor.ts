// Tensors on the GPU, and tensor(): one call that puts data where it should run.
import type { NativeDeviceBuffer, NativeDeviceTensor } from '../binding'
import { binding } from './binding'
import { KvtrimError } from './errors'
import type { DType, HostTensor } from './types'
import { describe, invalid, isInt, isU64 } from './check'

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
    if (typeof buffer !== 'object' || buffer === null || typeof (buffer as { free?: unknown }).free !== 'function') {
      throw invalid('INVALID_ARGUMENT', 'a device buffer (make device tensors with tensor() or fromDevicePointer())', 'buffer', buffer)
    }
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

  /**
   * @internal the tensor's native fields as a plain object (the crash suite builds hostile
   * variants of it). A DeviceTensor can go to the binding as it is: native code reads type,
   * buffer and dims, and says DISPOSED for a disposed one.
   */
  native(): NativeDeviceTensor {
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

/** The product of dims: each a non-negative safe integer, the product too (else INVALID_DIMS). */
function elementCount(dims: unknown, name = 'dims'): { n: number; dims: number[] } {
  if (!Array.isArray(dims)) throw invalid('INVALID_DIMS', 'an array of non-negative integers', name, dims)
  const copy: number[] = []
  let n = 1
  for (let i = 0; i < dims.length; i++) {
    const d: unknown = dims[i]
    if (!isInt(d) || d < 0) throw invalid('INVALID_DIMS', 'an array of non-negative integers', name, dims)
    copy.push(d)
    n *= d
  }
  if (!Number.isSafeInteger(n)) {
    throw new KvtrimError(`Expected ${name} whose product (the element count) is at most 2^53 - 1 but received [${copy.join(', ')}]`, 'INVALID_DIMS')
  }
  return { n, dims: copy }
}

/** A host typed array of n elements; a size the JS engine cannot allocate is OUT_OF_MEMORY, not a RangeError. */
function allocate(type: DType, n: number, dims: readonly number[]): Float32Array | Uint16Array {
  try {
    return type === 'float32' ? new Float32Array(n) : new Uint16Array(n)
  } catch (err) {
    throw new KvtrimError(
      `Could not allocate a host tensor of dims [${dims.join(', ')}] (${n * (type === 'float32' ? 4 : 2)} bytes): ` +
        (err instanceof Error ? err.message : String(err)),
      'OUT_OF_MEMORY',
    )
  }
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
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalid('INVALID_ARGUMENT', 'an options object { type?, device? }', 'options', options)
  }
  for (const key of Object.keys(options)) {
    if (key !== 'type' && key !== 'device') throw new KvtrimError(`Unknown option '${key}'; known options: type, device`, 'INVALID_OPTION')
  }
  const givenType: unknown = options.type, givenDevice: unknown = options.device
  if (data !== null && !(ArrayBuffer.isView(data) && !(data instanceof DataView))) {
    throw invalid('INVALID_ARGUMENT', 'a Float32Array, a Uint16Array of raw bits, or null', 'data', data)
  }
  const type = (givenType ?? (data instanceof Float32Array ? 'float32' : 'float16')) as DType
  if (type !== 'float16' && type !== 'bfloat16' && type !== 'float32') {
    throw invalid('INVALID_DTYPE', "'float16', 'bfloat16' or 'float32'", 'type', givenType)
  }
  const { n, dims: shape } = elementCount(dims)
  if (data !== null) {
    // any buffer: a SharedArrayBuffer or a resizable ArrayBuffer is as good as a plain one here
    const ok = type === 'float32' ? data instanceof Float32Array : data instanceof Uint16Array || data.BYTES_PER_ELEMENT === 2
    if (!ok) throw invalid('INVALID_ARGUMENT', type === 'float32' ? 'a Float32Array' : 'a Uint16Array of raw bits', 'data', data)
    if (data.length !== n) {
      throw new KvtrimError(`Expected data to hold ${n} elements (the product of dims [${shape.join(', ')}]) but it holds ${data.length}`, 'DATA_LENGTH')
    }
  }
  const where = resolveDevice((givenDevice ?? 'auto') as Device)
  if (where === 'cpu') {
    return { type, data: data ?? allocate(type, n, shape), dims: shape }
  }
  const bytes = n * (type === 'float32' ? 4 : 2)
  if (!Number.isSafeInteger(bytes)) {
    throw new KvtrimError(`Expected dims whose size in bytes is at most 2^53 - 1 but received [${shape.join(', ')}]`, 'INVALID_DIMS')
  }
  const b = binding()
  const buffer = new b.DeviceBuffer(where, bytes)
  if (data !== null) buffer.upload(data)
  return new DeviceTensor(type, shape, buffer)
}

/**
 * Wraps GPU memory that another native library owns (a CUDA device pointer as a bigint),
 * without copying. kvtrim never frees it; keep the owner alive while kvtrim uses it.
 */
export function fromDevicePointer(ptr: bigint, dims: readonly number[], options: { type: DType; device?: number }): DeviceTensor {
  if (!isU64(ptr) || ptr === 0n) throw invalid('INVALID_ARGUMENT', 'a non-zero bigint device pointer below 2^64', 'ptr', ptr)
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalid('INVALID_ARGUMENT', "an options object { type, device? }", 'options', options)
  }
  for (const key of Object.keys(options)) {
    if (key !== 'type' && key !== 'device') throw new KvtrimError(`Unknown option '${key}'; known options: type, device`, 'INVALID_OPTION')
  }
  const type: unknown = options.type, givenDevice: unknown = options.device
  if (type !== 'float16' && type !== 'bfloat16' && type !== 'float32') {
    throw invalid('INVALID_DTYPE', "'float16', 'bfloat16' or 'float32'", 'options.type', type)
  }
  const device = resolveDevice((givenDevice ?? 0) as Device)
  if (device === 'cpu') throw new KvtrimError(`Expected a GPU device for a device pointer but received ${describe(givenDevice)}`, 'INVALID_OPTION')
  const { n, dims: shape } = elementCount(dims)
  const bytes = n * (type === 'float32' ? 4 : 2)
  if (!Number.isSafeInteger(bytes) || ptr + BigInt(bytes) > 1n << 64n) {
    throw new KvtrimError(`Expected ptr + ${bytes} bytes (dims [${shape.join(', ')}]) to end below 2^64 but ptr is ${ptr}`, 'INVALID_DIMS')
  }
  return new DeviceTensor(type, shape, new (binding().DeviceBuffer)(device, bytes, ptr))
}

export function isDeviceTensor(t: unknown): t is DeviceTensor {
  return t instanceof DeviceTensor
}
