// kvtrim-eval's experiments through onnxruntime-node (OnnxDecoder) on the TypeScript run's text
// (--text-from) give its numbers: the same baseline, and the same perplexity for
// the policies that do not rank by norm (norm ranking can differ where norms tie: layer 0's
// key norm depends on the token alone, since RoPE preserves norms, so repeated tokens tie up to
// rounding, and the two runtimes round differently).
import { describe, expect, it } from 'vitest'
import { runEval, type EvalOptions } from '../../../eval/experiments'
import { OnnxDecoder } from '../onnx-decoder'
import { setup, skipReason } from './setup'

describe.skipIf(skipReason !== undefined)(`kvtrim-eval on the ONNX export${skipReason ? ` (${skipReason})` : ''}`, () => {
  it('matches the TypeScript forward pass', async () => {
    const { model, dir } = setup()
    const onnx = await OnnxDecoder.load(dir)
    const base: Omit<EvalOptions, 'decoder'> = {
      modelName: 'test', stories: 2, prefill: 48, continuation: 12, seed: 3, ratios: [0.5, 0.25], policies: ['recent', 'sink+recent', 'random'], every: [4], pruneAfter: 0, skipLayers: [],
    }
    const a = await runEval({ ...base, decoder: model })
    const b = await runEval({ ...base, decoder: onnx, texts: { tokens: a.text.tokens, source: 'the TypeScript run' } })
    expect(b.text.tokens).toEqual(a.text.tokens)
    expect(Math.abs(b.baseline - a.baseline) / a.baseline).toBeLessThan(1e-5)
    a.prefill.concat(a.decode as never[]).forEach((row, i) => {
      const other = b.prefill.concat(b.decode as never[])[i]
      expect(Math.abs(other.perplexity - row.perplexity) / row.perplexity, `${row.policy} ${row.keepRatio}`).toBeLessThan(1e-5)
    })
    expect(a.correlation).not.toBeNull()
    expect(b.correlation).toBeNull() // no attention weights from the export
    await expect(runEval({ ...base, decoder: onnx, skipLayers: [0] })).rejects.toThrow(/one attention mask/)
  })
})
