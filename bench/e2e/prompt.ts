// The long prompt's KV cache, built cheaply and honestly (bench:e2e's shortcut, docs/e2e.md).
//
// A 32k-token prompt cannot be prefilled through the TypeScript forward pass in the time budget
// (prefill attention is O(P^2)). So the prompt is the model's own text, sampled token by token at
// temperature 1 (eval/text.ts's sampler and seed), and its cache is built in two phases:
//   1. the first `exact` tokens (default 512, the model's trained context) run through the full
//      forward pass of eval/llama2c.ts: their keys and values are exactly a prefill's;
//   2. every later token runs through the same forward pass, but over a sliding-window cache: the
//      first `sinks` rows (attention sinks) and the last `window - sinks` rows. Its keys and
//      values at layer 0 are exact (they depend on the token and its position only); at deeper
//      layers they come from hidden states that saw the window, not the whole prefix
//      (StreamingLLM-style), so they are a real forward pass's rows with a real position, not a
//      full prefill's. The cost is O(P * window) instead of O(P^2).
// The caches of shorter prompts are prefixes of the longest one (the construction is causal), so
// one build serves every prompt length. The decode steps measured afterwards are real, full
// forward passes over the whole cache of P rows. The result is saved to a file that the
// measurement processes read (only the prefix they need).
import { closeSync, openSync, readSync, statSync, writeFileSync } from 'node:fs'
import { attendHead, Llama2Model, matvec, readCheckpoint, rmsnorm, type F32Tensor, type KvCache, type Llama2Config, type Weights } from '../../eval/llama2c'
import { rng, sample } from '../../eval/text'
import { BOS } from '../../eval/tokenizer'

export interface PromptSpec {
  checkpoint: string
  /** the longest prompt: rows of cache built */
  maxLen: number
  /** tokens prefilled with full attention */
  exact: number
  /** rows the later tokens attend to: `sinks` first rows + the last `window - sinks` */
  window: number
  sinks: number
  seed: number
  temperature: number
}

export interface PromptHeader extends PromptSpec {
  nLayers: number
  nKvHeads: number
  headDim: number
  /** checkpoint size and mtime, to tell a stale file */
  checkpointBytes: number
  checkpointMtimeMs: number
  seconds: number
  /** tokens stored: maxLen + 1 (the last one is the first token fed to the decode loop) */
  tokens: number
}

export const MAGIC = 'kvtrim-e2e-prompt-1'

/**
 * Phase 2's forward pass: eval/llama2c.ts's arithmetic, step for step and in the same order (so
 * the same float32 results), specialised to one token over a sliding window read in place from
 * the prompt's arrays: no per-token copies of the window. buildPrompt checks it against
 * Llama2Model.forward on the first phase-2 tokens and stops if any row or logit differs.
 */
class WindowedForward {
  readonly #c: Llama2Config
  readonly #w: Weights
  readonly #x: Float32Array
  readonly #xb: Float32Array
  readonly #xb2: Float32Array
  readonly #q: Float32Array
  readonly #k: Float32Array
  readonly #v: Float32Array
  readonly #hb: Float32Array
  readonly #hb2: Float32Array
  readonly #scores: Float32Array
  readonly #cos: Float64Array
  readonly #sin: Float64Array
  readonly logits: Float32Array

  constructor(c: Llama2Config, w: Weights, window: number) {
    this.#c = c
    this.#w = w
    const kvDim = c.nKvHeads * c.headDim
    this.#x = new Float32Array(c.dim)
    this.#xb = new Float32Array(c.dim)
    this.#xb2 = new Float32Array(c.dim)
    this.#q = new Float32Array(c.dim)
    this.#k = new Float32Array(kvDim)
    this.#v = new Float32Array(kvDim)
    this.#hb = new Float32Array(c.hiddenDim)
    this.#hb2 = new Float32Array(c.hiddenDim)
    this.#scores = new Float32Array(window + 1)
    this.#cos = new Float64Array(c.headDim)
    this.#sin = new Float64Array(c.headDim)
    this.logits = new Float32Array(c.vocabSize)
  }

