// How many tokens compress keeps in one (batch entry, head) row: the rule of the numeric
// contract (docs/contract.md), once for every TypeScript caller. Its C++ twin is keep_count in
// native/core/contract.h; test/oracle.ts keeps an independent copy on purpose.

/** What decides a row's kept count. */
export interface KeepRule {
  /** Keep k = ceil(keepRatio * len) tokens per head, computed in double as Python does. In (0, 1]. */
  keepRatio?: number
  /** Keep this many tokens per head (an integer in [0, seqLen]); clamped to each entry's length. */
  keep?: number
  /** The first `sink` tokens are always kept; they count toward k (k >= min(len, sink + recent)). */
  sink?: number
  /** The last `recent` valid tokens are always kept; they count toward k. */
  recent?: number
}

/**
 * The number of tokens compress keeps of a row of `len` valid tokens: ceil(keepRatio * len) (or
 * keep) clamped to [0, len], and at least min(len, sink + recent). Give keepRatio or keep.
 */
export function keepCount(len: number, rule: KeepRule): number {
  const k = rule.keepRatio !== undefined ? Math.ceil(rule.keepRatio * len) : (rule.keep ?? 0)
  return Math.max(Math.max(0, Math.min(len, k)), Math.min(len, (rule.sink ?? 0) + (rule.recent ?? 0)))
}
