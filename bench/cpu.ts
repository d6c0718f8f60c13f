/**
 * CPU microbenchmark of kvtrim's native path:  npx tsx bench/cpu.ts [--quick]
 * (threads: KVTRIM_THREADS=N, read by the addon at first use; default: every core).
 *
 * What it measures, and how:
 *  1. This machine's copy bandwidth: a 256 MiB Uint8Array copied with TypedArray.prototype.set
 *     (a memmove), median of 9 runs, counted as bytes moved = read + write = 2 x 256 MiB.
 *     That is the "memcpy floor" the kernels are compared with. For context it also copies the
 *     same buffer split across every kvtrim thread (worker_threads on a SharedArrayBuffer).
 *  2. compressSync on random finite fp16 keys/values [1, 8, 32768, 128] at keepRatio 0.5 and 0.1
 *     (median of 11 runs after 2 warm-ups; before each, a full GC and a 20 ms pause so no run pays
 *     for the previous one's garbage), the async compress once, and keyNormsSync.
 *     Bytes that must move = keys read once (B*H*S*D*e) + kept key and value rows read and
 *     written (2 * 2 * B*H*k*D*e), e = bytes per element; the floor is bytes / memcpy bandwidth
 *     and the goal is a median within 2x of it. keyNorms: keys read + 4 bytes per norm written.
 *     Outputs are new typed arrays on every call, so each call also faults in fresh pages; the
 *     breakdown below the table shows what that and the other phases cost.
 *  3. The plain TypeScript reference (test/oracle.ts) on the same data, once: on [1, 8, 4096, 128]
 *     always, and on the main shape too without --quick. The native result must equal the
 *     oracle's bit for bit (indices, kept rows, norms); the script fails loudly otherwise.
 *  4. More shapes, native path only (skipped with --quick, or above ~4 GiB of memory).
 *  5. Scorers (docs/policies.md): compressSync of the main shape at keepRatio 0.5 with each
 *     `score` ('low-norm', 'high-norm', 'kv-norm', 'keydiff', { project }, { scores }), median
 *     as above. Bytes that must move per scorer: what the score itself needs read (keys once;
 *     kv-norm: keys and values once; given scores: the float32 scores, no keys) + the kept key
 *     and value rows read and written. keydiff reads the keys three times by design (anchor,
 *     score, the norm pass), so its ratio shows that cost against a one-read floor. Each scorer
 *     is checked against the oracle bit for bit on [1, 8, 1024, 128] first.
 *  6. Selection modes (docs/policies.md "Selection modes"): compressSync of the main shape with
 *     `selection: 'adaptive'` (AdaKV, alpha 0.2) over low-norm and keydiff at keepRatio 0.5, and
 *     `selection: { threshold: t }` over low-norm with t the median low-norm score of the whole
 *     tensor (about half the tokens kept, unevenly across heads). These run two native passes
 *     (tokenScores, the counts on the host, then compress of the given scores with headKeep), and
 *     the floor does NOT include the second pass's extra bytes: bytes that must move are the
 *     scorer's one read (as in 5.), each head's kept key and value rows read and written, and the
 *     zero padding rows written up to the longest head (kmax), so the ratio shows the two-pass
 *     cost against the fused per-head compress's floor. For adaptive low-norm the time is split
 *     into tokenScores, compress of { scores, headKeep } and the rest (the counts, on the host).
 *     Each mode is checked on [1, 8, 1024, 128] first: the counts against a sort-based reference
 *     written here (threshold: p + #{scores >= t}; adaptive: floor, then the best of all heads),
 *     and the rows against the oracle's selection with each head's count.
 * Prints a table and writes bench/results/cpu.json. --quick (CI smoke run): 3 runs each, the main
 * shape, and the oracle check on the small shape only. --scorers: the memcpy floor and section 5
 * only (bench/results/cpu-scorers.json). --selection: the memcpy floor and section 6 only
 * (bench/results/cpu-selection.json).
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import * as v8 from 'node:v8'
import * as vm from 'node:vm'
import { Worker } from 'node:worker_threads'
import * as kvtrim from '../lib/index'
import { backend, compress, keepCount, compressSync, keyNormsSync, type CompressOptions, type CompressResult } from '../lib/index'
import * as oracle from '../test/oracle'

const QUICK = process.argv.includes('--quick')
const SCORERS_ONLY = process.argv.includes('--scorers')
const SELECTION_ONLY = process.argv.includes('--selection')
const MEMCPY_RUNS = QUICK ? 3 : 9
const WARMUPS = QUICK ? 1 : 2
const RUNS = QUICK ? 3 : 11
const MEMORY_LIMIT = 4 * 2 ** 30 // skip a shape whose inputs + outputs would exceed this
const MiB = 2 ** 20

type DType = 'float16' | 'bfloat16' | 'float32'
interface Tensor {
  type: DType
  data: Uint16Array | Float32Array
  dims: number[]
}

// ---- timing helpers ---------------------------------------------------------------------------

// A full GC outside the timed region (the flag can be turned on at run time; tsx has no CLI for it).
v8.setFlagsFromString('--expose-gc')
const gcNow = vm.runInNewContext('gc') as () => void
/**
 * Full GC, then 20 ms of event loop before the clock starts: V8's background sweeping finishes,
 * and the finalizers of the previous run's outputs run (they need an event-loop turn), returning
 * their memory to kvtrim's buffer pool, as between any two calls of a Node program. A tight
 * synchronous loop never turns the loop, so every call would pay fresh pages (see the breakdown).
 */
