// GPU microbenchmark of the fused compress (kernels/compress.cuh), run with `npm run bench:gpu`.
//
// On a GPU: the card's device-to-device copy bandwidth (cudaMemcpy, 1 GiB, median), then per
// shape and keepRatio the compress time (CUDA events around each call, 3 warm-ups, median of 20,
// input sets rotated so they do not sit in L2), the bytes that must move (read K once; read and
// write the kept K and V rows), the fraction of the copy bandwidth that achieves, and -- when
// python3 with torch is present -- the PyTorch reference (norm, argsort, gather, slice, as
// l2compress does) on the same shapes, and the speedup.
// Without a GPU: per shape, the bytes the kernel design moves against the floor and the launch
// geometry it would use on an H100 (from the emulator build's H100 properties, if built).
import { execFileSync } from 'node:child_process'
import * as path from 'node:path'
import { randomFillSync } from 'node:crypto'
import { backend, compress, tensor, type CompressOptions, type DeviceTensor } from '../lib/index'
import { devHooks, rawBinding } from '../lib/dev'
import type { Binding, DevHooks, NativeCompressOptions, NativeDeviceTensor } from '../binding'

const SHAPES: number[][] = [
  [1, 8, 4096, 128], [1, 8, 32768, 128], [1, 8, 131072, 128],
  [8, 32, 4096, 128], [16, 8, 8192, 128], [1, 32, 32768, 64],
]
const RATIOS = [0.5, 0.1]
const ESZ = 2 // fp16

const mib = (b: number) => (b / 2 ** 20).toFixed(1)
const median = (xs: ArrayLike<number>) => Array.from(xs).sort((a, b) => a - b)[Math.floor(xs.length / 2)]

function bytes(dims: number[], ratio: number) {
  const [b, h, s, d] = dims
  const k = Math.ceil(ratio * s)
  const floor = b * h * s * d * ESZ + 4 * b * h * k * d * ESZ
  // the design: plus 4-byte rank keys written once and read by 3 radix rounds and the compaction
  const design = floor + b * h * s * 4 * 5 + b * h * k * 4
  return { k, floor, design }
}

function options(ratio: number): NativeCompressOptions {
  return { keepRatio: ratio, order: 'position', score: 'low-norm', sink: 0, recent: 0 }
}

