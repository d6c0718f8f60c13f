/**
 * kvtrim demo:  npx tsx examples/demo.ts [--keep-ratio 0.5] [--layers 8] [--seq-len 4096]
 *
 * Builds a synthetic fp16 key/value cache shaped like Llama-3-8B's (8 KV heads, head dim 128;
 * 8 of its 32 layers, so it stays at 128 MiB), compresses every layer with compressCache, which
 * keeps the tokens whose keys have the lowest L2 norm, and prints what was kept, the memory saved,
 * the time taken and the backend that did it.
 *
 * The synthetic keys have the structure the L2-norm rule works on: a per-token scale (so norms
 * vary from token to token), a few outlier channels, and a low-norm first token, like the
 * "attention sink" of real models, which the rule therefore keeps.
 */
import { backend, compressCache, keyNormsSync, type CacheLayer, type HostTensor, type TensorLike } from '../lib/index'

// ---- arguments --------------------------------------------------------------------------------

function parseArgs(argv: string[]): { keepRatio: number; layers: number; seqLen: number } {
  const opts = { keepRatio: 0.5, layers: 8, seqLen: 4096 }
  const names: Record<string, keyof typeof opts> = { '--keep-ratio': 'keepRatio', '--layers': 'layers', '--seq-len': 'seqLen' }
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--help' || argv[i] === '-h') {
      console.log('usage: npx tsx examples/demo.ts [--keep-ratio 0.5] [--layers 8] [--seq-len 4096]')
      process.exit(0)
    }
    const [flag, inline] = argv[i].split('=', 2)
    const key = names[flag]
    if (!key) throw new Error(`unknown argument '${argv[i]}' (try --help)`)
    const value = Number(inline ?? argv[++i])
    const ok = key === 'keepRatio' ? value > 0 && value <= 1 : Number.isInteger(value) && value > 0
    if (!ok) throw new Error(`${flag} expects ${key === 'keepRatio' ? 'a number in (0, 1]' : 'a positive integer'}`)
    opts[key] = value
  }
  return opts
}

// ---- a synthetic cache ------------------------------------------------------------------------

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/** float32 -> IEEE half bits, round to nearest even (subnormals, overflow to infinity). */
function toHalf(x: number): number {
  f32[0] = x
  const b = u32[0]
  const sign = (b >>> 16) & 0x8000
  const e = ((b >>> 23) & 0xff) - 127 + 15
  let m = b & 0x7fffff
  if (e >= 31) return sign | 0x7c00 // (no NaN or infinity is ever generated here)
  if (e <= 0) {
    if (e < -10) return sign
    m |= 0x800000
    const shift = 14 - e
    const half = 1 << (shift - 1)
    const rest = m & ((1 << shift) - 1)
    let h = m >>> shift
    if (rest > half || (rest === half && h & 1)) h++
    return sign | h
  }
  const rest = m & 0x1fff
  let h = (e << 10) | (m >>> 13)
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++ // a carry into the exponent is right
  return sign | h
}

/**
 * One fp16 tensor [1, heads, seqLen, headDim]: element = tokenScale[t] * channelScale[d] * g,
 * g roughly standard normal (Irwin-Hall of four bytes of xorshift32: fast, good enough here).
 */
function synthetic(dims: number[], seed: number, keys: boolean): Uint16Array {
  const [, heads, seqLen, headDim] = dims
  const out = new Uint16Array(heads * seqLen * headDim)
  let x = seed | 0 || 1
  const next = (): number => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return x
  }
  const gauss = (r: number): number =>
    ((r & 255) + ((r >>> 8) & 255) + ((r >>> 16) & 255) + (r >>> 24)) * (Math.sqrt(3) / 255) - 2 * Math.sqrt(3)
  const channel = new Float32Array(headDim).fill(1)
  if (keys) for (let i = 0; i < 4; i++) channel[(next() >>> 0) % headDim] = 3 + (next() & 3) // outlier channels
  const token = new Float32Array(seqLen)
  let i = 0
  for (let h = 0; h < heads; h++) {
    for (let t = 0; t < seqLen; t++) token[t] = keys ? Math.exp(0.35 * gauss(next())) : 1
    if (keys) token[0] = 0.15 // a low-norm "sink" token
    for (let t = 0; t < seqLen; t++) {
      const s = token[t]
      for (let d = 0; d < headDim; d++) out[i++] = toHalf(s * channel[d] * gauss(next()))
    }
  }
  return out
}

const half = (bits: number): number => {
  const e = (bits >> 10) & 0x1f, m = bits & 0x3ff
  const v = e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15)
  return bits & 0x8000 ? -v : v
}

