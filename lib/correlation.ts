// The L2-norm paper's diagnostic (Devoto et al. 2024, its figures of norm against attention):
// per KV head, Spearman's rank correlation between a cached key's L2 norm and the attention it
// receives from later queries. Strongly negative means low-norm keys draw the attention, which is
// what makes keeping the lowest norms work; near zero or positive means the heuristic has no
// basis on that layer or head. Plain TypeScript over kvtrim's norms (keyNormsSync).
import { KvtrimError } from './errors'
import { keyNormsSync } from './ops'
import type { TensorLike } from './types'
import { describe, invalid } from './validate'

export interface CorrelationResult {
  /** [batch, kvHeads]: Spearman's rho per KV head; NaN where a side is constant (no ranking). */
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

/** Average ranks (1-based; ties share the mean of their ranks), in double. */
export function ranks(x: ArrayLike<number>): Float64Array {
  const n = x.length
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => x[a] - x[b])
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

/** Spearman's rho: Pearson's correlation of the average ranks; NaN when either side is constant or n < 2. */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length
  if (n !== y.length) throw new KvtrimError(`Expected two series of one length but received ${n} and ${y.length}`, 'INVALID_ARGUMENT')
  if (n < 2) return NaN
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
  for (const [name, t] of [['keys', keys], ['attention', attention]] as const) {
    if (typeof t !== 'object' || t === null || !Array.isArray(t.dims)) throw invalid('INVALID_ARGUMENT', 'a tensor { type, data, dims }', name, t)
    if (t.dims.length !== 4) throw new KvtrimError(`Expected ${name}.dims to have 4 entries but received ${describe(t.dims)}`, 'INVALID_RANK')
  }
  const norms = keyNormsSync(keys)
  const [B, Hkv, S] = keys.dims
  const [Ba, Hq, Q, Sa] = attention.dims
  if (Ba !== B || Hq % Hkv !== 0 || Hq === 0 || Sa < S) {
    throw new KvtrimError(
      `Expected attention.dims [${B}, a multiple of ${Hkv}, queries, at least ${S}] for keys.dims [${keys.dims.join(', ')}] but received [${attention.dims.join(', ')}]`,
      'DIMS_MISMATCH',
    )
  }
  const count = B * Hq * Q * Sa
  const a = attention.data as ArrayLike<number>
  if (a.length !== count) throw new KvtrimError(`Expected attention.data.length ${count} (the product of dims) but received ${a.length}`, 'DATA_LENGTH')
  const read =
    attention.type === 'float32' ? (i: number) => a[i]
    : attention.type === 'float16' ? (i: number) => f16(a[i])
    : attention.type === 'bfloat16' ? (i: number) => bf16(a[i])
    : undefined
  if (!read) throw invalid('INVALID_DTYPE', "'float32', 'float16' or 'bfloat16'", 'attention.type', attention.type)
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
