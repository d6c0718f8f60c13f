// A plain TypeScript forward pass of a llama2.c checkpoint (Llama 2: RMSNorm eps 1e-5, rotary
// embeddings on interleaved pairs with theta 10000, grouped-query attention, SwiGLU, a classifier
// tied to the embedding when vocab_size is positive), written after llama2.c's run.c. It is the
// reference the integration tests and the evaluation run kvtrim against, not a fast runtime.
//
// The KV cache is explicit and in kvtrim's layout: per layer { keys, values } float32 tensors
// [1, kvHeads, seq, headDim] (keys after RoPE, as HF and transformers.js cache them). forward()
// takes a cache and the absolute positions of the new tokens, so a compressed cache (fewer rows
// than positions seen) continues decoding as it would inside an inference stack.
import { readFileSync } from 'node:fs'

export interface Llama2Config {
  dim: number
  hiddenDim: number
  nLayers: number
  nHeads: number
  nKvHeads: number
  vocabSize: number
  seqLen: number
  headDim: number
  /** whether the classifier is the token embedding (llama2.c: vocab_size > 0 in the header) */
  sharedClassifier: boolean
}

export interface F32Tensor {
  type: 'float32'
  data: Float32Array
  dims: number[]
}

/** One layer of the cache, kvtrim's CacheLayer form. */
export interface KvLayer {
  keys: F32Tensor
  values: F32Tensor
  /**
   * A length per KV head (a ragged selection: compress's `headLengths`): rows [lengths[h],
   * padEnd) of head h are padding that no query attends to; rows before and from padEnd on are
   * the head's. Absent: every row is every head's. forward() keeps it on the cache it returns
   * (new rows are appended after padEnd).
   */
  heads?: { lengths: Int32Array; padEnd: number }
}
export type KvCache = KvLayer[]

export interface ForwardOptions {
  /** 'all' (default): logits of every new token, [T, vocab]; 'last': of the last one, [1, vocab]. */
  logits?: 'all' | 'last'
  /** Also return the attention weights per layer: [nHeads, T, cacheLen + T] (softmax rows; zero past a token's own column). */
  attention?: boolean
  /** Also return the new tokens' queries per layer (after RoPE, as they meet the cached keys): [nHeads, T, headDim]. */
  queries?: boolean
}

export interface ForwardResult {
  logits: Float32Array
  /** the cache with the new tokens' keys and values appended (new tensors; the input is untouched) */
  cache: KvCache
  attention?: Float32Array[]
  /** [nHeads, T, headDim] per layer, when asked for */
  queries?: Float32Array[]
}

/** The checkpoint's tensors, matrices [out, in] row-major (views into one buffer). */
export interface Weights {
  embedding: Float32Array // [vocab, dim]
  rmsAtt: Float32Array[]
  wq: Float32Array[] // [dim, dim] (out, in)
  wk: Float32Array[] // [kvDim, dim]
  wv: Float32Array[]
  wo: Float32Array[]
  rmsFfn: Float32Array[]
  w1: Float32Array[] // [hidden, dim]
  w2: Float32Array[] // [dim, hidden]
  w3: Float32Array[]
  rmsFinal: Float32Array
  classifier: Float32Array // [vocab, dim]
}

const EPS = 1e-5
const THETA = 10000

/** y[o] = sum_i w[o, i] x[i] for w [out, in] row-major. */
export function matvec(w: Float32Array, x: Float32Array, out: Float32Array, rows: number, cols: number): void {
  for (let o = 0; o < rows; o++) {
    let s = 0
    const base = o * cols
    for (let i = 0; i < cols; i++) s += w[base + i] * x[i]
    out[o] = s
  }
}

/** RMSNorm of x with weights w into out. */
export function rmsnorm(x: Float32Array, w: Float32Array, out: Float32Array): void {
  let ss = 0
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i]
  const scale = 1 / Math.sqrt(ss / x.length + EPS)
  for (let i = 0; i < x.length; i++) out[i] = w[i] * (scale * x[i])
}

/**
 * One query head's attention over `seen` cached rows: scores q . K[row(j)] * scale, a softmax,
 * and the weighted sum of the V rows into `out` (zeroed first); the weights go to `weights` when
 * given. Rows are headDim floats at row(j) * headDim, so a caller's cache layout (a window, a
 * permutation) needs no copy. `scores` is scratch of at least `seen` entries.
 */
