// kvtrim-eval on the real test model, small: keeping every token reproduces the uncompressed
// perplexity for every policy; the baseline equals a token-by-token computation done here; the
// decode-time variant stays within its budget; the ragged policies (selection modes) keep their
// budget on average and the forward pass never attends a head's padding; the CLI writes the
// table, JSON and SVG.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { runEval, type EvalOptions, type EvalResult } from '../eval/experiments'
import { logProb } from '../eval/llama2c'
import { findModel } from '../eval/model-dir'
import type { KvCache } from '../eval/llama2c'
import { POLICIES, compressPrefill } from '../eval/policies'
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

  it('ragged policies: adaptive keeps kvHeads * k per layer, threshold at least that; each head its own count', () => {
    for (const p of ['adaptive-low-norm', 'adaptive-keydiff', 'threshold-low-norm'] as const) {
      const row = r.prefill.find((x) => x.policy === p && x.keepRatio === 0.5)!
      expect(Number.isFinite(row.perplexity), p).toBe(true)
      if (p === 'threshold-low-norm') expect(row.heads!.mean, p).toBeGreaterThanOrEqual(16)
      else expect(row.heads!.mean, p).toBe(16)
      expect(row.heads!.padded, p).toBeGreaterThanOrEqual(row.heads!.mean)
    }
    const { model } = testModel()
    const story = r.text.tokens[0]
    const pre = model.forward(story.slice(0, 32), Array.from({ length: 32 }, (_, i) => i), null, { logits: 'last' })
    const cache = compressPrefill(pre.cache, 'adaptive-low-norm', 0.5, { pruneAfter: 0, skipLayers: [] }, () => 0)
    for (const l of cache) expect((l.heads?.lengths ?? new Int32Array(4).fill(l.keys.dims[2])).reduce((a, x) => a + x, 0)).toBe(4 * 16)
    expect(cache.some((l) => l.heads)).toBe(true)
  })

  it("the forward pass never attends a ragged head's padding rows (garbage there changes nothing)", () => {
    const { model } = testModel()
    const story = r.text.tokens[1]
    const pre = model.forward(story.slice(0, 32), Array.from({ length: 32 }, (_, i) => i), null, { logits: 'last' })
    const cache = compressPrefill(pre.cache, 'adaptive-keydiff', 0.5, { pruneAfter: 0, skipLayers: [] }, () => 0)
    const D = cache[0].keys.dims[3]
    const poisoned: KvCache = cache.map((l) => {
      const S = l.keys.dims[2], keys = Float32Array.from(l.keys.data), values = Float32Array.from(l.values.data)
      l.heads?.lengths.forEach((n, h) => {
        keys.fill(1e4, (h * S + n) * D, (h * S + l.heads!.padEnd) * D)
        values.fill(-1e4, (h * S + n) * D, (h * S + l.heads!.padEnd) * D)
      })
      return { ...l, keys: { ...l.keys, data: keys }, values: { ...l.values, data: values } }
    })
    const toks = story.slice(32, 40), pos = toks.map((_, i) => 32 + i)
    const a = model.forward(toks, pos, cache, { attention: true }), b = model.forward(toks, pos, poisoned, { attention: true })
    expect(Array.from(b.logits)).toEqual(Array.from(a.logits))
    // and the padding's attention weights are 0
    const l0 = cache.findIndex((l) => l.heads)
    const { lengths, padEnd } = cache[l0].heads!
    const total = cache[l0].keys.dims[2] + toks.length
    for (let h = 0; h < 8; h++) {
      for (let j = lengths[Math.floor(h / 2)]; j < padEnd; j++) expect(a.attention![l0][(h * toks.length) * total + j]).toBe(0)
    }
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
