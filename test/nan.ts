// Keys whose NaN rows carry many different NaN bit patterns (signs, quiet and signalling payloads,
// several NaNs per row, NaN next to Inf), so that the hardware's NaN propagation would give each
// path its own bits; the contract says every NaN norm is CANONICAL_NAN_BITS.
import { CANONICAL_NAN_BITS, type DType, type OracleTensor } from './oracle'
import { int, randomTensor, type Rng } from './random'

export { CANONICAL_NAN_BITS }

/** A random NaN of the dtype: random sign, random non-zero mantissa (quiet or signalling). */
export function randomNaN(r: Rng, type: DType): number {
  const sign = r() < 0.5
  if (type === 'float16') return (sign ? 0x8000 : 0) | 0x7c00 | int(r, 1, 0x3ff)
  if (type === 'bfloat16') return (sign ? 0x8000 : 0) | 0x7f80 | int(r, 1, 0x7f)
  return ((sign ? 0x80000000 : 0) | 0x7f800000 | int(r, 1, 0x7fffff)) >>> 0
}

/**
 * A random tensor in which a fraction `nanRows` of the rows hold 1..3 random NaNs (and sometimes
 * an Inf) at random places. float32 data is written through its bits, so the payloads survive.
 */
export function nanPayloadTensor(r: Rng, type: DType, dims: number[], nanRows = 0.3): OracleTensor {
  const t = randomTensor(r, type, dims)
  const d = dims[3]
  const rows = dims[0] * dims[1] * dims[2]
  const bits = type === 'float32' ? new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length) : t.data
  const inf = type === 'float16' ? 0x7c00 : type === 'bfloat16' ? 0x7f80 : 0x7f800000
  for (let row = 0; row < rows; row++) {
    if (r() >= nanRows) continue
    const n = int(r, 1, 3)
    for (let j = 0; j < n; j++) bits[row * d + int(r, 0, d - 1)] = randomNaN(r, type)
    if (r() < 0.3) {
      const i = row * d + int(r, 0, d - 1)
      if (!isNaNBits(type, bits[i])) bits[i] = inf | (r() < 0.5 ? (type === 'float32' ? 0x80000000 : 0x8000) : 0)
    }
  }
  return t
}

function isNaNBits(type: DType, b: number): boolean {
  if (type === 'float16') return (b & 0x7c00) === 0x7c00 && (b & 0x3ff) !== 0
  if (type === 'bfloat16') return (b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0
  return (b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0
}

/** Number of NaN norms, after checking that each of them has the canonical bits. */
export function canonicalNaNs(norms: Float32Array): { count: number; bad: string[] } {
  const bits = new Uint32Array(norms.buffer, norms.byteOffset, norms.length)
  let count = 0
  const bad: string[] = []
  for (let i = 0; i < norms.length; i++) {
    if (!Number.isNaN(norms[i])) continue
    count++
    if (bits[i] !== CANONICAL_NAN_BITS && bad.length < 5) bad.push(`[${i}] 0x${bits[i].toString(16)}`)
  }
  return { count, bad }
}
