/**
 * The Compressor's score memory at a 32k cache (issue 16):  npx tsx bench/reuse.ts [--quick]
 *
 * One layer [1, 8, S, 128] fp16, Compressor { target: 32768, interval: 64 }: every compression
 * takes 32,833 tokens back to 32,768. Rows: ms per compression (the stepSync that compresses;
 * the median over the compressions after the first, which has no memory yet) with
 * reuseScores on and off, per scorer and mode. With the memory a compression scores the 65
 * appended tokens instead of 32,833; the gather (dynamic: a new cache; static: rows moved in
 * place) is the same either way. A full GC before each timed step. Writes bench/results/reuse.json.
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import * as v8 from 'node:v8'
import * as vm from 'node:vm'
import { backend, Compressor, type CompressorOptions } from '../lib/index'

// a full GC before each timed step: the bench's own 134 MB caches must not be collected inside one
v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

const QUICK = process.argv.includes('--quick')
const H = 8, D = 128, TARGET = 32768, INTERVAL = 64
const ROUNDS = QUICK ? 5 : 11
const root = path.join(__dirname, '..')

type Host = { type: 'float16'; data: Uint16Array; dims: number[] }

function randomRows(n: number, seed: number): Uint16Array {
  const a = new Uint16Array(n)
  let x = seed >>> 0
  for (let i = 0; i < n; i++) {
    x = (x * 1664525 + 1013904223) >>> 0
    a[i] = (x >>> 16) & 0x3bff // finite fp16 in (-1, 1)
  }
  return a
}

function append(t: Host, n: number, seed: number): Host {
  const [b, h, s, d] = t.dims
  const add = randomRows(b * h * n * d, seed)
  const out = new Uint16Array(b * h * (s + n) * d)
  for (let r = 0; r < b * h; r++) {
    out.set(t.data.subarray(r * s * d, (r + 1) * s * d), r * (s + n) * d)
    out.set(add.subarray(r * n * d, (r + 1) * n * d), (r * (s + n) + s) * d)
  }
  return { type: 'float16', data: out, dims: [b, h, s + n, d] }
}

const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]

function dynamicRun(score: CompressorOptions['score'], reuseScores: boolean): number {
  const c = new Compressor({ target: TARGET, interval: INTERVAL, score, reuseScores })
  const S0 = TARGET + INTERVAL + 1
  let cache = [{ keys: { type: 'float16', data: randomRows(H * S0 * D, 1), dims: [1, H, S0, D] } as Host, values: { type: 'float16', data: randomRows(H * S0 * D, 2), dims: [1, H, S0, D] } as Host }]
  const times: number[] = []
  for (let round = 0; round <= ROUNDS; round++) {
    gc()
    const t0 = process.hrtime.bigint()
    const r = c.stepSync(cache)
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    if (!r.compressed) throw new Error('expected a compression')
    if (round > 0) times.push(ms)
    const out = r.cache as typeof cache
    cache = [{ keys: append(out[0].keys, INTERVAL + 1, 3 + round), values: append(out[0].values, INTERVAL + 1, 5 + round) }]
  }
  return median(times)
}

function staticRun(score: CompressorOptions['score'], reuseScores: boolean): number {
  const cap = TARGET + INTERVAL + 2
  const c = new Compressor({ target: TARGET, interval: INTERVAL, score, reuseScores, mode: 'static' })
  const cache = [{ keys: { type: 'float16', data: randomRows(H * cap * D, 1), dims: [1, H, cap, D] } as Host, values: { type: 'float16', data: randomRows(H * cap * D, 2), dims: [1, H, cap, D] } as Host }]
  const times: number[] = []
  for (let round = 0; round <= ROUNDS; round++) {
    // the appended rows were written at [TARGET, TARGET + INTERVAL + 1) (the random fill stands in)
    gc()
    const t0 = process.hrtime.bigint()
    const r = c.stepSync(cache, { lengths: TARGET + INTERVAL + 1 })
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    if (!r.compressed) throw new Error('expected a compression')
    if (round > 0) times.push(ms)
  }
  return median(times)
}

const rows: Array<{ mode: string; score: string; off: number; on: number }> = []
const vectors = [Float32Array.from({ length: H * D }, (_, i) => Math.sin(i))]
const scores: Array<[string, CompressorOptions['score']]> = [['low-norm', 'low-norm'], ['kv-norm', 'kv-norm'], ['project', { project: vectors }]]
for (const mode of ['dynamic', 'static'] as const) {
  for (const [name, score] of scores) {
    const run = mode === 'dynamic' ? dynamicRun : staticRun
    const off = run(score, false), on = run(score, true)
    rows.push({ mode, score: name, off, on })
    process.stderr.write(`${mode} ${name}: ${off.toFixed(2)} -> ${on.toFixed(2)} ms\n`)
  }
}
const b = backend()
console.log(`\nCompressor at a 32k cache: one layer [1, ${H}, ${TARGET}+${INTERVAL + 1}, ${D}] fp16 -> ${TARGET}; ` +
  `${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores, ${b.cpu.threads} threads; median of ${ROUNDS}\n`)
console.log('| mode | score | rescoring every token (ms) | score memory (ms) | speedup |')
console.log('|---|---|---|---|---|')
for (const r of rows) console.log(`| ${r.mode} | ${r.score} | ${r.off.toFixed(2)} | ${r.on.toFixed(2)} | ${(r.off / r.on).toFixed(2)}x |`)
fs.mkdirSync(path.join(root, 'bench/results'), { recursive: true })
fs.writeFileSync(path.join(root, 'bench/results/reuse.json'), JSON.stringify({ date: new Date().toISOString(), rows }, null, 2))
