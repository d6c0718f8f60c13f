// How far bench:e2e's shortcut prompt cache is from a real prefill of the same tokens: the first
// `len` tokens of the prompt file prefilled with full attention through eval/llama2c.ts (O(len^2),
// affordable at a few thousand tokens), compared per layer with the windowed cache the benchmark
// uses. Prints, for the rows past the exactly-prefilled part: the median relative difference of
// key rows, Spearman's rho between the two caches' key norms, and the share of the tokens kvtrim
// keeps at keep 0.5 and 0.25 that it also keeps on the real prefill's cache.
//
//   npx tsx bench/e2e/check-prompt.ts [bench/results/e2e-prompt.bin] [--len 2048]
import { parseArgs } from 'node:util'
import path from 'node:path'
import { compressCacheSync, keyNormsSync, spearman, type CacheLayer } from '../../lib/index'
import { Llama2Model } from '../../eval/llama2c'
import { repoRoot } from '../../eval/model-dir'
import { loadPrompt, promptTokens } from './prompt'
import { median } from './common'

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { len: { type: 'string', default: '2048' } } })
  const file = positionals[0] ?? path.join(repoRoot, 'bench', 'results', 'e2e-prompt.bin')
  const len = Number(values.len)
  const { header, cache: windowed } = loadPrompt(file, len)
  const model = Llama2Model.load(header.checkpoint)
  const tokens = promptTokens(file, len)
  const t0 = performance.now()
  const exact = model.forward(tokens, tokens.map((_, i) => i), null, { logits: 'last' }).cache
  const { nKvHeads: H, headDim: D, exact: E } = header
  console.log(`prompt ${path.relative(process.cwd(), file)}: the first ${len} tokens, full prefill in ${((performance.now() - t0) / 1000).toFixed(1)} s; rows ${E}..${len - 1} compared (the first ${E} are exact by construction)`)
  const keep = (c: CacheLayer[], keepRatio: number) => compressCacheSync(c, { keepRatio }).layers.map((l) => l.indices!)
  const kept = [0.5, 0.25].map((r) => ({ r, w: keep(windowed as CacheLayer[], r), e: keep(exact as CacheLayer[], r) }))
  console.log('layer | median rel. key diff | rho(norms) | kept overlap @0.5 | @0.25')
  windowed.forEach((wl, l) => {
    const el = exact[l]
    const diffs: number[] = []
    for (let h = 0; h < H; h++) {
      for (let p = E; p < len; p++) {
        let d = 0, n = 0
        for (let i = 0; i < D; i++) {
          const a = wl.keys.data[(h * len + p) * D + i], b = el.keys.data[(h * len + p) * D + i]
          d += (a - b) ** 2
          n += b * b
        }
        diffs.push(Math.sqrt(d / (n || 1)))
      }
    }
    const nw = keyNormsSync(wl.keys), ne = keyNormsSync(el.keys)
    const rows = (x: Float32Array) => Array.from({ length: H }, (_, h) => Array.from(x.subarray(h * len + E, (h + 1) * len))).flat()
    const rho = spearman(rows(nw), rows(ne))
    const overlap = kept.map(({ w, e }) => {
      let same = 0, total = 0
      for (let h = 0; h < H; h++) {
        const k = w[l].length / H
        const a = new Set(Array.from(w[l].subarray(h * k, (h + 1) * k))), b = Array.from(e[l].subarray(h * k, (h + 1) * k))
        same += b.filter((x) => a.has(x)).length
        total += k
      }
      return same / total
    })
    console.log(`${String(l).padStart(5)} | ${median(diffs).toFixed(3).padStart(20)} | ${rho.toFixed(3).padStart(10)} | ${overlap[0].toFixed(3).padStart(17)} | ${overlap[1].toFixed(3).padStart(5)}`)
  })
}

main()
