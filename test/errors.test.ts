// Every bad input gives a KvtrimError with its code and a message naming the argument; none
// crashes the process, and a valid call still works afterwards.
import { describe, expect, it } from 'vitest'
import { expectCode } from './expect'
import { compress, compressCache, compressCacheSync, compressSync, keyNorms, keyNormsSync, KvtrimError } from '../lib/index'
import { randomTensor, rng, runSeed } from './random'

const r = rng(runSeed())
const keys = randomTensor(r, 'float16', [1, 2, 16, 8])
const values = randomTensor(r, 'float16', [1, 2, 16, 8])


describe('bad input', () => {
  it('wrong rank', () => {
    expectCode(() => compressSync({ ...keys, dims: [2, 16, 8] }, values, { keepRatio: 0.5 }), 'INVALID_RANK', /keys\.dims.*4 entries/)
    expectCode(() => keyNormsSync({ ...keys, dims: [1, 1, 2, 16, 8] }), 'INVALID_RANK')
  })

  it('dims that are not non-negative integers, or a head_dim out of range', () => {
    expectCode(() => keyNormsSync({ ...keys, dims: [1, 2, 16.5, 8] }), 'INVALID_DIMS', /dims\[2\]/)
    expectCode(() => keyNormsSync({ ...keys, dims: [1, -2, -16, 8] }), 'INVALID_DIMS')
    expectCode(() => keyNormsSync({ type: 'float16', data: new Uint16Array(0), dims: [1, 2, 0, 0] }), 'INVALID_DIMS', /headDim/)
    expectCode(() => keyNormsSync({ type: 'float16', data: new Uint16Array(2048), dims: [1, 1, 1, 2048] }), 'INVALID_DIMS', /1024/)
  })

  it('dims that disagree between keys and values', () => {
    const v = randomTensor(r, 'float16', [1, 2, 15, 8])
    expectCode(() => compressSync(keys, v, { keepRatio: 0.5 }), 'DIMS_MISMATCH', /seqLen/)
    const h = randomTensor(r, 'float16', [1, 1, 32, 8])
    expectCode(() => compressSync(keys, h, { keepRatio: 0.5 }), 'DIMS_MISMATCH', /kvHeads/)
  })

  it('data length not matching dims', () => {
    expectCode(() => compressSync({ ...keys, data: keys.data.subarray(1) }, values, { keepRatio: 0.5 }), 'DATA_LENGTH', /keys\.data.*256.*255/)
    expectCode(() => keyNormsSync({ ...keys, dims: [1, 2, 17, 8] }), 'DATA_LENGTH')
  })

  it('unknown dtype, a typed array of the wrong width, and keys and values of different dtypes', () => {
    expectCode(() => keyNormsSync({ ...keys, type: 'int8' }), 'INVALID_DTYPE', /'int8'/)
    expectCode(() => keyNormsSync({ ...keys, type: 'float32' }), 'INVALID_ARGUMENT', /Float32Array/)
    expectCode(() => keyNormsSync({ ...keys, data: new Float32Array(keys.data.length) }), 'INVALID_ARGUMENT', /Uint16Array/)
    expectCode(() => compressSync(keys, { ...values, type: 'bfloat16' }, { keepRatio: 0.5 }), 'INVALID_DTYPE', /one dtype/)
    expectCode(() => keyNormsSync({ type: 'float16', data: [1, 2] as unknown as Uint16Array, dims: [1, 1, 1, 2] }), 'INVALID_ARGUMENT')
    expectCode(() => keyNormsSync(null as never), 'INVALID_ARGUMENT')
  })

  it('keepRatio outside (0, 1]', () => {
    for (const keepRatio of [0, -0.1, 1.0000001, 2, NaN, Infinity]) {
      expectCode(() => compressSync(keys, values, { keepRatio }), 'INVALID_KEEP_RATIO', /keepRatio/)
    }
    expectCode(() => compressSync(keys, values, { keepRatio: '0.5' as never }), 'INVALID_KEEP_RATIO')
  })

  it('keep outside [0, seqLen] or not an integer', () => {
    expectCode(() => compressSync(keys, values, { keep: 17 }), 'INVALID_KEEP', /\[0, seqLen = 16\]/)
    expectCode(() => compressSync(keys, values, { keep: -1 }), 'INVALID_KEEP')
    expectCode(() => compressSync(keys, values, { keep: 2.5 }), 'INVALID_KEEP')
  })

  it('negative or fractional sink and recent', () => {
    expectCode(() => compressSync(keys, values, { keepRatio: 0.5, sink: -1 }), 'INVALID_SINK', /sink/)
    expectCode(() => compressSync(keys, values, { keepRatio: 0.5, sink: 1.5 }), 'INVALID_SINK')
    expectCode(() => compressSync(keys, values, { keepRatio: 0.5, recent: -3 }), 'INVALID_RECENT', /recent/)
  })

  it('lengths longer than the capacity, negative, or of the wrong count', () => {
    expectCode(() => compressSync(keys, values, { keepRatio: 0.5, lengths: [17] }), 'INVALID_LENGTHS', /capacity = 16/)
    expectCode(() => compressSync(keys, values, { keepRatio: 0.5, lengths: [-1] }), 'INVALID_LENGTHS')
    expectCode(() => compressSync(keys, values, { keepRatio: 0.5, lengths: [4, 4] }), 'INVALID_LENGTHS', /one entry per batch/)
    expectCode(() => compressSync(keys, values, { keepRatio: 0.5, lengths: [1.5] }), 'INVALID_LENGTHS')
  })

  it('more than 2^31 - 1 rows', () => {
    expectCode(() => keyNormsSync({ type: 'float16', data: new Uint16Array(8), dims: [1, 1, 2 ** 31, 1] }), 'TOO_MANY_ROWS', /2\^31 - 1/)
    expectCode(() => keyNormsSync({ type: 'float16', data: new Uint16Array(8), dims: [2 ** 20, 2 ** 20, 2 ** 20, 1] }), 'TOO_MANY_ROWS')
  })

  it('a detached buffer', () => {
    const data = keys.data.slice()
    structuredClone(data.buffer, { transfer: [data.buffer] })
    expectCode(() => keyNormsSync({ ...keys, data }), 'DETACHED_BUFFER', /detached/)
    expectCode(() => compressSync(keys, { ...values, data }, { keepRatio: 0.5 }), 'DETACHED_BUFFER', /values\.data/)
  })

  it('options: missing keepRatio/keep, both, unknown names, bad order and score', () => {
    expectCode(() => compressSync(keys, values, {}), 'INVALID_OPTION', /keepRatio .* or keep/)
    expectCode(() => compressSync(keys, values, { keepRatio: 0.5, keep: 3 }), 'INVALID_OPTION', /not both/)
    expectCode(() => compressSync(keys, values, { keepratio: 0.5 } as never), 'INVALID_OPTION', /did you mean 'keepRatio'/)
    expectCode(() => compressSync(keys, values, { keepRatio: 0.5, order: 'random' as never }), 'INVALID_OPTION', /order/)
    expectCode(() => compressSync(keys, values, { keepRatio: 0.5, score: 'low' as never }), 'INVALID_OPTION', /score/)
    expectCode(() => compressSync(keys, values, null as never), 'INVALID_ARGUMENT', /options/)
  })

  it('compressCache: bad layers, pruneAfter, skipLayers and budgets', () => {
    const layers = [{ keys, values }, { keys, values }]
    expectCode(() => compressCacheSync({} as never, { keepRatio: 0.5 }), 'INVALID_ARGUMENT')
    expectCode(() => compressCacheSync([{ keys: 1 }] as never, { keepRatio: 0.5 }), 'INVALID_ARGUMENT', /layers\[0\]/)
    expectCode(() => compressCacheSync(layers, { keepRatio: 0.5, pruneAfter: -1 }), 'INVALID_OPTION', /pruneAfter/)
    expectCode(() => compressCacheSync(layers, { keepRatio: 0.5, skipLayers: 'all' as never }), 'INVALID_OPTION', /skipLayers/)
    expectCode(() => compressCacheSync(layers, { budgets: [0.5] }), 'INVALID_OPTION', /2 keep ratios/)
    expectCode(() => compressCacheSync(layers, { budgets: [0.5, 1.5] }), 'INVALID_KEEP_RATIO', /layers\[1\]/)
    expectCode(() => compressCacheSync(layers, { budgets: { keep: [1, 2.5] } }), 'INVALID_OPTION', /budgets\.keep/)
    expectCode(() => compressCacheSync(layers, { keepRatio: 0.5, budgets: [0.5, 0.5] }), 'INVALID_OPTION', /not both/)
    expectCode(() => compressCacheSync(layers, { budgets: 'pyramidal' as never }), 'INVALID_OPTION', /budgets/)
    expectCode(() => compressCacheSync(layers, {}), 'INVALID_OPTION')
  })

  it('the Promise forms reject with the same codes, with the caller in the stack', async () => {
    const err = await compress(keys, values, { keepRatio: 2 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(KvtrimError)
    expect((err as KvtrimError).code).toBe('INVALID_KEEP_RATIO')
    expect((err as Error).stack).toMatch(/errors\.test\.ts/)
    const e2 = await keyNorms({ ...keys, dims: [1] }).catch((e: unknown) => e)
    expect((e2 as KvtrimError).code).toBe('INVALID_RANK')
    const e3 = await compressCache([{ keys, values }], { keep: 99 }).catch((e: unknown) => e)
    expect((e3 as KvtrimError).code).toBe('INVALID_KEEP')
    expect((e3 as KvtrimError).message).toMatch(/^layers\[0\]: /)
  })

  it('the process is still healthy after all of the above', () => {
    expect(compressSync(keys, values, { keepRatio: 0.5 }).kept).toBe(8)
  })
})
