// A generation-style loop on a synthetic model cache: prefill, then compressCache with per-layer
// budgets from ZigZagKV's layer uncertainty, then decode steps with a Compressor that keeps every
// layer near its budget. The cache has transformers.js's shape: `past_key_values.{layer}.key` /
// `.value` tensors of dims [batch, kvHeads, seq, headDim], float16 bits in Uint16Arrays.
//
//   npx tsx examples/generate-loop.ts
//
// No model runs here: the "model" appends one random key/value row per head each step. In a
// real loop, pass position_ids = result.position and an attention mask of the cache's length.
import {
  compressCacheSync,
  Compressor,
  layerBudgets,
  layerUncertaintySync,
  type CacheLayer,
  type TensorLike,
} from '../lib/index'

const LAYERS = 4, HEADS = 4, Q_HEADS = 8, HEAD_DIM = 64
const PREFILL = 1024, DECODE = 200, PRINT_EVERY = 20, WINDOW = 16
const KEEP_RATIO = 0.25, SINK = 4, RECENT = 32, INTERVAL = 32

interface Tensor { type: 'float16'; data: Uint16Array; dims: number[] }
type Cache = Record<string, Tensor>

// ---- a tiny random source and float16 bits of values around 1 --------------------------------
let state = 12345
const random = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296)
const halfBits = () => (random() < 0.5 ? 0x8000 : 0) | ((13 + Math.floor(random() * 3)) << 10) | Math.floor(random() * 1024)
const randomTensor = (dims: number[]): Tensor => {
  const data = new Uint16Array(dims.reduce((a, b) => a * b, 1))
  for (let i = 0; i < data.length; i++) data[i] = halfBits()
  return { type: 'float16', data, dims }
}

/** The model's step: one new row per (batch, head), appended (a new tensor, as onnxruntime returns). */
function appendRow(t: Tensor): Tensor {
  const [b, h, s, d] = t.dims
  const out = new Uint16Array(b * h * (s + 1) * d)
  for (let r = 0; r < b * h; r++) {
    out.set(t.data.subarray(r * s * d, (r + 1) * s * d), r * (s + 1) * d)
    for (let x = 0; x < d; x++) out[(r * (s + 1) + s) * d + x] = halfBits()
  }
  return { type: t.type, data: out, dims: [b, h, s + 1, d] }
}

const bytes = (c: Cache) => Object.values(c).reduce((n, t) => n + t.data.byteLength, 0)
const mib = (n: number) => `${(n / 2 ** 20).toFixed(2)} MiB`
const layersOf = (c: Cache): CacheLayer<TensorLike>[] =>
  Array.from({ length: LAYERS }, (_, l) => ({ keys: c[`past_key_values.${l}.key`], values: c[`past_key_values.${l}.value`] }))

// ---- prefill --------------------------------------------------------------------------------
const t0 = performance.now()
let cache: Cache = {}
for (let l = 0; l < LAYERS; l++) {
  cache[`past_key_values.${l}.key`] = randomTensor([1, HEADS, PREFILL, HEAD_DIM])
  cache[`past_key_values.${l}.value`] = randomTensor([1, HEADS, PREFILL, HEAD_DIM])
}
const fullRowBytes = 2 * LAYERS * HEADS * HEAD_DIM * 2 // keys + values, every layer, one token
console.log(`prefill: ${PREFILL} tokens, ${LAYERS} layers of [1, ${HEADS}, ${PREFILL}, ${HEAD_DIM}] fp16: ${mib(bytes(cache))}`)

// ---- per-layer budgets from the layer uncertainty of the last WINDOW queries (ZigZagKV) --------
const window = Array.from({ length: LAYERS }, (_, l) => ({
  queries: randomTensor([1, Q_HEADS, WINDOW, HEAD_DIM]), // GQA: 8 query heads read 4 kv heads
  keys: cache[`past_key_values.${l}.key`],
}))
const { scores } = layerUncertaintySync(window)
const ctx = { layers: LAYERS, seqLen: PREFILL, keepRatio: KEEP_RATIO, sink: SINK, recent: RECENT }
console.log(`layer uncertainty (LMBA, tokens for 90% of the attention): ${scores.map((s) => s.toFixed(1)).join(', ')}`)
console.log(`budgets: uniform ${layerBudgets('uniform', ctx).join(', ')}; pyramid ${layerBudgets('pyramid', ctx).join(', ')}; zigzag ${layerBudgets({ zigzag: scores }, ctx).join(', ')}`)

// ---- compress after prefill ------------------------------------------------------------------
const res = compressCacheSync(layersOf(cache), { keepRatio: KEEP_RATIO, sink: SINK, recent: RECENT, budgets: { zigzag: scores } })
const next: Cache = {}
res.layers.forEach((l, i) => {
  next[`past_key_values.${i}.key`] = l.keys as Tensor
  next[`past_key_values.${i}.value`] = l.values as Tensor
})
cache = next
console.log(`after compressCache: ${res.report.map((r) => `${r.before}->${r.after}`).join(', ')} tokens, ${mib(bytes(cache))}`)

// ---- decode -----------------------------------------------------------------------------------
// Each layer is held at its own budget: compressed back to it when it grows INTERVAL past it.
const compressor = new Compressor({ target: res.report.map((r) => r.after), interval: INTERVAL, sink: SINK, recent: RECENT, position: PREFILL })
compressor.stepSync(cache) // after the prefill: takes the lengths as they are, position PREFILL
let compressions = 0
for (let step = 1; step <= DECODE; step++) {
  for (const name of Object.keys(cache)) cache[name] = appendRow(cache[name]) // the model's step
  const r = compressor.stepSync(cache)
  cache = r.cache
  if (r.compressed) compressions++
  if (step % PRINT_EVERY === 0) {
    const uncompressed = (PREFILL + step) * fullRowBytes
    console.log(
      `step ${String(step).padStart(3)}: next position ${r.position}, tokens per layer ${r.lengths.join('/')}, ` +
        `cache ${mib(bytes(cache))} (uncompressed ${mib(uncompressed)})${r.compressed ? ', compressed this step' : ''}`,
    )
  }
}
console.log(`${DECODE} decode steps, ${compressions} steps with a compression, ${(performance.now() - t0).toFixed(0)} ms in all`)
