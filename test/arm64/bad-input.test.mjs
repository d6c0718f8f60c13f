// A subset of the bad-input suite (test/errors.test.ts) on the arm64 addon: every bad input is a
// KvtrimError with its code, sync and async, and a valid call still works afterwards.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { expectCode, kvtrim, oracle, randomTensor, rng, sameBits, seed } from './common.mjs'

const { compressSync, compress, keyNormsSync, keyNorms, KvtrimError } = kvtrim
const r = rng(seed)
const keys = randomTensor(r, 'float16', [1, 2, 16, 8], { special: false })
const values = randomTensor(r, 'float16', [1, 2, 16, 8], { special: false })

test('wrong rank, bad dims, head_dim out of range', () => {
  expectCode(() => compressSync({ ...keys, dims: [2, 16, 8] }, values, { keepRatio: 0.5 }), 'INVALID_RANK', /keys\.dims.*4 entries/)
  expectCode(() => keyNormsSync({ ...keys, dims: [1, 2, 16.5, 8] }), 'INVALID_DIMS', /dims\[2\]/)
  expectCode(() => keyNormsSync({ ...keys, dims: [1, -2, -16, 8] }), 'INVALID_DIMS')
  expectCode(() => keyNormsSync({ type: 'float16', data: new Uint16Array(0), dims: [1, 2, 0, 0] }), 'INVALID_DIMS', /headDim/)
  expectCode(() => keyNormsSync({ type: 'float16', data: new Uint16Array(2048), dims: [1, 1, 1, 2048] }), 'INVALID_DIMS', /1024/)
})

test('dims mismatch, data length, dtypes', () => {
  expectCode(() => compressSync(keys, randomTensor(r, 'float16', [1, 2, 15, 8]), { keepRatio: 0.5 }), 'DIMS_MISMATCH', /seqLen/)
  expectCode(() => compressSync({ ...keys, data: keys.data.subarray(1) }, values, { keepRatio: 0.5 }), 'DATA_LENGTH')
  expectCode(() => keyNormsSync({ ...keys, dims: [1, 2, 17, 8] }), 'DATA_LENGTH')
  expectCode(() => keyNormsSync({ ...keys, type: 'int8' }), 'INVALID_DTYPE', /'int8'/)
  expectCode(() => keyNormsSync({ ...keys, type: 'float32' }), 'INVALID_ARGUMENT', /Float32Array/)
  expectCode(() => keyNormsSync({ ...keys, data: new Float32Array(keys.data.length) }), 'INVALID_ARGUMENT', /Uint16Array/)
  expectCode(() => compressSync(keys, { ...values, type: 'bfloat16' }, { keepRatio: 0.5 }), 'INVALID_DTYPE', /one dtype/)
  expectCode(() => keyNormsSync({ type: 'float16', data: [1, 2], dims: [1, 1, 1, 2] }), 'INVALID_ARGUMENT')
  expectCode(() => keyNormsSync(null), 'INVALID_ARGUMENT')
})

test('keepRatio, keep, sink, recent, lengths, options', () => {
  for (const keepRatio of [0, -0.1, 1.0000001, 2, NaN, Infinity]) {
    expectCode(() => compressSync(keys, values, { keepRatio }), 'INVALID_KEEP_RATIO', /keepRatio/)
  }
  expectCode(() => compressSync(keys, values, { keep: 17 }), 'INVALID_KEEP', /\[0, seqLen = 16\]/)
  expectCode(() => compressSync(keys, values, { keep: 2.5 }), 'INVALID_KEEP')
  expectCode(() => compressSync(keys, values, { keepRatio: 0.5, sink: -1 }), 'INVALID_SINK')
  expectCode(() => compressSync(keys, values, { keepRatio: 0.5, recent: 1.5 }), 'INVALID_RECENT')
  expectCode(() => compressSync(keys, values, { keepRatio: 0.5, lengths: [17] }), 'INVALID_LENGTHS')
  expectCode(() => compressSync(keys, values, { keepRatio: 0.5, lengths: [] }), 'INVALID_LENGTHS')
  expectCode(() => compressSync(keys, values, { keepRatio: 0.5, order: 'random' }), 'INVALID_OPTION')
})

test('async forms reject with the same codes', async () => {
  await assert.rejects(keyNorms({ ...keys, dims: [1, 2, 17, 8] }), (e) => e instanceof KvtrimError && e.code === 'DATA_LENGTH')
  await assert.rejects(compress(keys, values, { keepRatio: 2 }), (e) => e instanceof KvtrimError && e.code === 'INVALID_KEEP_RATIO')
})

test('a detached input is refused, and valid calls still work afterwards', async () => {
  const buf = new ArrayBuffer(keys.data.byteLength)
  const data = new Uint16Array(buf)
  data.set(keys.data)
  structuredClone(buf, { transfer: [buf] })
  expectCode(() => keyNormsSync({ ...keys, data }), 'DETACHED_BUFFER')
  sameBits(keyNormsSync(keys), oracle.keyNorms(keys), 'after errors, sync')
  sameBits(await keyNorms(keys), oracle.keyNorms(keys), 'after errors, async')
})
