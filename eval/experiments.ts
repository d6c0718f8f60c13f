// The paper's experiments on a llama2.c model through the TypeScript forward pass:
// - language modelling: perplexity of a continuation after compressing the prefill's cache, per
//   policy and keep ratio; and the decode-time variant (kvtrim/transformers' CacheCompressor:
//   compress after the prefill, then every N generated tokens back to the same budget);
// - every scorer of docs/policies.md as a policy; project's vectors come from the prompt's own
//   queries (queryFilters in policies.ts), so a decoder that returns no queries (an ONNX export)
//   reports it as n/a; the selection modes (adaptive, threshold: heads keep different counts)
//   need a decoder that masks each KV head (perHeadLengths), else n/a too;
// - the diagnostic: per layer and KV head, Spearman's correlation between a prefill key's L2 norm
//   and the attention the continuation's queries give it (normAttentionCorrelation).
import { normAttentionCorrelation } from '../lib/index'
import { CacheCompressor, type CacheCompressorOptions } from '../lib/cache/transformers'
import type { Decoder } from './decoder'
import { logProb, type KvCache } from './llama2c'
import { DECODE_POLICIES, POLICIES, RAGGED_POLICIES, compressPrefill, policyOptions, queryFilters, type Policy } from './policies'
import { passkey, type PasskeyResult, type TextCodec } from './passkey'
import { rng, sampleStories } from './text'
import { BOS } from './tokenizer'

export interface EvalOptions {
  decoder: Decoder
  /** how the model is named in the outputs (a path, a directory) */
  modelName: string
  /** the first token of every sampled story (default 1, llama2.c's BOS) */
  bos?: number
  /** the evaluation text as token ids (a previous run's `text.tokens`), instead of sampling it */
  texts?: { tokens: number[][]; source: string }
  /** turns tokens into text for the sample shown in the JSON (default: the ids) */
  detokenize?: (tokens: number[]) => string
  /** stories sampled from the model (BOS first), each prefill + continuation + 1 tokens */
  stories: number
  prefill: number
  continuation: number
  seed: number
  ratios: number[]
  policies: Policy[]
  /** decode-time variant: compress every N generated tokens (empty: skip it) */
  every: number[]
  pruneAfter: number
  skipLayers: number[]
  /** passkey retrieval (needs a tokenizer): trials (0: skip) and the prompt length in tokens */
  passkey?: { codec: TextCodec; trials: number; contextTokens: number }
  onProgress?: (done: number, total: number, label: string) => void
}

/**
 * perplexity NaN: the policy could not run on this decoder (project without queries, a ragged
 * policy without perHeadLengths). heads (ragged policies): tokens a KV head keeps on average,
 * and the padded length (the most any head of the layer keeps: what the cache's memory is
 * sized by), both means over stories and layers.
 */
export interface PrefillRow { policy: Policy; keepRatio: number; kept: number; perplexity: number; heads?: { mean: number; padded: number } }
export interface DecodeRow { policy: Policy; keepRatio: number; every: number; target: number; maxCache: number; perplexity: number }

export interface EvalResult {
  model: { name: string; layers: number; heads: number; kvHeads: number; headDim: number; vocab: number }
  text: { source: string; seed: number; temperature: number; stories: number; prefill: number; continuation: number; sample: string; tokens: number[][] }
  options: { ratios: number[]; policies: Policy[]; every: number[]; pruneAfter: number; skipLayers: number[] }
  /** perplexity of the continuation with the whole prefill cache */
  baseline: number
  prefill: PrefillRow[]
  decode: DecodeRow[]
  /** [layer][kvHead]: Spearman's rho of key norm vs attention received, averaged over stories; perLayer: mean over heads. null: the decoder gives no attention weights */
  correlation: { perHead: number[][]; perLayer: number[] } | null
  /** passkey retrieval accuracy per policy and keep ratio (absent when not run) */
  passkey?: PasskeyResult
  seconds: number
}

const ppl = (nll: number, n: number): number => Math.exp(nll / n)

/** Summed negative log-likelihood of story[from + 1 .. from + count] given `cache` holding what precedes story[from]. */
async function continuationNll(model: Decoder, story: number[], from: number, count: number, cache: KvCache): Promise<number> {
  const toks = story.slice(from, from + count)
  const r = await model.forward(toks, toks.map((_, i) => from + i), cache)
  let nll = 0
  for (let i = 0; i < count; i++) nll -= logProb(r.logits, model.config.vocabSize, i, story[from + i + 1])
  return nll
}