async function settle(): Promise<void> {
  gcNow()
  await new Promise((resolve) => setTimeout(resolve, 20))
}

const now = (): number => performance.now()
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** Milliseconds of each timed run of fn, after `warmups` untimed runs; a full GC before each. */
async function timeRuns(fn: () => unknown, warmups: number, runs: number): Promise<number[]> {
  for (let i = 0; i < warmups; i++) fn()
  const times: number[] = []
  for (let i = 0; i < runs; i++) {
    await settle()
    const t0 = now()
    fn()
    times.push(now() - t0)
  }
  return times
}

// ---- random tensors (xorshift32; no closures in the loops: tsx wraps them and is 10x slower) ----

/** Random finite 16-bit values around magnitude 1: random sign, 8 exponents, random mantissa. */
function random16(type: 'float16' | 'bfloat16', n: number, seed: number): Uint16Array {
  const out = new Uint16Array(n + (n & 1))
  const words = new Uint32Array(out.buffer)
  let x = seed | 0 || 1
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    const lo = x & 0x3fff
    const hi = (x >>> 14) & 0x3fff
    let a: number, b: number
    if (type === 'float16') {
      // exponent 10..17 (bias 15): |x| in [2^-5, 2^3)
      a = ((lo & 1) << 15) | ((10 + ((lo >> 1) & 7)) << 10) | (lo >> 4)
      b = ((hi & 1) << 15) | ((10 + ((hi >> 1) & 7)) << 10) | (hi >> 4)
    } else {
      // exponent 123..130 (bias 127): the same range
      a = ((lo & 1) << 15) | ((123 + ((lo >> 1) & 7)) << 7) | ((lo >> 4) & 0x7f)
      b = ((hi & 1) << 15) | ((123 + ((hi >> 1) & 7)) << 7) | ((hi >> 4) & 0x7f)
    }
    words[i] = a | (b << 16)
  }
  return n & 1 ? out.subarray(0, n) : out
}

function random32(n: number, seed: number): Float32Array {
  const out = new Float32Array(n)
  const bits = new Uint32Array(out.buffer)
  let x = seed | 0 || 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    bits[i] = (x & 0x80000000) | ((123 + ((x >>> 28) & 7)) << 23) | (x & 0x7fffff)
  }
  return out
}

function randomTensor(type: DType, dims: number[], seed: number): Tensor {
  const n = dims.reduce((a, b) => a * b, 1)
  return { type, dims: [...dims], data: type === 'float32' ? random32(n, seed) : random16(type, n, seed) }
}

const elemBytes = (type: DType): number => (type === 'float32' ? 4 : 2)

/** Bytes that must move for compress: keys read once + kept key and value rows read and written. */
function compressBytes(dims: number[], type: DType, keepRatio: number): number {
  const [B, H, S, D] = dims
  const e = elemBytes(type)
  return B * H * S * D * e + 2 * 2 * B * H * keepCount(S, { keepRatio }) * D * e
}
/** keyNorms: keys read once + one fp32 norm written per row. */
function normsBytes(dims: number[], type: DType): number {
  const [B, H, S, D] = dims
  return B * H * S * D * elemBytes(type) + B * H * S * 4
}
/** Memory a compress needs: inputs, outputs, norm scratch, indices. */
function footprint(dims: number[], type: DType, keepRatio: number): number {
  const [B, H, S, D] = dims
  const e = elemBytes(type)
  return 2 * B * H * S * D * e + 2 * B * H * keepCount(S, { keepRatio }) * D * e + B * H * S * 8
}

// ---- 1. memcpy bandwidth ----------------------------------------------------------------------

interface Memcpy {
  bytes: number
  runs: number
  timesMs: number[]
  medianMs: number
  /** bytes moved (2 x size) per second, median run */
  bytesPerSec: number
}

function memcpySingle(size: number, runs: number): Memcpy {
  const src = new Uint8Array(size)
  const dst = new Uint8Array(size)
  for (let i = 0; i < size; i += 4096) src[i] = i & 0xff // fault every page in before timing
  dst.fill(1)
  dst.set(src) // warm-up
  const times: number[] = []
  for (let i = 0; i < runs; i++) {
    const t0 = now()
    dst.set(src)
    times.push(now() - t0)
  }
  const m = median(times)
  return { bytes: size, runs, timesMs: times, medianMs: m, bytesPerSec: (2 * size) / (m / 1e3) }
}

// Each worker copies its slice of a shared buffer when the generation counter ctl[0] moves,
// then bumps ctl[1]; ctl[0] = -1 ends it.
const COPY_WORKER = `
const { workerData } = require('node:worker_threads')
const { src, dst, ctl, lo, hi } = workerData
const s = new Uint8Array(src, lo, hi - lo), d = new Uint8Array(dst, lo, hi - lo)
let gen = 0
for (;;) {
  Atomics.wait(ctl, 0, gen)
  gen = Atomics.load(ctl, 0)
  if (gen < 0) break
  d.set(s)
  Atomics.add(ctl, 1, 1)
  Atomics.notify(ctl, 1)
}`

