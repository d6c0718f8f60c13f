// Bit-exact comparison helpers that report the first mismatches with their indices.
import { expect } from 'vitest'
import { KvtrimError } from '../lib/index'

type Bits = Float32Array | Uint16Array | Int32Array | Uint32Array

function bitsOf(a: Bits): Uint32Array | Uint16Array | Int32Array {
  return a instanceof Float32Array ? new Uint32Array(a.buffer, a.byteOffset, a.length) : a
}

/** Same length, same bits (NaN == NaN only with the same payload, +0 != -0). */
export function expectSameBits(actual: Bits, expected: Bits, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length)
  const a = bitsOf(actual), e = bitsOf(expected)
  const bad: string[] = []
  for (let i = 0; i < a.length && bad.length < 5; i++) {
    if (a[i] !== e[i]) bad.push(`[${i}] got ${actual[i]} (0x${a[i].toString(16)}) want ${expected[i]} (0x${e[i].toString(16)})`)
  }
  expect(bad, `${what}: first mismatches`).toEqual([])
}

/** fn throws a KvtrimError with this code (and a message matching `message`, if given). */
export function expectCode(fn: () => unknown, code: string, message?: RegExp): void {
  let err: unknown
  try {
    fn()
  } catch (e) {
    err = e
  }
  expect(err, `expected a KvtrimError ${code}`).toBeInstanceOf(KvtrimError)
  expect((err as KvtrimError).code).toBe(code)
  if (message) expect((err as KvtrimError).message).toMatch(message)
}
