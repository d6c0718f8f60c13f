// Shared by the arm64 suites (test/arm64/*.test.mjs). They run under Node's built-in test runner
// run in process (`node parity.test.mjs`: `node --test` would spawn the arm64 node, which needs
// binfmt_misc), not vitest: vitest's native dependencies (rollup, esbuild) have no linux-arm64
// build in this node_modules, and the suites run under qemu-aarch64 with the arm64 Node.js.
// They load the compiled facade (dist/, `npm run build:ts`) and the compiled TypeScript oracle
// (test/oracle.ts, compiled by scripts/test-arm64.sh; its path in KVTRIM_ORACLE) and the tests'
// random generator (eval/text.ts; KVTRIM_RNG).
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
export const kvtrim = require('../../dist/index.js')
if (!process.env.KVTRIM_ORACLE) throw new Error('KVTRIM_ORACLE must name the compiled test/oracle.ts (scripts/test-arm64.sh sets it)')
export const oracle = require(process.env.KVTRIM_ORACLE)

export const seed = process.env.KVTRIM_SEED ? Number(process.env.KVTRIM_SEED) : Math.floor(Math.random() * 2 ** 31)

// mulberry32, the tests' seeded generator (eval/text.ts, compiled beside the oracle)
export const { rng } = require(process.env.KVTRIM_RNG)
export const int = (r, lo, hi) => lo + Math.floor(r() * (hi - lo + 1))
export const pick = (r, xs) => xs[Math.floor(r() * xs.length)]

// Random bits of one element: mostly ordinary values, with subnormals, tiny values (bfloat16 below
// 1e-20 and float32 whose squares underflow: where a fused multiply-add rounds differently),
// values whose squares overflow, zeros of both signs, infinities and NaNs with random payloads.
function elementBits(r, type) {
  const u = r()
  if (type === 'float16') {
    const sign = r() < 0.5 ? 0x8000 : 0
    if (u < 0.01) return sign | 0x7c00 | int(r, 1, 0x3ff)  // NaN, quiet or signalling
    if (u < 0.015) return sign | 0x7c00                      // Inf
    if (u < 0.03) return sign                                // +-0
    if (u < 0.12) return sign | int(r, 1, 0x3ff)             // subnormal
    if (u < 0.2) return sign | (int(r, 1, 30) << 10) | int(r, 0, 0x3ff)
    return sign | (int(r, 10, 17) << 10) | int(r, 0, 0x3ff)
  }
  if (type === 'bfloat16') {
    const sign = r() < 0.5 ? 0x8000 : 0
    if (u < 0.01) return sign | 0x7f80 | int(r, 1, 0x7f)
    if (u < 0.015) return sign | 0x7f80
    if (u < 0.03) return sign
    if (u < 0.06) return sign | int(r, 1, 0x7f)              // subnormal
    if (u < 0.14) return sign | (int(r, 1, 60) << 7) | int(r, 0, 0x7f)  // below ~1e-20
    if (u < 0.18) return sign | (int(r, 190, 254) << 7) | int(r, 0, 0x7f)  // squares overflow
    return sign | (int(r, 118, 132) << 7) | int(r, 0, 0x7f)
  }
  const sign = r() < 0.5 ? 0x80000000 : 0
  const mant = Math.floor(r() * 0x800000)
  let exp
  if (u < 0.01) return (sign | 0x7f800000 | Math.max(1, mant)) >>> 0
  if (u < 0.015) return (sign | 0x7f800000) >>> 0
  if (u < 0.03) return sign >>> 0
  if (u < 0.06) exp = 0                                        // subnormal
  else if (u < 0.14) exp = int(r, 1, 62)                        // squares underflow
  else if (u < 0.18) exp = int(r, 190, 254)                     // squares overflow
  else exp = int(r, 110, 140)
  return (sign | (exp << 23) | mant) >>> 0
}

/** A random tensor; `special` = false keeps to finite, ordinary values; dupRows copies rows (ties). */
export function randomTensor(r, type, dims, { special = true, dupRows = 0 } = {}) {
  const n = dims.reduce((a, b) => a * b, 1)
  const data = type === 'float32' ? new Float32Array(n) : new Uint16Array(n)
  const bits = type === 'float32' ? new Uint32Array(data.buffer) : data
  const plain = type === 'float16' ? () => (int(r, 0, 1) << 15) | (int(r, 10, 17) << 10) | int(r, 0, 0x3ff)
    : type === 'bfloat16' ? () => (int(r, 0, 1) << 15) | (int(r, 118, 132) << 7) | int(r, 0, 0x7f)
    : () => ((int(r, 0, 1) << 31) | (int(r, 110, 140) << 23) | Math.floor(r() * 0x800000)) >>> 0
  // Tiny rows: every element so small that its square is subnormal (or 0) and so is the row's
  // sum; only there does a fused multiply-add give other bits than the contract's separately
  // rounded square and add (bfloat16 below ~1e-20, float32; a float16 square is always exact).
  const tiny = type === 'float16' ? () => (int(r, 0, 1) << 15) | int(r, 1, 0x3ff)
    : type === 'bfloat16' ? () => (int(r, 0, 1) << 15) | (int(r, 45, 70) << 7) | int(r, 0, 0x7f)
    : () => ((int(r, 0, 1) << 31) | (int(r, 40, 75) << 23) | Math.floor(r() * 0x800000)) >>> 0
  const rowSpecial = r() < 0.5  // half the tensors: specials in a few rows only, the rest ordinary
  const d = dims[3]
  for (let row = 0; row < n / d; row++) {
    const u = r()
    const gen = !special ? plain : u < 0.15 ? tiny : !rowSpecial || u < 0.25 ? () => elementBits(r, type) : plain
    for (let i = 0; i < d; i++) bits[row * d + i] = gen()
  }
  const S = dims[2]
  if (dupRows > 0 && S > 1) {
    for (let row = 0; row < n / d; row++) {
      if (r() >= dupRows) continue
      const from = (row - (row % S)) + int(r, 0, S - 1)
      bits.copyWithin(row * d, from * d, from * d + d)
    }
  }
  return { type, data, dims }
}

function bitsOf(a) {
  return a instanceof Float32Array ? new Uint32Array(a.buffer, a.byteOffset, a.length) : a
}

/** Same length, same bits (NaN == NaN only with the same payload, +0 != -0). */
export function sameBits(actual, expected, what) {
  assert.equal(actual.length, expected.length, `${what}: length`)
  const a = bitsOf(actual), e = bitsOf(expected)
  const bad = []
  for (let i = 0; i < a.length && bad.length < 5; i++) {
    if (a[i] !== e[i]) bad.push(`[${i}] got 0x${a[i].toString(16)} want 0x${e[i].toString(16)}`)
  }
  assert.deepEqual(bad, [], `${what}: first mismatches`)
}

export function expectCode(fn, code, message) {
  let err
  try {
    fn()
  } catch (e) {
    err = e
  }
  assert.ok(err instanceof kvtrim.KvtrimError, `expected a KvtrimError ${code}, got ${err}`)
  assert.equal(err.code, code, err.message)
  if (message) assert.match(err.message, message)
}
