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
  /** [B, H, known] scores, in position order */
  scores: Float32Array
  known: number
  /** key row (0, 0, known - 1), as it was; empty when known = 0 or there are no rows */
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

/** What one compression of a layer needs: the rows to score, and how to assemble and keep the result. */
export interface ScorePlan {
  /** the appended rows to score (tokenScores of these), [B, H, len - known, *] */
  keys: TensorLike
  values: TensorLike
  /** all scores of the layer's cache, [B, H, S] (NaN past len), from the memory and `fresh` */
  assemble(fresh: Float32Array): Float32Array
}

export class ScoreMemory {
  readonly #layers: Array<Memory | undefined> = []

  /** Whether a score can be reused: every scorer but keydiff (and given scores, which the Compressor refuses). */
  static reusable(score: unknown): boolean {
    return score !== 'keydiff' && !(typeof score === 'object' && score !== null && 'scores' in score)
  }

  forget(): void {
    this.#layers.length = 0
  }

  drop(l: number): void {
    this.#layers[l] = undefined
  }

  /**
   * The plan for compressing layer l, whose valid length is len; undefined when the layer
   * cannot reuse (device tensors, a data view, a shape other than [B, H, S, D] rows).
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
    const known = m?.known ?? 0
    const prev = m?.scores
    return {
      keys: rows(keys, known, len),
      values: rows(values, known, len),
      assemble(fresh) {
        const n = len - known
        const all = new Float32Array(B * H * S).fill(NaN)
        for (let bh = 0; bh < B * H; bh++) {
          if (prev) all.set(prev.subarray(bh * known, (bh + 1) * known), bh * S)
          all.set(fresh.subarray(bh * n, (bh + 1) * n), bh * S + known)
        }
        return all
      },
    }
  }

  /**
   * After layer l was compressed with scores `all` ([B, H, S]): remember the kept tokens'
   * scores (indices [B, H, kept], position order) and the probe row of `keys`, the cache now.
   */
  kept(l: number, all: Float32Array, dims: readonly number[], indices: Int32Array, kept: number, keys: TensorLike): void {
    const [B, H, S] = dims
    const scores = new Float32Array(B * H * kept)
    for (let bh = 0; bh < B * H; bh++) {
      for (let j = 0; j < kept; j++) scores[bh * kept + j] = all[bh * S + indices[bh * kept + j]]
    }
    const d = typed(keys)
    const D = keys.dims[3]
    // a copy: in static mode the row is the caller's memory, which the next token may overwrite
    const probe = d && kept > 0 && B * H > 0 ? copyOf(d.subarray((kept - 1) * D, kept * D)) : undefined
    this.#layers[l] = { scores, known: kept, probe }
  }
}
