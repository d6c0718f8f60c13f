// The raw native binding (build/Release/kvtrim.node or a prebuild): the one contract between
// native/ and lib/. Only lib/binding.ts loads it; everything else goes through the facade.

export type NativeDType = 'float16' | 'bfloat16' | 'float32'

export interface NativeTensor {
  type: NativeDType
  data: Float32Array | Uint16Array
  dims: readonly number[]
}

export interface NativeCompressOptions {
  keepRatio?: number
  keep?: number
  order: 'position' | 'norm'
  score: 'low-norm' | 'high-norm'
  sink: number
  recent: number
  lengths?: ArrayLike<number>
  /** device tensors only: a cudaStream_t */
  stream?: bigint
}

export interface NativeCompressResult {
  keys: { type: NativeDType; data: Float32Array | Uint16Array; dims: number[] }
  values: { type: NativeDType; data: Float32Array | Uint16Array; dims: number[] }
  indices: Int32Array
  /** tokens kept per batch entry */
  lengths: Int32Array
  /** the output's seqLen: the largest entry of lengths */
  kept: number
}

export interface NativeInPlaceResult {
  indices: Int32Array
  lengths: Int32Array
  kept: number
}

/** GPU memory: owned (freed by free() or the finalizer) or wrapping a foreign pointer. */
export interface NativeDeviceBuffer {
  readonly ptr: bigint
  readonly bytes: number
  readonly device: number
  readonly owned: boolean
  readonly freed: boolean
  upload(data: ArrayBufferView): void
  download(into: ArrayBufferView): void
  free(): void
}

export interface NativeDeviceTensor {
  type: NativeDType
  buffer: NativeDeviceBuffer
  dims: readonly number[]
}

export interface NativeDeviceCompressResult {
  keyBuffer: NativeDeviceBuffer
  valueBuffer: NativeDeviceBuffer
  indices: Int32Array
  lengths: Int32Array
  kept: number
}

export interface NativeBackend {
  cpu: { threads: number; isa: 'avx2+f16c' | 'portable' }
  cuda: {
    compiled: boolean
    emulated: boolean
    usable: boolean
    reason: string
    driverVersion: number
    runtimeVersion: number
    architectures: string
    devices: Array<{
      index: number
      name: string
      computeCapability: string
      multiprocessors: number
      totalMemory: number
    }>
  }
}

/** layerUncertainty's input: attention weights [B, H, q, S], or window queries and keys. */
export type NativeUncertaintyInput =
  | { attention: NativeTensor | NativeDeviceTensor }
  | { queries: NativeTensor | NativeDeviceTensor; keys: NativeTensor | NativeDeviceTensor }

export interface NativeUncertaintyOptions {
  /** in (0, 1] */
  threshold: number
  /** window queries see keys up to their own position (ignored for attention weights) */
  causal: boolean
}

export interface Binding {
  /** Registers the class native code throws: new ErrorClass(message, code). */
  setErrorClass(ctor: new (message: string, code: string) => Error): void
  backend(): NativeBackend
  /** Per row (b, h, query) the LMBA count: [B, H, q] or [B, Hq, w]. CPU only. */
  uncertaintyCountsSync(input: NativeUncertaintyInput, options: NativeUncertaintyOptions): Int32Array
  uncertaintyCounts(input: NativeUncertaintyInput, options: NativeUncertaintyOptions): Promise<Int32Array>
  keyNormsSync(keys: NativeTensor): Float32Array
  keyNorms(keys: NativeTensor): Promise<Float32Array>
  compressSync(keys: NativeTensor, values: NativeTensor, options: NativeCompressOptions): NativeCompressResult
  compress(keys: NativeTensor, values: NativeTensor, options: NativeCompressOptions): Promise<NativeCompressResult>
  compressInPlaceSync(keys: NativeTensor, values: NativeTensor, options: NativeCompressOptions): NativeInPlaceResult
  compressInPlace(keys: NativeTensor, values: NativeTensor, options: NativeCompressOptions): Promise<NativeInPlaceResult>

  /** The host output pool's figures (process-wide). */
  memoryStats(): { poolLimit: number; pooledInUse: number; pooledIdle: number; reused: number; mapped: number; declined: number }
  /** Unmaps the pool's idle buffers; the bytes released. */
  releaseMemory(): number
  /** The most bytes the pool may map, in use and idle together (0: no pool). */
  setPoolLimit(bytes: number): void

  DeviceBuffer: new (device: number, bytes: number, ptr?: bigint) => NativeDeviceBuffer
  cudaKeyNormsSync(keys: NativeDeviceTensor, options?: { stream?: bigint }): NativeDeviceBuffer
  cudaKeyNorms(keys: NativeDeviceTensor, options?: { stream?: bigint }): Promise<NativeDeviceBuffer>
  /** A CUDA stream of kvtrim's own, for tests (users pass their runtime's stream). */
  cudaStreamCreate(device: number): bigint
  cudaStreamDestroy(device: number, stream: bigint): void
  cudaCompressSync(keys: NativeDeviceTensor, values: NativeDeviceTensor, options: NativeCompressOptions): NativeDeviceCompressResult
  cudaCompress(keys: NativeDeviceTensor, values: NativeDeviceTensor, options: NativeCompressOptions): Promise<NativeDeviceCompressResult>
  /** Every layer of a model in one launch where they share dtype and alignment. */
  cudaCompressLayersSync(keys: NativeDeviceTensor[], values: NativeDeviceTensor[], options: NativeCompressOptions[], layerIndices: number[]): NativeDeviceCompressResult[]
  cudaCompressLayers(keys: NativeDeviceTensor[], values: NativeDeviceTensor[], options: NativeCompressOptions[], layerIndices: number[]): Promise<NativeDeviceCompressResult[]>
  cudaCompressInPlaceSync(keys: NativeDeviceTensor, values: NativeDeviceTensor, options: NativeCompressOptions): NativeInPlaceResult
  cudaCompressInPlace(keys: NativeDeviceTensor, values: NativeDeviceTensor, options: NativeCompressOptions): Promise<NativeInPlaceResult>
  /** Emulator builds only: schedule and seed of later launches, emulated SM count (0: default). */
  cudaEmulator(config: { schedule: 'deterministic' | 'random' | 'priority'; seed: number; sms?: number; spinLimit?: number }): void
  /** Milliseconds per compress call (CUDA events), cycling through the input sets. */
  cudaBenchCompress(
    keys: NativeDeviceTensor[], values: NativeDeviceTensor[], options: NativeCompressOptions,
    outKeys: NativeDeviceBuffer[], outValues: NativeDeviceBuffer[], outIndices: NativeDeviceBuffer[],
    warmup: number, reps: number,
  ): Float32Array
  /** Device-to-device copy bandwidth in bytes moved (read + write) per second. */
  cudaCopyBandwidth(device: number, bytes: number, reps: number): number
  /** The launch geometry compress would use for these device tensors. */
  cudaGeometry(keys: NativeDeviceTensor, values: NativeDeviceTensor, options: NativeCompressOptions): {
    threads: number
    blocksPerRow: number
    blocks: number
    residentBlocks: number
    multiprocessors: number
    cooperative: boolean
  }
}
