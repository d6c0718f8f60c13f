// The L2-norm paper's diagnostic (Devoto et al. 2024, its figures of norm against attention):
// per KV head, Spearman's rank correlation between a cached key's L2 norm and the attention it
// receives from later queries. Strongly negative means low-norm keys draw the attention, which is
// what makes keeping the lowest norms work; near zero or positive means the heuristic has no
// basis on that layer or head. Plain TypeScript over kvtrim's norms (keyNormsSync).
import { describe, dims4, invalid, isArrayLike } from '../check'
import { KvtrimError } from '../errors'
import { keyNormsSync } from '../key-norms'
import { isDeviceTensor } from '../tensor'
import type { TensorLike } from '../types'

export interface CorrelationResult {
  /** [batch, kvHeads]: Spearman's rho per KV head; NaN where a side is constant or holds a NaN (no ranking). */
  perHead: Float64Array
  /** The mean of the finite entries of perHead (NaN when there are none). */
  mean: number
  /** [batch, kvHeads, seqLen]: the attention each cached key received, summed over queries and the query heads of its group. */
  received: Float64Array
  /** [batch, kvHeads, seqLen]: the keys' L2 norms (kvtrim's keyNorms). */
  norms: Float32Array
}

function f16(bits: number): number {
  const e = (bits >> 10) & 0x1f, m = bits & 0x3ff, s = bits & 0x8000 ? -1 : 1
  if (e === 0x1f) return m ? NaN : s * Infinity
  return e === 0 ? s * m * 2 ** -24 : s * (1024 + m) * 2 ** (e - 25)
}
const bf16Buf = new Float32Array(1), bf16Bits = new Uint32Array(bf16Buf.buffer)
function bf16(bits: number): number {
  bf16Bits[0] = bits << 16
  return bf16Buf[0]
}

/** Average ranks (1-based; ties share the mean of their ranks), in double. No NaN in x. */
export function ranks(x: ArrayLike<number>): Float64Array {
  const n = x.length
  // comparisons, not x[a] - x[b]: Infinity - Infinity is NaN, which breaks the sort
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (x[a] < x[b] ? -1 : x[a] > x[b] ? 1 : 0))
  const r = new Float64Array(n)
  for (let i = 0; i < n; ) {
    let j = i
    while (j + 1 < n && x[order[j + 1]] === x[order[i]]) j++
    const avg = (i + j) / 2 + 1
    for (let k = i; k <= j; k++) r[order[k]] = avg
    i = j + 1
  }
  return r
}

/** A series of numbers: an array of numbers or a numeric typed array (not a BigInt64Array, not a DataView). */
function series(v: unknown, name: string): ArrayLike<number> {
  let ok = isArrayLike(v) && !(v instanceof BigInt64Array || v instanceof BigUint64Array)
  if (ok && Array.isArray(v)) {
    // a loop: a hole reads as undefined and fails (every() would skip it)
    for (let i = 0; i < v.length && ok; i++) ok = typeof v[i] === 'number'
  }
  if (!ok) throw invalid('INVALID_ARGUMENT', 'an array or typed array of numbers', name, v)
  return v as ArrayLike<number>
}

function hasNaN(x: ArrayLike<number>): boolean {
  for (let i = 0; i < x.length; i++) if (Number.isNaN(x[i])) return true
  return false
}

/**
 * Spearman's rho: Pearson's correlation of the average ranks; NaN when either side is constant,
 * holds a NaN (no ranking), or n < 2.
 */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  series(x, 'x')
  series(y, 'y')
  const n = x.length
  if (n !== y.length) throw new KvtrimError(`Expected two series of one length but received ${n} and ${y.length}`, 'INVALID_ARGUMENT')
  if (n < 2 || hasNaN(x) || hasNaN(y)) return NaN
  const rx = ranks(x), ry = ranks(y)
  const mean = (n + 1) / 2
  let sxy = 0, sxx = 0, syy = 0
  for (let i = 0; i < n; i++) {
    const a = rx[i] - mean, b = ry[i] - mean
    sxy += a * b
    sxx += a * a
    syy += b * b
  }
  return sxx === 0 || syy === 0 ? NaN : sxy / Math.sqrt(sxx * syy)
}

/** The most heads (batch * kvHeads) normAttentionCorrelation takes. */
const MAX_HEADS = 2 ** 24

interface Snapshot {
  type: unknown
  data: unknown
  dims: [number, number, number, number]
}

/** A host tensor's fields, each read once; dims checked to be 4 non-negative integers. */
function snapshot(t: unknown, name: string): Snapshot {
  if (isDeviceTensor(t)) throw invalid('INVALID_ARGUMENT', 'a host tensor { type, data, dims } (download() a device tensor first)', name, t)
  if (typeof t !== 'object' || t === null) throw invalid('INVALID_ARGUMENT', 'a tensor { type, data, dims }', name, t)
  const o = t as { type?: unknown; data?: unknown; dims?: unknown }
  const type = o.type, data = o.data, dims = o.dims
  if (!Array.isArray(dims)) throw invalid('INVALID_ARGUMENT', 'a tensor { type, data, dims } with dims an array', name, t)
  if (dims.length !== 4) throw new KvtrimError(`Expected ${name}.dims to have 4 entries but received ${describe(dims)}`, 'INVALID_RANK')
  return { type, data, dims: dims4(dims, `${name}.dims`) }
}

