// The numeric contract of docs/contract.md and the scorers of docs/policies.md ("Scorers: which
// tokens a head keeps") in plain TypeScript: the independent oracle the native paths are checked
// against. Written from those pages for clarity, not speed, and sharing nothing with native/:
// fp16 is decoded arithmetically (not by bit surgery), every fp32 operation is one double
// operation rounded once with Math.fround (correctly rounded for +, *, /, sqrt: double has more
// than 2 * 24 + 2 bits), no fused operations, and selection is a full sort with a comparator
// (not a radix select). Every scorer keeps the HIGHEST scores (low-norm's score is -norm).

export type DType = 'float16' | 'bfloat16' | 'float32'

export interface OracleTensor {
  type: DType
  data: Float32Array | Uint16Array
  dims: number[]
}

/** A float32 tensor [batch, kvHeads, seqLen] of given scores (`score: { scores }`); data a Float32Array. */
export interface OracleScoresTensor {
  readonly type?: string
  readonly data?: unknown
  readonly dims: readonly number[]
}

/** The scorers of docs/policies.md "Scorers: which tokens a head keeps". */
export type OracleScore =
  | 'low-norm'
  | 'high-norm'
  | 'kv-norm'
  | 'keydiff'
  | { project: ArrayLike<number> }
  | { scores: OracleScoresTensor }

export interface OracleOptions {
  keepRatio?: number
  keep?: number
  order?: 'position' | 'norm'
  score?: OracleScore
  sink?: number
  recent?: number
  lengths?: ArrayLike<number>
}

export function f16ToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1
  const exp = (bits >> 10) & 0x1f
  const mant = bits & 0x3ff
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN
  if (exp === 0) return sign * mant * 2 ** -24
  return sign * (1 + mant / 1024) * 2 ** (exp - 15)
}

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)
export function bf16ToNumber(bits: number): number {
  u32[0] = bits << 16
  return f32[0]
}

export function element(t: OracleTensor, i: number): number {
  if (t.type === 'float16') return f16ToNumber(t.data[i])
  if (t.type === 'bfloat16') return bf16ToNumber(t.data[i])
  return t.data[i]
}

/** The contract's norm of the row of `d` elements starting at element `offset`. */
export function rowNorm(t: OracleTensor, offset: number, d: number): number {
  const x: number[] = []
  for (let i = 0; i < d; i++) x.push(element(t, offset + i))
  return normOf(x, 0, d)
}

/** The smallest power of two >= n (1 for n <= 1). */
function pow2(n: number): number {
  let p = 1
  while (p < n) p *= 2
  return p
}

/** docs/contract.md's pairwise tree over chunk sums (padded with +0 to a power of two), in fp32. */
function pairwise(sums: number[]): number {
  const n = pow2(sums.length)
  const s = sums.concat(new Array<number>(n - sums.length).fill(0))
  for (let half = n / 2; half >= 1; half /= 2) {
    for (let i = 0; i < half; i++) s[i] = Math.fround(s[i] + s[i + half])
  }
  return s[0]
}

/** The norm of x[offset .. offset + d) (values already exact fp32 numbers), in the contract's order. */
export function normOf(x: ArrayLike<number>, offset: number, d: number): number {
  const sums: number[] = []
  for (let c = 0; c * 8 < d; c++) {
    let s = 0
    for (let i = c * 8; i < Math.min(d, c * 8 + 8); i++) {
      const v = x[offset + i]
      s = Math.fround(s + Math.fround(v * v))
    }
    sums.push(s)
  }
  return Math.fround(Math.sqrt(pairwise(sums)))
}

/**
 * docs/policies.md's dot of x[xo ..] and y[yo ..] (length d): each product rounded; chunks of 8
 * consecutive elements summed left to right starting from the chunk's first product (the last
 * chunk holds what is left, no padding products); the chunk sums by the pairwise tree.
 */
export function dotOf(x: ArrayLike<number>, xo: number, y: ArrayLike<number>, yo: number, d: number): number {
  const sums: number[] = []
  for (let c = 0; c * 8 < d; c++) {
    let s = Math.fround(x[xo + c * 8] * y[yo + c * 8])
    for (let i = c * 8 + 1; i < Math.min(d, c * 8 + 8); i++) s = Math.fround(s + Math.fround(x[xo + i] * y[yo + i]))
    sums.push(s)
  }
  return pairwise(sums)
}

/** Every element of a tensor as an exact number (fp16 and bf16 decoded, fp32 as stored). */
export function decode(t: OracleTensor): Float64Array {
  const out = new Float64Array(t.data.length)
  for (let i = 0; i < out.length; i++) out[i] = element(t, i)
  return out
}

