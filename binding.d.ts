// The raw native binding (build/Release/kvtrim.node or a prebuild): the one contract between
// native/ and lib/. Only lib/binding.ts loads it; everything else goes through the facade
// (tests through the public API, or lib/dev.ts, their documented test-only entry).
// Native code validates everything it receives (tensors, options, streams, lengths, device
// tensors: native/addon/options.cc and args.cc) and decides where each operation runs (host
// tensors on the CPU path, device tensors on their GPU); the numeric rules are docs/contract.md's.

export type NativeDType = 'float16' | 'bfloat16' | 'float32'

export interface NativeTensor {
  type: NativeDType
  data: Float32Array | Uint16Array
  dims: readonly number[]
}

export type NativeScore =
  | 'low-norm'
  | 'high-norm'
  | 'kv-norm'
  | 'keydiff'
  | { project: Float32Array | Float32Array[] }
  | { scores: unknown }

/** compress's options as native code decodes them (binding.decodeOptions's result). */
export interface NativeCompressOptions {
  keepRatio?: number
  keep?: number
  order: 'position' | 'norm'
  /** a scorer's name; { project } (one layer: Float32Array; a cache: one per layer); { scores } (a tensor, or one per layer) */
  score: NativeScore
  sink: number
  recent: number
  /** absent for 'per-head' */
  selection?: { threshold: number } | { adaptive: { alpha: number } }
  /** per-(batch, head) kept counts */
  headKeep?: ArrayLike<number>
  lengths?: ArrayLike<number>
  /** device tensors only: a cudaStream_t */
  stream?: bigint
}

export interface NativeCompressResult {
  keys: { type: NativeDType; data: Float32Array | Uint16Array; dims: number[] }
  values: { type: NativeDType; data: Float32Array | Uint16Array; dims: number[] }
  indices: Int32Array
  /** tokens kept per batch entry (the most of its heads) */
  lengths: Int32Array
  /** tokens kept per (batch, head) row */
  headLengths: Int32Array
  /** the output's seqLen: the largest entry of lengths */
  kept: number
}

export interface NativeInPlaceResult {
  indices: Int32Array
  lengths: Int32Array
  headLengths: Int32Array
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
  headLengths: Int32Array
  kept: number
}

