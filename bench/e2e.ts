/**
 * bench:e2e (issue 16, "Does it pay?"): generation speed and memory with and without kvtrim, on
 * the TinyStories 260K test model, in two runtimes.
 *
 *   npm run bench:e2e                      # P = 1k, 4k, 16k, 32k; 32 steps; both runtimes
 *   npx tsx bench/e2e.ts --quick           # P = 1k, 4k; 16 steps (a smoke run, ~1 min)
 *   npx tsx bench/e2e.ts --docs            # also writes docs/e2e.json and docs/e2e.svg
 *
 * For each runtime (the TypeScript forward pass of eval/llama2c.ts; the ONNX decoder of
 * examples/transformers on onnxruntime-node), prompt length P and configuration (the full cache;
 * kvtrim after the prefill at keep 0.5 and 0.25; kvtrim decode-time compression: P/4 after the
 * prefill, back to P/4 whenever a layer exceeds P/4 + interval), one process of its own (so its
 * peak RSS is its own) loads the prompt's cache, applies the configuration and runs `steps`
 * greedy decode steps at the absolute positions P, P+1, ..., each a real forward pass over the
 * whole cache. Per configuration: the median (and mean) ms per generated token, the part of it
 * inside kvtrim (each kvtrim call timed with process.hrtime.bigint), kvtrim's one-off compression
 * after the prefill, the decode's peak cache bytes (keys + values over the layers) and the peak
 * RSS (process.resourceUsage().maxRSS).
 *
 * The prompt's cache is built once, cheaply (bench/e2e/prompt.ts; docs/e2e.md): the model's own
 * text, the first 512 tokens prefilled with full attention, every later token through the same
 * forward pass over a sliding window (4 sink rows + the last 252); saved to
 * bench/results/e2e-prompt.bin and reused by later runs with the same settings.
 *
 * Options: --lengths 1024,4096,16384,32768 --steps 32 --interval 8 --decode-ratio 0.25
 * --runtimes typescript,onnxruntime-node --configs full,keep-0.5,keep-0.25,decode --window 256
 * --sinks 4 --exact 512 --seed 1234 --out bench/results --rebuild-prompt --require-onnx --docs.
 * Outputs: the table on stdout, progress on stderr; OUT/e2e.json, OUT/e2e.svg, OUT/e2e.md (the
 * Markdown table for BENCHMARKS.md). KVTRIM_MODEL_DIR: the model's directory.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { parseArgs } from 'node:util'
import { backend } from '../lib/index'
import { findModel, repoRoot } from '../eval/model-dir'
import { CONFIGS, RESULT_PREFIX, RUNTIMES, runArgv, type ConfigName, type RunArgs, type RunResult, type Runtime } from './e2e/common'
import { buildPrompt, matches, promptHeader, savePrompt, type PromptSpec } from './e2e/prompt'
import { chart, markdown, table, type E2eResult } from './e2e/report'

const list = (s: string): string[] => s.split(',').map((x) => x.trim()).filter(Boolean)
const say = (s: string): void => void process.stderr.write(`${s}\n`)

function options() {
  const { values: v } = parseArgs({
    options: {
      lengths: { type: 'string' }, steps: { type: 'string' }, interval: { type: 'string', default: '8' }, 'decode-ratio': { type: 'string', default: '0.25' },
      runtimes: { type: 'string', default: RUNTIMES.join(',') }, configs: { type: 'string', default: CONFIGS.join(',') },
      window: { type: 'string', default: '256' }, sinks: { type: 'string', default: '4' }, exact: { type: 'string', default: '512' }, seed: { type: 'string', default: '1234' },
      out: { type: 'string', default: path.join(repoRoot, 'bench', 'results') }, quick: { type: 'boolean', default: false },
      'rebuild-prompt': { type: 'boolean', default: false }, 'require-onnx': { type: 'boolean', default: false }, docs: { type: 'boolean', default: false },
    },
  })
  const int = (name: string, s: string, min = 1): number => {
    const n = Number(s)
    if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name}: expected an integer >= ${min}, got ${s}`)
    return n
  }
  const lengths = list(v.lengths ?? (v.quick ? '1024,4096' : '1024,4096,16384,32768')).map((s) => int('lengths', s)).sort((a, b) => a - b)
  const runtimes = list(v.runtimes!) as Runtime[]
  for (const r of runtimes) if (!RUNTIMES.includes(r)) throw new Error(`--runtimes: unknown ${r}; known: ${RUNTIMES.join(', ')}`)
  const configs = list(v.configs!) as ConfigName[]
  for (const c of configs) if (!CONFIGS.includes(c)) throw new Error(`--configs: unknown ${c}; known: ${CONFIGS.join(', ')}`)
  const decodeRatio = Number(v['decode-ratio'])
  if (!(decodeRatio > 0 && decodeRatio <= 1)) throw new Error('--decode-ratio: expected a number in (0, 1]')
  return {
    lengths, runtimes, configs, decodeRatio,
    steps: int('steps', v.steps ?? (v.quick ? '16' : '32')), interval: int('interval', v.interval!, 0),
    window: int('window', v.window!, 2), sinks: int('sinks', v.sinks!, 0), exact: int('exact', v.exact!), seed: int('seed', v.seed!, 0),
    out: path.resolve(v.out!), rebuild: v['rebuild-prompt']!, requireOnnx: v['require-onnx']!, docs: v.docs!,
  }
}

/** Runs one measurement process; its last E2E-RESULT line is the row. */
function measure(runtime: Runtime, a: RunArgs): RunResult {
  const onnxDir = path.join(repoRoot, 'examples', 'transformers')
  const [cwd, script] = runtime === 'typescript' ? [repoRoot, path.join('bench', 'e2e', 'run-ts.ts')] : [onnxDir, 'bench-e2e.ts']
  const r = spawnSync(process.execPath, ['--import', 'tsx', script, ...runArgv(a)], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 * 2 ** 20 })
  const line = (r.stdout ?? '').split('\n').reverse().find((l) => l.startsWith(RESULT_PREFIX))
  if (r.status !== 0 || !line) throw new Error(`${runtime} P=${a.len} ${a.config}: the measurement process failed (status ${r.status}, signal ${r.signal})\n${r.stdout ?? ''}`)
  return JSON.parse(line.slice(RESULT_PREFIX.length)) as RunResult
}

