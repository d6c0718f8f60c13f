// bench:e2e's outputs: the terminal table, the Markdown table (BENCHMARKS.md's form) and the SVG
// chart (ms per generated token against prompt length, one line per configuration, a panel per
// runtime; hand-written like eval/report.ts's chart).
import { CONFIGS, RUNTIMES, type ConfigName, type RunResult, type Runtime } from './common'

export interface E2eResult {
  date: string
  seconds: number
  machine: { cpu: string; cores: number; node: string; loadBefore: number[]; loadAfter: number[]; kvtrim: { isa: string; threads: number } }
  model: { checkpoint: string; layers: number; kvHeads: number; headDim: number; trainedContext: number }
  prompt: { lengths: number[]; exact: number; window: number; sinks: number; seed: number; buildSeconds: number; reused: boolean; how: string }
  options: { steps: number; interval: number; decodeRatio: number; runtimes: Runtime[]; configs: ConfigName[] }
  skipped: Array<{ runtime: Runtime; reason: string }>
  runs: RunResult[]
}

const MiB = 2 ** 20
const f = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a')
const kTokens = (n: number): string => (n % 1024 === 0 ? `${n / 1024}k` : String(n))
const SHORT: Record<ConfigName, string> = { full: 'full cache', 'keep-0.5': 'keep 0.5 after prefill', 'keep-0.25': 'keep 0.25 after prefill', decode: 'decode-time' }

interface Cell { label: string; value: (r: RunResult) => string }

function columns(): Cell[] {
  return [
    { label: 'runtime', value: (r) => r.runtime },
    { label: 'prompt', value: (r) => kTokens(r.promptTokens) },
    { label: 'configuration', value: (r) => SHORT[r.config] },
    { label: 'ms/token (median)', value: (r) => f(r.msPerToken.median) },
    { label: 'mean', value: (r) => f(r.msPerToken.mean) },
    { label: 'in kvtrim ms/token (mean)', value: (r) => f(r.kvtrimMsPerToken.mean, 3) },
    { label: 'kvtrim share', value: (r) => `${f((100 * r.kvtrimMsPerToken.mean) / r.msPerToken.mean, 1)} %` },
    { label: 'kvtrim after prefill ms', value: (r) => (r.config === 'full' ? '-' : f(r.kvtrimPrefillMs)) },
    { label: 'cache tokens', value: (r) => (r.config === 'full' ? `${r.cacheTokens.end}` : `${r.cacheTokens.afterPrefill}..${r.cacheTokens.end}`) },
    { label: 'peak cache MiB', value: (r) => f(r.peakCacheBytes / MiB) },
    { label: 'peak RSS MiB', value: (r) => f(r.peakRssBytes / MiB, 0) },
  ]
}

function sorted(runs: RunResult[]): RunResult[] {
  return [...runs].sort((a, b) => RUNTIMES.indexOf(a.runtime) - RUNTIMES.indexOf(b.runtime) || a.promptTokens - b.promptTokens || CONFIGS.indexOf(a.config) - CONFIGS.indexOf(b.config))
}

function header(r: E2eResult): string[] {
  const m = r.machine
  return [
    `bench:e2e: ${r.options.steps} greedy decode steps after a prompt of P tokens; ${m.cpu}, ${m.cores} cores, Node ${m.node}; kvtrim ${m.kvtrim.isa}, ${m.kvtrim.threads} threads; load ${f(m.loadBefore[0], 1)} before, ${f(m.loadAfter[0], 1)} after`,
    `model ${r.model.checkpoint}: ${r.model.layers} layers, ${r.model.kvHeads} KV heads of ${r.model.headDim}, float32 cache; trained to ${r.model.trainedContext} positions: it computes at any position, so this measures cost, not quality`,
    `prompt: ${r.prompt.how}`,
    `decode-time: compressed to ${r.options.decodeRatio} x P right after the prefill, then back to it whenever a layer holds more than that + ${r.options.interval} tokens`,
  ]
}

