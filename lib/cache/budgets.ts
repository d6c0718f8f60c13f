// Per-layer budgets: how many tokens each layer of a model keeps. Pure functions, no native
// code: compressCache uses them, and users may call them to see or reuse the counts.
//
// Every policy starts from the uniform budget C, the count compress would keep on one layer:
// C = ceil(keepRatio * seqLen) in double (or keep, clamped to [0, seqLen]), then at least
// w = min(seqLen, sink + recent), the protected tokens. Policies that move tokens between
// layers keep the total L * C exactly; their real-valued targets become integers by
// `apportion` (largest remainder with bounds, described there).
import { checkKnown, intList, invalid, isArrayLike, isInt } from '../check'
import { KvtrimError } from '../errors'
import { keepCount as rowKeepCount, type KeepRule } from '../keep-count'
import type { Budgets } from './types'

/** A model's shape and the uniform budget's rule (keepRatio or keep, with sink and recent). */
export interface BudgetContext extends KeepRule {
  /** Number of layers L of the model (skipped layers included: the schedule is by layer index). */
  layers: number
  /** Tokens per layer (the longest valid length). */
  seqLen: number
}

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)

/** The most layers a budget is computed for (an array of one count per layer is returned). */
const MAX_LAYERS = 2 ** 16

/** The default of PyramidKV's beta: the top layer gets (C - w) / beta beside its window. */
export const PYRAMID_BETA = 20
/** The default of ZigZagKV's floor: every layer keeps at least minRatio * C. */
export const ZIGZAG_MIN_RATIO = 0.2

function checkContext(ctx: BudgetContext): void {
  if (typeof ctx !== 'object' || ctx === null) throw invalid('INVALID_ARGUMENT', 'an object { layers, seqLen, ... }', 'context', ctx)
  if (!isInt(ctx.layers) || ctx.layers < 0 || ctx.layers > MAX_LAYERS) {
    throw invalid('INVALID_ARGUMENT', `an integer in [0, ${MAX_LAYERS}] (one budget is made per layer)`, 'layers', ctx.layers)
  }
  if (!isInt(ctx.seqLen) || ctx.seqLen < 0) throw invalid('INVALID_ARGUMENT', 'a non-negative integer', 'seqLen', ctx.seqLen)
  if (ctx.sink !== undefined && (!isInt(ctx.sink) || ctx.sink < 0)) throw invalid('INVALID_SINK', 'a non-negative integer', 'sink', ctx.sink)
  if (ctx.recent !== undefined && (!isInt(ctx.recent) || ctx.recent < 0)) throw invalid('INVALID_RECENT', 'a non-negative integer', 'recent', ctx.recent)
}

function checkRatio(r: unknown, name: string): asserts r is number {
  if (typeof r !== 'number' || !(r > 0 && r <= 1)) throw invalid('INVALID_KEEP_RATIO', 'a number in (0, 1]', name, r)
}

/** Tokens protected per layer: min(seqLen, sink + recent). */
export function protectedTokens(ctx: BudgetContext): number {
  return Math.min(ctx.seqLen, (ctx.sink ?? 0) + (ctx.recent ?? 0))
}

/** The count compress keeps on a layer of ctx.seqLen tokens with this ratio or count. */
function keepCount(ctx: BudgetContext, keepRatio: number | undefined, keep: number | undefined): number {
  return rowKeepCount(ctx.seqLen, { keepRatio, keep, sink: ctx.sink, recent: ctx.recent })
}

/** C: the uniform per-layer budget in tokens, as compress computes it for one layer. */
export function uniformBudget(ctx: BudgetContext): number {
  checkContext(ctx)
  if (ctx.keepRatio !== undefined && ctx.keep !== undefined) {
    throw new KvtrimError('Expected one of keepRatio or keep, not both', 'INVALID_OPTION')
  }
  if (ctx.keepRatio !== undefined) {
    checkRatio(ctx.keepRatio, 'keepRatio')
  } else if (ctx.keep !== undefined) {
    if (!isInt(ctx.keep) || ctx.keep < 0 || ctx.keep > ctx.seqLen) {
      throw invalid('INVALID_KEEP', `an integer in [0, seqLen = ${ctx.seqLen}]`, 'keep', ctx.keep)
    }
  } else {
    throw new KvtrimError('Expected keepRatio or keep (the average per-layer budget) with this budgets policy', 'INVALID_OPTION')
  }
  return keepCount(ctx, ctx.keepRatio, ctx.keep)
}

