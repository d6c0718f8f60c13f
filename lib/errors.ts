/**
 * Every error kvtrim raises on purpose: a bad input, an unusable backend, a failing CUDA call.
 * `code` is stable and machine-readable; `message` names the argument and what was expected.
 *
 * The one exception is an error thrown by the caller's own code while kvtrim reads an argument:
 * a getter, a Proxy trap (a revoked Proxy included) or a tensor class's constructor. That error
 * propagates unchanged (the same object, as from a sync call, or the rejection of a Promise
 * form), as JSON.stringify and structuredClone do: it is the caller's, and wrapping it would hide
 * its type and stack. No other error type leaves kvtrim's public API.
 */
export class KvtrimError extends Error {
  readonly code: KvtrimErrorCode

  constructor(message: string, code: KvtrimErrorCode | string) {
    super(message)
    this.name = 'KvtrimError'
    this.code = code as KvtrimErrorCode
  }
}

/**
 * Every code a KvtrimError carries, in the order of native/core/codes.def (the one table of
 * codes: native code's Code enum is built from it, and test/error-codes.test.ts checks that
 * this list is the same).
 */
export const KVTRIM_ERROR_CODES = [
  'INVALID_ARGUMENT', // an argument of the wrong type (not a tensor, not an object, ...)
  'INVALID_RANK', // a tensor whose dims are not [batch, kvHeads, seqLen, headDim]
  'INVALID_DIMS', // dims that are not non-negative integers, or headDim outside [1, 1024]
  'DIMS_MISMATCH', // keys and values disagree in batch, kvHeads or seqLen
  'DATA_LENGTH', // data.length is not the product of dims
  'INVALID_DTYPE', // an unknown type, or keys and values of different types
  'INVALID_KEEP_RATIO', // keepRatio outside (0, 1]
  'INVALID_KEEP', // keep outside [0, seqLen] or not an integer
  'INVALID_SINK', // sink not a non-negative integer
  'INVALID_RECENT', // recent not a non-negative integer
  'INVALID_LENGTHS', // lengths of the wrong count, or outside [0, capacity]
  'INVALID_OPTION', // an unknown option, or a bad order / score / stream / budgets / pruneAfter
  'INVALID_BUDGETS', // per-layer budgets that cannot be met: bad scores, beta, minRatio, a total that does not sum
  'TOO_MANY_ROWS', // batch * kvHeads * seqLen above 2^31 - 1
  'DETACHED_BUFFER', // an input whose ArrayBuffer was detached
  'INPUT_CHANGED', // an input detached or resized while its Promise was pending: the result was dropped
  'BINDING_NOT_FOUND', // no native addon for this platform could be loaded
  'DEVICE_MISMATCH', // keys and values not both on the host or both on one GPU
  'DISPOSED', // a device tensor used after dispose()
  'CUDA_ERROR', // a failing CUDA call, with CUDA's message
  'OUT_OF_MEMORY', // an allocation (host or device) that failed
  'INTERNAL', // a bug in kvtrim: please report it
] as const

export type KvtrimErrorCode = (typeof KVTRIM_ERROR_CODES)[number]

/**
 * Runs a native call that returns a promise, so that a rejection carries the caller's stack
 * (captured synchronously here) instead of an empty native one, as sharp does.
 */
export function withCallerStack<T>(run: () => Promise<T>, caller: Function): Promise<T> {
  const holder: { stack?: string } = {}
  Error.captureStackTrace(holder, caller)
  const rethrow = (err: unknown): never => {
    // kvtrim's own errors only: a caller's error (a throwing getter) keeps its own stack
    if (err instanceof KvtrimError && holder.stack) {
      const frames = holder.stack.split('\n').slice(1).join('\n')
      err.stack = `${err.name}: ${err.message}\n${frames}`
    }
    throw err
  }
  try {
    return run().catch(rethrow)
  } catch (err) {
    return Promise.reject(err)
  }
}
