// kvtrim-eval on an ONNX decoder directory (onnx/model.onnx + config.json, transformers.js names,
// float32 cache) through onnxruntime-node: the perplexity experiments of eval/run.ts; the
// norm-attention diagnostic needs attention weights, which such exports do not give.
//
//   npm run eval -- [dir] [eval/run.ts's options]      (default dir: ./model, the converted test model)
import path from 'node:path'
import { runEval } from '../../eval/experiments'
import { parse, writeOutputs } from '../../eval/run'
import { progressBar } from '../../eval/progress'
import { OnnxDecoder } from './onnx-decoder'

async function main(): Promise<void> {
  const argv = process.argv.slice(2)
  const dir = argv[0] && !argv[0].startsWith('--') ? argv.shift()! : path.join(__dirname, 'model')
  const o = parse([...argv, ...(argv.includes('--out') ? [] : ['--out', path.join(__dirname, 'results')])])
  const decoder = await OnnxDecoder.load(dir)
  const result = await runEval({ ...o, decoder, bos: decoder.bos, modelName: path.relative(process.cwd(), dir) || '.', onProgress: progressBar() })
  writeOutputs(result, o.out)
}

main().catch((err) => {
  console.error(`kvtrim-eval: ${(err as Error).message}`)
  process.exit(1)
})
