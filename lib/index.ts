/**
 * kvtrim: compress a language model's key/value cache by the L2 norm of its keys
 * (Devoto et al., EMNLP 2024). See README.md for the API and docs/contract.md for the numeric
 * contract.
 *
 * The house: the facade (this file, compress / key-norms, tensor, backend, memory, errors) over
 * the native addon (binding.ts); the cache policies in cache/ (compressCache, budgets, the
 * Compressor, kvtrim/transformers) and the diagnostics in diagnostics/ (layer uncertainty,
 * norm-attention correlation) build on the facade; check.ts, drive.ts, keep-count.ts and
 * types.ts are leaves any file may use. Arrows point down only (test/layers.test.ts checks it).
 */
export { KvtrimError, type KvtrimErrorCode } from './errors'
export { compress, compressSync, compressInPlace, compressInPlaceSync } from './compress'
export { keyNorms, keyNormsSync } from './key-norms'
export { tokenScores, tokenScoresSync } from './scores'
export { compressCache, compressCacheSync } from './cache/cache'
export {
  layerBudgets,
  uniformBudget,
  pyramidBudgets,
  zigzagBudgets,
  apportion,
  PYRAMID_BETA,
  ZIGZAG_MIN_RATIO,
  type BudgetContext,
} from './cache/budgets'
export {
  layerUncertainty,
  layerUncertaintySync,
  type UncertaintyLayer,
  type UncertaintyOptions,
  type UncertaintyResult,
} from './diagnostics/uncertainty'
export {
  Compressor,
  type CompressorOptions,
  type StepOptions,
  type StepResult,
  type LayerStep,
  type NamedCache,
} from './cache/compressor'
export { normAttentionCorrelation, spearman, type CorrelationResult } from './diagnostics/correlation'
export { backend, type BackendInfo } from './backend'
export { memoryStats, releaseMemory, setPoolLimit, type MemoryStats } from './memory'
export { DeviceTensor, tensor, fromDevicePointer, type Device, type TensorOptions } from './tensor'
export type {
  DType,
  TensorLike,
  HostTensor,
  CompressOptions,
  CompressResult,
  InPlaceResult,
  Score,
  CacheScore,
  Selection,
  ScoreTensor,
  TokenScoresOptions,
} from './types'
export type { CacheOptions, CacheLayer, CacheResult, LayerReport, Budgets } from './cache/types'
export { keepCount, type KeepRule } from './keep-count'