export function attendHead(
  q: Float32Array, K: Float32Array, V: Float32Array, row: (j: number) => number, seen: number, headDim: number,
  scale: number, scores: Float32Array, out: Float32Array, weights?: Float32Array,
): void {
  let max = -Infinity
  for (let j = 0; j < seen; j++) {
    const base = row(j) * headDim
    let s = 0
    for (let i = 0; i < headDim; i++) s += q[i] * K[base + i]
    scores[j] = s * scale
    if (scores[j] > max) max = scores[j]
  }
  let sum = 0
  for (let j = 0; j < seen; j++) {
    scores[j] = Math.exp(scores[j] - max)
    sum += scores[j]
  }
  out.fill(0)
  for (let j = 0; j < seen; j++) {
    const a = scores[j] / sum
    if (weights) weights[j] = a
    const base = row(j) * headDim
    for (let i = 0; i < headDim; i++) out[i] += a * V[base + i]
  }
}

/** RoPE on interleaved pairs (v[2i], v[2i+1]) of each head, as run.c does it. */
function rope(v: Float32Array, headDim: number, pos: number): void {
  for (let i = 0; i < v.length; i += 2) {
    const hd = i % headDim
    const angle = pos / Math.pow(THETA, hd / headDim)
    const c = Math.cos(angle), s = Math.sin(angle)
    const a = v[i], b = v[i + 1]
    v[i] = a * c - b * s
    v[i + 1] = a * s + b * c
  }
}

/** Reads a llama2.c checkpoint (header of 7 int32, then float32 weights). */
export function readCheckpoint(path: string): { config: Llama2Config; weights: Weights } {
  const buf = readFileSync(path)
  const head = new Int32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + 28))
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocab, seqLen] = Array.from(head)
  const config: Llama2Config = {
    dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize: Math.abs(vocab), seqLen, headDim: dim / nHeads, sharedClassifier: vocab > 0,
  }
  if (!(dim > 0 && nHeads > 0 && nKvHeads > 0 && nHeads % nKvHeads === 0 && dim % nHeads === 0 && nLayers > 0)) {
    throw new Error(`${path}: not a llama2.c checkpoint (header ${Array.from(head).join(', ')})`)
  }
  const floats = new Float32Array(buf.buffer.slice(buf.byteOffset + 28, buf.byteOffset + buf.length - ((buf.length - 28) % 4)))
  let at = 0
  const take = (n: number): Float32Array => {
    if (at + n > floats.length) throw new Error(`${path}: truncated checkpoint`)
    const t = floats.subarray(at, at + n)
    at += n
    return t
  }
  const perLayer = (n: number): Float32Array[] => {
    const all = take(nLayers * n)
    return Array.from({ length: nLayers }, (_, l) => all.subarray(l * n, (l + 1) * n))
  }
  const V = config.vocabSize, kvDim = nKvHeads * config.headDim
  const embedding = take(V * dim)
  const rmsAtt = perLayer(dim)
  const wq = perLayer(dim * dim)
  const wk = perLayer(kvDim * dim)
  const wv = perLayer(kvDim * dim)
  const wo = perLayer(dim * dim)
  const rmsFfn = perLayer(dim)
  const w1 = perLayer(hiddenDim * dim)
  const w2 = perLayer(dim * hiddenDim)
  const w3 = perLayer(hiddenDim * dim)
  const rmsFinal = take(dim)
  take(seqLen * config.headDim) // legacy freq_cis_real and freq_cis_imag (seqLen * headDim / 2 each)
  const classifier = config.sharedClassifier ? embedding : take(V * dim)
  return { config, weights: { embedding, rmsAtt, wq, wk, wv, wo, rmsFfn, w1, w2, w3, rmsFinal, classifier } }
}

export class Llama2Model {
  readonly config: Llama2Config
  /** forward() masks each KV head's padding (KvLayer.heads): ragged selections run here. */
  readonly perHeadLengths = true
  readonly #w: Weights

  constructor(config: Llama2Config, weights: Weights) {
    this.config = config
    this.#w = weights
  }

