// The argument checks every part of the facade shares, with one message template (sharp's
// "Expected <what> for <name> but received <value>"). A leaf: it imports only errors.ts, so any
// file may use it without a cycle. Checks of what native code receives (tensors, compress
// options) live in native/addon, the one layer that validates them.
import { KvtrimError, type KvtrimErrorCode } from './errors'

export function describe(value: unknown): string {
  try {
    if (value === null) return 'null'
    if (Array.isArray(value)) return `an array of length ${value.length}`
    if (ArrayBuffer.isView(value)) return `a ${value.constructor.name}`
    if (typeof value === 'string') return `'${value.length > 40 ? `${value.slice(0, 40)}...` : value}' of type string`
    if (typeof value === 'object') return 'an object'
    if (typeof value === 'function') return 'a function'
    return `${String(value)} of type ${typeof value}`
  } catch {
    // a revoked Proxy, a throwing constructor getter: describing must not replace the error
    return `a value of type ${typeof value}`
  }
}

export function invalid(code: KvtrimErrorCode, expected: string, name: string, value: unknown): KvtrimError {
  return new KvtrimError(`Expected ${expected} for ${name} but received ${describe(value)}`, code)
}

export const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v)

/** An array or a typed array (not a DataView): what kvtrim takes for a list of numbers. */
export function isArrayLike(v: unknown): v is ArrayLike<unknown> {
  return Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView))
}

/**
 * A copy of a list of safe integers as a plain array (so that later reads see what was
 * checked, and no getter runs later), or undefined when `v` is not one. Holes fail, and a
 * huge sparse array fails at its first hole instead of being walked.
 */
export function intList(v: unknown): number[] | undefined {
  if (!isArrayLike(v)) return undefined
  const n = v.length
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const x = v[i]
    if (!isInt(x)) return undefined
    out.push(x)
  }
  return out
}

/** An options object: a non-null, non-array object, or INVALID_ARGUMENT naming `what`. */
export function checkObject(options: unknown, what = 'an options object', name = 'options'): asserts options is object {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw invalid('INVALID_ARGUMENT', what, name, options)
}

/**
 * Every own key of `options` is one of `known`, or INVALID_OPTION naming the first that is not
 * (`prefix` for nested options such as 'decode.'; `hint`: suggest a known name that differs only
 * in case; `label`: how the list of known names is introduced).
 */
export function checkKnown(
  options: object,
  known: readonly string[],
  { prefix = '', hint = false, label = 'known options' }: { prefix?: string; hint?: boolean; label?: string } = {},
): void {
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue
    const near = hint ? known.find((k) => k.toLowerCase() === key.toLowerCase()) : undefined
    throw new KvtrimError(
      `Unknown option '${prefix}${key}'` + (near ? `; did you mean '${near}'?` : `; ${label}: ${known.map((k) => prefix + k).join(', ')}`),
      'INVALID_OPTION',
    )
  }
}

/**
 * The known options of an options object, each read once (own or inherited, getters included),
 * into a plain object: what is checked afterwards is what is used. Unset ones are left out.
 */
export function readOptions<T extends object>(options: object, known: readonly string[]): T {
  const out: Record<string, unknown> = {}
  for (const key of known) {
    const v = (options as Record<string, unknown>)[key]
    if (v !== undefined) out[key] = v
  }
  return out as T
}

/** max(floor, ...xs) by a loop: spreading a long list into Math.max overflows the stack. */
export function maxOf(xs: ArrayLike<number>, floor = -Infinity): number {
  let m = floor
  for (let i = 0; i < xs.length; i++) if (xs[i] > m) m = xs[i]
  return m
}

/** A CUDA stream or device pointer as a bigint: lossless, in [0, 2^64). */
export function isU64(v: unknown): v is bigint {
  return typeof v === 'bigint' && v >= 0n && v < 1n << 64n
}

/**
 * The dims of a [batch, kvHeads, seqLen, headDim] tensor as the facade needs them before native
 * code sees the tensor (for arithmetic of its own): 4 safe non-negative integers. Returns a
 * copy; the full checks (headDim, rows, data length) stay native.
 */
export function dims4(dims: unknown, name: string): [number, number, number, number] {
  if (!Array.isArray(dims)) throw invalid('INVALID_DIMS', 'an array [batch, kvHeads, seqLen, headDim]', name, dims)
  if (dims.length !== 4) throw invalid('INVALID_RANK', '4 entries [batch, kvHeads, seqLen, headDim]', name, dims)
  const out = [0, 0, 0, 0] as [number, number, number, number]
  for (let i = 0; i < 4; i++) {
    const d = dims[i]
    if (!isInt(d) || d < 0) throw invalid('INVALID_DIMS', 'a non-negative integer', `${name}[${i}]`, d)
    out[i] = d
  }
  return out
}

/** An error of layer `index` of a multi-layer call: its message starts with `layers[index]: ` (once). */
export function prefixed(err: unknown, index: number): unknown {
  if (err instanceof KvtrimError && !err.message.startsWith('layers[')) err.message = `layers[${index}]: ${err.message}`
  return err
}
