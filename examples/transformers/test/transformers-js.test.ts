// The converted model loaded by transformers.js (AutoModelForCausalLM.from_pretrained, offline)
// agrees with the TypeScript forward pass, and a 40-token greedy loop through transformers.js
// with kvtrim/transformers compressing after the prefill and every 8 steps gives exactly the
// tokens of the reference loop: the same model on onnxruntime-node, compressSync by hand. (The
// reference runs on the same runtime because selections can turn on rounding: a layer-0 key's
// norm depends on its token alone, so repeated tokens tie up to rounding, and two runtimes round
// differently. The logits tests compare with the TypeScript forward pass.) Without explicit
// position_ids, transformers.js derives them from the attention mask (k, k+1, ...) and the
// tokens differ: the test expects that mismatch.
import path from 'node:path'
import { AutoModelForCausalLM, env, Tensor, type PreTrainedModel } from '@huggingface/transformers'
import { CacheCompressor, pastFromPresent } from 'kvtrim/transformers'
import { describe, expect, it } from 'vitest'
import { OnnxDecoder } from '../onnx-decoder'
import { argmax, EVERY, KEEP_RATIO, lastRow, maxDiff, PROMPT, referenceLoop, setup, skipReason, STEPS } from './setup'

type Outputs = Record<string, Tensor>
const ids64 = (xs: number[]) => BigInt64Array.from(xs, (x) => BigInt(x))

async function load(dir: string): Promise<PreTrainedModel> {
  env.allowRemoteModels = false
  env.localModelPath = path.dirname(dir) + path.sep
  return AutoModelForCausalLM.from_pretrained(path.basename(dir), { dtype: 'fp32', device: 'cpu' })
}

/** The loop a user writes: transformers.js forward calls, CacheCompressor between them. */
async function loop(model: PreTrainedModel, ids: number[], explicitPositions: boolean): Promise<{ tokens: number[]; lengths: number[] }> {
  const kv = new CacheCompressor({ keepRatio: KEEP_RATIO, decode: { every: EVERY } })
  const S = ids.length
  let out = (await model({
    input_ids: new Tensor('int64', ids64(ids), [1, S]),
    attention_mask: new Tensor('int64', new BigInt64Array(S).fill(1n), [1, S]),
    position_ids: new Tensor('int64', ids64(ids.map((_, i) => i)), [1, S]),
  })) as Outputs
  let past = (await kv.afterPrefill(pastFromPresent(out))).cache
  const tokens: number[] = [], lengths: number[] = []
  for (let s = 0; s < STEPS; s++) {
    tokens.push(argmax(lastRow(out.logits)))
    const { position_ids, attention_mask } = kv.nextInputs(1, Tensor)
    const inputs: Record<string, unknown> = { input_ids: new Tensor('int64', ids64([tokens[s]]), [1, 1]), attention_mask, past_key_values: past }
    if (explicitPositions) inputs.position_ids = position_ids
    out = (await model(inputs)) as Outputs
    const r = await kv.afterStep(pastFromPresent(out))
    past = r.cache
    lengths.push(r.lengths[0])
  }
  return { tokens, lengths }
}

describe.skipIf(skipReason !== undefined)(`transformers.js with kvtrim/transformers${skipReason ? ` (${skipReason})` : ''}`, () => {
  it('loads offline and agrees with the TypeScript forward pass within 1e-4, also over a compressed cache', async () => {
    const { model: ref, tokenizer, dir } = setup()
    const model = await load(dir)
    const ids = tokenizer.encode(PROMPT)
    const out = (await model({
      input_ids: new Tensor('int64', ids64(ids), [1, ids.length]),
      attention_mask: new Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]),
      position_ids: new Tensor('int64', ids64(ids.map((_, i) => i)), [1, ids.length]),
    })) as Outputs
    expect(out.logits.dims).toEqual([1, ids.length, 512])
    expect(maxDiff(out.logits.data as Float32Array, ref.forward(ids, ids.map((_, i) => i), null).logits)).toBeLessThan(1e-4)
    expect(out['present.0.key']).toBeInstanceOf(Tensor)
    // compressed by kvtrim, then two tokens at the absolute positions S, S + 1
    const S = ids.length
    const kv = new CacheCompressor({ keepRatio: 0.5 })
    const { cache: past } = kv.afterPrefillSync(pastFromPresent(out))
    const { position_ids, attention_mask } = kv.nextInputs(2, Tensor)
    const next = (await model({ input_ids: new Tensor('int64', ids64([400, 261]), [1, 2]), attention_mask, position_ids, past_key_values: past })) as Outputs
    const layers = Array.from({ length: 5 }, (_, l) => ({
      keys: { type: 'float32' as const, data: past[`past_key_values.${l}.key`].data as Float32Array, dims: past[`past_key_values.${l}.key`].dims },
      values: { type: 'float32' as const, data: past[`past_key_values.${l}.value`].data as Float32Array, dims: past[`past_key_values.${l}.value`].dims },
    }))
    expect(layers[0].keys.dims[2]).toBe(Math.ceil(S / 2))
    expect(maxDiff(next.logits.data as Float32Array, ref.forward([400, 261], [S, S + 1], layers).logits)).toBeLessThan(1e-4)
  })

  it('a 40-token loop compressing after prefill and every 8 steps gives exactly the reference tokens', async () => {
    const { tokenizer, dir } = setup()
    const model = await load(dir)
    const ids = tokenizer.encode(PROMPT)
    const got = await loop(model, ids, true)
    const target = Math.ceil(KEEP_RATIO * ids.length)
    expect(got.lengths).toEqual(Array.from({ length: STEPS }, (_, s) => target + ((s + 1) % EVERY)))
    expect(got.tokens).toEqual(await referenceLoop(await OnnxDecoder.load(dir), ids))
  })

  it('without explicit position_ids (derived from the mask: k, k+1, ...) the tokens differ', async () => {
    const { tokenizer, dir } = setup()
    const model = await load(dir)
    const ids = tokenizer.encode(PROMPT)
    const got = await loop(model, ids, false)
    expect(got.tokens).not.toEqual(await referenceLoop(await OnnxDecoder.load(dir), ids))
  })
})