/** Why the ONNX runtime cannot run here, or undefined. */
function onnxMissing(): string | undefined {
  const dir = path.join(repoRoot, 'examples', 'transformers')
  if (!existsSync(path.join(dir, 'node_modules', 'onnxruntime-node'))) {
    return 'examples/transformers is not installed: run `cd examples/transformers && ONNXRUNTIME_NODE_INSTALL=skip npm install` (its own package, ~470 MB)'
  }
  if (!existsSync(path.join(repoRoot, 'dist', 'cache', 'transformers.js'))) return 'kvtrim/transformers resolves to dist/, which is not built: run `npm run build`'
  return undefined
}

async function main(): Promise<void> {
  const t0 = performance.now()
  const o = options()
  const model = findModel()
  if ('missing' in model) throw new Error(model.missing)
  mkdirSync(o.out, { recursive: true })
  const loadBefore = os.loadavg()
  if (loadBefore[0] > os.cpus().length) say(`warning: load average ${loadBefore[0].toFixed(1)} on ${os.cpus().length} cores: other work competes with the benchmark, times are inflated`)

  // ---- the prompt's cache ----
  const spec: PromptSpec = { checkpoint: model.checkpoint, maxLen: o.lengths[o.lengths.length - 1], exact: o.exact, window: o.window, sinks: o.sinks, seed: o.seed, temperature: 1 }
  const file = path.join(o.out, 'e2e-prompt.bin')
  let header = promptHeader(file)
  const reused = !o.rebuild && matches(header, spec)
  if (!reused) {
    say(`building the prompt's cache: ${spec.maxLen} tokens (${Math.min(spec.exact, spec.maxLen)} with full attention, the rest over a window of ${spec.window} rows) ...`)
    const p = buildPrompt(spec, (done, total) => say(`  prompt ${done}/${total} tokens, ${((performance.now() - t0) / 1000).toFixed(1)} s`))
    savePrompt(file, p)
    header = p.header
    say(`  built in ${p.header.seconds.toFixed(1)} s: ${path.relative(process.cwd(), file)}`)
  } else say(`reusing the prompt's cache ${path.relative(process.cwd(), file)} (same settings; --rebuild-prompt builds it again)`)
  const h = header!

  // ---- the measurements ----
  const skipped: E2eResult['skipped'] = []
  const runtimes = o.runtimes.filter((rt) => {
    const why = rt === 'onnxruntime-node' ? onnxMissing() : undefined
    if (why && o.requireOnnx) throw new Error(why)
    if (why) {
      say(`onnxruntime-node: skipped: ${why}`)
      skipped.push({ runtime: rt, reason: why })
    }
    return !why
  })
  const jobs = o.lengths.flatMap((len) => o.configs.flatMap((config) => runtimes.map((runtime) => ({ runtime, len, config }))))
  const runs: RunResult[] = []
  for (const [i, j] of jobs.entries()) {
    const s0 = performance.now()
    const r = measure(j.runtime, { prompt: file, len: j.len, config: j.config, steps: o.steps, interval: o.interval, decodeRatio: o.decodeRatio })
    runs.push(r)
    say(
      `[${i + 1}/${jobs.length}] ${j.runtime} P=${j.len} ${j.config}: ${r.msPerToken.median.toFixed(2)} ms/token (kvtrim ${r.kvtrimMsPerToken.mean.toFixed(3)}), ` +
        `cache ${(r.peakCacheBytes / 2 ** 20).toFixed(2)} MiB, RSS ${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB; ${((performance.now() - s0) / 1000).toFixed(1)} s, ${((performance.now() - t0) / 1000).toFixed(0)} s in all`,
    )
  }

  const b = backend()
  const result: E2eResult = {
    date: new Date().toISOString(),
    seconds: (performance.now() - t0) / 1000,
    machine: { cpu: os.cpus()[0]?.model.trim() ?? 'unknown', cores: os.cpus().length, node: process.version, loadBefore, loadAfter: os.loadavg(), kvtrim: { isa: b.cpu.isa, threads: b.cpu.threads } },
    model: { checkpoint: path.basename(model.checkpoint), layers: h.nLayers, kvHeads: h.nKvHeads, headDim: h.headDim, trainedContext: 512 },
    prompt: {
      lengths: o.lengths, exact: h.exact, window: h.window, sinks: h.sinks, seed: h.seed, buildSeconds: h.seconds, reused,
      how:
        `the model's own text (temperature 1, seed ${h.seed}); the first ${h.exact} tokens prefilled with full attention, every later token through the same forward pass ` +
        `over a sliding window (${h.sinks} sink rows + the last ${h.window - h.sinks}), so deeper layers' keys and values beyond ${h.exact} are a windowed model's; ` +
        'the measured decode steps are full forward passes over all P rows',
    },
    options: { steps: o.steps, interval: o.interval, decodeRatio: o.decodeRatio, runtimes: o.runtimes, configs: o.configs },
    skipped,
    runs,
  }
  // arrays of numbers on one line each (the per-step times would take thousands of lines)
  const json = JSON.stringify(result, null, 2).replace(/\[\s+(-?[\d.e+-]+(?:,\s+-?[\d.e+-]+)*)\s+\]/g, (_, inner: string) => `[${inner.split(/,\s+/).join(', ')}]`) + '\n'
  writeFileSync(path.join(o.out, 'e2e.json'), json)
  writeFileSync(path.join(o.out, 'e2e.svg'), chart(result))
  writeFileSync(path.join(o.out, 'e2e.md'), markdown(result))
  console.log(table(result))
  console.log(`\nwrote ${['e2e.json', 'e2e.svg', 'e2e.md'].map((f) => path.join(path.relative(process.cwd(), o.out) || '.', f)).join(', ')}`)
  if (o.docs) {
    writeFileSync(path.join(repoRoot, 'docs', 'e2e.json'), json)
    writeFileSync(path.join(repoRoot, 'docs', 'e2e.svg'), chart(result))
    console.log('and docs/e2e.json, docs/e2e.svg')
  }
}

main().catch((err) => {
  console.error(`bench:e2e: ${(err as Error).message}`)
  process.exit(1)
})