/**
 * Integers n_l with sum T and lo_l <= n_l <= hi_l, near the real targets x_l (largest remainder):
 * start from n_l = clamp(floor(x_l), lo_l, hi_l); while the sum is below T, add one to the layer
 * with the largest x_l - n_l among those below hi_l (ties: the lowest layer); while it is above
 * T, take one from the layer with the smallest x_l - n_l among those above lo_l (ties: the
 * highest layer). Requires sum(lo) <= T <= sum(hi).
 */
export function apportion(x: readonly number[], total: number, lo: readonly number[], hi: readonly number[]): number[] {
  ;({ x, lo, hi } = checkApportion(x, total, lo, hi))
  const n = x.map((v, l) => Math.min(hi[l], Math.max(lo[l], Math.floor(v))))
  const d = total - n.reduce((a, b) => a + b, 0)
  // the loops below one step at a time while that is cheap; many steps (a total far from the
  // floors) in bulk, with the same result (apportionSteps), so no input makes this hang
  return Math.abs(d) * Math.max(1, n.length) <= 2 ** 16 ? apportionLoop(x, n, d, lo, hi) : apportionBulk(x, n, d, lo, hi)
}

/** @internal apportion's definition: one token at a time. */
export function apportionLoop(x: readonly number[], n: number[], d: number, lo: readonly number[], hi: readonly number[]): number[] {
  while (d > 0) {
    let best = -1
    for (let l = 0; l < n.length; l++) {
      if (n[l] < hi[l] && (best < 0 || x[l] - n[l] > x[best] - n[best])) best = l
    }
    if (best < 0) throw new KvtrimError('Expected budgets that can reach the total', 'INVALID_BUDGETS')
    n[best]++
    d--
  }
  while (d < 0) {
    let best = -1
    for (let l = n.length - 1; l >= 0; l--) {
      if (n[l] > lo[l] && (best < 0 || x[l] - n[l] < x[best] - n[best])) best = l
    }
    if (best < 0) throw new KvtrimError('Expected budgets that can reach the total', 'INVALID_BUDGETS')
    n[best]--
    d++
  }
  return n
}

/**
 * @internal apportionLoop's result without its steps. Layer l's k-th increment is taken at
 * priority x_l - (n_l + k), which does not increase with k, and the loop takes the highest
 * priority each time, ties to the lowest layer: so it takes the d highest of all increments in
 * the order (priority desc, layer asc), a k-way merge. The d-th one's priority t is found by
 * bisecting the doubles (each count a binary search per layer); every layer gets its increments
 * above t, and those at t go to the lowest layers first. Decrements mirror it (lowest x_l - n_l
 * first, ties to the highest layer).
 */
export function apportionBulk(x: readonly number[], n: number[], d: number, lo: readonly number[], hi: readonly number[]): number[] {
  const L = n.length
  if (d === 0) return n
  const up = d > 0
  const avail = n.map((v, l) => (up ? hi[l] - v : v - lo[l]))
  const pr = up ? (l: number, k: number) => x[l] - (n[l] + k) : (l: number, k: number) => -(x[l] - (n[l] - k))
  const ties = Array.from({ length: L }, (_, i) => (up ? i : L - 1 - i))
  const want = Math.abs(d)
  // steps of layer l with priority >= t (strict: > t)
  const count = (l: number, t: number, strict: boolean): number => {
    let a = 0, b = avail[l]
    while (a < b) {
      const m = a + Math.floor((b - a) / 2)
      const p = pr(l, m)
      if (strict ? p > t : p >= t) a = m + 1
      else b = m
    }
    return a
  }
  const enough = (t: number): boolean => {
    let c = 0
    for (let l = 0; l < L && c < want; l++) c += count(l, t, false)
    return c >= want
  }
  let a = order(-Infinity), b = order(Infinity) // enough(-Infinity), !enough(Infinity)
  if (!enough(-Infinity)) throw new KvtrimError('Expected budgets that can reach the total', 'INVALID_BUDGETS')
  while (b - a > 1n) {
    const m = (a + b) / 2n
    if (enough(value(m))) a = m
    else b = m
  }
  const t = value(a)
  const take = n.map((_, l) => count(l, t, true))
  let left = want - take.reduce((s, c) => s + c, 0)
  for (const l of ties) {
    if (left <= 0) break
    const atT = Math.min(count(l, t, false) - take[l], left)
    take[l] += atT
    left -= atT
  }
  return n.map((v, l) => (up ? v + take[l] : v - take[l]))
}

