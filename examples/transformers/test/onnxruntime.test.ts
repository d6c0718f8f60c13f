// The converted ONNX decoder run by onnxruntime-node agrees with the TypeScript forward pass
// (logits within 1e-4) on a prefill, and on a decode step over a cache compressed by kvtrim at
// the absolute position; greedy decoding gives the documented continuation.
import * as ort from 'onnxruntime-node'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { compressCacheSync } from '../../../lib/index'
import type { KvCache } from '../../../eval/llama2c'
import { argmax, lastRow, maxDiff, PROMPT, setup, skipReason } from './setup'

const ids64 = (xs: number[]) => BigInt64Array.from(xs, (x) => BigInt(x))
const feeds = (tokens: number[], positions: number[], cache: KvCache | null, nLayers: number, maskLength?: number) => {
  const past = cache?.[0].keys.dims[2] ?? 0
  const f: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', ids64(tokens), [1, tokens.length]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(maskLength ?? past + tokens.length).fill(1n), [1, maskLength ?? past + tokens.length]),
    position_ids: new ort.Tensor('int64', ids64(positions), [1, positions.length]),
  }
  for (let l = 0; l < nLayers; l++) {
    f[`past_key_values.${l}.key`] = cache ? new ort.Tensor('float32', cache[l].keys.data, cache[l].keys.dims) : new ort.Tensor('float32', new Float32Array(0), [1, 4, 0, 8])
    f[`past_key_values.${l}.value`] = cache ? new ort.Tensor('float32', cache[l].values.data, cache[l].values.dims) : new ort.Tensor('float32', new Float32Array(0), [1, 4, 0, 8])
  }
  return f
}
const toCache = (out: ort.InferenceSession.OnnxValueMapType, n: number): KvCache =>
  Array.from({ length: n }, (_, l) => ({
    keys: { type: 'float32', data: out[`present.${l}.key`].data as Float32Array, dims: [...out[`present.${l}.key`].dims] },
    values: { type: 'float32', data: out[`present.${l}.value`].data as Float32Array, dims: [...out[`present.${l}.value`].dims] },
  }))

describe.skipIf(skipReason !== undefined)(`ONNX export in onnxruntime-node${skipReason ? ` (${skipReason})` : ''}`, () => {
  it('has transformers.js input and output names', async () => {
    const { dir } = setup()
    const s = await ort.InferenceSession.create(path.join(dir, 'onnx', 'model.onnx'))
    expect(s.inputNames.slice(0, 3)).toEqual(['input_ids', 'attention_mask', 'position_ids'])
    expect(s.inputNames).toContain('past_key_values.4.value')
    expect(s.outputNames).toEqual(['logits', ...Array.from({ length: 5 }, (_, l) => [`present.${l}.key`, `present.${l}.value`]).flat()])
  })

  it('agrees with the TypeScript forward pass within 1e-4, with and without a compressed cache', async () => {
    const { model, tokenizer, dir } = setup()
    const s = await ort.InferenceSession.create(path.join(dir, 'onnx', 'model.onnx'))
    const ids = tokenizer.encode(PROMPT)
    const S = ids.length, pos = ids.map((_, i) => i)
    const ref = model.forward(ids, pos, null)
    const out = await s.run(feeds(ids, pos, null, 5))
    expect(maxDiff(out.logits.data as Float32Array, ref.logits)).toBeLessThan(1e-4)
    const cache = toCache(out, 5)
    cache.forEach((l, i) => expect(maxDiff(l.keys.data, ref.cache[i].keys.data)).toBeLessThan(1e-4))
    // compress the ONNX cache with kvtrim and continue at the absolute position S, two tokens at once
    const half = compressCacheSync(cache, { keepRatio: 0.5 }).layers as KvCache
    expect(half[0].keys.dims[2]).toBe(Math.ceil(S / 2))
    const next = [400, 261]
    const r2 = model.forward(next, [S, S + 1], half)
    const o2 = await s.run(feeds(next, [S, S + 1], half, 5))
    expect(maxDiff(o2.logits.data as Float32Array, r2.logits)).toBeLessThan(1e-4)
    // positions k, k+1 (what the attention mask implies) give other logits
    const k = half[0].keys.dims[2]
    const wrong = await s.run(feeds(next, [k, k + 1], half, 5))
    expect(maxDiff(wrong.logits.data as Float32Array, r2.logits)).toBeGreaterThan(1e-2)
    // a padded (masked) cache row changes the result; masking none does not
    const masked = await s.run({ ...feeds(next, [S, S + 1], half, 5), attention_mask: new ort.Tensor('int64', BigInt64Array.from([0n, ...new Array(k + 1).fill(1n)]), [1, k + 2]) })
    expect(maxDiff(masked.logits.data as Float32Array, r2.logits)).toBeGreaterThan(1e-3)
  })

  it('greedy decoding gives the documented continuation', async () => {
    const { tokenizer, dir } = setup()
    const s = await ort.InferenceSession.create(path.join(dir, 'onnx', 'model.onnx'))
    const ids = tokenizer.encode('Once upon a time')
    let out = await s.run(feeds(ids, ids.map((_, i) => i), null, 5))
    const all = [...ids]
    for (let i = 0; i < 12; i++) {
      all.push(argmax(lastRow(out.logits)))
      out = await s.run(feeds([all[all.length - 1]], [all.length - 1], toCache(out, 5), 5))
    }
    expect(tokenizer.decode(all)).toMatch(/^Once upon a time, there was a little girl named Lily\./)
  })
})
