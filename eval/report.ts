// The evaluation's outputs: a terminal table and an SVG chart (perplexity against keep ratio,
// a line per policy, after prefill compression and decode-time compression; the norm-attention
// correlation per layer).
import type { EvalResult } from './experiments'

const f = (x: number, d = 3): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a')

/** Rows: policies; columns: keep ratios. */
function grid(title: string, rows: Array<{ name: string; values: number[] }>, ratios: number[], baseline: number): string {
  const w0 = Math.max(title.length, '(no compression)'.length, ...rows.map((r) => r.name.length))
  const head = `${title.padEnd(w0)} | ${ratios.map((r) => `keep ${r}`.padStart(9)).join(' ')}`
  const lines = rows.map((r) => `${r.name.padEnd(w0)} | ${r.values.map((v) => f(v).padStart(9)).join(' ')}`)
  return [head, '-'.repeat(head.length), ...lines, `${'(no compression)'.padEnd(w0)} | ${f(baseline).padStart(9)} at every ratio`].join('\n')
}

export function table(r: EvalResult): string {
  const ratios = r.options.ratios
  const out: string[] = []
  out.push(`model ${r.model.name}: ${r.model.layers} layers, ${r.model.heads} heads, ${r.model.kvHeads} KV heads of ${r.model.headDim}`)
  out.push(`text: ${r.text.stories} stories ${r.text.source}, seed ${r.text.seed}; prefill ${r.text.prefill} tokens, continuation ${r.text.continuation}`)
  out.push('')
  out.push('Perplexity of the continuation after compressing the prefill cache (lower is better)')
  out.push(grid('policy', r.options.policies.map((p) => ({ name: p, values: ratios.map((k) => r.prefill.find((x) => x.policy === p && x.keepRatio === k)!.perplexity) })), ratios, r.baseline))
  const ragged = r.prefill.filter((x) => x.heads)
  if (ragged.length) {
    out.push('')
    out.push('Ragged policies: tokens a KV head keeps (mean) / the padded length (the most any head keeps), means over stories and layers')
    for (const p of [...new Set(ragged.map((x) => x.policy))]) {
      const cells = ratios.map((k) => {
        const h = ragged.find((x) => x.policy === p && x.keepRatio === k)?.heads
        return (h ? `${h.mean.toFixed(1)}/${h.padded.toFixed(1)}` : 'n/a').padStart(11)
      })
      out.push(`${p.padEnd(20)} | ${cells.join(' ')}`)
    }
  }
  for (const every of r.options.every) {
    const rows = [...new Set(r.decode.map((d) => d.policy))].map((p) => ({
      name: p, values: ratios.map((k) => r.decode.find((x) => x.policy === p && x.keepRatio === k && x.every === every)!.perplexity),
    }))
    out.push('')
    out.push(`Decode-time: compressed after the prefill, then every ${every} generated token${every > 1 ? 's' : ''} back to the budget`)
    out.push(grid('policy', rows, ratios, r.baseline))
  }
  out.push('')
  out.push("Spearman's rho between a prefill key's L2 norm and the attention the continuation gives it (negative: low norm, high attention)")
  const corr = r.correlation
  if (!corr) out.push('not available: this decoder returns no attention weights')
  else {
    out.push(`layer | ${corr.perHead[0].map((_, h) => `head ${h}`.padStart(7)).join(' ')} |    mean`)
    corr.perHead.forEach((row, l) => out.push(`${String(l).padStart(5)} | ${row.map((x) => f(x, 2).padStart(7)).join(' ')} | ${f(corr.perLayer[l], 2).padStart(7)}`))
  }
  if (r.passkey) {
    const pk = r.passkey
    out.push('')
    out.push(`Passkey retrieval: ${pk.trials} trials, prompts of ${Math.min(...pk.promptTokens)}-${Math.max(...pk.promptTokens)} tokens; accuracy with the whole cache: ${f(pk.baseline, 2)}`)
    if (pk.baseline === 0) {
      out.push(`this model does not retrieve the key even from the whole cache (first trial: key ${pk.example.key}, answer ${JSON.stringify(pk.example.answer)}); the compressed runs say nothing`)
    }
    out.push(grid('policy', r.options.policies.map((p) => ({ name: p, values: r.options.ratios.map((k) => pk.rows.find((x) => x.policy === p && x.keepRatio === k)!.accuracy) })), r.options.ratios, pk.baseline))
  }
  out.push('')
  out.push(`${r.seconds.toFixed(1)} s`)
  return out.join('\n')
}