  /** Runs `token` at position `pos` over rows [0, sinks) and [start, pos) of every layer; writes row `pos`; fills `logits`. */
  step(token: number, pos: number, sinks: number, start: number, keys: Float32Array[], values: Float32Array[], N: number): void {
    const { dim, hiddenDim, nLayers, nHeads, nKvHeads, headDim, vocabSize } = this.#c
    const w = this.#w, x = this.#x, xb = this.#xb, xb2 = this.#xb2, q = this.#q, k = this.#k, v = this.#v, hb = this.#hb, hb2 = this.#hb2
    const scores = this.#scores, cos = this.#cos, sin = this.#sin
    const kvDim = nKvHeads * headDim, group = nHeads / nKvHeads, scale = 1 / Math.sqrt(headDim)
    x.set(w.embedding.subarray(token * dim, (token + 1) * dim))
    for (let hd = 0; hd < headDim; hd += 2) {
      const angle = pos / Math.pow(10000, hd / headDim)
      cos[hd] = Math.cos(angle)
      sin[hd] = Math.sin(angle)
    }
    const rope = (t: Float32Array): void => {
      for (let i = 0; i < t.length; i += 2) {
        const hd = i % headDim
        const c = cos[hd], s = sin[hd], a = t[i], b = t[i + 1]
        t[i] = a * c - b * s
        t[i + 1] = a * s + b * c
      }
    }
    const seen = sinks + (pos - start) + 1
    for (let l = 0; l < nLayers; l++) {
      const K = keys[l], V = values[l]
      rmsnorm(x, w.rmsAtt[l], xb)
      matvec(w.wq[l], xb, q, dim, dim)
      matvec(w.wk[l], xb, k, kvDim, dim)
      matvec(w.wv[l], xb, v, kvDim, dim)
      rope(q)
      rope(k)
      for (let h = 0; h < nKvHeads; h++) {
        K.set(k.subarray(h * headDim, (h + 1) * headDim), (h * N + pos) * headDim)
        V.set(v.subarray(h * headDim, (h + 1) * headDim), (h * N + pos) * headDim)
      }
      // rows in the order the windowed cache holds them: the sinks, then start .. pos
      const rowAt = (j: number): number => (j < sinks ? j : start + (j - sinks))
      for (let h = 0; h < nHeads; h++) {
        const kh = Math.floor(h / group), qo = h * headDim
        attendHead(q.subarray(qo, qo + headDim), K, V, (j) => kh * N + rowAt(j), seen, headDim, scale, scores, xb.subarray(qo, qo + headDim))
      }
      matvec(w.wo[l], xb, xb2, dim, dim)
      for (let i = 0; i < dim; i++) x[i] += xb2[i]
      rmsnorm(x, w.rmsFfn[l], xb)
      matvec(w.w1[l], xb, hb, hiddenDim, dim)
      matvec(w.w3[l], xb, hb2, hiddenDim, dim)
      for (let i = 0; i < hiddenDim; i++) hb[i] = (hb[i] / (1 + Math.exp(-hb[i]))) * hb2[i]
      matvec(w.w2[l], hb, xb2, dim, hiddenDim)
      for (let i = 0; i < dim; i++) x[i] += xb2[i]
    }
    rmsnorm(x, w.rmsFinal, xb)
    matvec(w.classifier, xb, this.logits, vocabSize, dim)
  }
}

/** Phase-2 tokens checked against Llama2Model.forward over a copied window. */
export const CHECKED_TOKENS = 16