async function memcpyThreads(size: number, threads: number, runs: number): Promise<Memcpy> {
  const src = new SharedArrayBuffer(size)
  const dst = new SharedArrayBuffer(size)
  const ctl = new Int32Array(new SharedArrayBuffer(8))
  new Uint8Array(src).fill(3)
  new Uint8Array(dst).fill(1)
  const slice = Math.ceil(size / threads / 4096) * 4096
  const workers: Worker[] = []
  for (let t = 1; t < threads; t++) {
    const lo = Math.min(size, t * slice), hi = Math.min(size, (t + 1) * slice)
    workers.push(new Worker(COPY_WORKER, { eval: true, workerData: { src, dst, ctl, lo, hi } }))
  }
  await Promise.all(workers.map((w) => new Promise((resolve) => w.once('online', resolve))))
  const s = new Uint8Array(src, 0, Math.min(size, slice))
  const d = new Uint8Array(dst, 0, Math.min(size, slice))
  const once = (): number => {
    Atomics.store(ctl, 1, 0)
    const t0 = now()
    Atomics.add(ctl, 0, 1)
    Atomics.notify(ctl, 0)
    d.set(s)
    for (let done; (done = Atomics.load(ctl, 1)) < workers.length; ) Atomics.wait(ctl, 1, done)
    return now() - t0
  }
  once() // warm-up (also lets every worker reach its first wait)
  const times: number[] = []
  for (let i = 0; i < runs; i++) times.push(once())
  Atomics.store(ctl, 0, -1)
  Atomics.notify(ctl, 0)
  await Promise.all(workers.map((w) => new Promise((resolve) => w.once('exit', resolve))))
  const m = median(times)
  return { bytes: size, runs, timesMs: times, medianMs: m, bytesPerSec: (2 * size) / (m / 1e3) }
}

// ---- 2-4. kvtrim --------------------------------------------------------------------------------

interface Row {
  op: 'compressSync' | 'compress (async)' | 'keyNormsSync' | 'oracle compress (TS)'
  /** section 5: the scorer (absent: the default, low-norm) */
  score?: string
  shape: number[]
  dtype: DType
  keepRatio: number | null
  kept: number | null
  warmups: number
  runs: number
  timesMs: number[]
  medianMs: number
  minMs: number
  bytesToMove: number
  /** bytesToMove / median time */
  gbPerSec: number
  /** bytesToMove / single-thread memcpy bandwidth */
  floorMs: number
  /** median / floor (goal: <= 2) */
  ratioToFloor: number
}

let floorBandwidth = 0 // bytes per second, set from the memcpy measurement
const rows: Row[] = []

function record(r: Omit<Row, 'medianMs' | 'minMs' | 'gbPerSec' | 'floorMs' | 'ratioToFloor'>): Row {
  const medianMs = median(r.timesMs)
  const floorMs = (r.bytesToMove / floorBandwidth) * 1e3
  const row: Row = {
    ...r,
    medianMs,
    minMs: Math.min(...r.timesMs),
    gbPerSec: r.bytesToMove / (medianMs / 1e3) / 1e9,
    floorMs,
    ratioToFloor: medianMs / floorMs,
  }
  rows.push(row)
  return row
}

// A compress row's fields (before record() adds the statistics).
function compressRow(op: Row['op'], keys: Tensor, keepRatio: number, warmups: number, runs: number, timesMs: number[]) {
  const kept = keepCount(keys.dims[2], { keepRatio })
  return { op, shape: keys.dims, dtype: keys.type, keepRatio, kept, warmups, runs, timesMs, bytesToMove: compressBytes(keys.dims, keys.type, keepRatio) }
}

async function benchCompress(keys: Tensor, values: Tensor, keepRatio: number, warmups = WARMUPS, runs = RUNS): Promise<Row> {
  const options: CompressOptions = { keepRatio }
  return record(compressRow('compressSync', keys, keepRatio, warmups, runs, await timeRuns(() => compressSync(keys, values, options), warmups, runs)))
}

async function benchCompressAsync(keys: Tensor, values: Tensor, keepRatio: number): Promise<Row> {
  await settle()
  const t0 = now()
  await compress(keys, values, { keepRatio })
  const ms = now() - t0
  return record(compressRow('compress (async)', keys, keepRatio, 0, 1, [ms]))
}

async function benchNorms(keys: Tensor, warmups = WARMUPS, runs = RUNS): Promise<Row> {
  return record({
    op: 'keyNormsSync',
    shape: keys.dims,
    dtype: keys.type,
    keepRatio: null,
    kept: null,
    warmups,
    runs,
    timesMs: await timeRuns(() => keyNormsSync(keys), warmups, runs),
    bytesToMove: normsBytes(keys.dims, keys.type),
  })
}

/** First differing element of two arrays, or -1. */
function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length)
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i
  return -1
}

function fail(what: string): never {
  const line = '!'.repeat(78)
  console.error(`\n${line}\nBENCHMARK FAILED: native result differs from the TypeScript oracle\n${what}\n${line}\n`)
  process.exit(1)
}

/** Native == oracle, bit for bit: kept, lengths, indices, key and value rows. */
function checkSame(label: string, native: CompressResult, ref: oracle.OracleCompressResult): void {
  if (native.kept !== ref.kept) fail(`${label}: kept ${native.kept}, oracle ${ref.kept}`)
  const pairs: Array<[string, ArrayLike<number>, ArrayLike<number>]> = [
    ['lengths', native.lengths, ref.lengths],
    ['indices', native.indices, ref.indices],
    ['keys.dims', native.keys.dims, ref.keys.dims],
    ['values.dims', native.values.dims, ref.values.dims],
    // float32 data compared as bits too (a kept row is a copy, so even NaN payloads must match)
    ['keys.data', bitsOf(native.keys.data), bitsOf(ref.keys.data)],
    ['values.data', bitsOf(native.values.data), bitsOf(ref.values.data)],
  ]
  for (const [name, a, b] of pairs) {
    const i = firstDiff(a, b)
    if (i >= 0) fail(`${label}: ${name}[${i}] is ${a[i]} natively and ${b[i]} in the oracle (lengths ${a.length} / ${b.length})`)
  }
}

