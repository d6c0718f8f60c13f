// Seeded random tensors for the suites: every run draws a fresh seed (printed on failure via
// the test name), KVTRIM_SEED=<n> replays one.
import type { DType, OracleTensor } from './oracle'

export function runSeed(): number {
  const env = process.env.KVTRIM_SEED
  return env ? Number(env) : Math.floor(Math.random() * 2 ** 31)
}

export type Rng = () => number

// mulberry32, the seeded generator the evaluation samples its text with.
export { rng } from '../eval/text'

export const int = (r: Rng, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1))
export const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]

/** A standard normal draw (Box-Muller). */
export function gaussian(r: Rng): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r())
}

/** Random bits of a finite 16-bit value: normal exponents around 1, some tiny and subnormal. */
function bits16(r: Rng, type: 'float16' | 'bfloat16'): number {
  const sign = r() < 0.5 ? 0x8000 : 0
  const u = r()
  if (type === 'float16') {
    const exp = u < 0.03 ? 0 : u < 0.06 ? int(r, 1, 30) : int(r, 10, 17)
    return sign | (exp << 10) | int(r, 0, 0x3ff)
  }
  // bfloat16: 8-bit exponent; some values below 1e-20 (exponent < 61), where only
  // separately rounded multiply and add give the contract's result
  const exp = u < 0.03 ? 0 : u < 0.08 ? int(r, 1, 60) : u < 0.1 ? int(r, 1, 254) : int(r, 118, 132)
  return sign | (exp << 7) | int(r, 0, 0x7f)
}

export interface TensorSpec {
  /** fraction of rows copied from another row of the same head (exact norm ties) */
  dupRows?: number
  /** fraction of rows with a NaN element */
  nanRows?: number
  /** fraction of rows with an infinite element */
  infRows?: number
}

export function randomTensor(r: Rng, type: DType, dims: number[], spec: TensorSpec = {}): OracleTensor {
  const [B, H, S, D] = dims
  const n = B * H * S * D
  const data = type === 'float32' ? new Float32Array(n) : new Uint16Array(n)
  const scale = 10 ** int(r, -3, 3)
  for (let i = 0; i < n; i++) {
    data[i] = type === 'float32' ? gaussian(r) * scale : bits16(r, type)
  }
  const nan = type === 'float16' ? 0x7e00 : type === 'bfloat16' ? 0x7fc0 : NaN
  const inf = type === 'float16' ? 0x7c00 : type === 'bfloat16' ? 0x7f80 : Infinity
  for (let row = 0; row < B * H; row++) {
    for (let s = 0; s < S; s++) {
      const base = (row * S + s) * D
      const u = r()
      if (u < (spec.dupRows ?? 0) && S > 1) {
        const from = (row * S + int(r, 0, S - 1)) * D
        data.copyWithin(base, from, from + D)
      } else if (u < (spec.dupRows ?? 0) + (spec.nanRows ?? 0)) {
        data[base + int(r, 0, D - 1)] = nan
      } else if (u < (spec.dupRows ?? 0) + (spec.nanRows ?? 0) + (spec.infRows ?? 0)) {
        data[base + int(r, 0, D - 1)] = inf
      }
    }
  }
  return { type, data, dims: [...dims] }
}
