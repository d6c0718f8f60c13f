// The crash suite's runner: one scenario of test/fixtures/crash/child.ts in a child process of
// its own, and the assertion that it exited normally with the expected outcome.
import { spawn } from 'node:child_process'
import * as path from 'node:path'
import { expect } from 'vitest'

const root = path.join(__dirname, '..')
const child = path.join(__dirname, 'fixtures', 'crash', 'child.ts')
/** The selection modes' scenarios (issue 15). */
export const selectionChild = path.join(__dirname, 'fixtures', 'crash', 'selection.ts')

export interface ChildResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/**
 * Runs one scenario with a fresh seed (KVTRIM_SEED replays one); the outcome line is what it
 * printed last. `script`: the scenarios' file (default test/fixtures/crash/child.ts).
 */
export function runScenario(name: string, env: NodeJS.ProcessEnv = {}, timeoutMs = Number(process.env.KVTRIM_CRASH_TIMEOUT_MS ?? 90_000), script = child): Promise<ChildResult & { outcome: string; seed: number }> {
  const seed = Number(process.env.KVTRIM_SEED ?? Math.floor(Math.random() * 2 ** 31))
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', script, name, String(seed)], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = '', stderr = ''
    p.stdout.on('data', (d) => { stdout += d })
    p.stderr.on('data', (d) => { stderr += d })
    const timer = setTimeout(() => { p.kill('SIGKILL') }, timeoutMs)
    p.on('error', reject)
    p.on('close', (code, signal) => {
      clearTimeout(timer)
      const line = stdout.trim().split('\n').filter((l) => l.startsWith('outcome: ')).pop() ?? ''
      resolve({ code, signal, stdout, stderr, outcome: line.slice('outcome: '.length), seed })
    })
  })
}

/** The scenario exited by itself, normally, and printed the expected outcome. */
export function expectSurvived(r: ChildResult & { outcome: string; seed: number }, outcome: string | RegExp): void {
  const why = `seed ${r.seed}; signal ${r.signal}; exit ${r.code}\nstdout: ${r.stdout.slice(-2000)}\nstderr: ${r.stderr.slice(-4000)}`
  expect(r.signal, why).toBeNull()
  expect(r.code, why).toBe(0)
  if (typeof outcome === 'string') expect(r.outcome, why).toBe(outcome)
  else expect(r.outcome, why).toMatch(outcome)
}