const bitsOf = (a: Uint16Array | Float32Array): Uint16Array | Uint32Array =>
  a instanceof Float32Array ? new Uint32Array(a.buffer, a.byteOffset, a.length) : a

interface OracleRun {
  shape: number[]
  dtype: DType
  keepRatio: number
  oracleMs: number
  nativeMedianMs: number
  speedup: number
  bitExact: true
  checked: string[]
}

/** Times the TS oracle once and native (median) on the same data, and checks they agree. */
async function oracleVersusNative(keys: Tensor, values: Tensor, keepRatio: number, checkNorms: boolean): Promise<OracleRun> {
  const label = `[${keys.dims.join(', ')}] ${keys.type} keepRatio ${keepRatio}`
  const native = compressSync(keys, values, { keepRatio })
  await settle()
  const t0 = now()
  const ref = oracle.compress(keys, values, { keepRatio })
  const oracleMs = now() - t0
  checkSame(label, native, ref)
  const checked = ['kept', 'lengths', 'indices', 'keys.data', 'values.data']
  if (checkNorms) {
    const i = firstDiff(bitsOf(keyNormsSync(keys)), bitsOf(oracle.keyNorms(keys)))
    if (i >= 0) fail(`${label}: keyNorms differ at row ${i}`)
    checked.push('keyNorms')
  }
  record(compressRow('oracle compress (TS)', keys, keepRatio, 0, 1, [oracleMs]))
  const nativeRow = rows.find(
    (r) => r.op === 'compressSync' && r.keepRatio === keepRatio && r.dtype === keys.type && r.shape.join() === keys.dims.join(),
  )
  const nativeMedianMs = nativeRow ? nativeRow.medianMs : (await benchCompress(keys, values, keepRatio)).medianMs
  return { shape: keys.dims, dtype: keys.type, keepRatio, oracleMs, nativeMedianMs, speedup: oracleMs / nativeMedianMs, bitExact: true, checked }
}

/** [1, 8, 4096, 128] fp16: native timings, and the oracle once per keepRatio on the same data. */
async function smallShapeWithOracle(): Promise<OracleRun[]> {
  const small = [1, 8, 4096, 128]
  const keys = randomTensor('float16', small, 0x2468ace)
  const values = randomTensor('float16', small, 0x1357bdf)
  await benchCompress(keys, values, 0.5)
  await benchCompress(keys, values, 0.1)
  if (!QUICK) await benchNorms(keys)
  return [await oracleVersusNative(keys, values, 0.5, true), await oracleVersusNative(keys, values, 0.1, false)]
}

async function nativeOnly(type: DType, dims: number[]): Promise<void> {
  await settle() // the previous shape's tensors go first
  const keys = randomTensor(type, dims, 0xabcdef)
  const values = randomTensor(type, dims, 0xfedcba)
  await benchCompress(keys, values, 0.5)
  await benchCompress(keys, values, 0.1)
  await benchNorms(keys)
}

// ---- 5. scorers ---------------------------------------------------------------------------------

type ScoreOption = NonNullable<CompressOptions['score']>
const tokenScoresSync = (kvtrim as unknown as { tokenScoresSync(k: Tensor, v: Tensor, o: { score: unknown }): Float32Array }).tokenScoresSync

/** Per-head vectors [H * D] for the project scorer (random, seeded). */
function projectVectors(H: number, D: number): Float32Array {
  return random32(H * D, 0x5eed)
}

/** The scorers, named as the table prints them, for keys of `dims`. */
function scorers(keys: Tensor, values: Tensor): Array<[string, ScoreOption]> {
  const [B, H, S, D] = keys.dims
  const given = { type: 'float32', data: tokenScoresSync(keys, values, { score: 'low-norm' }), dims: [B, H, S] }
  return [
    ['low-norm', 'low-norm'],
    ['high-norm', 'high-norm'],
    ['kv-norm', 'kv-norm' as ScoreOption],
    ['keydiff', 'keydiff' as ScoreOption],
    ['project', { project: projectVectors(H, D) } as unknown as ScoreOption],
    ['scores', { scores: given } as unknown as ScoreOption],
  ]
}

/** Bytes that must move for compress with a scorer (see 5. in the header). */
function scorerBytes(name: string, keys: Tensor, values: Tensor, keepRatio: number): number {
  const [B, H, S, D] = keys.dims
  const e = elemBytes(keys.type)
  const gather = 2 * B * H * keepCount(S, { keepRatio }) * (D + values.dims[3]) * e
  if (name === 'scores') return B * H * S * 4 + gather
  if (name === 'kv-norm') return B * H * S * (D + values.dims[3]) * e + gather
  return B * H * S * D * e + gather
}

