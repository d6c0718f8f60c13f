// kvtrim-eval on an ONNX decoder directory (onnx/model.onnx + config.json, transformers.js names,
// float32 cache) through onnxruntime-node: the perplexity experiments of eval/run.ts, and passkey
// retrieval where a llama2.c tokenizer is at --tokenizer; the norm-attention diagnostic needs
// attention weights, which such exports do not give.
//
//   npm run eval -- [dir] [eval/run.ts's options]      (default dir: ./model, the converted test model)
import { existsSync } from 'node:fs'
import path from 'node:path'
import { runEval } from '../../eval/experiments'
import { parse, writeOutputs } from '../../eval/run'
import { progressBar } from '../../eval/progress'
import { Tokenizer } from '../../eval/tokenizer'
import { OnnxDecoder } from './onnx-decoder'

async function main(): Promise<void> {
  const argv = process.argv.slice(2)
  const dir = argv[0] && !argv[0].startsWith('--') ? argv.shift()! : path.join(__dirname, 'model')
  const o = parse([...argv, ...(argv.includes('--out') ? [] : ['--out', path.join(__dirname, 'results')])])
  const decoder = await OnnxDecoder.load(dir)
  // a llama2.c tokenizer (--tokenizer, default the test model's) gives the text sample and passkey retrieval
  const tok = existsSync(o.tokenizer) ? Tokenizer.load(o.tokenizer, decoder.config.vocabSize) : undefined
  const codec = tok && { encode: (s: string) => tok.encode(s), decode: (t: number[]) => tok.decode(t) }
  const result = await runEval({
    ...o, decoder, bos: decoder.bos, modelName: path.relative(process.cwd(), dir) || '.', onProgress: progressBar(),
    ...(codec && { detokenize: codec.decode, passkey: { codec, trials: o.passkeyTrials, contextTokens: o.passkeyTokens } }),
  })
  writeOutputs(result, o.out)
}

main().catch((err) => {
  console.error(`kvtrim-eval: ${(err as Error).message}`)
  process.exit(1)
})