function torchReference(): Record<string, number> | undefined {
  try {
    const list = SHAPES.flatMap((s) => RATIOS.map((r) => [...s, r]))
    const out = execFileSync('python3', [path.join(__dirname, 'torch_ref.py'), JSON.stringify(list)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    return JSON.parse(out.trim().split('\n').pop() as string)
  } catch {
    return undefined
  }
}

// The GPU build with dev hooks (`npm run build:dev`): timing and geometry are test tools.
function onGpu(b: Binding, hooks: DevHooks) {
  const info = backend()
  const dev = info.cuda.devices[0]
  console.log(`device: ${dev.name} (cc ${dev.computeCapability}, ${dev.multiprocessors} SMs), driver ${info.cuda.driverVersion}, runtime ${info.cuda.runtimeVersion}`)
  const copy = hooks.copyBandwidth(0, 2 ** 30, 20)
  console.log(`device-to-device copy: ${(copy / 1e9).toFixed(0)} GB/s moved (read + write)`)
  const torch = torchReference()
  console.log(torch ? 'PyTorch reference: measured' : 'PyTorch reference: python3 with torch not found, skipped')
  const rows: string[] = []
  const json: unknown[] = []
  for (const dims of SHAPES) {
    const n = dims.reduce((a, c) => a * c, 1)
    const host = new Uint16Array(n)
    randomFillSync(host)
    for (let i = 0; i < n; i++) host[i] = (host[i] & 0x83ff) | 0x3400 // finite, |x| in [0.25, 0.5)
    const sets = Math.max(2, Math.min(6, Math.ceil((2 * 50 * 2 ** 20) / (2 * n * ESZ))))
    const ks: DeviceTensor[] = [], vs: DeviceTensor[] = []
    for (let i = 0; i < sets; i++) {
      ks.push(tensor(host, dims, { type: 'float16', device: 0 }) as DeviceTensor)
      vs.push(tensor(host, dims, { type: 'float16', device: 0 }) as DeviceTensor)
    }
    for (const ratio of RATIOS) {
      const { k, floor, design } = bytes(dims, ratio)
      const [B, H, , D] = dims
      const outs = ks.map(() => ({
        k: new b.DeviceBuffer(0, B * H * k * D * ESZ), v: new b.DeviceBuffer(0, B * H * k * D * ESZ), i: new b.DeviceBuffer(0, B * H * k * 4),
      }))
      const nk: NativeDeviceTensor[] = ks.map((t) => t.native()), nv = vs.map((t) => t.native())
      const ms = median(hooks.benchCompress(nk, nv, options(ratio), outs.map((o) => o.k), outs.map((o) => o.v), outs.map((o) => o.i), 3, 20))
      const geo = hooks.geometry(nk[0], nv[0], options(ratio))
      outs.forEach((o) => { o.k.free(); o.v.free(); o.i.free() })
      const frac = floor / (ms * 1e-3) / copy
      const ref = torch?.[`${dims.join(',')},${ratio}`]
      rows.push(`| [${dims.join(',')}] | ${ratio} | ${k} | ${ms.toFixed(3)} | ${mib(floor)} | ${(floor / (ms * 1e-3) / 1e9).toFixed(0)} | ${(100 * frac).toFixed(0)}% | ${geo.blocksPerRow} x ${geo.blocks / geo.blocksPerRow} | ${ref ? ref.toFixed(3) : '-'} | ${ref ? (ref / ms).toFixed(1) + 'x' : '-'} |`)
      json.push({ dims, ratio, k, ms, floorBytes: floor, designBytes: design, fractionOfCopy: frac, geometry: geo, torchMs: ref })
    }
    ks.forEach((t) => t.dispose())
    vs.forEach((t) => t.dispose())
  }
  console.log('\n| shape | keep | k | ms | MiB floor | GB/s | of copy bw | blocks/row x rows | torch ms | speedup |')
  console.log('|---|---|---|---|---|---|---|---|---|---|')
  for (const r of rows) console.log(r)
  return json
}

function withoutGpu(reason: string) {
  console.log(`no usable GPU (${reason}): the bytes the design moves, and its launch geometry on an H100`)
  let emu: Binding | undefined
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    emu = require(path.join(__dirname, '..', 'build-emu', 'Release', 'kvtrim.node')) as Binding
    if (!emu.dev) throw new Error('no dev hooks')
  } catch {
    console.log('(geometry needs the emulator build: npm run build:emu)')
  }
  console.log('\n| shape | keep | k | MiB floor | MiB design | design / floor | blocks/row | blocks | waves on 132 SMs |')
  console.log('|---|---|---|---|---|---|---|---|---|')
  for (const dims of SHAPES) {
    for (const ratio of RATIOS) {
      const { k, floor, design } = bytes(dims, ratio)
      let geo = '- | - | -'
      if (emu) {
        // Fake, never dereferenced device pointers: the geometry needs only shapes and alignment.
        const n = dims.reduce((a, c) => a * c, 1) * ESZ
        const t: NativeDeviceTensor = { type: 'float16', buffer: new emu.DeviceBuffer(0, n, 1n << 20n), dims }
        const g = (emu.dev as DevHooks).geometry(t, t, options(ratio))
        geo = `${g.blocksPerRow} | ${g.blocks} | ${(g.blocks / g.residentBlocks).toFixed(2)}`
      }
      console.log(`| [${dims.join(',')}] | ${ratio} | ${k} | ${mib(floor)} | ${mib(design)} | ${(design / floor).toFixed(3)} | ${geo} |`)
    }
  }
}

// The selection modes (docs/policies.md "Selection modes") against the fused per-head compress,
// through the facade as a caller runs them: wall clock per awaited call (median of `reps`), so
// the ratio includes the two-pass cost (tokenScores, the counts on the host after a scores copy,
// then compress of the given scores). One shape; KVTRIM_BENCH_SMOKE=1 runs a tiny one (the
// emulator: checks the code path, not the speed).
async function selectionRows(dims: number[], reps: number) {
  const n = dims.reduce((a, c) => a * c, 1)
  const host = new Uint16Array(n)
  randomFillSync(host)
  for (let i = 0; i < n; i++) host[i] = (host[i] & 0x83ff) | 0x3400
  const k = tensor(host, dims, { type: 'float16', device: 0 }) as DeviceTensor
  const v = tensor(host, dims, { type: 'float16', device: 0 }) as DeviceTensor
  const threshold = -Math.sqrt(dims[3] * 0.375 ** 2) // about the median low-norm score of this data
  const cases: [string, CompressOptions][] = [
    ['per-head, low-norm', { keepRatio: 0.5 }],
    ['adaptive, low-norm', { keepRatio: 0.5, selection: 'adaptive' }],
    ['adaptive, keydiff', { keepRatio: 0.5, selection: 'adaptive', score: 'keydiff' }],
    ['threshold, low-norm', { selection: { threshold } }],
  ]
  const rows: string[] = []
  let base = 0
  for (const [name, o] of cases) {
    const times: number[] = []
    for (let r = 0; r < reps + 2; r++) {
      const t0 = process.hrtime.bigint()
      const res = await compress(k, v, o)
      const ms = Number(process.hrtime.bigint() - t0) / 1e6
      res.keys.dispose()
      res.values.dispose()
      if (r >= 2) times.push(ms)
    }
    const ms = median(times)
    if (base === 0) base = ms
    rows.push(`| ${name} | ${ms.toFixed(3)} | ${(ms / base).toFixed(2)} |`)
  }
  k.dispose()
  v.dispose()
  console.log(`\nselection modes, [${dims.join(',')}] fp16, keep 0.5, awaited compress (wall clock, median of ${reps})`)
  console.log('| selection | ms | x per-head |')
  console.log('|---|---|---|')
  for (const r of rows) console.log(r)
}

async function main() {
  const info = backend()
  if (process.env.KVTRIM_BENCH_SMOKE === '1' && info.cuda.usable) return selectionRows([1, 2, 256, 64], 2)
  if (info.cuda.usable && !info.cuda.emulated) {
    onGpu(rawBinding(), devHooks())
    await selectionRows([1, 8, 32768, 128], 10)
  } else withoutGpu(info.cuda.reason || 'emulated')
}
void main()