/** Builds the cache of the longest prompt (see the header). Layout per layer: [kvHeads, maxLen, headDim] float32. */
export function buildPrompt(spec: PromptSpec, onProgress?: (done: number, total: number) => void): { header: PromptHeader; tokens: Int32Array; keys: Float32Array[]; values: Float32Array[] } {
  const t0 = performance.now()
  const { config, weights } = readCheckpoint(spec.checkpoint)
  const model = new Llama2Model(config, weights)
  const { nLayers, nKvHeads, headDim } = config
  const N = spec.maxLen
  if (!(spec.sinks >= 0 && spec.window > spec.sinks && spec.exact >= 1)) throw new Error('Expected window > sinks >= 0 and exact >= 1')
  const keys = Array.from({ length: nLayers }, () => new Float32Array(nKvHeads * N * headDim))
  const values = Array.from({ length: nLayers }, () => new Float32Array(nKvHeads * N * headDim))
  const tokens = new Int32Array(N + 1)
  const random = rng(spec.seed)
  const row = headDim
  /** Stores the cache's row `from` (of a cache of `len` rows) at position `pos`, every layer and head. */
  const store = (cache: KvCache, from: number, pos: number): void => {
    cache.forEach((l, li) => {
      const len = l.keys.dims[2]
      for (let h = 0; h < nKvHeads; h++) {
        keys[li].set(l.keys.data.subarray((h * len + from) * row, (h * len + from + 1) * row), (h * N + pos) * row)
        values[li].set(l.values.data.subarray((h * len + from) * row, (h * len + from + 1) * row), (h * N + pos) * row)
      }
    })
  }
  const recentStart = (p: number): number => p - Math.min(spec.window - spec.sinks, p - spec.sinks)
  /** The sliding-window cache before position p, copied: rows [0, sinks) and [recentStart(p), p). */
  const windowed = (p: number): KvCache => {
    const start = recentStart(p), rows = spec.sinks + (p - start)
    const part = (src: Float32Array): F32Tensor => {
      const out = new Float32Array(nKvHeads * rows * row)
      for (let h = 0; h < nKvHeads; h++) {
        out.set(src.subarray(h * N * row, (h * N + spec.sinks) * row), h * rows * row)
        out.set(src.subarray((h * N + start) * row, (h * N + p) * row), (h * rows + spec.sinks) * row)
      }
      return { type: 'float32', data: out, dims: [1, nKvHeads, rows, headDim] }
    }
    return Array.from({ length: nLayers }, (_, l) => ({ keys: part(keys[l]), values: part(values[l]) }))
  }
  const fast = new WindowedForward(config, weights, spec.window)
  const sameBits = (a: Float32Array, b: Float32Array): boolean => a.length === b.length && a.every((x, i) => Object.is(x, b[i]))

  tokens[0] = BOS
  let cache: KvCache | null = null
  for (let p = 0; p < N; p++) {
    if (p < spec.exact) {
      // phase 1: the full forward pass over every earlier token
      const r = model.forward([tokens[p]], [p], cache, { logits: 'last' })
      cache = p + 1 < spec.exact ? r.cache : null
      store(r.cache, p, p)
      tokens[p + 1] = sample(r.logits, spec.temperature, random)
    } else {
      // phase 2: the same forward pass over the sinks and the last rows
      const check = p < spec.exact + CHECKED_TOKENS ? model.forward([tokens[p]], [p], windowed(p), { logits: 'last' }) : undefined
      fast.step(tokens[p], p, spec.sinks, recentStart(p), keys, values, N)
      if (check) {
        const len = check.cache[0].keys.dims[2]
        const ok = sameBits(check.logits, fast.logits) && check.cache.every((l, li) => {
          for (let h = 0; h < nKvHeads; h++) {
            const at = (h * N + p) * row, from = (h * len + len - 1) * row
            if (!sameBits(l.keys.data.subarray(from, from + row), keys[li].subarray(at, at + row))) return false
            if (!sameBits(l.values.data.subarray(from, from + row), values[li].subarray(at, at + row))) return false
          }
          return true
        })
        if (!ok) throw new Error(`bench:e2e prompt: the windowed forward pass differs from eval/llama2c.ts's at position ${p}`)
      }
      tokens[p + 1] = sample(fast.logits, spec.temperature, random)
    }
    if (onProgress && (p % 1024 === 1023 || p === N - 1)) onProgress(p + 1, N)
  }
  const st = statSync(spec.checkpoint)
  const header: PromptHeader = {
    ...spec, nLayers, nKvHeads, headDim, checkpointBytes: st.size, checkpointMtimeMs: Math.floor(st.mtimeMs),
    seconds: (performance.now() - t0) / 1000, tokens: N + 1,
  }
  return { header, tokens, keys, values }
}

