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

/** docs/policies.md "Selection modes": how many tokens each (batch entry, KV head) row keeps. */
export type OracleSelection = 'per-head' | 'adaptive' | { adaptive: { alpha?: number } } | { threshold: number }

export interface OracleOptions {
  keepRatio?: number
  keep?: number
  order?: 'position' | 'norm'
  score?: OracleScore
  sink?: number
  recent?: number
  lengths?: ArrayLike<number>
  /** How many tokens each head keeps (default 'per-head'). */
  selection?: OracleSelection
  /** The caller's per-row counts [B * H] (instead of keepRatio / keep / selection). */
  headKeep?: ArrayLike<number>
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
  return selectTopK(s, len, o, keepCount(o, len))
}

/**
 * Kept positions of one row of `len` scores with its own kept count k (sink and recent included,
 * so k >= their count): the sink and recent tokens, then the k - p best-ranked middle tokens; in
 * position order, or rank order for order 'norm'.
 */
export function selectTopK(s: ArrayLike<number>, len: number, o: OracleOptions, k: number): number[] {
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

// ---- selection modes (docs/policies.md "Selection modes: how many tokens each head keeps") -----

/** The protected tokens of a row of `len` valid tokens and its middle [lo, hi). */
export function protectedSpan(len: number, sink = 0, recent = 0): { p: number; lo: number; hi: number } {
  const ns = Math.min(sink, len)
  const nr = Math.min(recent, len - ns)
  return { p: ns + nr, lo: ns, hi: len - nr }
}

/** AdaKV's alpha of a selection ('adaptive': the default 0.2), or undefined for any other mode. */
export function adaptiveAlpha(sel: OracleSelection | undefined): number | undefined {
  if (sel === 'adaptive') return 0.2
  if (typeof sel === 'object' && sel !== null && 'adaptive' in sel) return sel.adaptive.alpha ?? 0.2
  return undefined
}

export interface SelectionCountOptions {
  selection?: OracleSelection
  keepRatio?: number
  keep?: number
  sink?: number
  recent?: number
  lengths?: ArrayLike<number>
}

/**
 * The kept count k_h of every (batch entry, KV head) row, [B * H] row-major, from the rows'
 * keep-highest scores [B, H, S] (only positions below the entry's length are read):
 * - 'per-head' (or none): k = keepCount of the entry's length, every head alike;
 * - { threshold: t }: p + #{ middle i : score_i >= fround(t) } (a NaN score never counts);
 * - 'adaptive' / { adaptive: { alpha } }: per entry, m = k - p, f = floor(alpha * m) of each
 *   head's own best middle tokens, then H * (m - f) slots to the best remaining middle tokens of
 *   all heads ranked by (NaN last, score descending with +0 == -0, head ascending, position
 *   ascending); k_h = p + f + the slots head h won.
 * A full sort with a comparator per entry: written for clarity, not speed.
 */
export function selectionCountsOracle(sc: ArrayLike<number>, B: number, H: number, S: number, o: SelectionCountOptions): Int32Array {
  const out = new Int32Array(B * H)
  const sel = o.selection ?? 'per-head'
  const alpha = adaptiveAlpha(sel)
  for (let b = 0; b < B; b++) {
    const len = o.lengths ? o.lengths[b] : S
    const { p, lo, hi } = protectedSpan(len, o.sink, o.recent)
    const at = (h: number, i: number) => sc[(b * H + h) * S + i]
    if (sel === 'per-head') {
      out.fill(keepCount(o, len), b * H, (b + 1) * H)
    } else if (typeof sel === 'object' && 'threshold' in sel) {
      const t = Math.fround(sel.threshold)
      for (let h = 0; h < H; h++) {
        let n = 0
        for (let i = lo; i < hi; i++) if (at(h, i) >= t) n++ // NaN >= t is false
        out[b * H + h] = p + n
      }
    } else if (alpha !== undefined) {
      const m = keepCount(o, len) - p
      const f = Math.floor(alpha * m)
      // every head's own ranking; its first f are its floor, the rest go to the global pick
      const pool: Array<[number, number, number]> = [] // [score, head, position]
      for (let h = 0; h < H; h++) {
        const row = Array.from({ length: hi - lo }, (_, j) => lo + j)
        const s = (i: number) => at(h, i)
        row.sort((x, y) => {
          const nx = Number.isNaN(s(x)), ny = Number.isNaN(s(y))
          if (nx !== ny) return nx ? 1 : -1
          if (!nx && s(x) !== s(y)) return s(x) > s(y) ? -1 : 1
          return x - y
        })
        for (const i of row.slice(f)) pool.push([s(i), h, i])
        out[b * H + h] = p + f
      }
      pool.sort((x, y) => {
        const nx = Number.isNaN(x[0]), ny = Number.isNaN(y[0])
        if (nx !== ny) return nx ? 1 : -1
        if (!nx && x[0] !== y[0]) return x[0] > y[0] ? -1 : 1
        if (x[1] !== y[1]) return x[1] - y[1]
        return x[2] - y[2]
      })
      for (const [, h] of pool.slice(0, H * (m - f))) out[b * H + h]++
    } else throw new Error(`oracle: unknown selection ${JSON.stringify(sel)}`)
  }
  return out
}

/** The name the brief uses too. */
export { selectionCountsOracle as selectionCounts }

/** Each row's kept count under o: headKeep as given, a selection's counts, or keepCount per entry. */
export function rowCounts(sc: ArrayLike<number>, dims: readonly number[], o: OracleOptions): Int32Array {
  const [B, H, S] = dims
  if (o.headKeep) return Int32Array.from(o.headKeep)
  return selectionCountsOracle(sc, B, H, S, o)
}

export interface OracleCompressResult {
  keys: OracleTensor
  values: OracleTensor
  indices: Int32Array
  /** per batch entry: the most any of its heads keeps */
  lengths: Int32Array
  /** per (batch entry, KV head) row: its own kept count */
  headLengths: Int32Array
  kept: number
}

/**
 * compress with any scorer and any per-row counts (o.headKeep, o.selection, or keepRatio / keep
 * for every head): each row's k_h highest scores (with sink and recent) kept, their rows
 * gathered into [B, H, kmax, D], kmax the largest count; a row's slots past its own count are
 * zero rows with index -1.
 */
export function compress(keys: OracleTensor, values: OracleTensor, o: OracleOptions): OracleCompressResult {
  const [B, H, S, D] = keys.dims
  const Dv = values.dims[3]
  const lens = Array.from({ length: B }, (_, b) => (o.lengths ? o.lengths[b] : S))
  const sc = scores(keys, values, o.score, lens)
  const counts = rowCounts(sc, keys.dims, { ...o, lengths: lens })
  const lengths = new Int32Array(B)
  for (let b = 0; b < B; b++) {
    // per-head: the entry's keep count whatever H is; otherwise the most of its heads
    lengths[b] = o.headKeep || (o.selection !== undefined && o.selection !== 'per-head') ? Math.max(0, ...counts.subarray(b * H, (b + 1) * H)) : keepCount(o, lens[b])
  }
  const K = Math.max(0, ...lengths)
  const make = (n: number) => (keys.type === 'float32' ? new Float32Array(n) : new Uint16Array(n))
  const outK = make(B * H * K * D), outV = make(B * H * K * Dv)
  // Rows are copied as bits: a float32 signalling NaN read into a JS number would come back quiet.
  const bits = (a: Float32Array | Uint16Array) => (a instanceof Float32Array ? new Uint32Array(a.buffer, a.byteOffset, a.length) : a)
  const [srcK, srcV, dstK, dstV] = [bits(keys.data), bits(values.data), bits(outK), bits(outV)]
  const indices = new Int32Array(B * H * K).fill(-1)
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const row = b * H + h
      const kept = selectTopK(sc.subarray(row * S, row * S + lens[b]), lens[b], o, counts[row])
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
    lengths,
    headLengths: counts,
    kept: K,
  }
}

/**
 * compressInPlace's buffers after the call (docs/policies.md: each head's kept rows, in position
 * order, moved to the front of its own row; the rest as it was): copies of keys and values with
 * rows [0, k_h) of each (b, h) replaced, plus compress's indices, lengths and headLengths.
 */
export function compressInPlace(keys: OracleTensor, values: OracleTensor, o: OracleOptions): OracleCompressResult {
  const want = compress(keys, values, { ...o, order: 'position' })
  const [B, H, S] = keys.dims
  const front = (t: OracleTensor, packed: OracleTensor): OracleTensor => {
    const D = t.dims[3]
    const out = t.data.slice()
    for (let row = 0; row < B * H; row++) {
      const n = want.headLengths[row] * D
      out.set(packed.data.subarray(row * want.kept * D, row * want.kept * D + n), row * S * D)
    }
    return { type: t.type, data: out, dims: [...t.dims] }
  }
  return { ...want, keys: front(keys, want.keys), values: front(values, want.values) }
}

/** The names the brief asks for. */
export { scores as oracleScores, compress as oracleCompress }