const COLORS: Record<string, string> = {
  'low-norm': '#d62728', 'high-norm': '#9467bd', random: '#7f7f7f', recent: '#1f77b4', 'sink+recent': '#2ca02c', 'low-norm+sink+recent': '#ff7f0e',
  'kv-norm': '#8c564b', keydiff: '#e377c2', project: '#17becf',
  'adaptive-low-norm': '#bcbd22', 'adaptive-keydiff': '#393b79', 'threshold-low-norm': '#e7969c',
}
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

interface Panel { x: number; y: number; w: number; h: number }

function linePanel(p: Panel, title: string, lines: Array<{ name: string; points: Array<[number, number]> }>, baseline: number, yMax: number): string {
  // a policy that could not run (NaN) draws no points
  lines = lines.map((l) => ({ ...l, points: l.points.filter(([, y]) => Number.isFinite(y)) }))
  const ys = lines.flatMap((l) => l.points.map(([, y]) => y)).concat(baseline)
  const lo = Math.min(...ys), hi = Math.min(yMax, Math.max(...ys))
  const pad = (hi - lo) * 0.05 || 0.05
  const y0 = lo - pad, y1 = hi + pad
  const X = (r: number) => p.x + 45 + (r * (p.w - 55))
  const Y = (v: number) => p.y + p.h - 30 - ((Math.min(v, y1) - y0) / (y1 - y0)) * (p.h - 55)
  const s: string[] = []
  s.push(`<text x="${p.x + p.w / 2}" y="${p.y + 14}" text-anchor="middle" font-weight="bold">${esc(title)}</text>`)
  s.push(`<rect x="${X(0)}" y="${Y(y1)}" width="${X(1) - X(0)}" height="${Y(y0) - Y(y1)}" fill="none" stroke="#999"/>`)
  for (const r of [0.1, 0.25, 0.5, 0.75, 0.9]) s.push(`<text x="${X(r)}" y="${Y(y0) + 14}" text-anchor="middle" font-size="10">${r}</text>`)
  s.push(`<text x="${X(0.5)}" y="${Y(y0) + 27}" text-anchor="middle" font-size="11">keep ratio</text>`)
  for (let i = 0; i <= 4; i++) {
    const v = y0 + ((y1 - y0) * i) / 4
    s.push(`<text x="${X(0) - 4}" y="${Y(v) + 3}" text-anchor="end" font-size="10">${v.toFixed(2)}</text>`)
  }
  s.push(`<line x1="${X(0)}" x2="${X(1)}" y1="${Y(baseline)}" y2="${Y(baseline)}" stroke="#000" stroke-dasharray="4 3"><title>no compression: ${f(baseline)}</title></line>`)
  for (const l of lines) {
    const pts = l.points.slice().sort((a, b) => a[0] - b[0])
    s.push(`<polyline fill="none" stroke="${COLORS[l.name] ?? '#000'}" stroke-width="2" points="${pts.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ')}"><title>${esc(l.name)}</title></polyline>`)
    for (const [x, y] of pts) s.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="2.5" fill="${COLORS[l.name] ?? '#000'}"><title>${esc(l.name)} keep ${x}: ${f(y)}${y > y1 ? ' (off the chart)' : ''}</title></circle>`)
  }
  return s.join('\n')
}

function barPanel(p: Panel, title: string, perHead: number[][], perLayer: number[]): string {
  const s: string[] = []
  const X0 = p.x + 45, W = p.w - 55, Y = (v: number) => p.y + 30 + ((1 - v) / 2) * (p.h - 60)
  s.push(`<text x="${p.x + p.w / 2}" y="${p.y + 14}" text-anchor="middle" font-weight="bold">${esc(title)}</text>`)
  for (const v of [1, 0.5, 0, -0.5, -1]) {
    s.push(`<line x1="${X0}" x2="${X0 + W}" y1="${Y(v)}" y2="${Y(v)}" stroke="${v === 0 ? '#000' : '#ddd'}"/>`)
    s.push(`<text x="${X0 - 4}" y="${Y(v) + 3}" text-anchor="end" font-size="10">${v}</text>`)
  }
  const slot = W / perHead.length, H = perHead[0]?.length ?? 1, bw = (slot * 0.8) / H
  perHead.forEach((row, l) => {
    row.forEach((v, h) => {
      if (!Number.isFinite(v)) return
      const x = X0 + l * slot + slot * 0.1 + h * bw
      s.push(`<rect x="${x.toFixed(1)}" y="${Math.min(Y(v), Y(0)).toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${Math.abs(Y(v) - Y(0)).toFixed(1)}" fill="#1f77b4" opacity="${0.45 + 0.5 * (h / Math.max(1, H - 1))}"><title>layer ${l} head ${h}: ${f(v, 3)}</title></rect>`)
    })
    s.push(`<line x1="${(X0 + l * slot + slot * 0.08).toFixed(1)}" x2="${(X0 + (l + 1) * slot - slot * 0.08).toFixed(1)}" y1="${Y(perLayer[l]).toFixed(1)}" y2="${Y(perLayer[l]).toFixed(1)}" stroke="#d62728" stroke-width="2"><title>layer ${l} mean: ${f(perLayer[l], 3)}</title></line>`)
    s.push(`<text x="${(X0 + (l + 0.5) * slot).toFixed(1)}" y="${p.y + p.h - 12}" text-anchor="middle" font-size="10">layer ${l}</text>`)
  })
  s.push(`<text x="${X0 + W / 2}" y="${p.y + p.h + 2}" text-anchor="middle" font-size="10">bars: KV heads 0..${H - 1}; red: the layer's mean</text>`)
  return s.join('\n')
}

export function chart(r: EvalResult): string {
  const W = 1260, H = 380
  const every = r.options.every[r.options.every.length - 1]
  const prefillLines = r.options.policies.map((name) => ({ name, points: r.prefill.filter((x) => x.policy === name).map((x) => [x.keepRatio, x.perplexity] as [number, number]) }))
  const decodePolicies = [...new Set(r.decode.map((d) => d.policy))]
  const decodeLines = decodePolicies.map((name) => ({ name, points: r.decode.filter((x) => x.policy === name && x.every === every).map((x) => [x.keepRatio, x.perplexity] as [number, number]) }))
  const yMax = r.baseline * 1.6 // decode-time blow-ups are clipped (their exact values are in the table)
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H + 40}" viewBox="0 0 ${W} ${H + 40}" font-family="sans-serif" font-size="12">`,
    '<rect width="100%" height="100%" fill="#fff"/>',
    linePanel({ x: 0, y: 0, w: 440, h: H }, 'Perplexity after prefill compression', prefillLines, r.baseline, yMax),
    ...(decodeLines.length ? [linePanel({ x: 440, y: 0, w: 440, h: H }, `Decode-time, compressed every ${every} tokens`, decodeLines, r.baseline, yMax)] : []),
    ...(r.correlation ? [barPanel({ x: 880, y: 0, w: 380, h: H }, "Spearman's rho: key norm vs attention", r.correlation.perHead, r.correlation.perLayer)] : []),
  ]
  // legend (wrapped onto a second row when the policies do not fit one)
  let lx = 50, ly = H + 20
  const entries: Array<[string, string]> = [...r.options.policies.map((n): [string, string] => [n, `stroke="${COLORS[n]}" stroke-width="3"`]), ['no compression', 'stroke="#000" stroke-dasharray="4 3"']]
  for (const [name, style] of entries) {
    const w = 45 + 7.5 * name.length
    if (lx + w > W - 10) {
      lx = 50
      ly += 18
    }
    parts.push(`<line x1="${lx}" x2="${lx + 20}" y1="${ly}" y2="${ly}" ${style}/><text x="${lx + 25}" y="${ly + 4}">${esc(name)}</text>`)
    lx += w
  }
  parts.push(`<text x="${W - 10}" y="${ly + 22}" text-anchor="end" font-size="10">points above ${f(yMax, 2)} are drawn at the top; the table has them</text>`)
  parts[0] = parts[0].replace(/height="\d+" viewBox="0 0 (\d+) \d+"/, (_, w: string) => `height="${ly + 32}" viewBox="0 0 ${w} ${ly + 32}"`)
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}
