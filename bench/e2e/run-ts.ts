// One bench:e2e measurement on the TypeScript runtime (eval/llama2c.ts's forward pass), in its own
// process so that its peak RSS is its own: the prompt's cache from the prompt file, kvtrim's
// configuration, then `steps` greedy decode steps, each a full forward pass over the whole cache.
// Ends with one E2E-RESULT line on stdout. bench/e2e.ts runs it; by hand:
//   npx tsx bench/e2e/run-ts.ts --prompt FILE --len 4096 --config keep-0.5 --steps 32 --interval 8 --decode-ratio 0.25
import { compressCacheSync, Compressor, type CacheLayer } from '../../lib/index'
import { Llama2Model, type KvCache } from '../../eval/llama2c'
import { StepLog, argmaxLast, cacheBytes, emit, nowMs, parseRunArgs } from './common'
import { loadPrompt, promptHeader } from './prompt'

/** Compiles the hot paths before the clock runs: 16 steps of the forward pass and kvtrim's calls on a small cache of their own. */
function warmUp(model: Llama2Model): void {
  let r = model.forward([1], [0], null, { logits: 'last' })
  for (let i = 1; i < 16; i++) r = model.forward([argmaxLast(r.logits, model.config.vocabSize)], [i], r.cache, { logits: 'last' })
  compressCacheSync(r.cache as CacheLayer[], { keepRatio: 0.5 })
  new Compressor({ target: 4, interval: 2 }).stepSync(r.cache)
}

function main(): void {
  const a = parseRunArgs(process.argv.slice(2))
  const header = promptHeader(a.prompt)
  if (!header) throw new Error(`${a.prompt}: not a prompt file`)
  const model = Llama2Model.load(header.checkpoint)
  const vocab = model.config.vocabSize
  warmUp(model)
  const baselineRss = process.memoryUsage.rss()
  const loaded = loadPrompt(a.prompt, a.len)
  let cache: KvCache = loaded.cache
  const promptBytes = cacheBytes(cache)
  const log = new StepLog()

  // ---- kvtrim after the prefill ----
  let compressor: Compressor | undefined
  if (a.config === 'keep-0.5' || a.config === 'keep-0.25') {
    const t0 = nowMs()
    const r = compressCacheSync(cache as CacheLayer[], { keepRatio: a.config === 'keep-0.5' ? 0.5 : 0.25 })
    log.kvtrimPrefillMs = nowMs() - t0
    cache = r.layers.map((l) => ({ keys: l.keys, values: l.values })) as KvCache
  } else if (a.config === 'decode') {
    // kvpress's DecodingPress: back to the target whenever a layer holds more than target + interval
    compressor = new Compressor({ target: Math.ceil(a.len * a.decodeRatio), interval: a.interval, position: a.len })
    const t0 = nowMs()
    const r = compressor.stepSync(cache)
    log.kvtrimPrefillMs = nowMs() - t0
    cache = r.cache
  }
  log.afterPrefill = cache[0].keys.dims[2]

  // ---- decode: greedy, at the absolute positions ----
  let token = loaded.next
  for (let s = 0; s < a.steps; s++) {
    const t0 = nowMs()
    const r = model.forward([token], [a.len + s], cache, { logits: 'last' })
    cache = r.cache
    log.peakCacheBytes = Math.max(log.peakCacheBytes, cacheBytes(cache))
    let kv = 0
    if (compressor) {
      const k0 = nowMs()
      const c = compressor.stepSync(cache)
      kv = nowMs() - k0
      cache = c.cache
      if (c.compressed) log.compressions++
    }
    token = argmaxLast(r.logits, vocab)
    log.stepMs.push(nowMs() - t0)
    log.kvtrimMs.push(kv)
    log.generated.push(token)
  }
  emit(log.finish('typescript', a, cache[0].keys.dims[2], promptBytes, baselineRss))
}

main()