export interface NativeBackend {
  cpu: { threads: number; isa: 'avx2+f16c' | 'neon' | 'portable' }
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

/**
 * A host or a device tensor: an operation runs where its data lives. Any value is accepted
 * (native code checks it: a malformed tensor is a KvtrimError naming the field).
 */
export type NativeAnyTensor = NativeTensor | NativeDeviceTensor | unknown

/** Dev hooks: only in a build with KVTRIM_DEV_HOOKS (the emulator build, `build-native.js --dev`). */
export interface DevHooks {
  /** A CUDA stream of kvtrim's own, for tests (users pass their runtime's stream). */
  streamCreate(device: number): bigint
  streamDestroy(device: number, stream: bigint): void
  /** Emulator builds only: schedule and seed of later launches, emulated SM count (0: default). */
  emulator(config: { schedule: 'deterministic' | 'random' | 'priority'; seed: number; sms?: number; spinLimit?: number }): void
  /** Milliseconds per compress call (CUDA events), cycling through the input sets. */
  benchCompress(
    keys: NativeDeviceTensor[], values: NativeDeviceTensor[], options: NativeCompressOptions,
    outKeys: NativeDeviceBuffer[], outValues: NativeDeviceBuffer[], outIndices: NativeDeviceBuffer[],
    warmup: number, reps: number,
  ): Float32Array
  /** Device-to-device copy bandwidth in bytes moved (read + write) per second. */
  copyBandwidth(device: number, bytes: number, reps: number): number
  /** The launch geometry compress would use for these device tensors. */
  geometry(keys: NativeDeviceTensor, values: NativeDeviceTensor, options: NativeCompressOptions): {
    threads: number
    blocksPerRow: number
    blocks: number
    residentBlocks: number
    multiprocessors: number
    cooperative: boolean
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

/**
 * The binding's exports: the public API's native functions only, plus `dev` in a build with
 * KVTRIM_DEV_HOOKS. Options are `unknown`: native code checks them (compress's rules: README
 * "Options"; codes: native/core/codes.def). keys / values may be host or device tensors: mixed
 * is DEVICE_MISMATCH, a disposed device tensor DISPOSED, a stream with host tensors
 * INVALID_OPTION; device inputs give device results.
 */
export interface Binding {
  /** Registers the class native code throws: new ErrorClass(message, code). */
  setErrorClass(ctor: new (message: string, code: string) => Error): void
  backend(): NativeBackend
  /**
   * compress's options decoded and checked as the operations do it; `budgets`: compressCache's
   * (pruneAfter, skipLayers and budgets known too; neither keepRatio nor keep required).
   */
  decodeOptions(options: unknown, budgets: boolean): NativeCompressOptions
  /** Per row (b, h, query) the LMBA count: [B, H, q] or [B, Hq, w]; on the CPU path or the tensors' GPU. */
  uncertaintyCountsSync(input: NativeUncertaintyInput, options: NativeUncertaintyOptions): Int32Array
  uncertaintyCounts(input: NativeUncertaintyInput, options: NativeUncertaintyOptions): Promise<Int32Array>
  /** Host keys: Float32Array [B, H, S]; device keys: a DeviceBuffer of float32 norms. options: { stream? } (device only). */
  keyNormsSync(keys: NativeTensor, options?: unknown): Float32Array
  keyNormsSync(keys: NativeDeviceTensor, options?: unknown): NativeDeviceBuffer
  keyNormsSync(keys: NativeAnyTensor, options?: unknown): Float32Array | NativeDeviceBuffer
  keyNorms(keys: NativeTensor, options?: unknown): Promise<Float32Array>
  keyNorms(keys: NativeDeviceTensor, options?: unknown): Promise<NativeDeviceBuffer>
  keyNorms(keys: NativeAnyTensor, options?: unknown): Promise<Float32Array | NativeDeviceBuffer>
  /** Every token's score [B, H, S] (docs/policies.md): Float32Array (host) or a DeviceBuffer of float32 (device). options: { score?, lengths?, stream? }. */
  tokenScoresSync(keys: NativeTensor, values: NativeTensor, options?: unknown): Float32Array
  tokenScoresSync(keys: NativeDeviceTensor, values: NativeDeviceTensor, options?: unknown): NativeDeviceBuffer
  tokenScoresSync(keys: NativeAnyTensor, values: NativeAnyTensor, options?: unknown): Float32Array | NativeDeviceBuffer
  tokenScores(keys: NativeAnyTensor, values: NativeAnyTensor, options?: unknown): Promise<Float32Array | NativeDeviceBuffer>
  /**
   * A ragged selection's per-row kept counts (docs/policies.md "Selection modes";
   * native/core/selection.cc): Int32Array [B * H] from the scores (a float32 tensor [B, H, S],
   * host or device: device scores are copied to the host) and compress's options (a selection
   * other than 'per-head'; lengths, sink, recent and, for 'adaptive', keepRatio or keep).
   */
  selectionCountsSync(scores: unknown, options: unknown): Int32Array
  selectionCounts(scores: unknown, options: unknown): Promise<Int32Array>
  compressSync(keys: NativeTensor, values: NativeTensor, options: unknown): NativeCompressResult
  compressSync(keys: NativeDeviceTensor, values: NativeDeviceTensor, options: unknown): NativeDeviceCompressResult
  compressSync(keys: NativeAnyTensor, values: NativeAnyTensor, options: unknown): NativeCompressResult | NativeDeviceCompressResult
  compress(keys: NativeTensor, values: NativeTensor, options: unknown): Promise<NativeCompressResult>
  compress(keys: NativeDeviceTensor, values: NativeDeviceTensor, options: unknown): Promise<NativeDeviceCompressResult>
  compress(keys: NativeAnyTensor, values: NativeAnyTensor, options: unknown): Promise<NativeCompressResult | NativeDeviceCompressResult>
  compressInPlaceSync(keys: NativeAnyTensor, values: NativeAnyTensor, options: unknown): NativeInPlaceResult
  compressInPlace(keys: NativeAnyTensor, values: NativeAnyTensor, options: unknown): Promise<NativeInPlaceResult>
  /** Every layer of a model (device tensors, one GPU) in one launch where they share dtype and alignment. */
  cudaCompressLayersSync(keys: NativeDeviceTensor[], values: NativeDeviceTensor[], options: NativeCompressOptions[], layerIndices: number[]): NativeDeviceCompressResult[]
  cudaCompressLayers(keys: NativeDeviceTensor[], values: NativeDeviceTensor[], options: NativeCompressOptions[], layerIndices: number[]): Promise<NativeDeviceCompressResult[]>

  /** The host output pool's figures (process-wide). */
  memoryStats(): { poolLimit: number; pooledInUse: number; pooledIdle: number; reused: number; mapped: number; declined: number }
  /** Unmaps the pool's idle buffers; the bytes released. */
  releaseMemory(): number
  /** The most bytes the pool may map, in use and idle together (0: no pool). */
  setPoolLimit(bytes: number): void

  DeviceBuffer: new (device: number, bytes: number, ptr?: bigint) => NativeDeviceBuffer

  /** Test and benchmark tools: only in a build with KVTRIM_DEV_HOOKS (reach them through lib/dev.ts). */
  dev?: DevHooks
}
