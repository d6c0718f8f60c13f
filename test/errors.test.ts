// Every bad input gives a KvtrimError with its code and a message naming the argument; none
// crashes the process, and a valid call still works afterwards.
import { describe, expect, it } from 'vitest'
import { expectCode } from './expect'
import {
  apportion,
  compress,
  compressCache,
  compressCacheSync,
  compressInPlace,
  compressInPlaceSync,
  compressSync,
  Compressor,
  DeviceTensor,
  fromDevicePointer,
  keyNorms,
  keyNormsSync,
  KvtrimError,
  layerBudgets,
  layerUncertaintySync,
  normAttentionCorrelation,
  spearman,
  tensor,
  zigzagBudgets,
} from '../lib/index'
import { CacheCompressor, MAX_NEXT_TOKENS, pastFromPresent } from '../lib/cache/transformers'
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

  it('an empty tensor with a huge batch or batch x kvHeads (it would plan gigabytes of entries)', () => {
    const empty = (dims: number[]) => ({ type: 'float16' as const, data: new Uint16Array(0), dims })
    expectCode(() => compressSync(empty([2 ** 31 - 1, 0, 4, 8]), empty([2 ** 31 - 1, 0, 4, 8]), { keepRatio: 0.5 }), 'TOO_MANY_ROWS', /2\^24 batch/)
    expectCode(() => compressSync(empty([2 ** 24, 2 ** 8, 0, 8]), empty([2 ** 24, 2 ** 8, 0, 8]), { keepRatio: 0.5 }), 'TOO_MANY_ROWS')
    expectCode(() => keyNormsSync(empty([2 ** 24 + 1, 0, 1, 8])), 'TOO_MANY_ROWS')
    expect(compressSync(empty([3, 0, 4, 8]), empty([3, 0, 4, 8]), { keepRatio: 0.5 }).lengths).toEqual(new Int32Array([2, 2, 2]))
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

// Issue 12, item 6 and what a hunt for more found: every error a caller can reach from the
// public API (kvtrim and kvtrim/transformers) is a KvtrimError with a code; an error thrown by
// the caller's own code (a getter, a Proxy trap) propagates unchanged, as lib/errors.ts says.
describe('the facade: nothing but a KvtrimError', () => {
  const k2 = randomTensor(r, 'float16', [2, 2, 8, 8])
  const v2 = randomTensor(r, 'float16', [2, 2, 8, 8])

  it('options that are not objects: keyNorms, tensor, fromDevicePointer', async () => {
    expectCode(() => keyNormsSync(keys, null as never), 'INVALID_ARGUMENT', /options/)
    expectCode(() => keyNormsSync(keys, 5 as never), 'INVALID_ARGUMENT', /options/)
    expectCode(() => keyNormsSync(keys, { strem: 1n } as never), 'INVALID_OPTION', /strem/)
    await expectRejects(keyNorms(keys, null as never), 'INVALID_ARGUMENT')
    expectCode(() => tensor(keys.data, keys.dims, null as never), 'INVALID_ARGUMENT', /options/)
    expectCode(() => tensor(keys.data, keys.dims, 'cpu' as never), 'INVALID_ARGUMENT', /options/)
    expectCode(() => tensor(keys.data, keys.dims, { device: 'cpu', dtype: 'float16' } as never), 'INVALID_OPTION', /dtype/)
    expectCode(() => tensor('abc' as never, [3]), 'INVALID_ARGUMENT', /data/)
    expectCode(() => fromDevicePointer(4096n, [1, 1, 1, 8], null as never), 'INVALID_ARGUMENT', /options/)
    expectCode(() => new DeviceTensor('float16', [1, 1, 1, 8], null as never), 'INVALID_ARGUMENT', /tensor\(\)/)
  })

  it('kvtrim/transformers: pastFromPresent(null), a Tensor that is not a class, skipLayers not an array', () => {
    expectCode(() => pastFromPresent(null as never), 'INVALID_ARGUMENT', /outputs/)
    expectCode(() => pastFromPresent('present.0.key' as never), 'INVALID_ARGUMENT', /outputs/)
    expectCode(() => new CacheCompressor({ skipLayers: 'ab' as never }), 'INVALID_OPTION', /skipLayers/)
    expectCode(() => new CacheCompressor({ skipLayers: [, 1] as never }), 'INVALID_OPTION', /skipLayers/)
    expectCode(() => new CacheCompressor({ decode: { every: 2, evry: 3 } as never }), 'INVALID_OPTION', /decode\.evry/)
    const kv = new CacheCompressor({})
    kv.afterPrefillSync({ 'past_key_values.0.key': keys, 'past_key_values.0.value': values })
    expectCode(() => kv.nextInputs(1, 5 as never), 'INVALID_ARGUMENT', /Tensor/)
  })

  it('nextInputs(2 ** 31) is refused at once instead of building 16 GiB', () => {
    const kv = new CacheCompressor({})
    kv.afterPrefillSync([{ keys, values }])
    const t0 = Date.now()
    expectCode(() => kv.nextInputs(2 ** 31), 'INVALID_ARGUMENT', /16777216.*for count/)
    expectCode(() => kv.nextInputs(MAX_NEXT_TOKENS + 1), 'INVALID_ARGUMENT', /count/)
    expect(Date.now() - t0).toBeLessThan(1000)
    expect(kv.nextInputs(3).position_ids.data).toEqual(BigInt64Array.from([16n, 17n, 18n]))
    // a cache of no layers: a mask of count ones, not a RangeError
    const none = new CacheCompressor({})
    none.afterPrefillSync([])
    expect(none.nextInputs(2).attention_mask.dims).toEqual([1, 2])
  })

  it('sparse arrays: a hole is a missing layer, not a TypeError', async () => {
    const holey = [, { keys, values }] as never
    expectCode(() => compressCacheSync(holey, { keepRatio: 0.5 }), 'INVALID_ARGUMENT', /layers\[0\]/)
    await expectRejects(compressCache(holey, { keepRatio: 0.5 }), 'INVALID_ARGUMENT', /layers\[0\]/)
    expectCode(() => new Compressor({ target: 4, interval: 0 }).stepSync(holey), 'INVALID_ARGUMENT', /cache\[0\]/)
    expectCode(() => layerUncertaintySync([, { attention: keys }] as never), 'INVALID_ARGUMENT', /layers\[0\]/)
    expectCode(() => compressSync(k2, v2, { keepRatio: 0.5, lengths: [, 4] as never }), 'INVALID_LENGTHS')
    expectCode(() => new Compressor({ target: [, 4] as never, interval: 0 }), 'INVALID_OPTION', /target/)
    expectCode(() => compressCacheSync([{ keys, values }, { keys, values }], { budgets: [, 0.5] as never }), 'INVALID_OPTION', /budgets/)
    expectCode(() => compressCacheSync([{ keys, values }, { keys, values }], { budgets: { keep: [, 4] } as never }), 'INVALID_OPTION', /budgets\.keep/)
    expectCode(() => compressCacheSync([{ keys, values }], { keepRatio: 0.5, skipLayers: [, 0] as never }), 'INVALID_OPTION', /skipLayers/)
    // a huge sparse array fails at its first hole, without being walked
    expectCode(() => compressSync(k2, v2, { keepRatio: 0.5, lengths: new Array(2 ** 32 - 1) }), 'INVALID_LENGTHS')
  })

  it('dims whose product is not a safe integer, or too large to allocate on the host', () => {
    expectCode(() => tensor(null, [2 ** 40, 2 ** 40]), 'INVALID_DIMS', /2\^53/)
    expectCode(() => tensor(null, [2 ** 40, 2 ** 40], { device: 'cpu' }), 'INVALID_DIMS', /2\^53/)
    expectCode(() => tensor(null, [1024, 1024, 1024, 1024], { type: 'float32', device: 'cpu' }), 'OUT_OF_MEMORY', /1024, 1024/)
    expectCode(() => tensor(null, [1, -1, 1, 1], { device: 'cpu' }), 'INVALID_DIMS')
    expectCode(() => tensor(null, [1, 1.5, 1, 1], { device: 'cpu' }), 'INVALID_DIMS')
    expectCode(() => tensor(null, [, 2] as never, { device: 'cpu' }), 'INVALID_DIMS')
    expectCode(() => tensor(null, ['1', '2'] as never, { device: 'cpu' }), 'INVALID_DIMS')
    expectCode(() => keyNormsSync({ ...keys, dims: ['1', '2', '16', '8'] as never }), 'INVALID_DIMS')
    expectCode(() => keyNormsSync({ ...keys, dims: [NaN, 2, 16, 8] }), 'INVALID_DIMS')
    expectCode(() => keyNormsSync({ ...keys, dims: [Infinity, 2, 16, 8] }), 'INVALID_DIMS')
    expectCode(() => keyNormsSync({ ...keys, dims: [2 ** 50, 2 ** 50, 2 ** 50, 8] }), 'TOO_MANY_ROWS')
    expectCode(() => compressCacheSync([{ keys: { ...keys, dims: [1, 2, 16.5, 8] }, values }], { keepRatio: 0.5 }), 'INVALID_DIMS', /layers\[0\]\.keys\.dims\[2\]/)
    const stat = new Compressor({ target: 2, interval: 0, mode: 'static' })
    expectCode(() => stat.stepSync([{ keys: { ...keys, dims: [-1, 2, 16, 8] }, values }], { lengths: 16 }), 'INVALID_DIMS', /cache\[0\]\.keys\.dims\[0\]/)
    expectCode(() => stat.stepSync([{ keys: { ...keys, dims: [2 ** 40, 2, 16, 8] }, values }], { lengths: 16 }), 'TOO_MANY_ROWS')
  })

  it('lengths: [] with a batch of 2 is an error (one entry per batch entry), not "every entry full"', async () => {
    const l = { keepRatio: 0.5, lengths: [] }
    expectCode(() => compressSync(k2, v2, l), 'INVALID_LENGTHS', /one entry per batch entry \(2\) but it has 0/)
    await expectRejects(compress(k2, v2, l), 'INVALID_LENGTHS')
    expectCode(() => compressInPlaceSync({ ...k2, data: k2.data.slice() }, { ...v2, data: v2.data.slice() }, l), 'INVALID_LENGTHS')
    await expectRejects(compressInPlace({ ...k2, data: k2.data.slice() }, { ...v2, data: v2.data.slice() }, l), 'INVALID_LENGTHS')
    expectCode(() => compressCacheSync([{ keys: k2, values: v2 }], l), 'INVALID_LENGTHS', /layers\[0\]/)
    // a skipped layer is checked too: lengths describe the whole cache
    expectCode(() => compressCacheSync([{ keys: k2, values: v2 }], { ...l, skipLayers: [0] }), 'INVALID_LENGTHS')
    expectCode(() => compressSync(k2, v2, { keepRatio: 0.5, lengths: new Int32Array(0) }), 'INVALID_LENGTHS')
    // a batch of 0 has 0 lengths
    const empty = { type: 'float16', data: new Uint16Array(0), dims: [0, 2, 8, 8] }
    expect(compressSync(empty, empty, l).kept).toBe(0)
  })

  it('NaN, Infinity, negative and fractional options', () => {
    for (const bad of [NaN, Infinity, -Infinity, -1, 0.5, 2 ** 53]) {
      expectCode(() => compressSync(keys, values, { keepRatio: 0.5, sink: bad }), 'INVALID_SINK')
      expectCode(() => compressSync(keys, values, { keepRatio: 0.5, recent: bad }), 'INVALID_RECENT')
      expectCode(() => compressSync(keys, values, { keep: bad }), 'INVALID_KEEP')
      expectCode(() => compressSync(k2, v2, { keepRatio: 0.5, lengths: [bad, 4] }), 'INVALID_LENGTHS')
      expectCode(() => compressCacheSync([{ keys, values }], { keepRatio: 0.5, pruneAfter: bad }), 'INVALID_OPTION', /pruneAfter/)
      expectCode(() => new Compressor({ target: bad, interval: 0 }), 'INVALID_OPTION', /target/)
      expectCode(() => new Compressor({ target: 1, interval: bad }), 'INVALID_OPTION', /interval/)
    }
    for (const bad of [NaN, -Infinity, -0.5, -0, 0, 1.5, Infinity]) {
      expectCode(() => compressSync(keys, values, { keepRatio: bad }), 'INVALID_KEEP_RATIO')
    }
    expectCode(() => compressSync(keys, values, { keepRatio: 0.5, lengths: 'ab' as never }), 'INVALID_LENGTHS')
    expectCode(() => compressSync(keys, values, { keepRatio: 0.5, lengths: [1n] as never }), 'INVALID_LENGTHS')
    expectCode(() => compressSync(keys, values, { keepRatio: 0.5, lengths: new BigInt64Array(1) as never }), 'INVALID_LENGTHS')
  })

  it('bigints: device pointers and streams must be in [0, 2^64), checked without truncation', async () => {
    for (const ptr of [-1n, 0n, 2n ** 64n, 2n ** 64n + 4096n, 2n ** 80n]) {
      expectCode(() => fromDevicePointer(ptr, [1, 1, 1, 8], { type: 'float16' }), 'INVALID_ARGUMENT', /2\^64 for ptr/)
    }
    expectCode(() => fromDevicePointer(4096 as never, [1, 1, 1, 8], { type: 'float16' }), 'INVALID_ARGUMENT', /ptr/)
    expectCode(() => fromDevicePointer(2n ** 64n - 2n, [1, 1, 1, 8], { type: 'float16' }), 'INVALID_DIMS', /2\^64/)
    for (const stream of [-1n, 2n ** 64n, 2n ** 64n + 1n, 1 as never, '0' as never]) {
      expectCode(() => compressSync(keys, values, { keepRatio: 0.5, stream }), 'INVALID_OPTION', /2\^64\) for (options\.)?stream/)
      expectCode(() => keyNormsSync(keys, { stream }), 'INVALID_OPTION', /2\^64\) for (options\.)?stream/)
      await expectRejects(compress(keys, values, { keepRatio: 0.5, stream }), 'INVALID_OPTION')
    }
    // a valid stream is still refused for host tensors (it applies to device tensors)
    expectCode(() => compressSync(keys, values, { keepRatio: 0.5, stream: 2n ** 64n - 1n }), 'INVALID_OPTION', /host tensors/)
  })

  it('normAttentionCorrelation: rho is NaN for NaN attention, and its inputs are validated like the rest', () => {
    const att = (data: Float32Array | Uint16Array, type = 'float32') => ({ type, data, dims: [1, 2, 3, 16] })
    const nan = normAttentionCorrelation(keys, att(new Float32Array(96).fill(NaN)))
    expect(Array.from(nan.perHead)).toEqual([NaN, NaN])
    expect(nan.mean).toBeNaN()
    expectCode(() => normAttentionCorrelation(keys, { type: 'float32', data: 'abcdefghabcdefgh' as never, dims: [1, 2, 1, 16] }), 'INVALID_ARGUMENT', /attention\.data/)
    expectCode(() => normAttentionCorrelation(keys, { type: 'float32', data: new Float32Array(16), dims: [1, 2, 0.5, 16] }), 'INVALID_DIMS', /attention\.dims\[2\]/)
    expectCode(() => normAttentionCorrelation(keys, { type: 'float32', data: new Float32Array(96), dims: [1, 2, 3, -16] }), 'INVALID_DIMS')
    expectCode(() => normAttentionCorrelation(keys, att(new Uint16Array(96))), 'INVALID_ARGUMENT', /Float32Array/)
    expectCode(() => normAttentionCorrelation(keys, att(new Float32Array(96), 'float16')), 'INVALID_ARGUMENT', /Uint16Array/)
    expectCode(() => normAttentionCorrelation(keys, att(new Float32Array(96), 'int8')), 'INVALID_DTYPE')
    expectCode(() => normAttentionCorrelation(keys, att(new Float32Array(95))), 'DATA_LENGTH')
    expectCode(() => normAttentionCorrelation(keys, { type: 'float32', data: new Float32Array(96), dims: [1, 0, 3, 32] }), 'DIMS_MISMATCH')
    expectCode(() => normAttentionCorrelation({ ...keys, dims: [1, 2, 16.5, 8] }, att(new Float32Array(96))), 'INVALID_DIMS', /keys\.dims\[2\]/)
    expectCode(() => normAttentionCorrelation(null as never, att(new Float32Array(96))), 'INVALID_ARGUMENT', /keys/)
    // an empty cache of 2^31 - 1 heads is refused at once (its result alone would be 16 GiB)
    const empty = { type: 'float32', data: new Float32Array(0), dims: [2 ** 31 - 1, 1, 0, 8] }
    expectCode(() => normAttentionCorrelation(empty, { type: 'float32', data: new Float32Array(0), dims: [2 ** 31 - 1, 1, 0, 0] }), 'TOO_MANY_ROWS', /2\^24/)
    const wide = { type: 'float32', data: new Float32Array(0), dims: [2 ** 12, 2 ** 12 + 1, 0, 8] }
    expectCode(() => normAttentionCorrelation(wide, { type: 'float32', data: new Float32Array(0), dims: [2 ** 12, 2 ** 12 + 1, 0, 0] }), 'TOO_MANY_ROWS', /2\^24 heads/)
    // Infinity ranks above every finite value (a subtraction comparator made it unordered)
    const inf = new Float32Array(96)
    for (let j = 0; j < 16; j++) inf[j] = j < 8 ? Infinity : 1
    expect(Number.isNaN(normAttentionCorrelation(keys, att(inf)).perHead[0])).toBe(false)
    // spearman, exported: series of numbers only; a NaN gives NaN
    expectCode(() => spearman(null as never, null as never), 'INVALID_ARGUMENT', /x/)
    expectCode(() => spearman('ab' as never, 'cd' as never), 'INVALID_ARGUMENT')
    expectCode(() => spearman([1, , 3] as never, [1, 2, 3]), 'INVALID_ARGUMENT')
    expectCode(() => spearman([1, 2], [1, 2, 3]), 'INVALID_ARGUMENT', /one length/)
    expect(spearman([1, NaN, 3], [1, 2, 3])).toBeNaN()
    expect(spearman([1, Infinity, Infinity, 2], [1, 3, 3, 2])).toBeCloseTo(1, 12)
  })

  it('budget helpers: apportion validates its inputs and answers far totals at once (no hang)', () => {
    expectCode(() => apportion(null as never, 1, [0], [1]), 'INVALID_ARGUMENT', /x/)
    expectCode(() => apportion([1], 1, null as never, [1]), 'INVALID_ARGUMENT', /lo/)
    expectCode(() => apportion([NaN], 1, [0], [1]), 'INVALID_ARGUMENT', /x\[0\]/)
    expectCode(() => apportion([1], 1.5, [0], [1]), 'INVALID_ARGUMENT', /total/)
    expectCode(() => apportion([1], 5, [0], [4]), 'INVALID_BUDGETS', /total of 5/)
    expectCode(() => apportion([1], 1, [2], [1]), 'INVALID_ARGUMENT', /lo\[0\] <= hi\[0\]/)
    const t0 = Date.now()
    expect(apportion([0, 0.5], 2 ** 50, [0, 0], [2 ** 50, 2 ** 50])).toEqual([2 ** 49, 2 ** 49])
    expect(apportion([2 ** 40, 0], 3, [0, 0], [2 ** 41, 2 ** 41])).toEqual([3, 0])
    expect(Date.now() - t0).toBeLessThan(1000)
    expect(apportion(Float64Array.from([1.5, 2.5]) as never, 4, Int32Array.from([0, 0]) as never, [4, 4])).toEqual([2, 2])
    // zigzag scores as a typed array: the same budgets as an array (its map would round to its type)
    const ctx = { layers: 3, seqLen: 100, keepRatio: 0.3 }
    expect(zigzagBudgets(ctx, Float32Array.from([0.1, 0.7, 0.3]) as never)).toEqual(zigzagBudgets(ctx, Array.from(Float32Array.from([0.1, 0.7, 0.3]))))
    // a huge sparse scores array is refused by its length, not walked
    expectCode(() => zigzagBudgets(ctx, new Array(2 ** 32 - 1)), 'INVALID_BUDGETS', /3 per-layer scores/)
    expectCode(() => layerBudgets('uniform', { layers: 2 ** 40, seqLen: 4, keepRatio: 0.5 }), 'INVALID_ARGUMENT', /layers/)
  })

  it('SharedArrayBuffer- and resizable-ArrayBuffer-backed inputs pass validation and give the plain result', async () => {
    const shared = <T extends Uint16Array>(a: T): Uint16Array => {
      const s = new Uint16Array(new SharedArrayBuffer(a.byteLength))
      s.set(a)
      return s
    }
    const resizable = (a: Uint16Array): Uint16Array => {
      const buf = new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer)(a.byteLength, { maxByteLength: a.byteLength * 2 })
      const s = new Uint16Array(buf)
      s.set(a)
      return s
    }
    const want = compressSync(k2, v2, { keepRatio: 0.5 })
    for (const [name, wrap] of [['shared', shared], ['resizable', resizable]] as const) {
      const k = { ...k2, data: wrap(k2.data as Uint16Array) }, v = { ...v2, data: wrap(v2.data as Uint16Array) }
      expect(Array.from(keyNormsSync(k)), name).toEqual(Array.from(keyNormsSync(k2)))
      expect(Array.from(await keyNorms(k)), name).toEqual(Array.from(keyNormsSync(k2)))
      expect(Array.from(compressSync(k, v, { keepRatio: 0.5 }).keys.data), name).toEqual(Array.from(want.keys.data))
      expect(Array.from((await compress(k, v, { keepRatio: 0.5 })).values.data), name).toEqual(Array.from(want.values.data))
      const t = tensor(k.data, k.dims, { type: 'float16', device: 'cpu' })
      expect((t as { data: unknown }).data).toBe(k.data)
      expect(Array.from(compressInPlaceSync(k, v, { keepRatio: 0.5 }).indices), name).toEqual(Array.from(want.indices))
      const att = { type: 'float16', data: wrap(randomTensor(r, 'float16', [2, 2, 1, 8]).data as Uint16Array), dims: [2, 2, 1, 8] }
      expect(normAttentionCorrelation(k2, att).perHead.length).toBe(4)
    }
  })

  it("a throwing getter or Proxy trap: the caller's own error propagates unchanged (the same object), never a crash", async () => {
    const boom = new RangeError('the caller’s getter')
    const getter = { get keepRatio(): number { throw boom } }
    const caught = (fn: () => unknown): unknown => {
      try {
        fn()
      } catch (e) {
        return e
      }
      return undefined
    }
    expect(caught(() => compressSync(keys, values, getter))).toBe(boom)
    expect(await compress(keys, values, getter).catch((e: unknown) => e)).toBe(boom)
    const dims = { type: 'float16', data: keys.data, get dims(): number[] { throw boom } }
    expect(caught(() => keyNormsSync(dims as never))).toBe(boom)
    expect(caught(() => compressCacheSync([{ keys: dims, values }] as never, { keepRatio: 0.5 }))).toBe(boom)
    const trap = new Proxy({ keepRatio: 0.5 }, { ownKeys: () => { throw boom } })
    expect(caught(() => compressSync(keys, values, trap))).toBe(boom)
    const lengths = new Proxy([1, 1], { get: (t, p) => { if (p === '1') throw boom; return Reflect.get(t, p) } })
    expect(caught(() => compressSync(k2, v2, { keepRatio: 0.5, lengths }))).toBe(boom)
    // Proxies that answer are read like the objects they wrap
    expect(compressSync(new Proxy(keys, {}), new Proxy(values, {}), new Proxy({ keepRatio: 0.5 }, {})).kept).toBe(8)
    // a getter that answers differently each time: what is checked is what is used
    let n = 0
    const flip = { get keepRatio(): unknown { return n++ === 0 ? 0.5 : 'junk' } }
    expect(compressSync(keys, values, flip as never).kept).toBe(8)
    expect(n).toBe(1)
    // each field of a host tensor is read once per call, before native code takes a pointer
    const reads: Record<string, number> = { type: 0, data: 0, dims: 0 }
    const counted = (t: typeof k2) => ({
      get type() { reads.type++; return t.type },
      get data() { reads.data++; return t.data },
      get dims() { reads.dims++; return t.dims },
    })
    compressSync(counted(k2), v2, { keepRatio: 0.5, lengths: [8, 4] })
    expect(reads).toEqual({ type: 1, data: 1, dims: 1 })
    keyNormsSync(counted(k2))
    expect(reads).toEqual({ type: 2, data: 2, dims: 2 })
    // options as class instances with getters on the prototype are read like plain objects
    class Steps {
      get target(): number { return 4 }
      get interval(): number { return 0 }
    }
    class Ratio {
      get keepRatio(): number { return 0.5 }
    }
    expect(new Compressor(new Steps() as never).stepSync([{ keys, values }]).lengths).toEqual([4])
    expect(new CacheCompressor(new Ratio()).afterPrefillSync([{ keys, values }]).lengths).toEqual([8])
    expect(compressSync(keys, values, new Ratio()).kept).toBe(8)
  })

  it('the process is still healthy after all of the above', () => {
    expect(compressSync(keys, values, { keepRatio: 0.5 }).kept).toBe(8)
  })
})

async function expectRejects(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  expect(err, `expected a rejection with a KvtrimError ${code}`).toBeInstanceOf(KvtrimError)
  expect((err as KvtrimError).code).toBe(code)
  if (message) expect((err as KvtrimError).message).toMatch(message)
}
