#!/usr/bin/env node
// Per kernel and architecture: registers, spills, stack and shared memory from nvcc's
// `-Xptxas -v`, and the occupancy they allow on sm_90 (H100: 64K registers, 228 KiB shared
// memory, 2048 threads and 32 blocks per SM). Prints a Markdown table (for BENCHMARKS.md).
// Usage: node scripts/ptxas-report.js [archs, default 75,80,86,89,90]
'use strict'
const path = require('node:path')

const root = path.join(__dirname, '..')
const archs = (process.argv[2] || '75,80,86,89,90').split(',')
const gencode = archs.flatMap((a) => ['-gencode', `arch=compute_${a},code=sm_${a}`])
const { spawnSync } = require('node:child_process')
// ptxas writes its -v lines to stderr
let text = ''
for (const file of ['native/cuda/ops.cu', 'native/cuda/lmba.cu']) {
  const r = spawnSync('nvcc', ['-std=c++17', '-O3', '--fmad=false', '-Xptxas=-v', '-c', '-o', '/dev/null',
    ...gencode, path.join(root, file)], { encoding: 'utf8', maxBuffer: 1 << 26 })
  if (r.status !== 0) { console.error(r.stderr); process.exit(1) }
  text += (r.stdout || '') + (r.stderr || '')
}
const demangle = (names) => spawnSync('c++filt', { input: names.join('\n'), encoding: 'utf8' }).stdout.trim().split('\n')

const rows = []
let current = null
for (const line of text.split('\n')) {
  let m = line.match(/Compiling entry function '(\w+)' for '(sm_\d+)'/)
  if (m) { current = { mangled: m[1], arch: m[2] }; continue }
  m = line.match(/(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads/)
  if (m && current) Object.assign(current, { stack: +m[1], spillStores: +m[2], spillLoads: +m[3] })
  m = line.match(/Used (\d+) registers(?:, used \d+ barriers)?(?:, (\d+) bytes smem)?/)
  if (m && current) { Object.assign(current, { regs: +m[1], smem: +(m[2] || 0) }); rows.push(current); current = null }
}
const names = demangle(rows.map((x) => x.mangled))
rows.forEach((x, i) => { x.name = names[i].replace(/^void /, '').replace(/kvtrim::cuda::/g, '').replace(/\(.*$/, '') })

// Occupancy on sm_90: 512 threads for compress (12.5 KiB dynamic smem), 256 for key norms.
function occupancy(x) {
  const compress = x.name.startsWith('compress_')
  const threads = compress ? 512 : x.name.startsWith('key_norms') || x.name.startsWith('lmba') ? 256 : 1
  const dyn = compress ? 4 * (2048 + 40) + 8 * 512 : x.name.startsWith('lmba') ? 64 : 0
  const warps = Math.ceil(threads / 32)
  const regsPerWarp = Math.ceil((x.regs * 32) / 256) * 256
  const byRegs = Math.floor(65536 / (regsPerWarp * warps))
  const bySmem = Math.floor((228 * 1024) / (x.smem + dyn + 1024))
  const blocks = Math.min(byRegs, bySmem, Math.floor(2048 / threads), 32)
  return { threads, blocks, pct: Math.round((100 * blocks * threads) / 2048) }
}

// One row per kernel: registers per architecture, spills and stack summed over them.
const byName = new Map()
for (const x of rows) {
  if (!byName.has(x.name)) byName.set(x.name, [])
  byName.get(x.name).push(x)
}
console.log(`| kernel | registers (${archs.map((a) => 'sm_' + a).join(' / ')}) | spill bytes | stack bytes | static smem | threads | blocks/SM, occupancy on sm_90 |`)
console.log('|---|---|---|---|---|---|---|')
for (const [name, xs] of [...byName].sort((a, b) => a[0].localeCompare(b[0]))) {
  const regs = archs.map((a) => xs.find((x) => x.arch === 'sm_' + a)?.regs ?? '-').join(' / ')
  const spill = xs.reduce((t, x) => t + x.spillStores + x.spillLoads, 0)
  const stack = Math.max(...xs.map((x) => x.stack))
  const sm90 = xs.find((x) => x.arch === 'sm_90')
  const o = sm90 ? occupancy(sm90) : { threads: '-', blocks: '-', pct: '-' }
  console.log(`| \`${name}\` | ${regs} | ${spill} | ${stack} | ${Math.max(...xs.map((x) => x.smem))} | ${o.threads} | ${o.blocks}, ${o.pct}% |`)
}
const spills = rows.filter((x) => x.spillStores || x.spillLoads || x.stack)
if (spills.length) { console.error(`spills or stack in ${spills.length} kernels`); process.exitCode = 1 }