const f64 = new Float64Array(1), i64 = new BigInt64Array(f64.buffer)
/** The doubles in order as integers (-0 and +0 both 0). */
function order(v: number): bigint {
  f64[0] = v
  const b = i64[0]
  return b < 0n ? -(b & 0x7fffffffffffffffn) : b
}
function value(o: bigint): number {
  i64[0] = o < 0n ? BigInt.asIntN(64, (1n << 63n) | -o) : o
  return f64[0]
}

/** apportion's arguments checked, as plain arrays (arrays or typed arrays are taken). */
function checkApportion(x: unknown, total: unknown, lo: unknown, hi: unknown): { x: number[]; lo: number[]; hi: number[] } {
  if (!isArrayLike(x) || x instanceof BigInt64Array || x instanceof BigUint64Array) {
    throw invalid('INVALID_ARGUMENT', 'an array of finite numbers (the real-valued targets)', 'x', x)
  }
  const n = x.length
  const xs: number[] = []
  for (let l = 0; l < n; l++) {
    const v = x[l]
    if (!isFiniteNumber(v)) throw invalid('INVALID_ARGUMENT', 'an array of finite numbers', `x[${l}]`, v)
    xs.push(v)
  }
  const bounds = (v: unknown, name: string): number[] => {
    const list = isArrayLike(v) && v.length === n ? intList(v) : undefined
    if (!list) throw invalid('INVALID_ARGUMENT', `an array of ${n} integers (one per entry of x)`, name, v)
    return list
  }
  const low = bounds(lo, 'lo'), high = bounds(hi, 'hi')
  if (!isInt(total)) throw invalid('INVALID_ARGUMENT', 'an integer', 'total', total)
  let sumLo = 0, sumHi = 0
  for (let l = 0; l < n; l++) {
    if (low[l] < 0) throw invalid('INVALID_ARGUMENT', 'a non-negative integer', `lo[${l}]`, low[l])
    if (low[l] > high[l]) throw new KvtrimError(`Expected lo[${l}] <= hi[${l}] but received ${low[l]} > ${high[l]}`, 'INVALID_ARGUMENT')
    sumLo += low[l]
    sumHi += high[l]
  }
  if (!Number.isSafeInteger(sumHi)) throw new KvtrimError(`Expected hi to sum to at most 2^53 - 1 but it sums to ${sumHi}`, 'INVALID_ARGUMENT')
  if (!(sumLo <= total && total <= sumHi)) {
    throw new KvtrimError(`Expected budgets that can reach a total of ${total} tokens (between sum(lo) = ${sumLo} and sum(hi) = ${sumHi})`, 'INVALID_BUDGETS')
  }
  return { x: xs, lo: low, hi: high }
}

/**
 * PyramidKV (Cai et al. 2024): with D = C - w tokens per layer beside the protected ones,
 * min = D / beta and max = 2 D - min; when max exceeds the tokens there are (seqLen - w),
 * max = seqLen - w and min = 2 D - max (PyramidKV's own adjustment). Layer l (0 = lowest) gets
 * x_l = max - l * ((max - min) / (L - 1)) (one layer: x_0 = D), apportioned to integers in
 * [0, seqLen - w] with the total L * D, plus w. So the total is L * C, as uniform.
 */
