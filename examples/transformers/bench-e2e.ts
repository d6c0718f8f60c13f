// One bench:e2e measurement on the ONNX decoder through onnxruntime-node (the root's bench/e2e.ts
// runs it in a process of its own for each prompt length and configuration; see docs/e2e.md):
// the prompt's cache from bench:e2e's prompt file as `past_key_values` feeds, kvtrim's
// CacheCompressor (kvtrim/transformers) as generate.ts uses it, then `steps` greedy decode steps,
// each one session.run over the whole cache. Ends with one E2E-RESULT line on stdout.
//
//   npx tsx bench-e2e.ts --prompt FILE --len 4096 --config keep-0.5 --steps 32 --interval 8 --decode-ratio 0.25
//
// The converter's model reads RoPE tables of the checkpoint's 512 positions; this script converts
// the checkpoint again with tables long enough for the prompt + steps (same graph, longer
// tables: buildGraph's maxPositions) into results/e2e-model-{positions}/ (built once, reused).
// The session runs onnxruntime-node's CPU provider with its default threads. kvtrim's time is
// every CacheCompressor call (afterPrefill, afterStep, nextInputs), the bookkeeping included:
// what a loop using it pays. The full-cache configuration makes no kvtrim call.
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { CacheCompressor, pastFromPresent } from 'kvtrim/transformers'
import { readCheckpoint } from '../../eval/llama2c'
import { StepLog, argmaxLast, emit, nowMs, parseRunArgs } from '../../bench/e2e/common'
import { loadPrompt, promptHeader } from '../../bench/e2e/prompt'
import { buildGraph, hfConfig } from './convert'
import { encodeModel } from './onnx-proto'

type Feeds = Record<string, ort.Tensor>

/** The checkpoint as ONNX with RoPE tables for `positions` positions (converted once into results/). */
function longModel(checkpoint: string, positions: number): string {
  const dir = path.join(__dirname, 'results', `e2e-model-${positions}`)
  const file = path.join(dir, 'onnx', 'model.onnx')
  if (existsSync(file)) return file
  const { config, weights } = readCheckpoint(checkpoint)
  mkdirSync(path.dirname(file), { recursive: true })
  writeFileSync(`${file}.tmp`, encodeModel(buildGraph(config, weights, positions)))
  renameSync(`${file}.tmp`, file)
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...hfConfig(config), max_position_embeddings: positions }, null, 2) + '\n')
  return file
}

/** present.{l}.key / .value as the next step's past_key_values (pastFromPresent without kvtrim). */
function presentAsPast(out: Record<string, ort.Tensor>): Feeds {
  const past: Feeds = {}
  for (const [name, t] of Object.entries(out)) if (name.startsWith('present.')) past[`past_key_values.${name.slice('present.'.length)}`] = t
  return past
}
const bytesOf = (past: Feeds): number => Object.values(past).reduce((n, t) => n + (t.data as Float32Array).byteLength, 0)
const i64 = (xs: readonly number[]): ort.Tensor => new ort.Tensor('int64', BigInt64Array.from(xs, (x) => BigInt(x)), [1, xs.length])
const ones = (n: number): ort.Tensor => new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n])

async function main(): Promise<void> {
  const a = parseRunArgs(process.argv.slice(2))
  const header = promptHeader(a.prompt)
  if (!header) throw new Error(`${a.prompt}: not a prompt file`)
  const { nLayers, nKvHeads, headDim } = header
  const vocab = readCheckpoint(header.checkpoint).config.vocabSize
  let positions = 1024
  while (positions < header.maxLen + a.steps + 1) positions *= 2
  const session = await ort.InferenceSession.create(longModel(header.checkpoint, positions))
  const run = async (token: number, position: number, mask: ort.Tensor, pos: ort.Tensor | undefined, past: Feeds) =>
    (await session.run({ input_ids: i64([token]), attention_mask: mask, position_ids: pos ?? i64([position]), ...past })) as Record<string, ort.Tensor>

  // warm-up: the session and kvtrim on a small cache of their own
  {
    const empty = (): ort.Tensor => new ort.Tensor('float32', new Float32Array(0), [1, nKvHeads, 0, headDim])
    let past: Feeds = {}
    for (let l = 0; l < nLayers; l++) Object.assign(past, { [`past_key_values.${l}.key`]: empty(), [`past_key_values.${l}.value`]: empty() })
    const kv = new CacheCompressor({ keepRatio: 0.5, decode: { every: 2 } })
    for (let s = 0; s < 16; s++) {
      const out = await run(1 + s, s, ones(past['past_key_values.0.key'].dims[2] + 1), undefined, past)
      past = pastFromPresent(out)
      if (s === 7) past = (await kv.afterPrefill(past)).cache
      else if (s > 7) {
        past = (await kv.afterStep(past)).cache
        kv.nextInputs(1, ort.Tensor)
      }
    }
  }

  const baselineRss = process.memoryUsage.rss()
  const loaded = loadPrompt(a.prompt, a.len)
  let past: Feeds = {}
  loaded.cache.forEach((l, i) => {
    past[`past_key_values.${i}.key`] = new ort.Tensor('float32', l.keys.data, l.keys.dims)
    past[`past_key_values.${i}.value`] = new ort.Tensor('float32', l.values.data, l.values.dims)
  })
  const promptBytes = bytesOf(past)
  const log = new StepLog()

  // ---- kvtrim after the prefill (CacheCompressor, as examples/transformers/generate.ts) ----
  let kv: CacheCompressor | undefined
  if (a.config === 'keep-0.5' || a.config === 'keep-0.25') kv = new CacheCompressor({ keepRatio: a.config === 'keep-0.5' ? 0.5 : 0.25 })
  else if (a.config === 'decode') {
    const target = Math.ceil(a.len * a.decodeRatio)
    kv = new CacheCompressor({ keepRatio: a.decodeRatio, decode: { every: a.interval + 1, target } }) // every N = interval N - 1
  }
  if (kv) {
    const t0 = nowMs()
    past = (await kv.afterPrefill(past)).cache
    log.kvtrimPrefillMs = nowMs() - t0
  }
  log.afterPrefill = past['past_key_values.0.key'].dims[2]

  // ---- decode: greedy, at the absolute positions ----
  let token = loaded.next
  for (let s = 0; s < a.steps; s++) {
    const t0 = nowMs()
    let kvMs = 0
    let inputs: { position_ids: ort.Tensor; attention_mask: ort.Tensor } | undefined
    if (kv) {
      const k0 = nowMs()
      inputs = kv.nextInputs(1, ort.Tensor)
      kvMs += nowMs() - k0
    }
    const out = await run(token, a.len + s, inputs?.attention_mask ?? ones(past['past_key_values.0.key'].dims[2] + 1), inputs?.position_ids, past)
    const k1 = nowMs()
    past = kv ? pastFromPresent(out) : presentAsPast(out) // the full cache: no kvtrim call at all
    if (kv) kvMs += nowMs() - k1
    log.peakCacheBytes = Math.max(log.peakCacheBytes, bytesOf(past))
    if (kv) {
      const k0 = nowMs()
      const r = await kv.afterStep(past)
      kvMs += nowMs() - k0
      past = r.cache
      if (r.compressed) log.compressions++
    }
    token = argmaxLast(out.logits.data as Float32Array, vocab)
    log.stepMs.push(nowMs() - t0)
    log.kvtrimMs.push(kvMs)
    log.generated.push(token)
  }
  emit(log.finish('onnxruntime-node', a, past['past_key_values.0.key'].dims[2], promptBytes, baselineRss))
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
