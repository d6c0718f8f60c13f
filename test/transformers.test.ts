// kvtrim/transformers on the real test model, through the TypeScript forward pass with the cache
// named as transformers.js / onnxruntime-node name it (present.{l}.* out, past_key_values.{l}.* in,
// tensors of their Tensor class). A 40-token greedy loop with CacheCompressor compressing after
// prefill and every 8 steps gives exactly the tokens of the same loop written by hand with
// compressSync; feeding position_ids k, k+1, ... (what an attention mask implies) instead of the
// absolute positions changes the output. Budgets that differ between layers are refused.
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { argmax, type KvCache, type Llama2Model } from '../eval/llama2c'
import { compressSync, KvtrimError, type TensorLike } from '../lib/index'
import { CacheCompressor, pastFromPresent, type CacheCompressorOptions } from '../lib/cache/transformers'
import { skipReason, suiteName, testModel } from './model'

/** onnxruntime-node / transformers.js's Tensor: new Tensor(type, data, dims). */
class Tensor {
  constructor(
    public type: string,
    public data: Float32Array | BigInt64Array,
    public dims: number[],
  ) {}
}
type Named = Record<string, Tensor>

const PROMPT = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her dog.'
const STEPS = 40, EVERY = 8, KEEP_RATIO = 0.5

/** The model's outputs as an ONNX decoder names them. */
function present(cache: KvCache, logits: Float32Array): Named {
  const out: Named = { logits: new Tensor('float32', logits, [1, 1, logits.length]) }
  cache.forEach((l, i) => {
    out[`present.${i}.key`] = new Tensor('float32', l.keys.data, l.keys.dims)
    out[`present.${i}.value`] = new Tensor('float32', l.values.data, l.values.dims)
  })
  return out
}

/** The model's past_key_values feeds back into the forward pass's cache. */
function layers(past: Named, n: number): KvCache {
  return Array.from({ length: n }, (_, l) => {
    const k = past[`past_key_values.${l}.key`], v = past[`past_key_values.${l}.value`]
    expect(k).toBeInstanceOf(Tensor)
    return { keys: { type: 'float32', data: k.data as Float32Array, dims: k.dims }, values: { type: 'float32', data: v.data as Float32Array, dims: v.dims } }
  })
}

const prompt = (m: { tokenizer: { encode(t: string): number[] } }): number[] => m.tokenizer.encode(PROMPT)

/** The loop a user writes with CacheCompressor; `positions` 'mask' feeds what the attention mask implies instead. */
function helperLoop(model: Llama2Model, ids: number[], o: CacheCompressorOptions, positions: 'absolute' | 'mask' = 'absolute') {
  const kv = new CacheCompressor(o)
  let r = model.forward(ids, ids.map((_, i) => i), null, { logits: 'last' })
  let past = kv.afterPrefillSync(pastFromPresent(present(r.cache, r.logits))).cache
  expect(kv.position).toBe(ids.length)
  const tokens: number[] = [], lengths: number[] = []
  for (let s = 0; s < STEPS; s++) {
    const next = argmax(r.logits)
    tokens.push(next)
    const { position_ids, attention_mask } = kv.nextInputs(1, Tensor)
    const held = past['past_key_values.0.key'].dims[2]
    expect(attention_mask.dims).toEqual([1, held + 1])
    const pos = positions === 'absolute' ? Number((position_ids.data as BigInt64Array)[0]) : attention_mask.dims[1] - 1
    r = model.forward([next], [pos], layers(past, model.config.nLayers), { logits: 'last' })
    past = kv.afterStepSync(pastFromPresent(present(r.cache, r.logits))).cache
    lengths.push(past['past_key_values.0.key'].dims[2])
  }
  return { tokens, lengths, position: kv.position }
}