export function pyramidBudgets(ctx: BudgetContext, beta = PYRAMID_BETA): number[] {
  const C = uniformBudget(ctx)
  if (!isFiniteNumber(beta) || beta < 1) throw invalid('INVALID_BUDGETS', 'a number >= 1', 'budgets.pyramid.beta', beta)
  const L = ctx.layers
  const w = protectedTokens(ctx)
  const D = C - w
  const avail = ctx.seqLen - w
  if (L <= 1 || D === 0) return new Array<number>(L).fill(C)
  let min = D / beta
  let max = 2 * D - min
  if (max > avail) {
    max = avail
    min = 2 * D - max
  }
  const step = (max - min) / (L - 1)
  const x = Array.from({ length: L }, (_, l) => max - l * step)
  const n = apportion(x, L * D, new Array<number>(L).fill(0), new Array<number>(L).fill(avail))
  return n.map((v) => v + w)
}

/**
 * ZigZagKV (Zhong et al. 2024): B_min = minRatio * C, u_l = score_l / sum(scores), x_l = B_min
 * + (C - B_min) * L * u_l, apportioned to integers in [floor_l, seqLen] with the total L * C,
 * where the floor is max(1, floor(B_min), w), at most C (so that the protected tokens fit and
 * the total is reachable). C = 0 gives 0 everywhere.
 */
export function zigzagBudgets(ctx: BudgetContext, scores: readonly number[], minRatio = ZIGZAG_MIN_RATIO): number[] {
  const C = uniformBudget(ctx)
  const L = ctx.layers
  const given = checkScores(scores, L)
  if (!isFiniteNumber(minRatio) || minRatio < 0 || minRatio > 1) {
    throw invalid('INVALID_BUDGETS', 'a number in [0, 1]', 'budgets.minRatio', minRatio)
  }
  if (C === 0) return new Array<number>(L).fill(0)
  const sum = given.reduce((a, b) => a + b, 0)
  const bMin = minRatio * C
  const x = given.map((s) => bMin + (C - bMin) * L * (s / sum))
  const floor = Math.min(C, Math.max(1, Math.floor(bMin), protectedTokens(ctx)))
  return apportion(x, L * C, new Array<number>(L).fill(floor), new Array<number>(L).fill(ctx.seqLen))
}

function checkScores(scores: unknown, L: number): number[] {
  if (!Array.isArray(scores) && !(ArrayBuffer.isView(scores) && !(scores instanceof DataView))) {
    throw invalid('INVALID_BUDGETS', `an array of ${L} per-layer scores`, 'budgets.zigzag', scores)
  }
  const given = scores as ArrayLike<unknown>
  if (given.length !== L) {
    throw invalid('INVALID_BUDGETS', `an array of ${L} per-layer scores (one per layer)`, 'budgets.zigzag', scores)
  }
  // a copy as plain numbers (a typed array's map would round the targets to its own type)
  const s: number[] = []
  for (let l = 0; l < L; l++) {
    const v = given[l]
    if (!isFiniteNumber(v) || v < 0) throw invalid('INVALID_BUDGETS', 'a finite, non-negative score', `budgets.zigzag[${l}]`, v)
    s.push(v)
  }
  if (L > 0 && s.every((v) => v === 0)) {
    throw new KvtrimError('Expected budgets.zigzag scores with a positive sum but they sum to 0', 'INVALID_BUDGETS')
  }
  return s
}

/** The policy's kind, after checking its shape (not its values). */
export type BudgetKind = 'uniform' | 'pyramid' | 'zigzag' | 'ratios' | 'counts'

