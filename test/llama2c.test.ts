// The TypeScript forward pass of a llama2.c checkpoint and its tokenizer, on the real test model:
// greedy decoding gives the continuation llama2.c's run.c gives; the explicit KV cache is
// exact (one chunk = token by token; a cache put through kvtrim keeping everything changes
// nothing); positions matter; the tokenizer round-trips, with byte fallback.
import { describe, expect, it } from 'vitest'
import { argmax, logProb, type KvCache } from '../eval/llama2c'
import { BOS } from '../eval/tokenizer'
import { compressCacheSync } from '../lib/index'
import { skipReason, suiteName, testModel } from './model'

const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i)

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length)
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]))
  return m
}

describe.skipIf(skipReason !== undefined)(suiteName('llama2.c forward pass on TinyStories 260K'), () => {
  it('reads the checkpoint header', () => {
    const { model } = testModel()
    expect(model.config).toEqual({ dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 512, headDim: 8, sharedClassifier: true })
  })

  it('greedy decoding from BOS + "Once upon a time" gives the documented continuation', () => {
    const { model, tokenizer } = testModel()
    const ids = tokenizer.encode('Once upon a time')
    expect(ids[0]).toBe(BOS)
    let r = model.forward(ids, range(0, ids.length), null, { logits: 'last' })
    const out = [...ids]
    for (let i = 0; i < 12; i++) {
      out.push(argmax(r.logits))
      r = model.forward([out[out.length - 1]], [out.length - 1], r.cache, { logits: 'last' })
    }
    expect(tokenizer.decode(out)).toMatch(/^Once upon a time, there was a little girl named Lily\./)
    // the cache is kvtrim's layout: [1, kvHeads, seq, headDim] float32 per layer
    expect(r.cache).toHaveLength(5)
    expect(r.cache[0].keys.dims).toEqual([1, 4, out.length, 8])
  })

  it('one chunk and token-by-token decoding through the cache agree', () => {
    const { model, tokenizer } = testModel()
    const ids = tokenizer.encode('Lily and Ben went to the park to play with a ball.')
    const whole = model.forward(ids, range(0, ids.length), null)
    let cache: KvCache | null = null
    ids.forEach((tok, t) => {
      const r = model.forward([tok], [t], cache)
      cache = r.cache
      expect(maxDiff(r.logits, whole.logits.subarray(t * 512, (t + 1) * 512))).toBeLessThan(1e-4)
    })
    whole.cache.forEach((l, i) => expect(maxDiff(l.keys.data, cache![i].keys.data)).toBeLessThan(1e-5))
  })

  it('attention rows are distributions over the cached and earlier tokens', () => {
    const { model, tokenizer } = testModel()
    const ids = tokenizer.encode('The cat sat.')
    const r = model.forward(ids, range(0, ids.length), null, { attention: true })
    const T = ids.length
    for (const att of r.attention!) {
      for (let row = 0; row < 8 * T; row++) {
        const t = row % T
        const a = att.subarray(row * T, (row + 1) * T)
        expect(a.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 5)
        for (let j = t + 1; j < T; j++) expect(a[j]).toBe(0) // causal
      }
    }
  })

  it('a cache compressed by kvtrim keeping every token continues exactly; a halved one continues at the right positions', () => {
    const { model, tokenizer } = testModel()
    const ids = tokenizer.encode('One day, a little dog found a red ball in the garden.')
    const S = ids.length
    const pre = model.forward(ids, range(0, S), null)
    const next = 400 // any token
    const full = model.forward([next], [S], pre.cache)
    const kept = compressCacheSync(pre.cache, { keepRatio: 1 }).layers as KvCache
    expect(maxDiff(model.forward([next], [S], kept).logits, full.logits)).toBe(0)
    const half = compressCacheSync(pre.cache, { keepRatio: 0.5 }).layers as KvCache
    expect(half[0].keys.dims[2]).toBe(Math.ceil(S / 2))
    const right = model.forward([next], [S], half)
    const wrong = model.forward([next], [half[0].keys.dims[2]], half)
    expect(right.logits.every(Number.isFinite)).toBe(true)
    expect(maxDiff(right.logits, wrong.logits)).toBeGreaterThan(1e-3)
  })

  it('log probabilities are normalised', () => {
    const { model } = testModel()
    const r = model.forward([BOS], [0], null)
    let total = 0
    for (let v = 0; v < 512; v++) total += Math.exp(logProb(r.logits, 512, 0, v))
    expect(total).toBeCloseTo(1, 9)
  })
})

describe.skipIf(skipReason !== undefined)(suiteName('llama2.c tokenizer (tok512)'), () => {
  it('encodes with merges and decodes back', () => {
    const { tokenizer } = testModel()
    for (const text of ['Once upon a time', 'Tom said, "Look at the big tree!"', 'a\nb  c']) {
      const ids = tokenizer.encode(text)
      expect(tokenizer.decode(ids)).toBe(text)
      expect(ids.length).toBeLessThan(text.length + 2) // merges happened
    }
  })

  it('merges by the highest score first, as run.c', () => {
    const { tokenizer } = testModel()
    // every adjacent pair of the result must not merge into a piece that exists... unless it was
    // outscored: check that no pair of neighbours forms a vocabulary piece at all
    const ids = tokenizer.encode('Once upon a time there was a girl')
    const pieces = new Set(tokenizer.vocab.map((p) => Buffer.from(p).toString('latin1')))
    for (let i = 1; i + 1 < ids.length; i++) {
      const pair = Buffer.concat([tokenizer.vocab[ids[i]], tokenizer.vocab[ids[i + 1]]]).toString('latin1')
      expect(pieces.has(pair)).toBe(false)
    }
  })

  it('falls back to bytes + 3 for characters outside the vocabulary', () => {
    const { tokenizer } = testModel()
    const ids = tokenizer.encode('中', false) // not a piece of tok512
    expect(ids.slice(1)).toEqual([...Buffer.from('中', 'utf8')].map((b) => b + 3))
    expect(Buffer.from(tokenizer.vocab[ids[0]]).toString()).toBe(' ') // run.c's dummy-prefix space
    expect(tokenizer.decode(ids)).toBe('中') // the space after BOS is not printed
  })
})