/** The same loop by hand: compressSync per layer after the prefill and whenever `every` tokens were added. */
function handLoop(model: Llama2Model, ids: number[]) {
  const squeeze = (cache: KvCache, opt: { keepRatio?: number; keep?: number }): KvCache =>
    cache.map((l) => {
      const c = compressSync(l.keys, l.values, opt)
      return { keys: c.keys as KvCache[0]['keys'], values: c.values as KvCache[0]['values'] }
    })
  let r = model.forward(ids, ids.map((_, i) => i), null, { logits: 'last' })
  let cache = squeeze(r.cache, { keepRatio: KEEP_RATIO })
  const target = Math.ceil(KEEP_RATIO * ids.length)
  let pos = ids.length
  const tokens: number[] = []
  for (let s = 0; s < STEPS; s++) {
    const next = argmax(r.logits)
    tokens.push(next)
    r = model.forward([next], [pos++], cache, { logits: 'last' })
    cache = r.cache
    if (cache[0].keys.dims[2] === target + EVERY) cache = squeeze(cache, { keep: target })
  }
  return tokens
}

describe.skipIf(skipReason !== undefined)(suiteName('kvtrim/transformers in a decode loop on TinyStories 260K'), () => {
  it('compressing after prefill and every 8 steps gives exactly the tokens of the loop written by hand', () => {
    const m = testModel()
    const ids = prompt(m)
    const got = helperLoop(m.model, ids, { keepRatio: KEEP_RATIO, decode: { every: EVERY } })
    const target = Math.ceil(KEEP_RATIO * ids.length)
    // compressed to target after the prefill, then back to target at every 8th step
    expect(got.lengths).toEqual(Array.from({ length: STEPS }, (_, s) => target + ((s + 1) % EVERY)))
    expect(got.position).toBe(ids.length + STEPS)
    expect(got.tokens).toEqual(handLoop(m.model, ids))
    // and the text is still a story: a few words, not garbage
    expect(m.tokenizer.decode(got.tokens)).toMatch(/[a-z]+ [a-z]+/)
  })

  it('position_ids from the attention mask (k, k+1, ...) instead of the absolute positions change the output', () => {
    const m = testModel()
    const ids = prompt(m)
    const o = { keepRatio: KEEP_RATIO, decode: { every: EVERY } }
    const right = helperLoop(m.model, ids, o)
    const wrong = helperLoop(m.model, ids, o, 'mask')
    expect(wrong.tokens).not.toEqual(right.tokens)
  })

  it('without compression the loop is the plain greedy decode', () => {
    const m = testModel()
    const ids = prompt(m)
    const got = helperLoop(m.model, ids, {})
    expect(got.lengths[STEPS - 1]).toBe(ids.length + STEPS)
    let r = m.model.forward(ids, ids.map((_, i) => i), null, { logits: 'last' })
    const plain: number[] = []
    for (let s = 0; s < STEPS; s++) {
      plain.push(argmax(r.logits))
      r = m.model.forward([plain[s]], [ids.length + s], r.cache, { logits: 'last' })
    }
    expect(got.tokens).toEqual(plain)
  })
})

/** A synthetic 4-layer cache named `${prefix}.{l}.key/value`, of the Tensor class. */
function synthetic(prefix: string, seq: number, layersCount = 4): Named {
  const out: Named = { logits: new Tensor('float32', new Float32Array(3), [1, 1, 3]) }
  let x = 1
  for (let l = 0; l < layersCount; l++) {
    for (const kind of ['key', 'value']) {
      const data = new Float32Array(2 * seq * 4).map(() => ((x = (x * 16807) % 2147483647) / 2147483647) * 2 - 1)
      out[`${prefix}.${l}.${kind}`] = new Tensor('float32', data, [1, 2, seq, 4])
    }
  }
  return out
}

