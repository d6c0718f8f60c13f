// The Compressor's memory of scores: per layer, the scores of the tokens its cache holds
// (the kept ones after the last compression), so that a compression scores only the tokens
// appended since, instead of every token again. A token's score depends on its own key and
// value rows only (every scorer but keydiff, whose anchor is a mean over the row), so the
// scores assembled here are the very numbers tokenScores would give for the whole cache, and
// the selection is bit-identical to recomputing (test/score-reuse.test.ts).
//
// Host caches only: a device cache is rescored whole (the scoring pass there runs at memory
// bandwidth, a small part of the compress it precedes). A memory is trusted only while the
// cache is the one the Compressor returned plus appended tokens: one key row per layer is kept
// as a probe and compared at the next compression; a mismatch (a new sequence, re-rotated
// keys) rescores the whole layer.
import { isDeviceTensor } from '../tensor'
import type { TensorLike } from '../types'

// a typed array of any element type (Uint16Array, Float16Array, Float32Array, ...)
type Typed = ArrayBufferView & ArrayLike<number> & { subarray(a: number, b: number): Typed; set(a: ArrayLike<number>, o?: number): void }

interface Memory {
  /** [B, H, stride]: the first `known` entries of each row are its cached tokens' scores */
  buf: Float32Array
  stride: number
  known: number
  /** key row (0, 0, known - 1), as it was; undefined when known = 0 or there are no rows */
  probe: Typed | undefined
}

/** A host tensor's data as a typed array we can slice (a DataView or other view: none). */
function typed(t: TensorLike): Typed | undefined {
  const d = t.data as Typed
  return ArrayBuffer.isView(d) && !(d instanceof DataView) && typeof d.subarray === 'function' ? d : undefined
}

/** Rows [a, b) of every (batch, head) of a [B, H, S, D] host tensor, copied: [B, H, b - a, D]. */
function rows(t: TensorLike, a: number, b: number): TensorLike {
  const [B, H, S, D] = t.dims
  const d = typed(t)!
  const n = b - a
  const out = new (d.constructor as new (n: number) => Typed)(B * H * n * D)
  for (let bh = 0; bh < B * H; bh++) out.set(d.subarray((bh * S + a) * D, (bh * S + b) * D), bh * n * D)
  return { type: t.type, data: out as TensorLike['data'], dims: [B, H, n, D] }
}

function copyOf(x: Typed): Typed {
  const out = new (x.constructor as new (n: number) => Typed)(x.length)
  out.set(x, 0)
  return out
}

function sameRow(x: Typed, y: Typed): boolean {
  if (x.length !== y.length) return false
  const a = new Uint8Array(x.buffer, x.byteOffset, x.byteLength), b = new Uint8Array(y.buffer, y.byteOffset, y.byteLength)
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** What one compression of a layer needs: the rows to score, and how to assemble the scores. */
export interface ScorePlan {
  /** the appended rows to score (tokenScores of these), [B, H, len - known, *] */
  keys: TensorLike
  values: TensorLike
  /**
   * All scores of the layer's cache, [B, H, S], from the memory and `fresh` (entries past len
   * are not read: compress gets lengths). A view of the memory's own buffer: no copy.
   */
  assemble(fresh: Float32Array): Float32Array
}

export class ScoreMemory {
  readonly #layers: Array<Memory | undefined> = []
  /** per layer: a second buffer, for a re-layout when dims[2] changed (dynamic mode) */
  readonly #spare: Array<Float32Array | undefined> = []

  /** Whether a score can be reused: every scorer of a Compressor but keydiff. */
  static reusable(score: unknown): boolean {
    return score !== 'keydiff'
  }

  forget(): void {
    this.#layers.length = 0
    this.#spare.length = 0
  }

  drop(l: number): void {
    this.#layers[l] = undefined
  }

  /**
   * The plan for compressing layer l, whose valid length is len; undefined when the layer
   * cannot reuse (device tensors, a data view, data that does not match the dims).
   */
  plan(l: number, keys: TensorLike, values: TensorLike, len: number): ScorePlan | undefined {
    if (isDeviceTensor(keys) || isDeviceTensor(values) || !typed(keys) || !typed(values)) return undefined
    const [B, H, S, D] = keys.dims
    // only tensors whose data is what their dims say (else compress refuses them, with the reason)
    if (typed(keys)!.length !== B * H * S * D || typed(values)!.length !== B * H * S * values.dims[3] || !(len <= S)) return undefined
    let m = this.#layers[l]
    if (m && (m.known > len || (m.probe && !sameRow(m.probe, typed(keys)!.subarray((m.known - 1) * D, m.known * D))))) {
      m = undefined // not the cache we returned: rescore it all
    }
    const rows_ = B * H, known = m?.known ?? 0
    let buf: Float32Array
    if (m && (m.stride === S || rows_ === 1) && m.buf.length >= rows_ * S) {
      buf = m.buf // the same layout (static mode; one row): in place
    } else {
      // a new layout of stride S: the spare buffer (grown when short), the old one the next spare
      const spare = this.#spare[l]
      buf = spare && spare.length >= rows_ * S ? spare : new Float32Array(rows_ * S)
      if (m) for (let r = 0; r < rows_; r++) buf.set(m.buf.subarray(r * m.stride, r * m.stride + known), r * S)
      this.#spare[l] = m?.buf
    }
    return {
      keys: rows(keys, known, len),
      values: rows(values, known, len),
      assemble(fresh) {
        const n = len - known
        for (let r = 0; r < rows_; r++) buf.set(fresh.subarray(r * n, (r + 1) * n), r * S + known)
        return buf.length === rows_ * S ? buf : buf.subarray(0, rows_ * S)
      },
    }
  }

  /**
   * After layer l was compressed with `all` (assemble's result, [B, H, S]): keep the kept
   * tokens' scores (indices [B, H, kept], ascending positions, so compacting each row forward
   * in place never overwrites an entry still to be read) and the probe row of `keys`, the cache now.
   */
  kept(l: number, all: Float32Array, dims: readonly number[], indices: Int32Array, kept: number, keys: TensorLike): void {
    const [B, H, S] = dims
    for (let r = 0; r < B * H; r++) {
      const o = r * S, io = r * kept
      for (let j = 0; j < kept; j++) all[o + j] = all[o + indices[io + j]]
    }
    const d = typed(keys)
    const D = keys.dims[3]
    // a copy: in static mode the row is the caller's memory, which the next token may overwrite
    const probe = d && kept > 0 && B * H > 0 ? copyOf(d.subarray((kept - 1) * D, kept * D)) : undefined
    const buf = new Float32Array(all.buffer as ArrayBuffer) // assemble's view: the whole buffer, for its capacity
    this.#layers[l] = { buf, stride: S, known: kept, probe }
  }
}
