// The house's rules, checked from the sources: no import cycle in lib/, every arrow points down
// (leaves <- binding <- facade <- cache/, diagnostics/ <- index; lib/dev.ts, the test-only entry, beside the facade), and in native/ each layer
// includes only itself and the layers below it (core <- cpu, cuda <- addon). The CMake targets
// enforce the N-API half of this (only the addon sees napi.h); this test catches the rest.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'

const root = path.join(__dirname, '..')

function files(dir: string, ext: RegExp): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name)
    if (statSync(p).isDirectory()) out.push(...files(p, ext))
    else if (ext.test(name)) out.push(p)
  }
  return out
}

const rel = (p: string): string => path.relative(root, p).split(path.sep).join('/')

// lib/: the level of each file; a file may import only files of a lower level, or of its own
// level when the level says so (the facade's files use each other; cache/ and diagnostics/ do
// not use each other).
function libLevel(file: string): { level: number; room: string } {
  const f = file.replace(/^lib\//, '').replace(/\.ts$/, '')
  if (['errors', 'types', 'check', 'drive', 'keep-count'].includes(f)) return { level: 0, room: 'leaf' }
  if (f === 'binding') return { level: 1, room: 'binding' }
  // the test-only entry (lib/dev.ts): over the binding, and nothing of the product imports it
  if (f === 'dev') return { level: 2, room: 'dev' }
  if (['tensor', 'backend', 'memory', 'compress', 'key-norms', 'scores', 'selection'].includes(f)) return { level: 2, room: 'facade' }
  if (f.startsWith('cache/')) return { level: 3, room: 'cache' }
  if (f.startsWith('diagnostics/')) return { level: 3, room: 'diagnostics' }
  if (f === 'index') return { level: 4, room: 'index' }
  throw new Error(`lib/${f}.ts has no room in test/layers.test.ts: put it in one (leaf, binding, facade, cache/, diagnostics/)`)
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)|require\(\s*['"](\.[^'"]+)['"]\s*\)/g

function libImports(file: string): string[] {
  const src = readFileSync(path.join(root, file), 'utf8')
  const out: string[] = []
  for (const m of src.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3]
    const target = rel(path.resolve(path.dirname(path.join(root, file)), spec))
    if (!target.startsWith('lib/')) continue // ../binding (the .d.ts of the addon), node: modules
    out.push(`${target}.ts`)
  }
  return out
}

describe('lib/ layering', () => {
  const libFiles = files(path.join(root, 'lib'), /\.ts$/).map(rel)
  const graph = new Map(libFiles.map((f) => [f, libImports(f)]))

  it('every import resolves to a lib file', () => {
    for (const [f, deps] of graph) for (const d of deps) expect(graph.has(d), `${f} imports ${d}`).toBe(true)
  })

  it('arrows point down only: leaves <- binding <- facade <- cache/, diagnostics/ <- index', () => {
    const bad: string[] = []
    for (const [f, deps] of graph) {
      const a = libLevel(f)
      for (const d of deps) {
        const b = libLevel(d)
        const sameRoomOk = a.room === b.room && (a.room === 'facade' || a.room === 'cache' || a.room === 'diagnostics' || a.room === 'leaf')
        if (b.level > a.level || (b.level === a.level && !sameRoomOk)) bad.push(`${f} (${a.room}) -> ${d} (${b.room})`)
      }
    }
    expect(bad).toEqual([])
  })

  it('no import cycle (type-only imports included)', () => {
    const state = new Map<string, 'open' | 'done'>()
    const cycles: string[] = []
    const visit = (f: string, stack: string[]): void => {
      if (state.get(f) === 'done') return
      if (state.get(f) === 'open') {
        cycles.push([...stack.slice(stack.indexOf(f)), f].join(' -> '))
        return
      }
      state.set(f, 'open')
      for (const d of graph.get(f) ?? []) visit(d, [...stack, f])
      state.set(f, 'done')
    }
    for (const f of graph.keys()) visit(f, [])
    expect(cycles).toEqual([])
  })
})

// native/: which folders each layer may include from (besides itself and the standard library).
const NATIVE_ALLOWED: Record<string, string[]> = {
  'native/core': [],
  'native/cpu': ['native/core'],
  'native/cuda': ['native/core', 'native/cuda/kernels'],
  'native/cuda/kernels': ['native/core', 'native/cuda'],
  'native/cuda/emu': [],
  'native/cuda/dev': ['native/core', 'native/cuda', 'native/cuda/kernels'],
  'native/addon': ['native/core', 'native/cpu', 'native/cuda'],
  'native/glibc': [],
}

describe('native/ layering', () => {
  const sources = files(path.join(root, 'native'), /\.(h|cc|cu|cuh|inc)$/).map(rel)

  it('each layer includes only itself and the layers below it; N-API only in native/addon', () => {
    const bad: string[] = []
    for (const f of sources) {
      const dir = path.posix.dirname(f)
      const allowed = NATIVE_ALLOWED[dir]
      if (!allowed) {
        bad.push(`${f}: folder ${dir} has no rule in test/layers.test.ts`)
        continue
      }
      const src = readFileSync(path.join(root, f), 'utf8')
      for (const m of src.matchAll(/^\s*#\s*include\s+([<"])([^>"]+)[>"]/gm)) {
        const [, kind, inc] = m
        if (kind === '<') {
          if (/^napi\.h$|^node_api\.h$|^node\.h$|^uv\.h$/.test(inc) && dir !== 'native/addon') bad.push(`${f} includes <${inc}>`)
          continue
        }
        const target = path.posix.dirname(path.posix.normalize(path.posix.join(dir, inc)))
        // cuda_api.h is the one door from the kernels' world into the emulator
        if (target === 'native/cuda/emu' && (f === 'native/cuda/cuda_api.h' || dir === 'native/cuda/dev')) continue
        if (target !== dir && !allowed.includes(target)) bad.push(`${f} includes "${inc}" (${target})`)
      }
    }
    expect(bad).toEqual([])
  })
})