describe('kvtrim/transformers: CacheCompressor', () => {
  it('returns the cache in its own form: names, Tensor class, other entries kept', () => {
    const kv = new CacheCompressor({ keepRatio: 0.5 })
    const cache = synthetic('present', 10)
    const r = kv.afterPrefillSync(cache)
    expect(r.compressed).toBe(true)
    expect(r.lengths).toEqual([5, 5, 5, 5])
    expect(r.position).toBe(10)
    expect(r.cache.logits).toBe(cache.logits)
    for (let l = 0; l < 4; l++) {
      const k = r.cache[`present.${l}.key`]
      expect(k).toBeInstanceOf(Tensor)
      expect(k.dims).toEqual([1, 2, 5, 4])
      const ref = compressSync(cache[`present.${l}.key`] as TensorLike, cache[`present.${l}.value`] as TensorLike, { keepRatio: 0.5 })
      expect(Array.from(k.data as Float32Array)).toEqual(Array.from(ref.keys.data))
    }
  })

  it('renames present.* to past_key_values.*', () => {
    const out = synthetic('present', 3, 2)
    const past = pastFromPresent(out)
    expect(Object.keys(past).sort()).toEqual(['past_key_values.0.key', 'past_key_values.0.value', 'past_key_values.1.key', 'past_key_values.1.value'])
    expect(past['past_key_values.1.value']).toBe(out['present.1.value'])
    expect(() => pastFromPresent({ logits: out.logits })).toThrow(KvtrimError)
  })

  it('gives position_ids from the absolute position and an attention mask of the cache length + new tokens', () => {
    const kv = new CacheCompressor({ keepRatio: 0.25 })
    kv.afterPrefillSync(synthetic('past_key_values', 16))
    const plain = kv.nextInputs(3)
    expect(plain.position_ids).toEqual({ type: 'int64', data: BigInt64Array.from([16n, 17n, 18n]), dims: [1, 3] })
    expect(plain.attention_mask.dims).toEqual([1, 4 + 3])
    expect(Array.from(plain.attention_mask.data)).toEqual(new Array(7).fill(1n))
    expect(kv.nextInputs(1, Tensor).position_ids).toBeInstanceOf(Tensor)
  })

  it('refuses per-layer budgets that differ between layers where one attention mask serves every layer', () => {
    const refused: CacheCompressorOptions[] = [
      { keepRatio: 0.5, budgets: 'pyramid' },
      { keepRatio: 0.5, budgets: { zigzag: [1, 2, 3, 4] } },
      { budgets: [0.5, 0.5, 0.25, 0.25] },
      { budgets: { keep: [4, 3, 2, 1] } },
      { keepRatio: 0.5, skipLayers: [0] },
    ]
    for (const o of refused) {
      let err: unknown
      try {
        new CacheCompressor(o)
      } catch (e) {
        err = e
      }
      expect(err, JSON.stringify(o)).toBeInstanceOf(KvtrimError)
      expect((err as KvtrimError).code).toBe('INVALID_BUDGETS')
      expect((err as KvtrimError).message).toMatch(/one attention mask serves every layer/)
    }
    // equal per-layer budgets are fine; sharedMask: false lets them differ
    expect(new CacheCompressor({ budgets: [0.5, 0.5, 0.5, 0.5] }).afterPrefillSync(synthetic('present', 8)).lengths).toEqual([4, 4, 4, 4])
    const free = new CacheCompressor({ budgets: { keep: [4, 3, 2, 1] }, sharedMask: false }).afterPrefillSync(synthetic('present', 8))
    expect(free.lengths).toEqual([4, 3, 2, 1])
    // a cache whose layers already differ is refused too
    const ragged = synthetic('present', 8)
    ragged['present.2.key'] = new Tensor('float32', new Float32Array(2 * 5 * 4), [1, 2, 5, 4])
    ragged['present.2.value'] = ragged['present.2.key']
    expect(() => new CacheCompressor({ keepRatio: 0.5 }).afterPrefillSync(ragged)).toThrow(/one attention mask/)
  })

  it('with sharedMask: false, skipped layers stay whole and each layer goes back to its own length after the prefill', () => {
    const kv = new CacheCompressor({ keepRatio: 0.5, skipLayers: [0], sharedMask: false, decode: { every: 2 } })
    expect(kv.afterPrefillSync(synthetic('present', 8)).lengths).toEqual([8, 4, 4, 4])
    const grown = synthetic('present', 6) // layers 1..3 grew by 2; make layer 0 grow by 2 too
    grown['present.0.key'] = new Tensor('float32', new Float32Array(2 * 10 * 4), [1, 2, 10, 4])
    grown['present.0.value'] = grown['present.0.key']
    const r = kv.afterStepSync(grown)
    expect(r.compressed).toBe(true)
    expect(r.lengths).toEqual([10, 4, 4, 4])
    expect(r.position).toBe(10)
    expect(r.cache['present.0.key']).toBe(grown['present.0.key'])
  })

  it('refuses bad options and out-of-order calls', () => {
    expect(() => new CacheCompressor({ keepRatio: 0.5, decode: { every: 0 } })).toThrow(KvtrimError)
    expect(() => new CacheCompressor({ keeRatio: 0.5 } as CacheCompressorOptions)).toThrow(/Unknown option 'keeRatio'/)
    const kv = new CacheCompressor({ keepRatio: 0.5 })
    expect(() => kv.afterStepSync(synthetic('present', 8))).toThrow(/afterPrefill/)
    expect(() => kv.nextInputs()).toThrow(/afterPrefill/)
    kv.afterPrefillSync(synthetic('present', 8))
    expect(() => kv.afterStepSync(synthetic('present', 3))).toThrow(/grown by the same number/)
  })

  it('the async forms give what the sync ones give', async () => {
    const a = new CacheCompressor({ keepRatio: 0.5, decode: { every: 2 } })
    const b = new CacheCompressor({ keepRatio: 0.5, decode: { every: 2 } })
    const ra = await a.afterPrefill(synthetic('present', 12))
    const rb = b.afterPrefillSync(synthetic('present', 12))
    expect(ra.lengths).toEqual(rb.lengths)
    const sa = await a.afterStep(synthetic('present', 8))
    const sb = b.afterStepSync(synthetic('present', 8))
    expect(sa.compressed).toBe(true)
    expect(sa.lengths).toEqual(sb.lengths)
    expect(sa.position).toBe(14)
    expect(Array.from(sa.cache['present.0.key'].data as Float32Array)).toEqual(Array.from(sb.cache['present.0.key'].data as Float32Array))
  })
})

