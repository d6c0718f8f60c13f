// How many tokens compress keeps in one (batch entry, head) row: the rule of the numeric
// contract (docs/contract.md), once for every TypeScript caller. Its C++ twin is keep_count in
// native/core/contract.h; test/oracle.ts keeps an independent copy on purpose.

/** What decides a row's kept count. */
export interface KeepRule {
  /** k = ceil(keepRatio * len), in double (as Python computes it). */
  keepRatio?: number
  /** Or k = keep, clamped to [0, len]. */
  keep?: number
  /** Always-kept first tokens: they count toward k, which is at least min(len, sink + recent). */
  sink?: number
  /** Always-kept last tokens. */
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
