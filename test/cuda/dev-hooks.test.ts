// The emulator build (KVTRIM_EMULATE_CUDA=1, `npm run build:emu`) is a build with dev hooks:
// the public API plus one object, `dev`, of test and benchmark tools (lib/dev.ts's devHooks()).
import { expect, it } from 'vitest'
import { devHooks, rawBinding } from '../../lib/dev'
import { DEV_HOOKS, PUBLIC_EXPORTS } from '../exports'
import { describeCuda, emulated } from './gpu'

describeCuda('dev hooks', () => {
  it.runIf(emulated)('the emulator build: the public API and `dev`, nothing else', () => {
    expect(Object.keys(rawBinding()).sort()).toEqual([...PUBLIC_EXPORTS, 'dev'].sort())
    expect(Object.keys(devHooks()).sort()).toEqual(DEV_HOOKS)
  })
})
