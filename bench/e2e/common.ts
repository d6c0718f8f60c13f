// What the two runtimes' measurement processes share: the configurations, the decode loop's
// bookkeeping and the result row. No kvtrim import here (examples/transformers imports it too,
// with kvtrim from its package).

export const CONFIGS = ['full', 'keep-0.5', 'keep-0.25', 'decode'] as const
export type ConfigName = (typeof CONFIGS)[number]
export const RUNTIMES = ['typescript', 'onnxruntime-node'] as const
export type Runtime = (typeof RUNTIMES)[number]

/** A measurement process's arguments (after its script name). */
export interface RunArgs {
  prompt: string
  len: number
  config: ConfigName
  steps: number
  /** decode config: compress back to ceil(len * decodeRatio) tokens when a layer holds more than that + interval */
  interval: number
  decodeRatio: number
}

export function describeConfig(c: ConfigName, a: Pick<RunArgs, 'interval' | 'decodeRatio'>): string {
  switch (c) {
    case 'full': return 'full cache (no kvtrim)'
    case 'keep-0.5': return 'kvtrim after prefill, keep 0.5'
    case 'keep-0.25': return 'kvtrim after prefill, keep 0.25'
    case 'decode': return `kvtrim decode-time: target ${a.decodeRatio} x prompt, interval ${a.interval}`
  }
}

export function parseRunArgs(argv: string[]): RunArgs {
  const get = (name: string): string => {
    const i = argv.indexOf(`--${name}`)
    if (i < 0 || i + 1 >= argv.length) throw new Error(`missing --${name}`)
    return argv[i + 1]
  }
  const config = get('config') as ConfigName
  if (!CONFIGS.includes(config)) throw new Error(`unknown config ${config}; known: ${CONFIGS.join(', ')}`)
  const a: RunArgs = { prompt: get('prompt'), len: Number(get('len')), config, steps: Number(get('steps')), interval: Number(get('interval')), decodeRatio: Number(get('decode-ratio')) }
  for (const k of ['len', 'steps', 'interval'] as const) if (!Number.isSafeInteger(a[k]) || a[k] < (k === 'interval' ? 0 : 1)) throw new Error(`--${k}: expected a positive integer`)
  if (!(a.decodeRatio > 0 && a.decodeRatio <= 1)) throw new Error('--decode-ratio: expected a number in (0, 1]')
  return a
}

export const runArgv = (a: RunArgs): string[] => [
  '--prompt', a.prompt, '--len', String(a.len), '--config', a.config, '--steps', String(a.steps), '--interval', String(a.interval), '--decode-ratio', String(a.decodeRatio),
]

/** One (runtime, prompt length, configuration): what the issue asks for, and what explains it. */
export interface RunResult {
  runtime: Runtime
  config: ConfigName
  description: string
  promptTokens: number
  steps: number
  /** wall ms per generated token (the model's step + kvtrim's call after it) */
  msPerToken: { median: number; mean: number; min: number; max: number }
  /** of it, inside kvtrim (median and mean over the steps; most steps of the decode config call kvtrim without compressing) */
  kvtrimMsPerToken: { median: number; mean: number }
  /** kvtrim's one-off compression right after the prefill (0 for the full cache) */
  kvtrimPrefillMs: number
  /** decode steps in which kvtrim compressed */
  compressions: number
  /** tokens per layer after the prefill compression and after the last step */
  cacheTokens: { afterPrefill: number; end: number }
  /**
   * the most bytes the cache held while decoding: sum over layers of keys + values, after each
   * step and before kvtrim's call (the prompt's full cache existed before the prefill compression:
   * promptCacheBytes)
   */
  peakCacheBytes: number
  /** the whole prompt's cache, uncompressed, for reference */
  promptCacheBytes: number
  /** process.resourceUsage().maxRSS of this measurement's own process, and its RSS before the prompt cache was loaded */
  peakRssBytes: number
  baselineRssBytes: number
  /** the first generated tokens (greedy) */
  generated: number[]
  perStepMs: number[]
  perStepKvtrimMs: number[]
}

export const median = (xs: readonly number[]): number => {
  if (!xs.length) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
export const mean = (xs: readonly number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN)

/** Milliseconds since an arbitrary origin (process.hrtime.bigint). */
export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6

/** Sum over layers of keys + values bytes. */
export function cacheBytes(layers: ReadonlyArray<{ keys: { data: ArrayBufferView }; values: { data: ArrayBufferView } }>): number {
  let n = 0
  for (const l of layers) n += l.keys.data.byteLength + l.values.data.byteLength
  return n
}

/** The largest entry's index (the first on ties), over the last `vocab` logits. */
export function argmaxLast(logits: Float32Array, vocab: number): number {
  const o = logits.length - vocab
  let best = 0
  for (let i = 1; i < vocab; i++) if (logits[o + i] > logits[o + best]) best = i
  return best
}

/** Collects per-step times and finishes the row. */
export class StepLog {
  readonly stepMs: number[] = []
  readonly kvtrimMs: number[] = []
  readonly generated: number[] = []
  compressions = 0
  peakCacheBytes = 0
  kvtrimPrefillMs = 0
  afterPrefill = 0

  finish(runtime: Runtime, a: RunArgs, endTokens: number, promptCacheBytes: number, baselineRssBytes: number): RunResult {
    return {
      runtime, config: a.config, description: describeConfig(a.config, a), promptTokens: a.len, steps: a.steps,
      msPerToken: { median: median(this.stepMs), mean: mean(this.stepMs), min: Math.min(...this.stepMs), max: Math.max(...this.stepMs) },
      kvtrimMsPerToken: { median: median(this.kvtrimMs), mean: mean(this.kvtrimMs) },
      kvtrimPrefillMs: this.kvtrimPrefillMs, compressions: this.compressions,
      cacheTokens: { afterPrefill: this.afterPrefill, end: endTokens },
      peakCacheBytes: this.peakCacheBytes, promptCacheBytes,
      peakRssBytes: process.resourceUsage().maxRSS * 1024, baselineRssBytes,
      generated: this.generated.slice(0, 16), perStepMs: this.stepMs.map(round3), perStepKvtrimMs: this.kvtrimMs.map(round3),
    }
  }
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000

/** The line a measurement process ends with on stdout: its row. */
export const RESULT_PREFIX = 'E2E-RESULT '
export function emit(r: RunResult): void {
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(r)}\n`)
}