/** attention.data as numbers: float32 as is, 16-bit types decoded from their bits. */
function reader(t: Snapshot, count: number): (i: number) => number {
  const { type, data } = t
  if (type !== 'float32' && type !== 'float16' && type !== 'bfloat16') {
    throw invalid('INVALID_DTYPE', "'float32', 'float16' or 'bfloat16'", 'attention.type', type)
  }
  const view = ArrayBuffer.isView(data) && !(data instanceof DataView) ? (data as Uint16Array) : undefined
  // any ArrayBuffer: shared or resizable ones are read the same way
  if (!view || (type === 'float32' ? !(view instanceof Float32Array) : view.BYTES_PER_ELEMENT !== 2)) {
    throw invalid('INVALID_ARGUMENT', type === 'float32' ? 'a Float32Array' : 'a Uint16Array (or Float16Array) of raw bits', 'attention.data', data)
  }
  if (view.length !== count) {
    throw new KvtrimError(`Expected attention.data.length ${count} (the product of dims [${t.dims.join(', ')}]) but received ${view.length}`, 'DATA_LENGTH')
  }
  if (type === 'float32') {
    const a = view as unknown as Float32Array
    return (i) => a[i]
  }
  // the bits, whatever the 16-bit array's kind (a Float16Array's elements would read as values)
  const bits = new Uint16Array(view.buffer, view.byteOffset, view.length)
  return type === 'float16' ? (i) => f16(bits[i]) : (i) => bf16(bits[i])
}

/**
 * Spearman's correlation between cached keys' L2 norms and the attention they receive, per
 * batch entry and KV head.
 *
 * - `keys`: one layer's cached keys [batch, kvHeads, seqLen, headDim] (float32 or 16-bit bits).
 * - `attention`: weights of later queries [batch, qHeads, queries, keyLen] with keyLen >= seqLen;
 *   columns 0 .. seqLen-1 are the cached keys (further columns, the queries' own tokens, are ignored).
 *   qHeads is a multiple of kvHeads: query head h reads KV head floor(h / (qHeads / kvHeads)).
 *   float32, or float16 / bfloat16 bits.
 */
export function normAttentionCorrelation(keys: TensorLike, attention: TensorLike): CorrelationResult {
  const k = snapshot(keys, 'keys')
  const at = snapshot(attention, 'attention')
  // keys' own checks (dtype, data, headDim, rows) are keyNormsSync's, on this snapshot
  const norms = keyNormsSync({ type: k.type as TensorLike['type'], data: k.data as TensorLike['data'], dims: k.dims })
  const [B, Hkv, S] = k.dims
  const [Ba, Hq, Q, Sa] = at.dims
  if (Ba !== B || Hkv === 0 || Hq % Hkv !== 0 || Hq === 0 || Sa < S) {
    throw new KvtrimError(
      `Expected attention.dims [${B}, a multiple of ${Hkv}, queries, at least ${S}] for keys.dims [${k.dims.join(', ')}] but received [${at.dims.join(', ')}]`,
      'DIMS_MISMATCH',
    )
  }
  if (B * Hkv > MAX_HEADS) {
    // one rho per head: an empty cache of 2^31 heads would still make (and fill) a 16 GiB result
    throw new KvtrimError(`Expected keys with at most 2^24 heads (batch * kvHeads) but keys.dims is [${k.dims.join(', ')}]`, 'TOO_MANY_ROWS')
  }
  const count = B * Hq * Q * Sa
  if (!Number.isSafeInteger(count)) {
    throw new KvtrimError(`Expected attention.dims whose product is at most 2^53 - 1 but received [${at.dims.join(', ')}]`, 'INVALID_DIMS')
  }
  const read = reader(at, count)
  const group = Hq / Hkv
  const received = new Float64Array(B * Hkv * S)
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const out = (b * Hkv + Math.floor(h / group)) * S
      for (let q = 0; q < Q; q++) {
        const row = ((b * Hq + h) * Q + q) * Sa
        for (let j = 0; j < S; j++) received[out + j] += read(row + j)
      }
    }
  }
  const perHead = new Float64Array(B * Hkv)
  let sum = 0, finite = 0
  for (let r = 0; r < B * Hkv; r++) {
    perHead[r] = spearman(norms.subarray(r * S, (r + 1) * S), received.subarray(r * S, (r + 1) * S))
    if (Number.isFinite(perHead[r])) {
      sum += perHead[r]
      finite++
    }
  }
  return { perHead, mean: finite ? sum / finite : NaN, received, norms }
}