// ---- main -------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { keepRatio, layers: nLayers, seqLen } = parseArgs(process.argv.slice(2))
  const dims = [1, 8, seqLen, 128]
  const MiB = 2 ** 20

  const b = backend()
  console.log('kvtrim demo')
  console.log(`backend: cpu (${b.cpu.isa}, ${b.cpu.threads} threads); CUDA ${b.cuda.used ? 'used' : 'not used'}` +
    (b.cuda.reason ? `: ${b.cuda.reason}` : ''))

  let t0 = performance.now()
  const layers: CacheLayer<HostTensor>[] = []
  for (let l = 0; l < nLayers; l++) {
    layers.push({
      keys: { type: 'float16', data: synthetic(dims, 0x9e3779b9 + 2 * l, true), dims },
      values: { type: 'float16', data: synthetic(dims, 0x7f4a7c15 + 2 * l + 1, false), dims },
    })
  }
  console.log(`cache: ${nLayers} layers x keys and values [${dims.join(', ')}] float16 ` +
    `(Llama-3-8B-like: 8 KV heads, head dim 128), generated in ${(performance.now() - t0).toFixed(0)} ms`)

  t0 = performance.now()
  const result = await compressCache(layers, { keepRatio })
  const ms = performance.now() - t0
  console.log(`compressCache(layers, { keepRatio: ${keepRatio} }) took ${ms.toFixed(1)} ms\n`)

  console.log('layer  tokens before -> kept')
  for (const r of result.report) {
    console.log(`${String(r.layer).padStart(5)}  ${String(r.before).padStart(13)} -> ${r.after}${r.compressed ? '' : ` (left as is: ${r.reason})`}`)
  }
  const bytes = (t: TensorLike): number => (t.data as ArrayBufferView).byteLength
  const before = layers.reduce((s, l) => s + bytes(l.keys) + bytes(l.values), 0)
  const after = result.layers.reduce((s, l) => s + bytes(l.keys) + bytes(l.values), 0)
  const indexBytes = result.layers.reduce((s, l) => s + (l.indices?.byteLength ?? 0), 0)
  console.log(`\nmemory: ${(before / MiB).toFixed(1)} MiB before, ${(after / MiB).toFixed(1)} MiB after: ` +
    `saved ${((before - after) / MiB).toFixed(1)} MiB (${((100 * (before - after)) / before).toFixed(1)}%)` +
    ` (plus ${(indexBytes / MiB).toFixed(2)} MiB of kept-position indices, if you keep them)`)

  // One head: which tokens were kept, and how their key norms compare with the dropped ones'.
  const layer = 0, head = 0
  const norms = keyNormsSync(layers[layer].keys).subarray(head * seqLen, (head + 1) * seqLen)
  const out = result.layers[layer]
  const k = out.keys.dims[2]
  const kept = out.indices!.subarray(head * k, (head + 1) * k)
  const isKept = new Uint8Array(seqLen)
  for (const p of kept) isKept[p] = 1
  let keptSum = 0, droppedSum = 0, maxKept = 0, minDropped = Infinity
  for (let t = 0; t < seqLen; t++) {
    if (isKept[t]) { keptSum += norms[t]; maxKept = Math.max(maxKept, norms[t]) }
    else { droppedSum += norms[t]; minDropped = Math.min(minDropped, norms[t]) }
  }
  const nDropped = seqLen - k
  console.log(`\nlayer ${layer}, head ${head}: kept ${k} of ${seqLen} tokens, those with the lowest key L2 norm`)
  const first = Array.from(kept.subarray(0, 16))
  const cell = (s: string): string => s.padStart(6)
  console.log('  first 16 kept positions: ' + first.map((p) => cell(String(p))).join(''))
  console.log('  their key norms:         ' + first.map((p) => cell(norms[p].toFixed(2))).join(''))
  // The kept key rows are copies of the input rows: check the first one.
  const row0 = (out.keys.data as Uint16Array).subarray(head * k * 128, head * k * 128 + 128)
  const src0 = layers[layer].keys.data.subarray((head * seqLen + first[0]) * 128, (head * seqLen + first[0]) * 128 + 128)
  console.log(`  kept row 0 = input row ${first[0]}: ${row0.every((v, i) => v === src0[i])} ` +
    `(first values ${Array.from(row0.subarray(0, 3), (v) => half(v).toFixed(3)).join(', ')}, ...)`)
  console.log(`  mean key norm: kept ${(keptSum / k).toFixed(3)}, dropped ${nDropped ? (droppedSum / nDropped).toFixed(3) : '-'}` +
    ` (${nDropped} dropped); largest kept ${maxKept.toFixed(3)} <= smallest dropped ${nDropped ? minDropped.toFixed(3) : '-'}`)
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err)
  process.exit(1)
})
