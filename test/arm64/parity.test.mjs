// Bit-exact parity of the arm64 addon with the TypeScript oracle (run under qemu-aarch64 by
// scripts/test-arm64.sh, once with the NEON path and once with KVTRIM_ISA=portable, so that both
// equal the oracle and therefore each other). keyNorms (sync and async) on every dtype and the
// head_dims of the issue, with NaN (random payloads), Inf, zeros, subnormal, tiny and huge
// values; compress (sync and async) with the option sets that exercise selection.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { int, kvtrim, oracle, pick, randomTensor, rng, sameBits, seed } from './common.mjs'

const DTYPES = ['float16', 'bfloat16', 'float32']
const HEAD_DIMS = [1, 7, 8, 9, 65, 128, 1024]
const SHAPES = [[1, 1, 1], [1, 2, 5], [2, 3, 7], [1, 1, 33]]

test(`backend().cpu.isa is ${process.env.KVTRIM_EXPECT_ISA || '(not checked)'}`, () => {
  const b = kvtrim.backend()
  assert.equal(process.arch, 'arm64')
  assert.equal(b.cuda.compiled, false)
  assert.equal(b.default, 'cpu')
  if (process.env.KVTRIM_EXPECT_ISA) assert.equal(b.cpu.isa, process.env.KVTRIM_EXPECT_ISA)
  console.log(`# isa ${b.cpu.isa}, ${b.cpu.threads} threads, seed ${seed}`)
})

for (const type of DTYPES) {
  test(`keyNorms ${type}: head_dims ${HEAD_DIMS} x ${SHAPES.length} shapes equal the oracle (seed ${seed})`, async () => {
    const r = rng(seed ^ (type.length * 7919))
    for (const d of HEAD_DIMS) {
      for (const [b, h, s] of SHAPES) {
        const keys = randomTensor(r, type, [b, h, s, d])
        const want = oracle.keyNorms(keys)
        sameBits(kvtrim.keyNormsSync(keys), want, `${type} [${b},${h},${s},${d}] sync`)
        sameBits(await kvtrim.keyNorms(keys), want, `${type} [${b},${h},${s},${d}] async`)
      }
    }
  })

  test(`keyNorms ${type}: many rows (the threaded path and the 4-row tail) equal the oracle (seed ${seed})`, async () => {
    const r = rng(seed ^ (type.length * 104729))
    for (const [b, h, s, d] of [[1, 8, 1027, 64], [2, 4, 515, 128], [1, 1, 4099, 9]]) {
      const keys = randomTensor(r, type, [b, h, s, d])
      sameBits(await kvtrim.keyNorms(keys), oracle.keyNorms(keys), `${type} [${b},${h},${s},${d}]`)
    }
  })

  test(`compress ${type}: random shapes and option sets equal the oracle bit for bit (seed ${seed})`, async () => {
    const r = rng(seed ^ (type.length * 15485863))
    for (let i = 0; i < 24; i++) {
      const d = pick(r, HEAD_DIMS)
      const s = pick(r, [1, 2, 9, 33, 100])
      const b = int(r, 1, 3), h = int(r, 1, 3)
      const dv = r() < 0.8 ? d : int(r, 1, 40)
      const o = { order: pick(r, ['position', 'norm']), score: pick(r, ['low-norm', 'high-norm']) }
      if (r() < 0.7) o.keepRatio = pick(r, [0.07, 0.1, 0.25, 0.5, 0.9, 1])
      else o.keep = int(r, 0, s)
      if (r() < 0.3) o.sink = int(r, 0, 4)
      if (r() < 0.3) o.recent = int(r, 0, 8)
      if (r() < 0.3) o.lengths = Array.from({ length: b }, () => int(r, 0, s))
      const keys = randomTensor(r, type, [b, h, s, d], { special: r() < 0.5, dupRows: 0.2 })
      const values = randomTensor(r, type, [b, h, s, dv])
      const want = oracle.compress(keys, values, o)
      const what = `case ${i} ${type} [${b},${h},${s},${d}] dv ${dv} ${JSON.stringify(o)}`
      for (const got of [kvtrim.compressSync(keys, values, o), await kvtrim.compress(keys, values, o)]) {
        assert.equal(got.kept, want.kept, `${what}: kept`)
        assert.deepEqual(got.keys.dims, want.keys.dims, `${what}: keys.dims`)
        assert.deepEqual(got.values.dims, want.values.dims, `${what}: values.dims`)
        sameBits(got.lengths, want.lengths, `${what}: lengths`)
        sameBits(got.indices, want.indices, `${what}: indices`)
        sameBits(got.keys.data, want.keys.data, `${what}: keys`)
        sameBits(got.values.data, want.values.data, `${what}: values`)
      }
    }
  })
}

// The scorers (docs/policies.md) on arm64: NEON row dots (project, keydiff) and the portable
// path both equal the oracle's scores and selections.
for (const type of DTYPES) {
  test(`tokenScores and compress ${type}: every scorer equals the oracle bit for bit (seed ${seed})`, async () => {
    const r = rng(seed ^ (type.length * 2654435761))
    for (let i = 0; i < 12; i++) {
      const d = pick(r, [7, 8, 9, 64, 128]), s = pick(r, [1, 9, 33, 100]), b = int(r, 1, 2), h = int(r, 1, 3)
      const dv = r() < 0.8 ? d : int(r, 1, 40)
      const keys = randomTensor(r, type, [b, h, s, d], { special: r() < 0.5, dupRows: 0.2 })
      const values = randomTensor(r, type, [b, h, s, dv])
      const lengths = r() < 0.3 ? Array.from({ length: b }, () => int(r, 0, s)) : undefined
      for (const name of ['low-norm', 'high-norm', 'kv-norm', 'keydiff', 'project']) {
        const score = name === 'project' ? { project: Float32Array.from({ length: h * d }, () => r() * 2 - 1) } : name
        const what = `case ${i} ${type} [${b},${h},${s},${d}] dv ${dv} ${name}`
        sameBits(kvtrim.tokenScoresSync(keys, values, { score, ...(lengths && { lengths }) }), oracle.scores(keys, values, score, lengths), `${what}: scores`)
        const o = { keepRatio: pick(r, [0.1, 0.5, 0.9]), order: pick(r, ['position', 'norm']), score, ...(lengths && { lengths }) }
        const want = oracle.compress(keys, values, o)
        const got = await kvtrim.compress(keys, values, o)
        sameBits(got.indices, want.indices, `${what}: indices`)
        sameBits(got.keys.data, want.keys.data, `${what}: keys`)
      }
    }
  })
}

test('every float16 and bfloat16 bit pattern, alone in a row of 9, equals the oracle', () => {
  for (const type of ['float16', 'bfloat16']) {
    const d = 9, rows = 65536
    const data = new Uint16Array(rows * d)
    for (let x = 0; x < rows; x++) data[x * d + (x % d)] = x
    const keys = { type, data, dims: [1, 1, rows, d] }
    sameBits(kvtrim.keyNormsSync(keys), oracle.keyNorms(keys), `${type}: all patterns`)
  }
})
