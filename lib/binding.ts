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
    // KVTRIM_ADDON_DIR: a build of kvtrim's own elsewhere (the sanitized one of `npm run test:asan`).
    const dir = process.env.KVTRIM_ADDON_DIR
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    native = (dir ? require(path.join(root, dir, 'Release', 'kvtrim.node')) : require('node-gyp-build')(root)) as Binding
  } catch (err) {
    throw new KvtrimError(notFoundMessage(root, err), 'BINDING_NOT_FOUND')
  }
  native.setErrorClass(KvtrimError)
  cached = native
  return native
}

/** What failed and the exact commands that build the addon from source on this machine. */
function notFoundMessage(root: string, err: unknown): string {
  const cause = err instanceof Error ? err.message.split('\n')[0] : String(err)
  const script = path.join(root, 'scripts', 'build-native.js')
  let haveTools = true
  try {
    require.resolve('cmake-js/bin/cmake-js', { paths: [root] })
  } catch {
    haveTools = false
  }
  const steps = haveTools
    ? [`  node ${script}`]
    : [
        '  npm install --save-dev cmake-js@^8 node-addon-api@^8 node-api-headers@^1',
        `  node ${script}`,
      ]
  return (
    `kvtrim could not load its native addon for ${process.platform}-${process.arch} ` +
    `(Node ${process.version}, N-API 8): ${cause}\n` +
    'Prebuilt binaries cover linux-x64 and linux-arm64 with glibc >= 2.17; elsewhere, or when the prebuilt binary ' +
    'was removed, build the addon from source. In your project directory run:\n' +
    steps.join('\n') +
    '\n(needs CMake >= 3.18, a C++17 compiler and make or ninja; the CUDA toolkit is optional: ' +
    'without nvcc the CPU path is built). Where install scripts are allowed, `npm rebuild kvtrim` ' +
    'does the last step. Details: docs/install.md in the kvtrim package.'
  )
}
