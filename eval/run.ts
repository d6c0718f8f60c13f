// kvtrim-eval: the L2-norm paper's experiments on a llama2.c model (the TinyStories test model by
// default) through the TypeScript forward pass. Writes a table on the terminal, eval.json and
// eval.svg.
//
//   npm run eval                                   # the test model, defaults below
//   npm run eval -- --stories 2 --ratios 0.5,0.25  # smaller
//   npm run eval -- --model-dir DIR --checkpoint model.bin --tokenizer tokenizer.bin --out DIR
//
// Options: --stories N (8) --prefill N (256) --continuation N (128) --seed N (1234)
// --ratios a,b,... (0.9,0.75,0.5,0.25,0.1) --policies p,q (all) --every N,M (1,8; '' to skip the
// decode-time variant) --prune-after N (0) --skip-layers l,m (none) --passkey-trials N (4; 0 skips
// passkey retrieval) --passkey-tokens N (480, the prompt length) --out DIR (eval/results)
// --text-from eval.json (reuse a previous run's evaluation text, its text.tokens, instead of sampling).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { runEval, type EvalOptions } from './experiments'
import { Llama2Model } from './llama2c'
import { Tokenizer } from './tokenizer'
import { CHECKPOINT, TOKENIZER, modelDir, repoRoot } from './model-dir'
import { POLICIES, type Policy } from './policies'
import { progressBar } from './progress'
import { chart, table } from './report'

const list = (s: string): number[] => (s.trim() === '' ? [] : s.split(',').map(Number))

export type CliOptions = Omit<EvalOptions, 'decoder' | 'modelName' | 'passkey'> & { checkpoint: string; tokenizer: string; out: string; passkeyTrials: number; passkeyTokens: number }

export function parse(argv: string[]): CliOptions {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      'model-dir': { type: 'string' }, checkpoint: { type: 'string', default: CHECKPOINT }, tokenizer: { type: 'string', default: TOKENIZER },
      stories: { type: 'string', default: '8' }, prefill: { type: 'string', default: '256' }, continuation: { type: 'string', default: '128' },
      seed: { type: 'string', default: '1234' }, ratios: { type: 'string', default: '0.9,0.75,0.5,0.25,0.1' }, policies: { type: 'string', default: POLICIES.join(',') },
      every: { type: 'string', default: '1,8' }, 'passkey-trials': { type: 'string', default: '4' }, 'passkey-tokens': { type: 'string', default: '480' }, 'prune-after': { type: 'string', default: '0' }, 'skip-layers': { type: 'string', default: '' },
      out: { type: 'string', default: path.join(repoRoot, 'eval', 'results') }, 'text-from': { type: 'string' },
    },
  })
  const dir = v['model-dir'] ?? modelDir()
  const policies = v.policies!.split(',').filter(Boolean) as Policy[]
  for (const p of policies) if (!POLICIES.includes(p)) throw new Error(`unknown policy '${p}'; known: ${POLICIES.join(', ')}`)
  const o = {
    checkpoint: path.resolve(dir, v.checkpoint!), tokenizer: path.resolve(dir, v.tokenizer!),
    stories: Number(v.stories), prefill: Number(v.prefill), continuation: Number(v.continuation), seed: Number(v.seed),
    ratios: list(v.ratios!), policies, every: list(v.every!), pruneAfter: Number(v['prune-after']), skipLayers: list(v['skip-layers']!), out: v.out!,
    passkeyTrials: Number(v['passkey-trials']), passkeyTokens: Number(v['passkey-tokens']),
    ...(v['text-from'] !== undefined && { texts: { tokens: JSON.parse(readFileSync(v['text-from'], 'utf8')).text?.tokens ?? [], source: v['text-from'] } as EvalOptions['texts'] }),
  }
  for (const [k, x] of Object.entries({ stories: o.stories, prefill: o.prefill, continuation: o.continuation, seed: o.seed, 'prune-after': o.pruneAfter, 'passkey-trials': o.passkeyTrials, 'passkey-tokens': o.passkeyTokens })) {
    if (!Number.isSafeInteger(x) || x < 0) throw new Error(`--${k} expects a non-negative integer`)
  }
  if (o.stories < 1) throw new Error('--stories expects at least 1')
  if (!o.ratios.length || o.ratios.some((r) => !(r > 0 && r <= 1))) throw new Error('--ratios expects numbers in (0, 1]')
  if (o.every.some((e) => !Number.isSafeInteger(e) || e < 1)) throw new Error('--every expects positive integers')
  return o
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2))
  const decoder = Llama2Model.load(o.checkpoint)
  const tokenizer = Tokenizer.load(o.tokenizer, decoder.config.vocabSize)
  const codec = { encode: (s: string) => tokenizer.encode(s), decode: (t: number[]) => tokenizer.decode(t) }
  const result = await runEval({
    ...o, decoder, modelName: path.relative(process.cwd(), o.checkpoint), detokenize: codec.decode, onProgress: progressBar(),
    passkey: { codec, trials: o.passkeyTrials, contextTokens: o.passkeyTokens },
  })
  writeOutputs(result, o.out)
}

/** Writes eval.json and eval.svg into `out` and prints the table. */
export function writeOutputs(result: Awaited<ReturnType<typeof runEval>>, out: string): void {
  mkdirSync(out, { recursive: true })
  // arrays of numbers on one line each (the text's token ids would take thousands of lines)
  const json = JSON.stringify(result, null, 2).replace(/\[\s+(-?[\d.e+-]+(?:,\s+-?[\d.e+-]+)*)\s+\]/g, (_, inner: string) => `[${inner.split(/,\s+/).join(', ')}]`)
  writeFileSync(path.join(out, 'eval.json'), json + '\n')
  writeFileSync(path.join(out, 'eval.svg'), chart(result))
  console.log(table(result))
  console.log(`\nwrote ${path.join(out, 'eval.json')} and ${path.join(out, 'eval.svg')}`)
}

if (require.main === module) {
  main().catch((err) => {
    console.error(`kvtrim-eval: ${(err as Error).message}`)
    process.exit(1)
  })
}