describe('package exports kvtrim/transformers', () => {
  const root = path.join(__dirname, '..')
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'))

  it('maps the subpath to the compiled lib/cache/transformers.ts and keeps main / types', () => {
    expect(pkg.main).toBe('dist/index.js')
    expect(pkg.types).toBe('dist/index.d.ts')
    expect(pkg.exports['.']).toEqual({
      import: { types: './dist/index.d.mts', default: './dist/index.mjs' },
      require: { types: './dist/index.d.ts', default: './dist/index.js' },
    })
    expect(pkg.exports['./transformers']).toEqual({ types: './dist/cache/transformers.d.ts', default: './dist/cache/transformers.js' })
    expect(existsSync(path.join(root, 'lib', 'cache', 'transformers.ts'))).toBe(true)
  })

  it.skipIf(!existsSync(path.join(root, 'dist', 'cache', 'transformers.js')))('resolves by package name (dist/ built)', () => {
    const out = execFileSync(process.execPath, ['-e', "const t = require('kvtrim/transformers'); console.log(typeof t.CacheCompressor, typeof t.pastFromPresent, typeof require('kvtrim').compress)"], { cwd: root, encoding: 'utf8' })
    expect(out.trim()).toBe('function function function')
    const esm = execFileSync(process.execPath, ['--input-type=module', '-e', "const t = await import('kvtrim/transformers'); const k = await import('kvtrim'); console.log(typeof t.CacheCompressor, typeof k.compress)"], { cwd: root, encoding: 'utf8' })
    expect(esm.trim()).toBe('function function')
  })
})