export function table(r: E2eResult): string {
  const cols = columns()
  const rows = sorted(r.runs).map((x) => cols.map((c) => c.value(x)))
  const w = cols.map((c, i) => Math.max(c.label.length, ...rows.map((x) => x[i].length)))
  const line = (cells: string[]) => cells.map((c, i) => (i < 3 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ')
  const out = [...header(r), '', line(cols.map((c) => c.label)), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)]
  for (const s of r.skipped) out.push(`${s.runtime}: skipped: ${s.reason}`)
  const agree = agreement(r)
  if (agree) out.push('', agree)
  out.push('', `${f(r.seconds, 0)} s in all (prompt cache ${r.prompt.reused ? 'reused from an earlier run' : `built in ${f(r.prompt.buildSeconds, 1)} s`})`)
  return out.join('\n')
}

/**
 * Whether the two runtimes generated the same greedy tokens from the same cache (a check that both
 * ran the same model over the same cache; a compression can turn on float rounding where norms tie).
 */
export function agreement(r: E2eResult): string | undefined {
  const pairs: string[] = []
  let same = 0, n = 0
  for (const a of r.runs.filter((x) => x.runtime === 'typescript')) {
    const b = r.runs.find((x) => x.runtime === 'onnxruntime-node' && x.config === a.config && x.promptTokens === a.promptTokens)
    if (!b) continue
    const k = Math.min(a.generated.length, b.generated.length)
    n++
    if (a.generated.slice(0, k).every((t, i) => t === b.generated[i])) same++
    else pairs.push(`${kTokens(a.promptTokens)} ${a.config}`)
  }
  if (!n) return undefined
  return `greedy tokens, TypeScript vs onnxruntime-node: the same first tokens in ${same} of ${n} configurations${pairs.length ? ` (differ: ${pairs.join(', ')})` : ''}`
}

export function markdown(r: E2eResult): string {
  const cols = columns()
  const out = [
    ...header(r).map((l) => `${l}  `),
    '',
    `| ${cols.map((c) => c.label).join(' | ')} |`,
    `| ${cols.map((_, i) => (i < 3 ? '---' : '---:')).join(' | ')} |`,
    ...sorted(r.runs).map((x) => `| ${cols.map((c) => c.value(x)).join(' | ')} |`),
  ]
  for (const s of r.skipped) out.push('', `${s.runtime}: skipped: ${s.reason}`)
  return out.join('\n') + '\n'
}

const COLORS: Record<ConfigName, string> = { full: '#000000', 'keep-0.5': '#1f77b4', 'keep-0.25': '#2ca02c', decode: '#d62728' }
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** A "nice" upper bound for an axis: 1, 2, 2.5 or 5 times a power of ten. */
function niceMax(x: number): number {
  if (!(x > 0)) return 1
  const p = 10 ** Math.floor(Math.log10(x))
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= x) return m * p
  return 10 * p
}

