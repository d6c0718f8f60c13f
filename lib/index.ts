/**
 * kvtrim: compress a language model's key/value cache by the L2 norm of its keys
 * (Devoto et al., EMNLP 2024). See README.md for the API and the numeric contract.
 */
export { KvtrimError, type KvtrimErrorCode } from './errors'
export { keyNorms, keyNormsSync, compress, compressSync, compressInPlace, compressInPlaceSync } from './ops'
export { compressCache, compressCacheSync } from './cache'
export {
  layerBudgets,
  uniformBudget,
  pyramidBudgets,
  zigzagBudgets,
  apportion,
  PYRAMID_BETA,
  ZIGZAG_MIN_RATIO,
  type BudgetContext,
} from './budgets'
export {
  layerUncertainty,
  layerUncertaintySync,
  type UncertaintyLayer,
  type UncertaintyOptions,
  type UncertaintyResult,
} from './uncertainty'
export {
  Compressor,
  type CompressorOptions,
  type StepOptions,
  type StepResult,
  type LayerStep,
  type NamedCache,
} from './compressor'
export { normAttentionCorrelation, spearman, type CorrelationResult } from './correlation'
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
  CacheOptions,
  CacheLayer,
  CacheResult,
  LayerReport,
  Budgets,
} from './types'