/** The contract's one bit pattern for a NaN norm: the positive quiet NaN. */
export const CANONICAL_NAN_BITS = 0x7fc00000

export function keyNorms(keys: OracleTensor): Float32Array {
  const [b, h, s, d] = keys.dims
  const x = decode(keys)
  const out = new Float32Array(b * h * s)
  // NaN is written through the bits: storing a JS NaN into a Float32Array leaves its pattern to the engine.
  const bits = new Uint32Array(out.buffer)
  for (let r = 0; r < out.length; r++) {
    const n = normOf(x, r * d, d)
    if (Number.isNaN(n)) bits[r] = CANONICAL_NAN_BITS
    else out[r] = n
  }
  return out
}

export function keepCount(o: OracleOptions, len: number): number {
  let k = o.keepRatio !== undefined ? Math.ceil(o.keepRatio * len) : (o.keep as number)
  k = Math.max(0, Math.min(len, k))
  return Math.max(k, Math.min(len, (o.sink ?? 0) + (o.recent ?? 0)))
}

// ---- scores (docs/policies.md "The numeric contract of each score") ------------------------

/** Tokens per chunk of keydiff's anchor sum (docs/policies.md). */
export const TOKEN_CHUNK = 32

/**
 * keydiff's anchor of one row: a[d] = sum over the valid tokens j of k_j[d] / n_j (a key whose
 * norm is zero, infinite or NaN adds 0), summed in chunks of 32 tokens from +0 in token order,
 * the chunk sums by the pairwise tree.
 */
export function keydiffAnchor(x: ArrayLike<number>, norms: ArrayLike<number>, rowStart: number, len: number, D: number): number[] {
  const anchor: number[] = []
  for (let d = 0; d < D; d++) {
    const sums: number[] = []
    for (let c = 0; c * TOKEN_CHUNK < len; c++) {
      let s = 0
      for (let j = c * TOKEN_CHUNK; j < Math.min(len, (c + 1) * TOKEN_CHUNK); j++) {
        const n = norms[rowStart + j]
        const u = Number.isFinite(n) && n !== 0 ? Math.fround(x[(rowStart + j) * D + d] / n) : 0
        s = Math.fround(s + u)
      }
      sums.push(s)
    }
    anchor.push(sums.length ? pairwise(sums) : 0)
  }
  return anchor
}

function scoreName(score: OracleScore | undefined): string {
  if (score === undefined) return 'low-norm'
  if (typeof score === 'string') return score
  return 'project' in score ? 'project' : 'scores'
}

/**
 * The keep-highest score of every token, [B, H, S] float32: NaN (the canonical bits) at padding
 * positions (at or past a batch entry's length) and for every NaN score, +0 for every zero score
 * (-0 included), every other score with its exact bits. `project`'s vectors are [H * Dk], each
 * entry taken as fp32.
 */
export function scores(keys: OracleTensor, values: OracleTensor, score: OracleScore | undefined, lengths?: ArrayLike<number>): Float32Array {
  const [B, H, S, D] = keys.dims
  const out = new Float32Array(B * H * S)
  const bits = new Uint32Array(out.buffer)
  bits.fill(CANONICAL_NAN_BITS)
  const name = scoreName(score)
  if (name === 'scores') {
    // given: copied as bits (a float32 read into a JS number and back may lose a NaN's payload)
    const given = (score as { scores: OracleScoresTensor }).scores.data as Float32Array
    const g = new Uint32Array(given.buffer, given.byteOffset, given.length)
    for (let b = 0; b < B; b++) {
      const len = lengths ? lengths[b] : S
      for (let h = 0; h < H; h++) {
        for (let i = 0; i < len; i++) {
          const at = (b * H + h) * S + i
          if (given[at] === 0) bits[at] = 0 // -0 given is returned as +0
          else if (!Number.isNaN(given[at])) bits[at] = g[at]
        }
      }
    }
    return out
  }
  const x = decode(keys)
  const kn = keyNorms(keys)
  const vn = name === 'kv-norm' ? keyNorms(values) : undefined
  const f = name === 'project' ? Array.from((score as { project: ArrayLike<number> }).project, (v) => Math.fround(v)) : undefined
  for (let b = 0; b < B; b++) {
    const len = lengths ? lengths[b] : S
    for (let h = 0; h < H; h++) {
      const row = (b * H + h) * S
      const anchor = name === 'keydiff' ? keydiffAnchor(x, kn, row, len, D) : undefined
      for (let i = 0; i < len; i++) {
        const n = kn[row + i]
        let s: number
        if (name === 'low-norm') s = -n
        else if (name === 'high-norm') s = n
        else if (name === 'kv-norm') s = Math.fround(n * (vn as Float32Array)[row + i])
        else if (name === 'project') s = -dotOf(f as number[], h * D, x, (row + i) * D, D)
        else if (name === 'keydiff') {
          if (!Number.isFinite(n)) s = NaN
          else if (n === 0) s = 0
          else s = -Math.fround(dotOf(x, (row + i) * D, anchor as number[], 0, D) / n)
        } else throw new Error(`oracle: unknown scorer ${name}`)
        // every zero score is +0 (docs/policies.md: a dot's zero sign would depend on zero padding)
        if (!Number.isNaN(s)) out[row + i] = s === 0 ? 0 : s
      }
    }
  }
  return out
}

