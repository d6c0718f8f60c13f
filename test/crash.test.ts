// The crash suite: every scenario of issue 12 that once took the host process down runs in a
// child process of its own (test/fixtures/crash/child.ts) and must exit normally with a result
// or a KvtrimError, never a signal or an abort. test/cuda/crash.test.ts has the device ones.
import { describe, it } from 'vitest'
import { expectSurvived, runScenario, selectionChild } from './crash'

describe('crash suite: nothing a caller does takes the process down (each scenario in a child process)', () => {
  const cases: Array<[string, string | RegExp, string]> = [
    ['worker-exit', 'ok', 'a worker calls process.exit() with compress, keyNorms, layerUncertainty and compressInPlace pending'],
    ['worker-terminate', 'ok', 'worker.terminate() with Promises of each kind pending'],
    ['worker-storm', 'ok', 'four workers in Promise loops terminated at random moments, three rounds'],
    ['resizable-shrink', 'ok', 'a resizable input shrunk to 0 while compress() runs: the result of the data at call time'],
    ['resizable-in-place', 'INVALID_ARGUMENT', 'compressInPlace() on a resizable buffer is refused'],
    ['shared-buffers', 'ok', 'SharedArrayBuffer inputs, sync and async: the same result as plain buffers'],
    ['transfer-and-collect', 'ok', 'inputs transferred by structuredClone and the copies collected while compress() runs'],
    ['post-message-transfer', 'ok', 'an input posted (transfer list) to a worker that exits, while compress() runs'],
    ['getter-detaches', /^(DETACHED_BUFFER|DATA_LENGTH|ok)(,(DETACHED_BUFFER|DATA_LENGTH|ok))*$/, 'getters and Proxies that detach or shrink keys.data during a sync call'],
    ['getter-detaches-raw', /^(DETACHED_BUFFER|DATA_LENGTH|ok)(,(DETACHED_BUFFER|DATA_LENGTH|ok))*$/, 'the same getters against the raw native binding (no facade in between)'],
    ['scores-pending-changes', 'ok', 'given scores and tokenScores inputs resized, shared or transferred while the Promise is pending'],
    ['score-getters', /^(DETACHED_BUFFER|DATA_LENGTH|INVALID_OPTION|ok)(,(DETACHED_BUFFER|DATA_LENGTH|INVALID_OPTION|ok))*$/, 'getters and Proxies on score, score.scores and score.project that detach keys or scores during a sync call (facade and raw binding)'],
    ['scores-short-data', 'DATA_LENGTH', 'given scores whose data is shorter than their dims (empty too), sync, async, tokenScores and the raw binding'],
    ['sync-loop-memory', 'ok', '400 compressSync calls on [1,8,4096,128] fp16 in a loop that never yields: RSS bounded'],
    ['thousands-pending', 'ok', '3,000 compress() Promises in flight at once, all equal to the sync result'],
    ['exit-with-pending', 'ok', 'process.exit() on the main thread with large compress() calls pending'],
  ]
  for (const [name, outcome, what] of cases) {
    it.concurrent(`${name}: ${what}`, async () => {
      expectSurvived(await runScenario(name), outcome)
    })
  }
})

// Issue 15's selection modes (test/fixtures/crash/selection.ts): a ragged selection is two or
// three native operations with JavaScript between them (lib/selection.ts), attacked at each.
describe('crash suite: selection modes (each scenario in a child process)', () => {
  const codes = (...c: string[]) => new RegExp(`^(${c.join('|')})(,(${c.join('|')}))*$`)
  const cases: Array<[string, string | RegExp, string]> = [
    ['selection-getters', codes('DETACHED_BUFFER', 'DATA_LENGTH', 'INVALID_ARGUMENT', 'INVALID_OPTION', 'INVALID_KEEP', 'ok'), 'getters and Proxies on selection, threshold, alpha and headKeep that detach or shrink the keys (or the scores) during a sync call (facade and raw binding)'],
    // A buffer transferred or shrunk while a ragged compress() is pending: the later native
    // calls find it changed, and lib/selection.ts reports INPUT_CHANGED, as README promises
    // (DETACHED_BUFFER remains where the scores were given: no earlier call checked the keys).
    ['selection-pending-transfer', codes('ok', 'INPUT_CHANGED', 'DETACHED_BUFFER'), 'async compress / compressInPlace with a selection while the keys or values are transferred away and collected, or shrunk to 0'],
    ['selection-worker-exit', 'ok', 'workers that call process.exit() with selection compress() and compressInPlace() pending'],
    ['selection-loop-memory', 'ok', '1,000 sync and 1,000 awaited compress calls with a selection: RSS bounded'],
  ]
  for (const [name, outcome, what] of cases) {
    it.concurrent(`${name}: ${what}`, async () => {
      expectSurvived(await runScenario(name, {}, undefined, selectionChild), outcome)
    })
  }

  // Found by this suite (fixed in a370f46 with NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS):
  // worker.terminate() with a ragged compress() pending aborted the process (SIGABRT,
  // "terminate called after throwing an instance of 'Napi::Error'"): lib/selection.ts starts its
  // next native call from a Promise continuation, and in a terminating worker node-addon-api
  // could not throw kvtrim's error into JavaScript and threw again.
  it('selection-worker-terminate: workers terminated with selection compress() and compressInPlace() pending', async () => {
    expectSurvived(await runScenario('selection-worker-terminate', {}, undefined, selectionChild), 'ok')
  })
})
