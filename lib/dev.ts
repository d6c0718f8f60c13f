// TEST-ONLY ENTRY: not part of kvtrim's API, not in package.json's "exports"; kvtrim's own tests
// and benchmarks import it from the source tree. It gives
// - devHooks(): the tools a build with KVTRIM_DEV_HOOKS exports as `binding.dev` (a CUDA stream
//   of kvtrim's own, the emulator's schedule, compress's launch geometry, compress timed with
//   CUDA events, copy bandwidth). The shipped binary has none of them.
// - rawBinding(): the native binding itself, for the suites that attack it on purpose (crash,
//   property): no facade between them and native code's own checks.
// Everything else reaches native code through the public API (lib/index.ts).
import type { Binding, DevHooks } from '../binding'
import { binding } from './binding'
import { KvtrimError } from './errors'

export type { Binding, DevHooks }

/** The dev hooks, or a KvtrimError saying how to build an addon that has them. */
export function devHooks(): DevHooks {
  const dev = binding().dev
  if (dev === undefined) {
    throw new KvtrimError(
      'This kvtrim addon was built without its dev hooks (streams, emulator control, launch geometry, benchmarks), ' +
        'as the shipped one is. Build one with them: `npm run build:dev` (build/, the GPU build), or ' +
        '`npm run build:emu` and KVTRIM_EMULATE_CUDA=1 (the CUDA emulator)',
      'BINDING_NOT_FOUND',
    )
  }
  return dev
}

/** The raw native binding, loaded as the facade loads it. */
export function rawBinding(): Binding {
  return binding()
}
