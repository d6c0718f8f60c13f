// Loads the native addon once: a prebuild for this platform first, then a local build
// (node-gyp-build's order). A failure becomes one KvtrimError that says what to do.
import * as path from 'node:path'
import type { Binding } from '../binding'
import { KvtrimError } from './errors'

let cached: Binding | undefined

export function binding(): Binding {
  if (cached) return cached
  const root = path.join(__dirname, '..')
  let native: Binding
  if (process.env.KVTRIM_EMULATE_CUDA === '1') {
    // The addon built by `npm run build:emu`: CUDA kernels run by kvtrim's CPU emulator.
    const file = path.join(root, process.env.KVTRIM_EMU_DIR || 'build-emu', 'Release', 'kvtrim.node')
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      native = require(file) as Binding
    } catch (err) {
      throw new KvtrimError(
        `KVTRIM_EMULATE_CUDA=1 but the emulator build could not be loaded from ${file}: ` +
          `${err instanceof Error ? err.message.split('\n')[0] : String(err)}\nRun: npm run build:emu`,
        'BINDING_NOT_FOUND',
      )
    }
    native.setErrorClass(KvtrimError)
    cached = native
    return native
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    native = require('node-gyp-build')(root) as Binding
  } catch (err) {
    const cause = err instanceof Error ? err.message.split('\n')[0] : String(err)
    throw new KvtrimError(
      `kvtrim could not load its native addon for ${process.platform}-${process.arch} ` +
        `(Node ${process.version}, N-API 8): ${cause}\n` +
        'Possible solutions:\n' +
        `- build it from source: cd ${root} && npm run build:native ` +
        '(needs cmake >= 3.18 and a C++17 compiler; the CUDA toolkit is optional)\n' +
        '- if install scripts were blocked, allow them for kvtrim or run the command above once\n' +
        '- check that prebuilds/ or build/Release/ exists in the installed package',
      'BINDING_NOT_FOUND',
    )
  }
  native.setErrorClass(KvtrimError)
  cached = native
  return native
}