/** File: magic line, header JSON line, zero padding to 4 bytes, tokens int32, then per layer keys and values. */
export function savePrompt(file: string, p: ReturnType<typeof buildPrompt>): void {
  let head = Buffer.from(`${MAGIC}\n${JSON.stringify(p.header)}\n`)
  head = Buffer.concat([head, Buffer.alloc((4 - (head.length % 4)) % 4)])
  const parts: Buffer[] = [head, Buffer.from(p.tokens.buffer, p.tokens.byteOffset, p.tokens.byteLength)]
  for (let l = 0; l < p.header.nLayers; l++) {
    parts.push(Buffer.from(p.keys[l].buffer, p.keys[l].byteOffset, p.keys[l].byteLength))
    parts.push(Buffer.from(p.values[l].buffer, p.values[l].byteOffset, p.values[l].byteLength))
  }
  writeFileSync(file, Buffer.concat(parts))
}

function readHeader(fd: number): { header: PromptHeader; dataStart: number } {
  const buf = Buffer.alloc(4096)
  const n = readSync(fd, buf, 0, buf.length, 0)
  const text = buf.subarray(0, n).toString('latin1')
  const a = text.indexOf('\n'), b = text.indexOf('\n', a + 1)
  if (a < 0 || b < 0 || text.slice(0, a) !== MAGIC) throw new Error('not a bench:e2e prompt file')
  const header = JSON.parse(text.slice(a + 1, b)) as PromptHeader
  return { header, dataStart: Math.ceil((b + 1) / 4) * 4 }
}

/** The header of a prompt file, or undefined when it is absent or unreadable. */
export function promptHeader(file: string): PromptHeader | undefined {
  try {
    const fd = openSync(file, 'r')
    try {
      return readHeader(fd).header
    } finally {
      closeSync(fd)
    }
  } catch {
    return undefined
  }
}

/** Whether a saved prompt was built from this spec and this checkpoint file. */
export function matches(h: PromptHeader | undefined, spec: PromptSpec): boolean {
  if (!h) return false
  const st = statSync(spec.checkpoint)
  return (Object.keys(spec) as Array<keyof PromptSpec>).every((k) => h[k] === spec[k]) && h.checkpointBytes === st.size && h.checkpointMtimeMs === Math.floor(st.mtimeMs)
}

/**
 * The cache of the first `len` prompt tokens, in kvtrim's layout (per layer keys and values
 * [1, kvHeads, len, headDim] float32), read from the file (only those rows), and the token fed
 * to the first decode step (the prompt's next token).
 */
export function loadPrompt(file: string, len: number): { header: PromptHeader; cache: KvCache; next: number } {
  const fd = openSync(file, 'r')
  try {
    const { header, dataStart } = readHeader(fd)
    const { nLayers, nKvHeads, headDim, maxLen } = header
    if (!(len >= 1 && len <= maxLen)) throw new Error(`Expected a prompt length in [1, ${maxLen}] (this file's), got ${len}`)
    const tok = Buffer.alloc(4)
    readSync(fd, tok, 0, 4, dataStart + 4 * len)
    const next = tok.readInt32LE(0)
    const tensorBytes = nKvHeads * maxLen * headDim * 4
    const layersStart = dataStart + 4 * header.tokens
    const read = (offset: number): F32Tensor => {
      const data = new Float32Array(nKvHeads * len * headDim)
      const bytes = Buffer.from(data.buffer)
      for (let h = 0; h < nKvHeads; h++) {
        readSync(fd, bytes, h * len * headDim * 4, len * headDim * 4, offset + h * maxLen * headDim * 4)
      }
      return { type: 'float32', data, dims: [1, nKvHeads, len, headDim] }
    }
    const cache: KvCache = Array.from({ length: nLayers }, (_, l) => ({
      keys: read(layersStart + 2 * l * tensorBytes),
      values: read(layersStart + (2 * l + 1) * tensorBytes),
    }))
    return { header, cache, next }
  } finally {
    closeSync(fd)
  }
}

/** The first `count` prompt token ids (for the sample shown in the JSON). */
export function promptTokens(file: string, count: number): number[] {
  const fd = openSync(file, 'r')
  try {
    const { header, dataStart } = readHeader(fd)
    const n = Math.min(count, header.tokens)
    const buf = Buffer.alloc(4 * n)
    readSync(fd, buf, 0, buf.length, dataStart)
    return Array.from({ length: n }, (_, i) => buf.readInt32LE(4 * i))
  } finally {
    closeSync(fd)
  }
}
