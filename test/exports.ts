// What the binding exports (test/exports.test.ts, test/cuda/dev-hooks.test.ts): the public API's
// native functions, and the dev hooks of a build with KVTRIM_DEV_HOOKS.
export const PUBLIC_EXPORTS = [
  'DeviceBuffer',
  'backend',
  'compress',
  'compressInPlace',
  'compressInPlaceSync',
  'compressSync',
  'cudaCompressLayers',
  'cudaCompressLayersSync',
  'decodeOptions',
  'keyNorms',
  'keyNormsSync',
  'memoryStats',
  'releaseMemory',
  'selectionCounts',
  'selectionCountsSync',
  'setErrorClass',
  'setPoolLimit',
  'tokenScores',
  'tokenScoresSync',
  'uncertaintyCounts',
  'uncertaintyCountsSync',
]

export const DEV_HOOKS = ['benchCompress', 'copyBandwidth', 'emulator', 'geometry', 'streamCreate', 'streamDestroy']