function panel(x0: number, y0: number, w: number, h: number, title: string, runs: RunResult[], lengths: number[]): string {
  const s: string[] = []
  const left = x0 + 55, right = x0 + w - 15, top = y0 + 30, bottom = y0 + h - 40
  const logs = lengths.map((n) => Math.log2(n))
  const lo = Math.min(...logs), hi = Math.max(...logs)
  const X = (n: number) => (hi === lo ? (left + right) / 2 : left + ((Math.log2(n) - lo) / (hi - lo)) * (right - left))
  const yMax = niceMax(Math.max(...runs.map((r) => r.msPerToken.median), 0) * 1.05)
  const Y = (v: number) => bottom - (v / yMax) * (bottom - top)
  s.push(`<text x="${x0 + w / 2}" y="${y0 + 16}" text-anchor="middle" font-weight="bold">${esc(title)}</text>`)
  s.push(`<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="#999"/>`)
  for (let i = 0; i <= 5; i++) {
    const v = (yMax * i) / 5
    s.push(`<line x1="${left}" x2="${right}" y1="${Y(v).toFixed(1)}" y2="${Y(v).toFixed(1)}" stroke="#eee"/>`)
    s.push(`<text x="${left - 5}" y="${(Y(v) + 3).toFixed(1)}" text-anchor="end" font-size="10">${v === 0 ? '0' : v >= 10 ? v.toFixed(0) : v.toFixed(1)}</text>`)
  }
  for (const n of lengths) s.push(`<text x="${X(n).toFixed(1)}" y="${bottom + 14}" text-anchor="middle" font-size="10">${kTokens(n)}</text>`)
  s.push(`<text x="${(left + right) / 2}" y="${bottom + 30}" text-anchor="middle" font-size="11">prompt length (tokens, log scale)</text>`)
  s.push(`<text x="${x0 + 14}" y="${(top + bottom) / 2}" text-anchor="middle" font-size="11" transform="rotate(-90 ${x0 + 14} ${(top + bottom) / 2})">ms per generated token (median)</text>`)
  if (!runs.length) s.push(`<text x="${(left + right) / 2}" y="${(top + bottom) / 2}" text-anchor="middle" fill="#999">not measured</text>`)
  for (const c of CONFIGS) {
    const pts = runs.filter((r) => r.config === c).sort((a, b) => a.promptTokens - b.promptTokens)
    if (!pts.length) continue
    s.push(`<polyline fill="none" stroke="${COLORS[c]}" stroke-width="2" points="${pts.map((r) => `${X(r.promptTokens).toFixed(1)},${Y(r.msPerToken.median).toFixed(1)}`).join(' ')}"><title>${esc(SHORT[c])}</title></polyline>`)
    for (const r of pts) {
      s.push(`<circle cx="${X(r.promptTokens).toFixed(1)}" cy="${Y(r.msPerToken.median).toFixed(1)}" r="3" fill="${COLORS[c]}"><title>${esc(`${SHORT[c]}, ${kTokens(r.promptTokens)}: ${f(r.msPerToken.median)} ms/token, ${f(r.kvtrimMsPerToken.mean, 3)} ms in kvtrim, peak cache ${f(r.peakCacheBytes / MiB)} MiB, peak RSS ${f(r.peakRssBytes / MiB, 0)} MiB`)}</title></circle>`)
    }
  }
  return s.join('\n')
}

export function chart(r: E2eResult): string {
  const runtimes = r.options.runtimes
  const W = 460 * runtimes.length, H = 360
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H + 60}" viewBox="0 0 ${W} ${H + 60}" font-family="sans-serif" font-size="12">`,
    '<rect width="100%" height="100%" fill="#fff"/>',
    ...runtimes.map((rt, i) => panel(i * 460, 0, 460, H, rt === 'typescript' ? 'TypeScript forward pass (eval/llama2c.ts)' : 'ONNX decoder on onnxruntime-node', r.runs.filter((x) => x.runtime === rt), r.prompt.lengths)),
  ]
  let lx = 55
  for (const c of r.options.configs) {
    const name = c === 'decode' ? `decode-time (${r.options.decodeRatio} x P, interval ${r.options.interval})` : SHORT[c]
    parts.push(`<line x1="${lx}" x2="${lx + 20}" y1="${H + 12}" y2="${H + 12}" stroke="${COLORS[c]}" stroke-width="3"/><text x="${lx + 25}" y="${H + 16}">${esc(name)}</text>`)
    lx += 45 + 6.5 * name.length
  }
  parts.push(`<text x="55" y="${H + 40}" font-size="10">${esc(`${r.options.steps} greedy steps per point; TinyStories 260K (trained to ${r.model.trainedContext}): cost, not quality; ${r.machine.cores} cores, load ${f(r.machine.loadBefore[0], 1)}; ${r.date.slice(0, 10)}`)}</text>`)
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}