// ---- selection ------------------------------------------------------------------------------

/** Keep-highest rank order: NaN last, then the higher score (+0 == -0), then the earlier position. */
export function scoreCompare(s: ArrayLike<number>) {
  return (a: number, b: number): number => {
    const na = Number.isNaN(s[a]), nb = Number.isNaN(s[b])
    if (na !== nb) return na ? 1 : -1
    if (!na && s[a] !== s[b]) return s[a] > s[b] ? -1 : 1
    return a - b
  }
}

/** Rank order of the contract: NaN last, then norm (ascending or descending), then position. */
export function rankCompare(norms: ArrayLike<number>, high: boolean) {
  return scoreCompare(Array.from(norms, (n) => (high ? n : -n)))
}

/** Kept positions of one row of `len` scores (keep-highest): sink, recent, then the best ranked. */
export function selectTop(s: ArrayLike<number>, len: number, o: OracleOptions): number[] {
  const k = keepCount(o, len)
  const sink = Math.min(o.sink ?? 0, len)
  const recent = Math.min(o.recent ?? 0, len - sink)
  const cmp = scoreCompare(s)
  const kept: number[] = []
  for (let i = 0; i < sink; i++) kept.push(i)
  for (let i = len - recent; i < len; i++) kept.push(i)
  const middle: number[] = []
  for (let i = sink; i < len - recent; i++) middle.push(i)
  middle.sort(cmp)
  kept.push(...middle.slice(0, k - kept.length))
  return o.order === 'norm' ? kept.sort(cmp) : kept.sort((a, b) => a - b)
}

/** Kept positions of one row of `len` norms under 'low-norm' (default) or 'high-norm'. */
export function selectRow(norms: ArrayLike<number>, len: number, o: OracleOptions): number[] {
  const high = o.score === 'high-norm'
  return selectTop(Array.from(norms, (n) => (high ? n : -n)), len, o)
}

export interface OracleCompressResult {
  keys: OracleTensor
  values: OracleTensor
  indices: Int32Array
  lengths: Int32Array
  kept: number
}

/** compress with any scorer: the k highest scores of each row kept, their rows gathered. */
export function compress(keys: OracleTensor, values: OracleTensor, o: OracleOptions): OracleCompressResult {
  const [B, H, S, D] = keys.dims
  const Dv = values.dims[3]
  const lens = Array.from({ length: B }, (_, b) => (o.lengths ? o.lengths[b] : S))
  const ks = lens.map((len) => keepCount(o, len))
  const K = Math.max(0, ...ks)
  const sc = scores(keys, values, o.score, lens)
  const make = (n: number) => (keys.type === 'float32' ? new Float32Array(n) : new Uint16Array(n))
  const outK = make(B * H * K * D), outV = make(B * H * K * Dv)
  // Rows are copied as bits: a float32 signalling NaN read into a JS number would come back quiet.
  const bits = (a: Float32Array | Uint16Array) => (a instanceof Float32Array ? new Uint32Array(a.buffer, a.byteOffset, a.length) : a)
  const [srcK, srcV, dstK, dstV] = [bits(keys.data), bits(values.data), bits(outK), bits(outV)]
  const indices = new Int32Array(B * H * K).fill(-1)
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const row = b * H + h
      const kept = selectTop(sc.subarray(row * S, row * S + lens[b]), lens[b], o)
      kept.forEach((pos, j) => {
        indices[row * K + j] = pos
        for (let x = 0; x < D; x++) dstK[(row * K + j) * D + x] = srcK[(row * S + pos) * D + x]
        for (let x = 0; x < Dv; x++) dstV[(row * K + j) * Dv + x] = srcV[(row * S + pos) * Dv + x]
      })
    }
  }
  return {
    keys: { type: keys.type, data: outK, dims: [B, H, K, D] },
    values: { type: values.type, data: outV, dims: [B, H, K, Dv] },
    indices,
    lengths: Int32Array.from(ks),
    kept: K,
  }
}

/** The names the brief asks for. */
export { scores as oracleScores, compress as oracleCompress }