/** Each scorer against the oracle on a small shape (fails loudly), then timed on the main shape. */
async function benchScorers(keys: Tensor, values: Tensor, keepRatio: number): Promise<Row[]> {
  const small = [1, 8, 1024, 128]
  const sk = randomTensor('float16', small, 0x600d), sv = randomTensor('float16', small, 0xf00d)
  for (const [name, score] of scorers(sk, sv)) {
    const o = { keepRatio, score }
    checkSame(`[${small.join(', ')}] float16 keepRatio ${keepRatio} score ${name}`, compressSync(sk, sv, o), oracle.compress(sk, sv, o as oracle.OracleOptions))
  }
  const out: Row[] = []
  for (const [name, score] of scorers(keys, values)) {
    const options: CompressOptions = { keepRatio, score }
    const timesMs = await timeRuns(() => compressSync(keys, values, options), WARMUPS, RUNS)
    out.push(record({ ...compressRow('compressSync', keys, keepRatio, WARMUPS, RUNS, timesMs), score: name, bytesToMove: scorerBytes(name, keys, values, keepRatio) }))
  }
  return out
}

// ---- 6. selection modes ----------------------------------------------------------------------------

interface SelectionMode {
  name: string
  score: 'low-norm' | 'keydiff'
  /** the options for keys of this shape (threshold: t from their scores) */
  options(keys: Tensor, values: Tensor): CompressOptions
}

/** The median low-norm score of every token of every head (float32): about half at or above it. */
function medianScore(keys: Tensor, values: Tensor): number {
  const sc = Float32Array.from(tokenScoresSync(keys, values, { score: 'low-norm' })).sort()
  return sc[Math.floor(sc.length / 2)]
}

const SELECTION_MODES: SelectionMode[] = [
  { name: 'adaptive low-norm', score: 'low-norm', options: () => ({ keepRatio: 0.5, selection: 'adaptive' }) },
  { name: 'adaptive keydiff', score: 'keydiff', options: () => ({ keepRatio: 0.5, score: 'keydiff', selection: 'adaptive' }) },
  { name: 'threshold low-norm (t = median)', score: 'low-norm', options: (k, v) => ({ selection: { threshold: medianScore(k, v) } }) },
]

/**
 * The per-head counts docs/policies.md defines, written here with sorts (selection.cc
 * radix-selects): threshold, p + #{middle scores >= t}; adaptive, each head's floor(alpha * m)
 * best middle tokens, then the best H * (m - f) of the rest across heads by (score, head,
 * position). No sink / recent here (p = 0): the bench's options have none.
 */
function referenceCounts(scores: Float32Array, dims: number[], o: CompressOptions): Int32Array {
  const [B, H, S] = dims
  const out = new Int32Array(B * H)
  const sel = o.selection as { threshold: number } | 'adaptive'
  const before = (a: number, b: number): number => (Number.isNaN(a) ? (Number.isNaN(b) ? 0 : 1) : Number.isNaN(b) ? -1 : b - a)
  for (let b = 0; b < B; b++) {
    if (typeof sel === 'object') {
      const t = Math.fround(sel.threshold)
      for (let h = 0; h < H; h++) {
        let n = 0
        for (let i = 0; i < S; i++) n += scores[(b * H + h) * S + i] >= t ? 1 : 0
        out[b * H + h] = n
      }
      continue
    }
    const m = keepCount(S, { keepRatio: o.keepRatio! }), f = Math.min(m, Math.floor(0.2 * m))
    const rest: Array<[number, number, number]> = [] // score, head, position
    for (let h = 0; h < H; h++) {
      const mine = Array.from({ length: S }, (_, i) => i).sort((x, y) => before(scores[(b * H + h) * S + x], scores[(b * H + h) * S + y]) || x - y)
      out[b * H + h] = f
      for (const i of mine.slice(f)) rest.push([scores[(b * H + h) * S + i], h, i])
    }
    rest.sort((x, y) => before(x[0], y[0]) || x[1] - y[1] || x[2] - y[2])
    for (const [, h] of rest.slice(0, H * (m - f))) out[b * H + h]++
  }
  return out
}

/** Bytes that must move (6. in the header): the scorer's read, the kept rows, the padding. */
function selectionBytes(score: string, keys: Tensor, values: Tensor, headLengths: Int32Array, kmax: number): number {
  const [B, H, S, D] = keys.dims
  const e = elemBytes(keys.type), row = (D + values.dims[3]) * e
  let kept = 0
  for (const n of headLengths) kept += n
  return (score === 'kv-norm' ? B * H * S * row : B * H * S * D * e) + 2 * kept * row + (B * H * kmax - kept) * row
}

