// The crash suite's device scenarios (test/crash.test.ts has the host ones): on a GPU or under
// the emulator, each in a child process that must exit normally with a result or a KvtrimError.
import { expect, it } from 'vitest'
import { expectSurvived, runScenario } from '../crash'
import { describeCuda } from './gpu'

describeCuda('crash suite on device tensors (child processes)', () => {
  it('dispose() while compress() and keyNorms() are pending: results intact, memory freed after; a disposed input is a KvtrimError', async () => {
    expectSurvived(await runScenario('dispose-pending'), 'DISPOSED')
  })
  it('a worker ending with device compress() pending (process.exit and terminate)', async () => {
    expectSurvived(await runScenario('device-worker-exit'), 'ok')
  })
  it('getters and Proxies that dispose a device input during a sync call (raw binding): an error, never a use after free', async () => {
    expectSurvived(await runScenario('device-getter-dispose'), /^(INVALID_ARGUMENT|ok)(,(INVALID_ARGUMENT|ok))*$/)
  })
  it('the scenarios really ran on a device', () => {
    expect(process.env.KVTRIM_EMULATE_CUDA === '1' || process.env.KVTRIM_REQUIRE_CUDA === '1').toBe(true)
  })
})
