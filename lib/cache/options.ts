// compressCache's options: the compress options of every layer plus pruneAfter, skipLayers and
// the per-layer budgets, turned into a plan that gives each layer its keepRatio / keep.
import type { NativeCompressOptions, NativeScore } from '../../binding'
import { checkObject, intList, invalid, isInt } from '../check'
import { KvtrimError } from '../errors'
import { decodeCompressOptions } from '../compress'
import { budgetKind, checkCounts, checkRatios, layerBudgets } from './budgets'
import type { Budgets, CacheOptions } from './types'

export interface CachePlan {
  base: NativeCompressOptions
  pruneAfter: number
  skip: Set<number>
  /**
   * per layer: the keepRatio / keep to use, given the longest valid length over the layers
   * (seqLen) and the layer's own dims[2] (capacity)
   */
  budget: (seqLen: number) => (layer: number, capacity: number) => { keepRatio?: number; keep?: number }
  /** per layer: its score option (a cache's { project } / { scores } hold one entry per layer) */
  score: (layer: number) => NativeScore
}

export function cacheOptions(options: unknown, layerCount: number): CachePlan {
  checkObject(options)
  const o = options as CacheOptions
  const budgets: unknown = o.budgets
  const kind = budgetKind(budgets)
  const base = decodeCompressOptions(options, true)
  const given = base.keepRatio !== undefined || base.keep !== undefined
  if (base.selection !== undefined && 'threshold' in base.selection) {
    // the scores give each row's count: no budget of any kind (native code refused keepRatio / keep)
    if (kind !== 'uniform') {
      throw new KvtrimError("Expected no budgets with selection { threshold } (the scores give each head's count)", 'INVALID_OPTION')
    }
  } else if (!given && (kind === 'uniform' || kind === 'pyramid' || kind === 'zigzag')) {
    throw new KvtrimError(
      kind === 'uniform'
        ? 'Expected keepRatio, keep or per-layer budgets in options'
        : `Expected keepRatio or keep (the average per-layer budget) with budgets '${kind}'`,
      'INVALID_OPTION',
    )
  }
  const givenPrune: unknown = o.pruneAfter
  const pruneAfter = givenPrune ?? 0
  if (!isInt(pruneAfter) || pruneAfter < 0) {
    throw invalid('INVALID_OPTION', 'a non-negative integer', 'pruneAfter', givenPrune)
  }
  const givenSkip: unknown = o.skipLayers
  const skipLayers = givenSkip === undefined ? [] : Array.isArray(givenSkip) ? intList(givenSkip) : undefined
  if (skipLayers === undefined) {
    throw invalid('INVALID_OPTION', 'an array of layer indices', 'skipLayers', givenSkip)
  }
  let budget: CachePlan['budget'] = () => () => ({ keepRatio: base.keepRatio, keep: base.keep })
  if (kind === 'ratios' || kind === 'counts') {
    if (given) throw new KvtrimError('Expected either per-layer budgets or keepRatio / keep, not both', 'INVALID_OPTION')
    if (kind === 'ratios') {
      const ratios = checkRatios(budgets as readonly unknown[], layerCount)
      budget = () => (l) => ({ keepRatio: ratios[l] })
    } else {
      const keep = checkCounts(budgets as { keep: unknown; total?: unknown }, layerCount)
      budget = () => (l) => ({ keep: keep[l] })
    }
  } else if (kind === 'pyramid' || kind === 'zigzag') {
    const policy = budgets as Budgets
    const ctx = { layers: layerCount, keepRatio: base.keepRatio, keep: base.keep, sink: base.sink, recent: base.recent }
    budget = (seqLen) => {
      const counts = layerBudgets(policy, { ...ctx, seqLen })
      // a layer shorter than the longest keeps at most its own length
      return (l, capacity) => ({ keepRatio: undefined, keep: Math.min(counts[l], capacity) })
    }
  }
  return { base, pruneAfter, skip: new Set(skipLayers), budget, score: layerScores(base.score, layerCount) }
}

/**
 * A cache's score per layer: a name applies to every layer; { project } and { scores } hold
 * one entry per layer (native code checked each entry's kind; compress checks it per layer).
 */
export function layerScores(score: NativeScore, layerCount: number): (layer: number) => NativeScore {
  if (typeof score === 'string') return () => score
  const [name, list] = 'project' in score ? ['project', score.project] : ['scores', score.scores]
  const n = (list as unknown[]).length
  if (n !== layerCount) {
    throw new KvtrimError(`Expected score.${name} to have one entry per layer (${layerCount}) but it has ${n}`, 'INVALID_OPTION')
  }
  return (l) => ({ [name]: (list as unknown[])[l] }) as NativeScore
}