export function budgetKind(policy: unknown): BudgetKind {
  if (policy === undefined || policy === 'uniform') return 'uniform'
  if (policy === 'pyramid') return 'pyramid'
  if (Array.isArray(policy)) return 'ratios'
  if (typeof policy === 'object' && policy !== null) {
    const o = policy as Record<string, unknown>
    const allow = (kind: BudgetKind, keys: string[]): BudgetKind => {
      checkKnown(o, keys, { prefix: 'budgets.', label: `known with ${kind}` })
      return kind
    }
    if ('pyramid' in o) {
      const p = o.pyramid
      if (typeof p !== 'object' || p === null || Array.isArray(p) || Object.keys(p).some((k) => k !== 'beta')) {
        throw invalid('INVALID_BUDGETS', '{ beta?: number }', 'budgets.pyramid', p)
      }
      return allow('pyramid', ['pyramid'])
    }
    if ('zigzag' in o) return allow('zigzag', ['zigzag', 'minRatio'])
    if ('keep' in o) return allow('counts', ['keep', 'total'])
  }
  throw invalid(
    'INVALID_OPTION',
    "'uniform', 'pyramid', { pyramid: { beta } }, { zigzag: scores, minRatio? }, an array of per-layer ratios or { keep: counts }",
    'budgets',
    policy,
  )
}

/** Checks an explicit { keep: counts, total? } against L layers (not against seqLen). */
export function checkCounts(policy: { keep: unknown; total?: unknown }, L: number): number[] {
  const given = policy.keep
  const keep = Array.isArray(given) && given.length === L ? intList(given) : undefined
  if (!keep) throw invalid('INVALID_OPTION', `${L} integer counts (one per layer)`, 'budgets.keep', given)
  const total = policy.total
  if (total !== undefined) {
    if (!isInt(total)) throw invalid('INVALID_BUDGETS', 'an integer', 'budgets.total', total)
    const sum = keep.reduce((a: number, b: number) => a + b, 0)
    if (sum !== total) {
      throw new KvtrimError(`Expected budgets.keep to sum to budgets.total = ${total} but they sum to ${sum}`, 'INVALID_BUDGETS')
    }
  }
  return keep
}

/** Checks an explicit array of per-layer ratios against L layers (their range is checked later). */
export function checkRatios(policy: readonly unknown[], L: number): number[] {
  const ratios: number[] = []
  // a loop: a hole reads as undefined and fails (every() would skip it)
  for (let l = 0; l < policy.length && policy.length === L; l++) {
    const r = policy[l]
    if (typeof r !== 'number') break
    ratios.push(r)
  }
  if (ratios.length !== L || policy.length !== L) {
    throw invalid('INVALID_OPTION', `an array of ${L} keep ratios (one per layer)`, 'budgets', policy)
  }
  return ratios
}

/**
 * The number of tokens each layer keeps under a policy, for L = ctx.layers layers of
 * ctx.seqLen tokens: 'uniform' gives C everywhere; 'pyramid' and { zigzag } move tokens between
 * layers with the total L * C; explicit ratios give ceil(ratio * seqLen) per layer and explicit
 * counts are returned clamped to seqLen; every count is at least min(seqLen, sink + recent),
 * as compress keeps.
 *
 * ```ts
 * layerBudgets('pyramid', { layers: 32, seqLen: 4096, keepRatio: 0.25, recent: 32 })
 * ```
 */
export function layerBudgets(policy: Budgets, ctx: BudgetContext): number[] {
  checkContext(ctx)
  const L = ctx.layers
  switch (budgetKind(policy)) {
    case 'uniform':
      return new Array<number>(L).fill(uniformBudget(ctx))
    case 'pyramid': {
      const beta = typeof policy === 'object' ? (policy as { pyramid: { beta?: number } }).pyramid.beta : undefined
      return pyramidBudgets(ctx, beta ?? PYRAMID_BETA)
    }
    case 'zigzag': {
      const z = policy as { zigzag: readonly number[]; minRatio?: number }
      return zigzagBudgets(ctx, z.zigzag, z.minRatio ?? ZIGZAG_MIN_RATIO)
    }
    case 'ratios':
      return checkRatios(policy as readonly unknown[], L).map((r, l) => {
        checkRatio(r, `budgets[${l}]`)
        return keepCount(ctx, r, undefined)
      })
    case 'counts':
      return checkCounts(policy as { keep: unknown; total?: unknown }, L).map((k, l) => {
        if (k < 0) throw invalid('INVALID_KEEP', 'a non-negative count', `budgets.keep[${l}]`, k)
        return keepCount(ctx, undefined, k)
      })
  }
}