/** Checks every mode on a small shape, then times it (and, for adaptive low-norm, its passes) on the main one. */
async function benchSelection(keys: Tensor, values: Tensor): Promise<{ rows: Row[]; passes: Record<string, number>; spread: Record<string, { min: number; max: number; kmax: number }> }> {
  const small = [1, 8, 1024, 128]
  const sk = randomTensor('float16', small, 0x5e1), sv = randomTensor('float16', small, 0x5e2)
  for (const mode of SELECTION_MODES) {
    const o = mode.options(sk, sv)
    const label = `[${small.join(', ')}] float16 ${mode.name}`
    const r = compressSync(sk, sv, o)
    const scores = tokenScoresSync(sk, sv, { score: mode.score })
    const want = referenceCounts(scores, small, o)
    const i = firstDiff(r.headLengths, want)
    if (i >= 0) fail(`${label}: headLengths[${i}] is ${r.headLengths[i]} natively, ${want[i]} by the reference counts`)
    // each head's rows: the oracle's selection with that head's count (oracle.compress per head)
    const [B, H, S, D] = small
    for (let h = 0; h < B * H; h++) {
      const one = (t: Tensor): Tensor => ({ type: t.type, data: t.data.subarray(h * S * D, (h + 1) * S * D), dims: [1, 1, S, D] }) as Tensor
      const ref = oracle.compress(one(sk), one(sv), { keep: r.headLengths[h], score: mode.score } as oracle.OracleOptions)
      const got = (t: Uint16Array | Float32Array) => t.subarray(h * r.kept * D, (h * r.kept + r.headLengths[h]) * D)
      for (const [name, a, b] of [['indices', r.indices.subarray(h * r.kept, h * r.kept + r.headLengths[h]), ref.indices], ['keys', got(r.keys.data as Uint16Array), ref.keys.data], ['values', got(r.values.data as Uint16Array), ref.values.data]] as const) {
        const j = firstDiff(a, b)
        if (j >= 0 || a.length !== b.length) fail(`${label}: head ${h} ${name}[${j}] differs from the oracle with keep ${r.headLengths[h]}`)
      }
    }
  }
  const out: Row[] = []
  const spread: Record<string, { min: number; max: number; kmax: number }> = {}
  for (const mode of SELECTION_MODES) {
    const options = mode.options(keys, values)
    const probe = compressSync(keys, values, options)
    spread[mode.name] = { min: Math.min(...probe.headLengths), max: Math.max(...probe.headLengths), kmax: probe.kept }
    const timesMs = await timeRuns(() => compressSync(keys, values, options), WARMUPS, RUNS)
    const kept = probe.headLengths.reduce((a, x) => a + x, 0) / probe.headLengths.length
    out.push(record({
      op: 'compressSync', score: mode.name, shape: keys.dims, dtype: keys.type, keepRatio: options.keepRatio ?? null, kept: Math.round(kept), warmups: WARMUPS, runs: RUNS, timesMs,
      bytesToMove: selectionBytes(mode.score, keys, values, probe.headLengths, probe.kept),
    }))
  }
  // the passes of adaptive low-norm: tokenScores; compress of the given scores with headKeep; the rest
  const o = SELECTION_MODES[0].options(keys, values)
  const counts = compressSync(keys, values, o).headLengths
  const [B, H, S] = keys.dims
  const given = { type: 'float32' as const, data: tokenScoresSync(keys, values, { score: 'low-norm' }), dims: [B, H, S] }
  const scoresMs = median(await timeRuns(() => tokenScoresSync(keys, values, { score: 'low-norm' }), WARMUPS, RUNS))
  const secondMs = median(await timeRuns(() => compressSync(keys, values, { score: { scores: given } as unknown as ScoreOption, headKeep: counts }), WARMUPS, RUNS))
  const passes = { tokenScoresMs: scoresMs, compressGivenHeadKeepMs: secondMs, countsAndRestMs: out[0].medianMs - scoresMs - secondMs }
  return { rows: out, passes, spread }
}

// ---- output -------------------------------------------------------------------------------------

const fmt = (x: number, digits = 2): string => x.toFixed(digits)
const shapeStr = (d: number[]): string => `[${d.join(',')}]`

function printTable(): void {
  const head = ['op', 'shape', 'dtype', 'keep', 'k', 'runs', 'median ms', 'min ms', 'MiB to move', 'GB/s eff.', 'x floor']
  const body = rows.map((r) => [
    r.score ? `${r.op} ${r.score}` : r.op,
    shapeStr(r.shape),
    r.dtype,
    r.keepRatio === null ? '-' : String(r.keepRatio),
    r.kept === null ? '-' : String(r.kept),
    String(r.runs),
    fmt(r.medianMs),
    fmt(r.minMs),
    fmt(r.bytesToMove / MiB, 1),
    fmt(r.gbPerSec, 1),
    fmt(r.ratioToFloor, 1),
  ])
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((b) => b[c].length)))
  const line = (cells: string[]): string => cells.map((s, c) => (c < 3 ? s.padEnd(widths[c]) : s.padStart(widths[c]))).join('  ')
  console.log(line(head))
  console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  for (const b of body) console.log(line(b))
}