export async function runEval(o: EvalOptions): Promise<EvalResult> {
  const t0 = performance.now()
  const model = o.decoder
  const c = model.config
  const P = o.prefill, C = o.continuation
  if (P + C + 1 > c.seqLen) throw new Error(`prefill + continuation + 1 (${P + C + 1}) exceeds the model's context (${c.seqLen})`)
  if (model.sharedMask && o.skipLayers.length > 0) {
    throw new Error('skipLayers cannot be evaluated on this decoder: one attention mask serves every layer, so every layer must keep the same number of tokens')
  }
  const decodePolicies = o.policies.filter((p) => DECODE_POLICIES.includes(p))
  const pk = o.passkey && o.passkey.trials > 0 ? o.passkey : undefined
  const total = o.stories * (2 + o.policies.length * o.ratios.length + decodePolicies.length * o.ratios.length * o.every.length) + (pk?.trials ?? 0)
  let done = 0
  const tick = (label: string) => o.onProgress?.(++done, total, label)

  let stories: number[][]
  if (o.texts) {
    stories = o.texts.tokens.slice(0, o.stories).map((t) => t.slice(0, P + C + 1))
    if (stories.length < o.stories || stories.some((t) => t.length < P + C + 1 || t.some((x) => !(Number.isInteger(x) && x >= 0 && x < c.vocabSize)))) {
      throw new Error(`Expected ${o.stories} texts of at least ${P + C + 1} token ids below ${c.vocabSize} in ${o.texts.source}`)
    }
  } else {
    stories = await sampleStories(model, o.stories, P + C + 1, o.seed, 1, o.bos ?? BOS)
  }
  tick('sampled the evaluation text')
  for (let s = 1; s < o.stories; s++) tick('')
  const random = rng(o.seed + 1)
  const prefillNll = new Map<string, number>()
  const headStats = new Map<string, { mean: number; padded: number; n: number }>()
  const decodeNll = new Map<string, { nll: number; target: number; maxCache: number }>()
  let baseNll = 0
  let hasAttention = true
  const corr = Array.from({ length: c.nLayers }, () => new Array<number>(c.nKvHeads).fill(0))
  const corrCount = Array.from({ length: c.nLayers }, () => new Array<number>(c.nKvHeads).fill(0))
  const compression = { pruneAfter: o.pruneAfter, skipLayers: o.skipLayers }

  for (const [si, story] of stories.entries()) {
    const pre = await model.forward(story.slice(0, P), Array.from({ length: P }, (_, i) => i), null, { logits: 'last', queries: true })
    const project = pre.queries && queryFilters(pre.queries, c)
    // the baseline and, from its attention, the diagnostic
    const toks = story.slice(P, P + C)
    const full = await model.forward(toks, toks.map((_, i) => P + i), pre.cache, { attention: true })
    for (let i = 0; i < C; i++) baseNll -= logProb(full.logits, c.vocabSize, i, story[P + i + 1])
    if (!full.attention) hasAttention = false
    full.attention?.forEach((att, l) => {
      const r = normAttentionCorrelation(pre.cache[l].keys, { type: 'float32', data: att, dims: [1, c.nHeads, C, P + C] })
      r.perHead.forEach((rho, h) => {
        if (Number.isFinite(rho)) {
          corr[l][h] += rho
          corrCount[l][h]++
        }
      })
    })
    tick(`story ${si + 1}: baseline and correlation`)

    for (const policy of o.policies) {
      for (const ratio of o.ratios) {
        const key = `${policy}@${ratio}`
        if ((policy === 'project' && !project) || (RAGGED_POLICIES.includes(policy) && !model.perHeadLengths)) {
          prefillNll.set(key, NaN)
        } else {
          const cache = compressPrefill(pre.cache, policy, ratio, compression, random, project)
          if (RAGGED_POLICIES.includes(policy)) {
            const st = headStats.get(key) ?? { mean: 0, padded: 0, n: 0 }
            for (const l of cache) {
              const S = l.keys.dims[2], lens = l.heads?.lengths
              st.mean += lens ? lens.reduce((a, x) => a + x, 0) / lens.length : S
              st.padded += S
              st.n++
            }
            headStats.set(key, st)
          }
          prefillNll.set(key, (prefillNll.get(key) ?? 0) + (await continuationNll(model, story, P, C, cache)))
        }
        tick(`story ${si + 1}: ${policy} keep ${ratio}`)
      }
    }

    for (const policy of decodePolicies) {
      for (const ratio of o.ratios) {
        const k = Math.ceil(ratio * P)
        for (const every of o.every) {
          const kv = new CacheCompressor({
            // DECODE_POLICIES use low-norm / high-norm / sink / recent only
            keepRatio: ratio, ...(policyOptions(policy, k) as Pick<CacheCompressorOptions, 'sink' | 'recent' | 'score'>), decode: { every }, pruneAfter: o.pruneAfter, skipLayers: o.skipLayers, sharedMask: model.sharedMask === true,
          })
          let cache = kv.afterPrefillSync(pre.cache).cache
          let nll = 0, maxCache = 0
          for (let i = 0; i < C; i++) {
            const r = await model.forward([story[P + i]], [kv.position], cache, { logits: 'last' })
            nll -= logProb(r.logits, c.vocabSize, 0, story[P + i + 1])
            cache = kv.afterStepSync(r.cache).cache
            maxCache = Math.max(maxCache, ...cache.map((l) => l.keys.dims[2]))
          }
          const key = `${policy}@${ratio}@${every}`
          const prev = decodeNll.get(key)
          decodeNll.set(key, { nll: (prev?.nll ?? 0) + nll, target: k, maxCache: Math.max(prev?.maxCache ?? 0, maxCache) })
          tick(`story ${si + 1}: decode-time ${policy} keep ${ratio} every ${every}`)
        }
      }
    }
  }

  const passkeyResult = pk
    ? await passkey(model, pk.codec, { trials: pk.trials, contextTokens: pk.contextTokens, seed: o.seed, ratios: o.ratios, policies: o.policies, onTrial: tick })
    : undefined
  const n = o.stories * C
  return {
    model: { name: o.modelName, layers: c.nLayers, heads: c.nHeads, kvHeads: c.nKvHeads, headDim: c.headDim, vocab: c.vocabSize },
    text: {
      source: o.texts ? `token ids from ${o.texts.source}` : 'sampled from the model itself from BOS (temperature 1, multinomial, mulberry32 seeded)',
      seed: o.seed, temperature: 1, stories: o.stories, prefill: P, continuation: C,
      sample: (o.detokenize ? o.detokenize(stories[0]) : stories[0].join(' ')).slice(0, 240),
      tokens: stories,
    },
    options: { ratios: o.ratios, policies: o.policies, every: o.every, pruneAfter: o.pruneAfter, skipLayers: o.skipLayers },
    baseline: ppl(baseNll, n),
    prefill: o.policies.flatMap((policy) =>
      o.ratios.map((keepRatio) => {
        const st = headStats.get(`${policy}@${keepRatio}`)
        return {
          policy, keepRatio, kept: Math.ceil(keepRatio * P), perplexity: ppl(prefillNll.get(`${policy}@${keepRatio}`)!, n),
          ...(st && { heads: { mean: st.mean / st.n, padded: st.padded / st.n } }),
        }
      }),
    ),
    decode: decodePolicies.flatMap((policy) =>
      o.ratios.flatMap((keepRatio) =>
        o.every.map((every) => {
          const d = decodeNll.get(`${policy}@${keepRatio}@${every}`)!
          return { policy, keepRatio, every, target: d.target, maxCache: d.maxCache, perplexity: ppl(d.nll, n) }
        }),
      ),
    ),
    correlation: !hasAttention ? null : {
      perHead: corr.map((row, l) => row.map((x, h) => (corrCount[l][h] ? x / corrCount[l][h] : NaN))),
      perLayer: corr.map((row, l) => row.reduce((s, x, h) => s + (corrCount[l][h] ? x / corrCount[l][h] : 0), 0) / row.length),
    },
    ...(passkeyResult && { passkey: passkeyResult }),
    seconds: (performance.now() - t0) / 1000,
  }
}

export { POLICIES }