  /** Reads a llama2.c checkpoint (header of 7 int32, then float32 weights). */
  static load(path: string): Llama2Model {
    const { config, weights } = readCheckpoint(path)
    return new Llama2Model(config, weights)
  }

  /** An empty cache: per layer keys and values [1, kvHeads, 0, headDim]. */
  emptyCache(): KvCache {
    const { nLayers, nKvHeads, headDim } = this.config
    const t = (): F32Tensor => ({ type: 'float32', data: new Float32Array(0), dims: [1, nKvHeads, 0, headDim] })
    return Array.from({ length: nLayers }, () => ({ keys: t(), values: t() }))
  }

  /**
   * Runs `tokens` at absolute `positions` (one per token) after the tokens in `cache` (null: an
   * empty one). New token i attends to every cached row and to new tokens 0..i. Layers may hold
   * different numbers of rows (per-layer budgets); attention is then [nHeads, T, S_l + T]. A
   * layer's `heads` (a length per KV head) masks each head's padding rows (their attention is 0).
   */
  forward(tokens: readonly number[], positions: readonly number[], cache: KvCache | null, o: ForwardOptions = {}): ForwardResult {
    const { dim, hiddenDim, nLayers, nHeads, nKvHeads, headDim, vocabSize } = this.config
    const T = tokens.length
    if (T === 0 || positions.length !== T) throw new Error(`Expected one position per token (${T} tokens, ${positions.length} positions)`)
    const past = cache ?? this.emptyCache()
    if (past.length !== nLayers) throw new Error(`Expected a cache of ${nLayers} layers, got ${past.length}`)
    const kvDim = nKvHeads * headDim
    const group = nHeads / nKvHeads
    const w = this.#w
    const x = tokens.map((tok) => {
      if (!Number.isInteger(tok) || tok < 0 || tok >= vocabSize) throw new Error(`token ${tok} outside the vocabulary`)
      return Float32Array.from(w.embedding.subarray(tok * dim, (tok + 1) * dim))
    })
    const xb = new Float32Array(dim), xb2 = new Float32Array(dim), q = new Float32Array(dim)
    const hb = new Float32Array(hiddenDim), hb2 = new Float32Array(hiddenDim)
    const k = new Float32Array(kvDim), v = new Float32Array(kvDim)
    const scores = new Float32Array(Math.max(...past.map((l) => l.keys.dims[2])) + T)
    const scale = 1 / Math.sqrt(headDim)
    const next: KvCache = []
    const attention: Float32Array[] = []
    const queryOut: Float32Array[] = []
    for (let l = 0; l < nLayers; l++) {
      const S = past[l].keys.dims[2], total = S + T
      if (past[l].values.dims[2] !== S) throw new Error(`Expected keys and values of layer ${l} to hold the same number of rows`)
      const heads = past[l].heads
      if (heads && (heads.lengths.length !== nKvHeads || !(heads.padEnd <= S) || heads.lengths.some((n) => !(n >= 0 && n <= heads.padEnd)))) {
        throw new Error(`Expected layer ${l}'s heads to give ${nKvHeads} lengths in [0, padEnd <= ${S}]`)
      }
      const gap = (kh: number) => (heads ? heads.padEnd - heads.lengths[kh] : 0) // padding rows of KV head kh
      // the layer's cache with room for the new rows: [1, kvHeads, S + T, headDim]
      const K = new Float32Array(nKvHeads * total * headDim), Vc = new Float32Array(nKvHeads * total * headDim)
      for (let h = 0; h < nKvHeads; h++) {
        K.set(past[l].keys.data.subarray(h * S * headDim, (h + 1) * S * headDim), h * total * headDim)
        Vc.set(past[l].values.data.subarray(h * S * headDim, (h + 1) * S * headDim), h * total * headDim)
      }
      const queries: Float32Array[] = []
      for (let t = 0; t < T; t++) {
        rmsnorm(x[t], w.rmsAtt[l], xb)
        matvec(w.wq[l], xb, q, dim, dim)
        matvec(w.wk[l], xb, k, kvDim, dim)
        matvec(w.wv[l], xb, v, kvDim, dim)
        rope(q, headDim, positions[t])
        rope(k, headDim, positions[t])
        queries.push(Float32Array.from(q))
        for (let h = 0; h < nKvHeads; h++) {
          K.set(k.subarray(h * headDim, (h + 1) * headDim), (h * total + S + t) * headDim)
          Vc.set(v.subarray(h * headDim, (h + 1) * headDim), (h * total + S + t) * headDim)
        }
      }
      if (o.queries) {
        const qs = new Float32Array(nHeads * T * headDim)
        for (let t = 0; t < T; t++) for (let h = 0; h < nHeads; h++) qs.set(queries[t].subarray(h * headDim, (h + 1) * headDim), (h * T + t) * headDim)
        queryOut.push(qs)
      }
      const att = o.attention ? new Float32Array(nHeads * T * total) : undefined
      for (let t = 0; t < T; t++) {
        for (let h = 0; h < nHeads; h++) {
          const kh = Math.floor(h / group)
          const g = gap(kh)
          if (g === 0) {
            const seen = S + t + 1
            attendHead(
              queries[t].subarray(h * headDim, (h + 1) * headDim), K, Vc, (j) => kh * total + j, seen, headDim, scale, scores,
              xb.subarray(h * headDim, (h + 1) * headDim), att?.subarray((h * T + t) * total, (h * T + t) * total + seen),
            )
            continue
          }
          // a ragged head: its own rows, then (past the padding) the rows from padEnd on
          const n = heads!.lengths[kh], seen = S - g + t + 1
          const w = att ? new Float32Array(seen) : undefined
          attendHead(
            queries[t].subarray(h * headDim, (h + 1) * headDim), K, Vc, (j) => kh * total + (j < n ? j : j + g), seen, headDim, scale, scores,
            xb.subarray(h * headDim, (h + 1) * headDim), w,
          )
          if (att && w) for (let j = 0; j < seen; j++) att[(h * T + t) * total + (j < n ? j : j + g)] = w[j]
        }
        matvec(w.wo[l], xb, xb2, dim, dim)
        for (let i = 0; i < dim; i++) x[t][i] += xb2[i]
        // SwiGLU feed-forward
        rmsnorm(x[t], w.rmsFfn[l], xb)
        matvec(w.w1[l], xb, hb, hiddenDim, dim)
        matvec(w.w3[l], xb, hb2, hiddenDim, dim)
        for (let i = 0; i < hiddenDim; i++) hb[i] = (hb[i] / (1 + Math.exp(-hb[i]))) * hb2[i]
        matvec(w.w2[l], hb, xb2, dim, hiddenDim)
        for (let i = 0; i < dim; i++) x[t][i] += xb2[i]
      }
      next.push({ keys: { type: 'float32', data: K, dims: [1, nKvHeads, total, headDim] }, values: { type: 'float32', data: Vc, dims: [1, nKvHeads, total, headDim] }, ...(heads && { heads }) })
      if (att) attention.push(att)
    }
    const rows = o.logits === 'last' ? [T - 1] : Array.from({ length: T }, (_, t) => t)
    const logits = new Float32Array(rows.length * vocabSize)
    rows.forEach((t, r) => {
      rmsnorm(x[t], w.rmsFinal, xb)
      matvec(w.classifier, xb, logits.subarray(r * vocabSize, (r + 1) * vocabSize), vocabSize, dim)
    })
    return { logits, cache: next, ...(o.attention && { attention }), ...(o.queries && { queries: queryOut }) }
  }
}

/** Index of the largest entry (the first on ties), as llama2.c's greedy sampler. */
export function argmax(logits: Float32Array, offset = 0, n = logits.length - offset): number {
  let best = 0
  for (let i = 1; i < n; i++) if (logits[offset + i] > logits[offset + best]) best = i
  return best
}

/** log softmax(logits[row])[token], in double. */
export function logProb(logits: Float32Array, vocab: number, row: number, token: number): number {
  const base = row * vocab
  let max = -Infinity
  for (let i = 0; i < vocab; i++) max = Math.max(max, logits[base + i])
  let sum = 0
  for (let i = 0; i < vocab; i++) sum += Math.exp(logits[base + i] - max)
  return logits[base + token] - max - Math.log(sum)
}
