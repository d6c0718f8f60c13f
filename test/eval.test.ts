// kvtrim-eval on the real test model, small: keeping every token reproduces the uncompressed
// perplexity for every policy; the baseline equals a token-by-token computation done here; the
// decode-time variant stays within its budget; the CLI writes the table, JSON and SVG.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { runEval, type EvalOptions, type EvalResult } from '../eval/experiments'
import { logProb } from '../eval/llama2c'
import { findModel } from '../eval/model-dir'
import { POLICIES } from '../eval/policies'
import { chart, table } from '../eval/report'
import { passkey, passkeyPrompt } from '../eval/passkey'
import { sampleStories } from '../eval/text'
import { skipReason, suiteName, testModel } from './model'

describe.skipIf(skipReason !== undefined)(suiteName('kvtrim-eval on TinyStories 260K'), () => {
  let r: EvalResult
  beforeAll(async () => {
    const files = findModel() as { checkpoint: string; tokenizer: string }
    const o: EvalOptions = {
      decoder: testModel().model, modelName: files.checkpoint, stories: 2, prefill: 32, continuation: 8, seed: 7, ratios: [1, 0.5], policies: [...POLICIES], every: [4], pruneAfter: 0, skipLayers: [],
    }
    r = await runEval(o)
  })

  it('keeping every token gives the uncompressed perplexity for every policy', () => {
    for (const p of POLICIES) expect(r.prefill.find((x) => x.policy === p && x.keepRatio === 1)!.perplexity, p).toBe(r.baseline)
    expect(r.prefill.find((x) => x.policy === 'low-norm' && x.keepRatio === 0.5)!.kept).toBe(16)
  })

  it('the baseline is exp(mean NLL) of the continuation, computed here token by token', async () => {
    const { model } = testModel()
    const stories = await sampleStories(model, 2, 41, 7)
    let nll = 0
    for (const s of stories) {
      let res = model.forward(s.slice(0, 33), Array.from({ length: 33 }, (_, i) => i), null, { logits: 'last' })
      for (let i = 0; i < 8; i++) {
        nll -= logProb(res.logits, 512, 0, s[33 + i])
        res = model.forward([s[33 + i]], [33 + i], res.cache, { logits: 'last' })
      }
    }
    expect(r.baseline).toBeCloseTo(Math.exp(nll / 16), 4)
  })

  it('the decode-time variant holds at most target + every - 1 tokens after a step', () => {
    expect(r.decode.length).toBe(5 * 2) // random has no decode-time form
    for (const d of r.decode) expect(d.maxCache, `${d.policy} ${d.keepRatio}`).toBe(d.target + 3)
  })

  it('reports the correlation per layer and KV head, and renders table and chart', () => {
    expect(r.correlation!.perHead).toHaveLength(5)
    for (const row of r.correlation!.perHead) for (const x of row) expect(Math.abs(x)).toBeLessThanOrEqual(1)
    const svg = chart(r)
    expect(svg.startsWith('<svg')).toBe(true)
    expect(svg.match(/<polyline/g)).toHaveLength(POLICIES.length + 5)
    for (const p of POLICIES) expect(table(r)).toContain(p)
  })

  it('the CLI writes eval.json and eval.svg', () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'kvtrim-eval-'))
    const root = path.join(__dirname, '..')
    const stdout = execFileSync(process.execPath, ['--import', 'tsx', 'eval/run.ts', '--stories', '1', '--prefill', '16', '--continuation', '4', '--ratios', '0.5', '--every', '2', '--policies', 'low-norm,random', '--passkey-trials', '1', '--passkey-tokens', '220', '--out', out], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    expect(stdout).toMatch(/low-norm/)
    expect(existsSync(path.join(out, 'eval.svg'))).toBe(true)
    const json = JSON.parse(readFileSync(path.join(out, 'eval.json'), 'utf8'))
    expect(json.prefill.map((x: { policy: string }) => x.policy)).toEqual(['low-norm', 'random'])
    expect(json.passkey.trials).toBe(1)
    expect(json.text.tokens[0]).toHaveLength(16 + 4 + 1)
  })

  it('passkey retrieval hides the key in the prompt and scores each policy; this model scores 0 even uncompressed', async () => {
    const { model, tokenizer } = testModel()
    const codec = { encode: (t: string) => tokenizer.encode(t), decode: (t: number[]) => tokenizer.decode(t) }
    const ids = passkeyPrompt(codec, '12345', 0.5, 300)
    expect(ids.length).toBeLessThanOrEqual(300)
    expect(ids.length).toBeGreaterThan(250)
    const text = tokenizer.decode(ids)
    expect(text).toMatch(/The grass is green\..*The pass key is 12345\..*The grass is green\..*What is the pass key\? The pass key is$/s)
    const r = await passkey(model, codec, { trials: 1, contextTokens: 220, seed: 1, ratios: [0.5], policies: ['low-norm', 'recent'] })
    expect(r.rows).toEqual([{ policy: 'low-norm', keepRatio: 0.5, accuracy: 0 }, { policy: 'recent', keepRatio: 0.5, accuracy: 0 }])
    expect(r.baseline).toBe(0)
    expect(r.example.answer.length).toBeGreaterThan(0)
  })
})
