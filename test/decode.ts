// Decode-loop helpers for the Compressor suites: a dynamic cache grows by appended rows.
import type { DType } from './oracle'

export type HostCache = { type: DType | string; data: Uint16Array | Float32Array; dims: number[] }

/** [B, H, S, D] + `rows` [B, H, n, D] -> [B, H, S + n, D] (a new tensor of the same data kind). */
export function appendRows<T extends HostCache>(t: T, rows: HostCache): T {
  const [b, h, s, d] = t.dims
  const n = rows.dims[2]
  const out = new (t.data.constructor as new (n: number) => Uint16Array | Float32Array)(b * h * (s + n) * d)
  for (let r = 0; r < b * h; r++) {
    out.set(t.data.subarray(r * s * d, (r + 1) * s * d), r * (s + n) * d)
    out.set(rows.data.subarray(r * n * d, (r + 1) * n * d), (r * (s + n) + s) * d)
  }
  return { type: t.type, data: out, dims: [b, h, s + n, d] } as T
}
