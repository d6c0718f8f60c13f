// Passkey retrieval as in the L2-norm paper (after Mohtashami & Jaggi 2023): a 5-digit number
// hidden at a random depth in repeated filler text, then "What is the pass key?". The prompt's
// cache (all but its last token) is compressed with each policy; the last token is then run over
// the compressed cache at its absolute position and the answer decoded greedily. A trial passes
// when the decoded text holds the number. Models too small to retrieve the key even from the
// whole cache score 0 everywhere: the baseline says so.
import type { Decoder } from './decoder'
import { argmax, type KvCache } from './llama2c'
import { RAGGED_POLICIES, compressPrefill, queryFilters, type Policy } from './policies'
import { rng } from './text'

export interface TextCodec {
  encode(text: string): number[]
  decode(tokens: number[]): string
}

export interface PasskeyOptions {
  trials: number
  /** prompt length to aim for, in tokens (at most the model's context minus the answer) */
  contextTokens: number
  seed: number
  ratios: number[]
  policies: Policy[]
  onTrial?: (label: string) => void
}

export interface PasskeyResult {
  trials: number
  /** prompt lengths in tokens, one per trial */
  promptTokens: number[]
  /** fraction of trials answered with the whole cache */
  baseline: number
  /** accuracy NaN: the policy could not run on this decoder (project without queries) */
  rows: Array<{ policy: Policy; keepRatio: number; accuracy: number }>
  /** the first trial's answer with the whole cache, for the record */
  example: { key: string; answer: string }
}

const INTRO = 'There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. I will quiz you about the important information there. '
const FILLER = 'The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. '
const QUESTION = 'What is the pass key? The pass key is'
const needle = (key: string) => `The pass key is ${key}. Remember it. ${key} is the pass key. `

/** The prompt's tokens: the key at `depth` (0..1) of the filler, at most `contextTokens` long (but at least one filler sentence group). */
export function passkeyPrompt(codec: TextCodec, key: string, depth: number, contextTokens: number): number[] {
  const build = (reps: number): number[] => {
    const before = Math.round(reps * depth)
    return codec.encode(INTRO + FILLER.repeat(before) + needle(key) + FILLER.repeat(reps - before) + QUESTION)
  }
  const unit = codec.encode(FILLER).length
  let reps = Math.max(1, Math.floor((contextTokens - codec.encode(INTRO + needle(key) + QUESTION).length) / unit) + 1)
  let ids = build(reps)
  while (ids.length > contextTokens && reps > 1) ids = build(--reps) // tokens do not add up exactly across pieces
  return ids
}

async function answer(model: Decoder, codec: TextCodec, ids: number[], cache: KvCache, maxTokens: number): Promise<string> {
  let pos = ids.length - 1
  let r = await model.forward([ids[pos]], [pos], cache, { logits: 'last' })
  const out: number[] = []
  for (let i = 0; i < maxTokens; i++) {
    out.push(argmax(r.logits))
    r = await model.forward([out[i]], [++pos], r.cache, { logits: 'last' })
  }
  return codec.decode(out)
}

export async function passkey(model: Decoder, codec: TextCodec, o: PasskeyOptions): Promise<PasskeyResult> {
  const random = rng(o.seed)
  const hits = new Map<string, number>()
  let baseHits = 0
  const promptTokens: number[] = []
  let example = { key: '', answer: '' }
  const maxTokens = 8
  const context = Math.min(o.contextTokens, model.config.seqLen - maxTokens - 1)
  for (let t = 0; t < o.trials; t++) {
    const key = String(10000 + Math.floor(random() * 90000))
    const ids = passkeyPrompt(codec, key, 0.1 + 0.8 * random(), context)
    promptTokens.push(ids.length)
    const pre = await model.forward(ids.slice(0, -1), ids.slice(0, -1).map((_, i) => i), null, { logits: 'last', queries: true })
    const project = pre.queries && queryFilters(pre.queries, model.config)
    const full = await answer(model, codec, ids, pre.cache, maxTokens)
    if (t === 0) example = { key, answer: full }
    if (full.includes(key)) baseHits++
    for (const policy of o.policies) {
      for (const ratio of o.ratios) {
        if ((policy === 'project' && !project) || (RAGGED_POLICIES.includes(policy) && !model.perHeadLengths)) {
          hits.set(`${policy}@${ratio}`, NaN)
          continue
        }
        const cache = compressPrefill(pre.cache, policy, ratio, { pruneAfter: 0, skipLayers: [] }, random, project)
        if ((await answer(model, codec, ids, cache, maxTokens)).includes(key)) hits.set(`${policy}@${ratio}`, (hits.get(`${policy}@${ratio}`) ?? 0) + 1)
      }
    }
    o.onTrial?.(`passkey trial ${t + 1}`)
  }
  return {
    trials: o.trials,
    promptTokens,
    baseline: baseHits / o.trials,
    rows: o.policies.flatMap((policy) => o.ratios.map((keepRatio) => ({ policy, keepRatio, accuracy: (hits.get(`${policy}@${keepRatio}`) ?? 0) / o.trials }))),
    example,
  }
}
