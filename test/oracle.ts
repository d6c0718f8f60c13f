// The numeric contract of docs/contract.md in plain TypeScript: the independent oracle the native
// paths are checked against. Written for clarity, not speed, and sharing nothing with native/:
// fp16 is decoded arithmetically (not by bit surgery), every fp32 operation is a double
// operation rounded with Math.fround (exact for +, *, sqrt: double has more than 2 * 24 + 2 bits),
// and selection is a full sort with a comparator (not a radix select).

export type DType = 'float16' | 'bfloat16' | 'float32'

export interface OracleTensor {
  type: DType
  data: Float32Array | Uint16Array
  dims: number[]
}

export interface OracleOptions {
  keepRatio?: number
  keep?: number
  order?: 'position' | 'norm'
  score?: 'low-norm' | 'high-norm'
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
  const chunks = Math.ceil(d / 8)
  let n = 1
  while (n < chunks) n *= 2
  const sums = new Array<number>(n).fill(0)
  for (let c = 0; c < chunks; c++) {
    let s = 0
    for (let i = c * 8; i < Math.min(d, c * 8 + 8); i++) {
      const x = element(t, offset + i)
      s = Math.fround(s + Math.fround(x * x))
    }
    sums[c] = s
  }
  for (let half = n / 2; half >= 1; half /= 2) {
    for (let i = 0; i < half; i++) sums[i] = Math.fround(sums[i] + sums[i + half])
  }
  return Math.fround(Math.sqrt(sums[0]))
}

/** The contract's one bit pattern for a NaN norm: the positive quiet NaN. */
export const CANONICAL_NAN_BITS = 0x7fc00000

export function keyNorms(keys: OracleTensor): Float32Array {
  const [b, h, s, d] = keys.dims
  const out = new Float32Array(b * h * s)
  // NaN is written through the bits: storing a JS NaN into a Float32Array leaves its pattern to the engine.
  const bits = new Uint32Array(out.buffer)
  for (let r = 0; r < out.length; r++) {
    const n = rowNorm(keys, r * d, d)
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

/** Rank order of the contract: NaN last, then norm (ascending or descending), then position. */
export function rankCompare(norms: ArrayLike<number>, high: boolean) {
  return (a: number, b: number): number => {
    const na = Number.isNaN(norms[a]), nb = Number.isNaN(norms[b])
    if (na !== nb) return na ? 1 : -1
    if (!na && norms[a] !== norms[b]) return (high ? -1 : 1) * (norms[a] < norms[b] ? -1 : 1)
    return a - b
  }
}

/** Kept positions of one row of `len` norms. */
export function selectRow(norms: ArrayLike<number>, len: number, o: OracleOptions): number[] {
  const k = keepCount(o, len)
  const sink = Math.min(o.sink ?? 0, len)
  const recent = Math.min(o.recent ?? 0, len - sink)
  const cmp = rankCompare(norms, o.score === 'high-norm')
  const kept: number[] = []
  for (let i = 0; i < sink; i++) kept.push(i)
  for (let i = len - recent; i < len; i++) kept.push(i)
  const middle: number[] = []
  for (let i = sink; i < len - recent; i++) middle.push(i)
  middle.sort(cmp)
  kept.push(...middle.slice(0, k - kept.length))
  return o.order === 'norm' ? kept.sort(cmp) : kept.sort((a, b) => a - b)
}

export interface OracleCompressResult {
  keys: OracleTensor
  values: OracleTensor
  indices: Int32Array
  lengths: Int32Array
  kept: number
}

export function compress(keys: OracleTensor, values: OracleTensor, o: OracleOptions): OracleCompressResult {
  const [B, H, S, D] = keys.dims
  const Dv = values.dims[3]
  const lens = Array.from({ length: B }, (_, b) => (o.lengths ? o.lengths[b] : S))
  const ks = lens.map((len) => keepCount(o, len))
  const K = Math.max(0, ...ks)
  const norms = keyNorms(keys)
  const make = (n: number) => (keys.type === 'float32' ? new Float32Array(n) : new Uint16Array(n))
  const outK = make(B * H * K * D), outV = make(B * H * K * Dv)
  // Rows are copied as bits: a float32 signalling NaN read into a JS number would come back quiet.
  const bits = (a: Float32Array | Uint16Array) => (a instanceof Float32Array ? new Uint32Array(a.buffer, a.byteOffset, a.length) : a)
  const [srcK, srcV, dstK, dstV] = [bits(keys.data), bits(values.data), bits(outK), bits(outV)]
  const indices = new Int32Array(B * H * K).fill(-1)
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const row = b * H + h
      const kept = selectRow(norms.subarray(row * S, row * S + lens[b]), lens[b], o)
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