// ---- main ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const info = backend()
  const cpus = os.cpus()
  const started = new Date()
  console.log(`kvtrim CPU benchmark${QUICK ? ' (--quick)' : ''}, ${started.toISOString()}`)
  console.log(`node ${process.version} ${process.platform}-${process.arch}; CPU ${cpus[0]?.model ?? 'unknown'} x ${cpus.length}`)
  console.log(
    `kvtrim cpu path: isa ${info.cpu.isa}, ${info.cpu.threads} threads` +
      ` (KVTRIM_THREADS=${process.env.KVTRIM_THREADS ?? 'unset'}); cuda used: ${info.cuda.used}` +
      (info.cuda.reason ? ` (${info.cuda.reason})` : ''),
  )

  // 1. memcpy
  const single = memcpySingle(256 * MiB, MEMCPY_RUNS)
  floorBandwidth = single.bytesPerSec
  const multi = info.cpu.threads > 1 ? await memcpyThreads(256 * MiB, info.cpu.threads, MEMCPY_RUNS) : single
  console.log(
    `memcpy (TypedArray.set, 256 MiB, median of ${single.runs}): ${fmt(single.medianMs)} ms = ` +
      `${fmt(single.bytesPerSec / 1e9, 1)} GB/s moved (read + write); ` +
      `on ${info.cpu.threads} threads: ${fmt(multi.bytesPerSec / 1e9, 1)} GB/s`,
  )
  console.log(`floor = bytes to move / ${fmt(floorBandwidth / 1e9, 1)} GB/s (the single-thread figure)\n`)

  if (SCORERS_ONLY) return scorersOnly(started, info, cpus, single, multi)
  if (SELECTION_ONLY) return selectionOnly(started, info, cpus, single, multi)

  // 2. the main shape
  const main = [1, 8, 32768, 128]
  const keys = randomTensor('float16', main, 0x1234567)
  const values = randomTensor('float16', main, 0x7654321)
  const mainRow = await benchCompress(keys, values, 0.5)
  await benchCompress(keys, values, 0.1)
  await benchCompressAsync(keys, values, 0.5)
  await benchCompressAsync(keys, values, 0.1)
  const normsRow = await benchNorms(keys)

  // Where the time of the main compress goes: norms alone; norms + selection (keep 1: the radix
  // select runs in full and almost nothing is gathered); fresh output pages faulted in (allocate
  // and fill typed arrays of the outputs' size) versus the same fill on pages already mapped.
  const keepOne = median(await timeRuns(() => compressSync(keys, values, { keep: 1 }), WARMUPS, RUNS))
  const outElems = (2 * main[0] * main[1] * keepCount(main[2], { keepRatio: 0.5 }) * main[3])
  const fresh = median(await timeRuns(() => new Uint16Array(outElems).fill(1), 1, RUNS))
  const reused = new Uint16Array(outElems)
  reused.fill(2)
  const warmFill = median(await timeRuns(() => reused.fill(1), 1, RUNS))
  // CPU time in the kernel and page faults of one compress call (medians of a few calls).
  const usage = { minorFaults: [] as number[], userMs: [] as number[], systemMs: [] as number[] }
  for (let i = 0; i < (QUICK ? 3 : 5); i++) {
    await settle()
    const r0 = process.resourceUsage()
    compressSync(keys, values, { keepRatio: 0.5 })
    const r1 = process.resourceUsage()
    usage.minorFaults.push(r1.minorPageFault - r0.minorPageFault)
    usage.userMs.push((r1.userCPUTime - r0.userCPUTime) / 1e3)
    usage.systemMs.push((r1.systemCPUTime - r0.systemCPUTime) / 1e3)
  }
  const breakdown = {
    shape: main,
    dtype: 'float16',
    keepRatio: 0.5,
    compressMedianMs: mainRow.medianMs,
    keyNormsMedianMs: normsRow.medianMs,
    compressKeep1MedianMs: keepOne,
    selectEstimateMs: keepOne - normsRow.medianMs,
    gatherAndOutputsEstimateMs: mainRow.medianMs - keepOne,
    outputBytes: outElems * 2,
    freshOutputFillMs: fresh,
    warmOutputFillMs: warmFill,
    pageFaultEstimateMs: fresh - warmFill,
    perCall: {
      minorPageFaults: median(usage.minorFaults),
      userCpuMs: median(usage.userMs),
      systemCpuMs: median(usage.systemMs),
    },
  }

  // 5. the scorers on the main shape (after the breakdown, before the other shapes' allocations)
  const scorerRows = await benchScorers(keys, values, 0.5)
  // 6. the selection modes
  const selection = await benchSelection(keys, values)

  // 3. the oracle
  const oracleRuns: OracleRun[] = []
  if (!QUICK) {
    console.log('oracle (plain TypeScript) on the main shape: one run, a few seconds ...')
    oracleRuns.push(await oracleVersusNative(keys, values, 0.5, false))
  }
  oracleRuns.push(...(await smallShapeWithOracle()))

  // 4. more shapes, native path only
  const skipped: Array<{ shape: number[]; dtype: DType; reason: string }> = []
  if (!QUICK) {
    const more: Array<[DType, number[]]> = [
      ['float16', [8, 32, 4096, 128]],
      ['bfloat16', [1, 32, 32768, 64]],
      ['float32', [1, 8, 32768, 128]],
    ]
    for (const [type, dims] of more) {
      const bytes = footprint(dims, type, 0.5)
      if (bytes > MEMORY_LIMIT) skipped.push({ shape: dims, dtype: type, reason: `needs ${fmt(bytes / 2 ** 30)} GiB` })
      else await nativeOnly(type, dims)
    }
  }

  console.log('')
  printTable()
  for (const s of skipped) console.log(`skipped ${shapeStr(s.shape)} ${s.dtype}: ${s.reason}`)
  const allThreadsRatio = mainRow.medianMs / ((mainRow.bytesToMove / multi.bytesPerSec) * 1e3)
  console.log(
    `\nmain: compressSync [1,8,32768,128] float16 keepRatio 0.5 on ${info.cpu.threads} threads: ` +
      `${fmt(mainRow.medianMs)} ms median, ${fmt(mainRow.ratioToFloor)}x the memcpy floor ` +
      `(${fmt(mainRow.floorMs)} ms; ${fmt(allThreadsRatio)}x the ${info.cpu.threads}-thread floor)` +
      ` - goal 2x: ${mainRow.ratioToFloor <= 2 ? 'met' : 'NOT met'}`,
  )
  const b = breakdown
  console.log(
    `  where it goes: keyNorms ${fmt(b.keyNormsMedianMs)} ms; selection ~${fmt(b.selectEstimateMs)} ms` +
      ` (compress with keep 1: ${fmt(b.compressKeep1MedianMs)} ms); gather + fresh outputs ~${fmt(b.gatherAndOutputsEstimateMs)} ms.` +
      `\n  Writing ${fmt(b.outputBytes / MiB, 0)} MiB into newly allocated typed arrays costs ${fmt(b.freshOutputFillMs)} ms,` +
      ` into already-mapped ones ${fmt(b.warmOutputFillMs)} ms: ~${fmt(b.pageFaultEstimateMs)} ms of page faults per call.` +
      `\n  One compress call: ${b.perCall.minorPageFaults} minor page faults, CPU time ${fmt(b.perCall.userCpuMs, 1)} ms user +` +
      ` ${fmt(b.perCall.systemCpuMs, 1)} ms system (all threads).`,
  )
  console.log(
    `scorers, compressSync [1,8,32768,128] float16 keepRatio 0.5: ` +
      scorerRows.map((r) => `${r.score} ${fmt(r.medianMs)} ms (${fmt(r.ratioToFloor, 1)}x)`).join(', ') +
      '; each bit-exact against the oracle on [1,8,1024,128]',
  )
  printSelection(selection)
  for (const o of oracleRuns) {
    console.log(
      `oracle ${shapeStr(o.shape)} ${o.dtype} keepRatio ${o.keepRatio}: TS ${fmt(o.oracleMs, 0)} ms once, native ` +
        `${fmt(o.nativeMedianMs)} ms median: ${fmt(o.speedup, 0)}x faster; bit-exact (${o.checked.join(', ')})`,
    )
  }

  writeJson('cpu.json', {
    ...runInfo(started, info, cpus, single, multi),
    main: { ...mainRow, ratioToAllThreadsFloor: allThreadsRatio, goalMet: mainRow.ratioToFloor <= 2 },
    breakdown,
    scorers: scorerRows,
    selection,
    oracle: oracleRuns,
    results: rows,
    skipped,
  })
}

