// Shared by the example's suites: the test model (skipped with a message when absent), the ONNX
// export converted once into a temporary directory, and the TypeScript reference forward pass.
import { mkdtempSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Decoder } from '../../../eval/decoder'
import { argmax, Llama2Model, type KvCache } from '../../../eval/llama2c'
import { findModel } from '../../../eval/model-dir'
import { Tokenizer } from '../../../eval/tokenizer'
import { compressSync } from '../../../lib/index'
import { convert } from '../convert'

const found = findModel()
export const skipReason: string | undefined = 'missing' in found ? `skipped: ${found.missing}` : undefined
if (skipReason && process.env.KVTRIM_REQUIRE_MODEL === '1') throw new Error(`KVTRIM_REQUIRE_MODEL=1 but ${skipReason}`)
if (skipReason) console.warn(skipReason)

let cached: { model: Llama2Model; tokenizer: Tokenizer; dir: string } | undefined
/** The reference model, its tokenizer, and a directory holding the converted ONNX model + config.json. */
export function setup(): { model: Llama2Model; tokenizer: Tokenizer; dir: string } {
  if ('missing' in found) throw new Error(found.missing)
  if (!cached) {
    const model = Llama2Model.load(found.checkpoint)
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kvtrim-onnx-'))
    convert(found.checkpoint, dir)
    cached = { model, tokenizer: Tokenizer.load(found.tokenizer, model.config.vocabSize), dir }
  }
  return cached
}

export const PROMPT = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her dog.'
export const STEPS = 40, EVERY = 8, KEEP_RATIO = 0.5

export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`)
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]))
  return m
}

/**
 * The reference loop: a decoder's forward pass (the TypeScript one, or onnxruntime-node through
 * OnnxDecoder), compressSync by hand after the prefill and whenever EVERY tokens were added.
 */
export async function referenceLoop(model: Decoder, ids: number[]): Promise<number[]> {
  const squeeze = (cache: KvCache, opt: { keepRatio?: number; keep?: number }): KvCache =>
    cache.map((l) => {
      const c = compressSync(l.keys, l.values, opt)
      return { keys: c.keys as KvCache[0]['keys'], values: c.values as KvCache[0]['values'] }
    })
  let r = await model.forward(ids, ids.map((_, i) => i), null, { logits: 'last' })
  let cache = squeeze(r.cache, { keepRatio: KEEP_RATIO })
  const target = Math.ceil(KEEP_RATIO * ids.length)
  let pos = ids.length
  const tokens: number[] = []
  for (let s = 0; s < STEPS; s++) {
    tokens.push(argmax(r.logits))
    r = await model.forward([tokens[s]], [pos++], cache, { logits: 'last' })
    cache = r.cache
    if (cache[0].keys.dims[2] === target + EVERY) cache = squeeze(cache, { keep: target })
  }
  return tokens
}

export const lastRow = (logits: { data: unknown; dims: readonly number[] }): Float32Array => {
  const d = logits.data as Float32Array, V = logits.dims[logits.dims.length - 1]
  return d.subarray(d.length - V)
}
export { argmax }
