// Temporary: the names other lib/ files import from './ops' until their imports point at
// './compress' and './key-norms' (issue 14's merge); delete this file then.
export { compress, compressChecked, compressInPlace, compressInPlaceSync, compressSync, decodeCompressOptions, deviceResult } from './compress'
export { keyNorms, keyNormsSync } from './key-norms'
