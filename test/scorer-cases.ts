// The host scorer suites' random scorers (test/scores.test.ts, test/selection.test.ts): project
// vectors, given scores, the scorer of a name, and the property tests' window fields. Each suite says what it stresses through the
// specs below; the defaults and presets draw exactly what each suite drew before they shared
// this file, so a KVTRIM_SEED from an older report replays the same data.
import fc from 'fast-check'
import type * as oracle from './oracle'
import { randomNaN } from './nan'
import { gaussian, int, pick, type Rng } from './random'

export const NAMES = ['low-norm', 'high-norm', 'kv-norm', 'keydiff', 'project', 'scores'] as const
export type Name = (typeof NAMES)[number]

export interface VectorSpec {
  /** some -0 elements besides the +0 ones (a zero dot of either sign must score +0) */
  negativeZero?: boolean
  /** plain arrays of doubles in 30% of the draws (kvtrim rounds them to fp32), else Float32Array */
  plainArrays?: boolean
}

/** Per-head vectors [H * D] with zeros; one head sometimes all zeros (every token of it scores +0: all ties). */
export function randomVectors(r: Rng, H: number, D: number, spec: VectorSpec = {}): Float32Array | number[] {
  const scale = 10 ** int(r, -2, 2)
  const v = Array.from({ length: H * D }, () => {
    const u = r()
    return u < 0.05 ? 0 : spec.negativeZero && u < 0.08 ? -0 : gaussian(r) * scale
  })
  if (H > 1 && r() < 0.2) v.fill(0, 0, D)
  return spec.plainArrays && r() >= 0.7 ? v : Float32Array.from(v)
}

/**
 * How a run of given scores is drawn: 'mixed' (values of any scale), 'few' (integers -3..3:
 * ties everywhere, across heads too), 'copied' (every head a copy of head 0 with zeros' signs
 * flipped at random: every position ties across heads, only the head breaks the tie) or 'bits'
 * (raw bit patterns from a small pool: subnormals, huge values, NaNs of either sign, so that
 * radix digits tie at every level). Besides 'bits', each element is a NaN (any sign and payload)
 * below u 0.05, +-Inf below `inf`, +0 / -0 below 0.12, an exact copy of an earlier element below `dup`.
 */
export interface ScoresMix {
  mode(r: Rng): 'mixed' | 'few' | 'copied' | 'bits'
  inf: number
  dup: number
  /** draw the 'bits' pool in every run, whatever the mode (the stream test/selection.test.ts always drew) */
  pool?: boolean
}

/** Mostly 'mixed', 'few' in 30% of the runs (test/scores.test.ts). */
export const MIXED_OR_FEW: ScoresMix = { mode: (r) => (r() < 0.3 ? 'few' : 'mixed'), inf: 0.08, dup: 0.25 }
/** Any of the four modes (test/selection.test.ts: ties inside and across heads for the cross-head tie-break). */
export const ANY_MODE: ScoresMix = { mode: (r) => pick(r, ['mixed', 'few', 'copied', 'bits'] as const), inf: 0.07, dup: 0.2, pool: true }

/** Given scores [B, H, S] as `mix` says. */
export function randomScores(r: Rng, B: number, H: number, S: number, mix: ScoresMix): Float32Array {
  const out = new Float32Array(B * H * S)
  const bits = new Uint32Array(out.buffer)
  const mode = mix.mode(r)
  const pool = mix.pool || mode === 'bits' ? Array.from({ length: int(r, 1, 40) }, () => int(r, 0, 2 ** 32 - 1) >>> 0) : []
  for (let i = 0; i < out.length; i++) {
    const u = r()
    if (mode === 'bits') bits[i] = r() < 0.7 ? pick(r, pool) : (pick(r, pool) ^ int(r, 0, 3)) >>> 0
    else if (u < 0.05) bits[i] = randomNaN(r, 'float32')
    else if (u < mix.inf) out[i] = pick(r, [Infinity, -Infinity])
    else if (u < 0.12) bits[i] = pick(r, [0, 0x80000000])
    else if (u < mix.dup && i > 0) bits[i] = bits[int(r, 0, i - 1)]
    else out[i] = mode === 'few' ? int(r, -3, 3) : gaussian(r) * 10 ** int(r, -3, 3)
  }
  if (mode === 'copied') {
    for (let b = 0; b < B; b++) {
      for (let h = 1; h < H; h++) {
        for (let i = 0; i < S; i++) {
          const from = bits[b * H * S + i]
          bits[(b * H + h) * S + i] = (from & 0x7fffffff) === 0 ? pick(r, [0, 0x80000000]) : from
        }
      }
    }
  }
  return out
}

/** What a suite's scorers draw: its project vectors and its given scores. */
export interface ScorerData {
  vectors: VectorSpec
  scores: ScoresMix
}

/** The scorer of a name, with fresh vectors or scores for a [B, H, S, D] cache. */
export function scorer(r: Rng, name: Name, dims: number[], data: ScorerData): oracle.OracleScore {
  const [B, H, S, D] = dims
  if (name === 'project') return { project: randomVectors(r, H, D, data.vectors) }
  if (name === 'scores') return { scores: { type: 'float32', data: randomScores(r, B, H, S, data.scores), dims: [B, H, S] } }
  return name
}

/**
 * The property tests' last record fields: the order, sink and recent (0..most, or absent) and
 * whether the lengths are ragged. Last, so that fast-check draws the record's fields as before.
 */
export function windowArbitraries(most: number) {
  return {
    order: fc.constantFrom<'position' | 'norm' | undefined>(undefined, 'position', 'norm'),
    sink: fc.option(fc.integer({ min: 0, max: most }), { nil: undefined }),
    recent: fc.option(fc.integer({ min: 0, max: most }), { nil: undefined }),
    ragged: fc.boolean(),
  }
}
