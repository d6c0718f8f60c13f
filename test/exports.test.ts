// The product without the workbench: the binding exports exactly the public API's native
// functions (what lib/ uses for the published functions); the test and benchmark tools exist
// only in a build with KVTRIM_DEV_HOOKS, as one object, `dev` (lib/dev.ts reaches them).
// Host run: the addon loaded the normal way (build/Release, or KVTRIM_ADDON_DIR's sanitized
// build), i.e. a product build. test/cuda/dev-hooks.test.ts checks the emulator build's `dev`.
import { describe, expect, it } from 'vitest'
import { devHooks, rawBinding } from '../lib/dev'
import { KvtrimError } from '../lib/errors'
import { PUBLIC_EXPORTS } from './exports'

const emulated = process.env.KVTRIM_EMULATE_CUDA === '1'

describe.runIf(!emulated)('the product binding', () => {
  it('exports exactly the public API', () => {
    expect(Object.keys(rawBinding()).sort()).toEqual(PUBLIC_EXPORTS)
  })
  it('has no dev hooks, and lib/dev.ts says how to build them', () => {
    expect(rawBinding().dev).toBeUndefined()
    let err: unknown
    try {
      devHooks()
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(KvtrimError)
    expect((err as KvtrimError).code).toBe('BINDING_NOT_FOUND')
    expect((err as KvtrimError).message).toMatch(/npm run build:dev/)
  })
})
