// Bit-exact comparison helpers that report the first mismatches with their indices.
import { expect } from 'vitest'
import { KvtrimError, type CompressResult } from '../lib/index'
import type { OracleCompressResult } from './oracle'

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

/** p rejects with a KvtrimError with this code (and a message matching `message`, if given). */
export async function expectRejects(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  expect(err, `expected a rejection with a KvtrimError ${code}`).toBeInstanceOf(KvtrimError)
  expect((err as KvtrimError).code).toBe(code)
  if (message) expect((err as KvtrimError).message).toMatch(message)
}

/** What fn throws (undefined when it returns). */
export function caught(fn: () => unknown): unknown {
  try { fn() } catch (e) { return e }
  return undefined
}

/** A message that holds every one of these, in any order. */
export const all = (...parts: string[]): RegExp => new RegExp(parts.map((x) => `(?=[\\s\\S]*${x})`).join(''))

/** A compress result equals the oracle's, bit for bit, headLengths included. */
export function expectOracleResult(actual: CompressResult, want: OracleCompressResult, what: string): void {
  expect(actual.kept, `${what}: kept`).toBe(want.kept)
  expect(actual.keys.dims, `${what}: keys.dims`).toEqual(want.keys.dims)
  expect(actual.values.dims, `${what}: values.dims`).toEqual(want.values.dims)
  expect(actual.keys.type, `${what}: type`).toBe(want.keys.type)
  expect(actual.headLengths, `${what}: headLengths type`).toBeInstanceOf(Int32Array)
  expectSameBits(actual.headLengths, want.headLengths, `${what}: headLengths`)
  expectSameBits(actual.lengths, want.lengths, `${what}: lengths`)
  expectSameBits(actual.indices, want.indices, `${what}: indices`)
  expectSameBits(actual.keys.data, want.keys.data, `${what}: keys`)
  expectSameBits(actual.values.data, want.values.data, `${what}: values`)
}

/** Two compress results are the same, bit for bit, headLengths included. */
export function expectSameResult(a: CompressResult, b: CompressResult, what: string): void {
  expect(a.kept, `${what}: kept`).toBe(b.kept)
  expect(a.keys.dims, `${what}: dims`).toEqual(b.keys.dims)
  expectSameBits(a.headLengths, b.headLengths, `${what}: headLengths`)
  expectSameBits(a.lengths, b.lengths, `${what}: lengths`)
  expectSameBits(a.indices, b.indices, `${what}: indices`)
  expectSameBits(a.keys.data, b.keys.data, `${what}: keys`)
  expectSameBits(a.values.data, b.values.data, `${what}: values`)
}
