// A generation loop on the real model through transformers.js, with kvtrim compressing the cache
// after the prefill and every few tokens while decoding. Prints the text, the cache size per
// step and the time kvtrim took.
//
//   npm install && npm run generate -- [prompt] [--keep 0.5] [--every 8] [--steps 80]
//
// The model: the llama2.c test model (KVTRIM_MODEL_DIR or ../../../shared/models), converted to
// ONNX into ./model on first use (npm run convert does it alone).
import { existsSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { AutoModelForCausalLM, env, Tensor } from '@huggingface/transformers'
import { CacheCompressor, pastFromPresent } from 'kvtrim/transformers'
import { Tokenizer } from '../../eval/tokenizer'
import { convert } from './convert'

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { keep: { type: 'string', default: '0.5' }, every: { type: 'string', default: '8' }, steps: { type: 'string', default: '80' } },
  })
  const prompt = positionals[0] ?? 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her dog. One day,'
  const keepRatio = Number(values.keep), every = Number(values.every), steps = Number(values.steps)
  const modelDir = process.env.KVTRIM_MODEL_DIR ?? path.join(__dirname, '..', '..', '..', 'shared', 'models')
  const out = path.join(__dirname, 'model')
  if (!existsSync(path.join(out, 'onnx', 'model.onnx'))) convert(path.join(modelDir, 'stories260K.bin'), out)
  const tokenizer = Tokenizer.load(path.join(modelDir, 'tok512.bin'), 512)

  env.allowRemoteModels = false
  env.localModelPath = __dirname + path.sep
  const model = await AutoModelForCausalLM.from_pretrained('model', { dtype: 'fp32', device: 'cpu' })

  const ids = tokenizer.encode(prompt)
  const i64 = (xs: number[]) => new Tensor('int64', BigInt64Array.from(xs, (x) => BigInt(x)), [1, xs.length])
  const kv = new CacheCompressor({ keepRatio, decode: { every }, sink: 4, recent: 8 })
  let kvtrimMs = 0
  const timed = async <T>(f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now()
    try {
      return await f()
    } finally {
      kvtrimMs += performance.now() - t0
    }
  }
  let outputs = (await model({ input_ids: i64(ids), attention_mask: i64(ids.map(() => 1)), position_ids: i64(ids.map((_, i) => i)) })) as Record<string, Tensor>
  const pre = await timed(() => kv.afterPrefill(pastFromPresent(outputs)))
  let past = pre.cache
  console.log(`prompt: ${ids.length} tokens; cache after prefill compression (keep ${keepRatio}): ${pre.lengths[0]} tokens per layer`)
  const tokens: number[] = []
  const line: string[] = []
  for (let s = 0; s < steps; s++) {
    const logits = outputs.logits.data as Float32Array
    const last = logits.subarray(logits.length - 512)
    let next = 0
    for (let v = 1; v < 512; v++) if (last[v] > last[next]) next = v
    if (next === 2) break // EOS
    tokens.push(next)
    const { position_ids, attention_mask } = kv.nextInputs(1, Tensor) // absolute positions, mask of the cache's length + 1
    outputs = (await model({ input_ids: i64([next]), attention_mask, position_ids, past_key_values: past })) as Record<string, Tensor>
    const r = await timed(() => kv.afterStep(pastFromPresent(outputs)))
    past = r.cache
    line.push(`${r.lengths[0]}${r.compressed ? '*' : ''}`)
  }
  console.log(`\n${tokenizer.decode([...ids, ...tokens])}\n`)
  console.log(`cache tokens per layer after each step (* = compressed back to ${pre.lengths[0]} by kvtrim):\n${line.join(' ')}`)
  console.log(`\n${tokens.length} tokens generated; next position ${kv.position}; kvtrim took ${kvtrimMs.toFixed(1)} ms in all`)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