/** The machine, the build and the memcpy floor: the head of every JSON this script writes. */
function runInfo(started: Date, info: ReturnType<typeof backend>, cpus: os.CpuInfo[], single: Memcpy, multi: Memcpy) {
  return {
    date: started.toISOString(),
    quick: QUICK,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpu: { model: cpus[0]?.model ?? 'unknown', logicalCores: cpus.length },
    backend: info,
    env: { KVTRIM_THREADS: process.env.KVTRIM_THREADS ?? null },
    memcpy: { singleThread: single, threads: { threads: info.cpu.threads, ...multi } },
    floorBytesPerSec: floorBandwidth,
  }
}

function writeJson(name: string, json: object): void {
  const out = path.join(__dirname, 'results', name)
  fs.mkdirSync(path.dirname(out), { recursive: true })
  fs.writeFileSync(out, JSON.stringify(json, null, 2) + '\n')
  console.log(`\nwrote ${path.relative(process.cwd(), out)}`)
}

/** --scorers: section 5 alone, after the memcpy floor. */
async function scorersOnly(started: Date, info: ReturnType<typeof backend>, cpus: os.CpuInfo[], single: Memcpy, multi: Memcpy): Promise<void> {
  const main = [1, 8, 32768, 128]
  const keys = randomTensor('float16', main, 0x1234567)
  const values = randomTensor('float16', main, 0x7654321)
  const scorerRows = await benchScorers(keys, values, 0.5)
  console.log('')
  printTable()
  writeJson('cpu-scorers.json', { ...runInfo(started, info, cpus, single, multi), scorers: scorerRows })
}

function printSelection(sel: Awaited<ReturnType<typeof benchSelection>>): void {
  console.log(
    `selection modes, compressSync [1,8,32768,128] float16: ` +
      sel.rows.map((r) => `${r.score} ${fmt(r.medianMs)} ms (${fmt(r.ratioToFloor, 1)}x; heads keep ${sel.spread[r.score!].min}..${sel.spread[r.score!].max}, kmax ${sel.spread[r.score!].kmax})`).join(', ') +
      `\n  adaptive low-norm in passes: tokenScores ${fmt(sel.passes.tokenScoresMs)} ms + compress { scores, headKeep } ${fmt(sel.passes.compressGivenHeadKeepMs)} ms` +
      ` + the counts and the rest ${fmt(sel.passes.countsAndRestMs)} ms; each mode checked on [1,8,1024,128] (reference counts, oracle rows)`,
  )
}

/** --selection: section 6 alone, after the memcpy floor (with the per-head low-norm and keydiff rows to compare). */
async function selectionOnly(started: Date, info: ReturnType<typeof backend>, cpus: os.CpuInfo[], single: Memcpy, multi: Memcpy): Promise<void> {
  const main = [1, 8, 32768, 128]
  const keys = randomTensor('float16', main, 0x1234567)
  const values = randomTensor('float16', main, 0x7654321)
  const perHead: Row[] = []
  for (const score of ['low-norm', 'keydiff'] as const) {
    const options: CompressOptions = { keepRatio: 0.5, score }
    const timesMs = await timeRuns(() => compressSync(keys, values, options), WARMUPS, RUNS)
    perHead.push(record({ ...compressRow('compressSync', keys, 0.5, WARMUPS, RUNS, timesMs), score, bytesToMove: scorerBytes(score, keys, values, 0.5) }))
  }
  const selection = await benchSelection(keys, values)
  console.log('')
  printTable()
  printSelection(selection)
  writeJson('cpu-selection.json', { ...runInfo(started, info, cpus, single, multi), perHead, selection })
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
