/**
 * Memory and input-safety benchmark:  npx tsx bench/memory.ts [--quick]
 *
 *  1. A synchronous loop that never yields to the event loop: 1,000 compressSync calls on random
 *     fp16 [1, 8, 4096, 128] at keepRatio 0.5 (outputs 8 MiB per call), a full GC every 10 calls
 *     (the reproduction of issue 12). RSS and V8's external memory after call 1, 100, 500 and
 *     1,000, and the output pool's figures. Goal: flat after warm-up, growth between call 100 and
 *     1,000 within 2x one call's output.
 *  2. The Promise form on [1, 8, 32768, 128] fp16 keepRatio 0.5 (64 MiB per input): as shipped
 *     (inputs borrowed, their buffers marked untransferable) against a defensive copy of both
 *     inputs before the call (into recycled buffers: the cheapest copy kvtrim could make). For each: the time the event loop is blocked (until compress()
 *     returns) and the time until the Promise settles; median of 11 runs after 2 warm-ups, with
 *     a GC and 20 ms of event loop before each.
 * Prints tables and writes bench/results/memory.json. --quick: 300 loop calls, 3 runs.
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import * as v8 from 'node:v8'
import * as vm from 'node:vm'
import { backend, compress, compressSync, memoryStats } from '../lib/index'
import { randomTensor, rng } from '../test/random'

const QUICK = process.argv.includes('--quick')
const MiB = 2 ** 20
v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void
const now = (): number => Number(process.hrtime.bigint()) / 1e6
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const settle = async (): Promise<void> => {
  gc()
  await new Promise((resolve) => setTimeout(resolve, 20))
}

function syncLoop(): { calls: number; rssMiB: number; externalMiB: number; pool: ReturnType<typeof memoryStats> }[] {
  const r = rng(12)
  const dims = [1, 8, 4096, 128]
  const keys = randomTensor(r, 'float16', dims), values = randomTensor(r, 'float16', dims)
  const marks = QUICK ? [1, 100, 300] : [1, 100, 500, 1000]
  const out = []
  for (let i = 1; i <= marks[marks.length - 1]; i++) {
    compressSync(keys, values, { keepRatio: 0.5 })
    if (i % 10 === 0) gc()
    if (marks.includes(i)) {
      const m = process.memoryUsage()
      out.push({ calls: i, rssMiB: m.rss / MiB, externalMiB: m.external / MiB, pool: memoryStats() })
    }
  }
  return out
}

async function asyncInputs(): Promise<{ mode: string; blockedMs: number; settledMs: number }[]> {
  const r = rng(13)
  const dims = [1, 8, 32768, 128]
  const keys = randomTensor(r, 'float16', dims), values = randomTensor(r, 'float16', dims)
  const runs = QUICK ? 3 : 11, warmups = QUICK ? 1 : 2
  const result = []
  // The cheapest defensive copy kvtrim could make: into recycled buffers (no page faults), as
  // its output pool would give it.
  const kc = new Uint16Array(keys.data.length), vc = new Uint16Array(values.data.length)
  for (const mode of ['borrowed (as shipped)', 'defensive copy of both inputs']) {
    const blocked: number[] = [], settled: number[] = []
    for (let i = 0; i < warmups + runs; i++) {
      await settle()
      const t0 = now()
      let p
      if (mode.startsWith('defensive')) {
        kc.set(keys.data as Uint16Array)
        vc.set(values.data as Uint16Array)
        p = compress({ ...keys, data: kc }, { ...values, data: vc }, { keepRatio: 0.5 })
      } else {
        p = compress(keys, values, { keepRatio: 0.5 })
      }
      const t1 = now()
      await p
      const t2 = now()
      if (i >= warmups) {
        blocked.push(t1 - t0)
        settled.push(t2 - t0)
      }
    }
    result.push({ mode, blockedMs: median(blocked), settledMs: median(settled) })
  }
  return result
}

async function main(): Promise<void> {
  const started = new Date()
  const cpu = os.cpus()[0]?.model ?? 'unknown'
  console.log(`kvtrim memory benchmark${QUICK ? ' (--quick)' : ''}, ${started.toISOString()}, ${cpu}, ${os.cpus().length} cores, Node ${process.version}, isa ${backend().cpu.isa}, ${backend().cpu.threads} threads`)
  const loop = syncLoop()
  console.log('\n1. compressSync in a loop that never yields, [1,8,4096,128] fp16 keepRatio 0.5 (8 MiB out per call), gc() every 10 calls\n')
  console.log('| calls | RSS MiB | external MiB | pool in use MiB | pool idle MiB | declined |')
  console.log('|---:|---:|---:|---:|---:|---:|')
  for (const m of loop) {
    console.log(`| ${m.calls} | ${m.rssMiB.toFixed(0)} | ${m.externalMiB.toFixed(0)} | ${(m.pool.pooledInUse / MiB).toFixed(0)} | ${(m.pool.pooledIdle / MiB).toFixed(0)} | ${m.pool.declined} |`)
  }
  const growth = loop[loop.length - 1].rssMiB - loop[1].rssMiB
  console.log(`\nRSS growth from call 100 to ${loop[loop.length - 1].calls}: ${growth.toFixed(0)} MiB (goal: within 2 x 8 MiB)`)
  const inputs = await asyncInputs()
  console.log('\n2. compress() on [1,8,32768,128] fp16 keepRatio 0.5 (two 64 MiB inputs), median of runs\n')
  console.log('| inputs | event loop blocked ms | settled ms |')
  console.log('|---|---:|---:|')
  for (const x of inputs) console.log(`| ${x.mode} | ${x.blockedMs.toFixed(2)} | ${x.settledMs.toFixed(2)} |`)
  const out = path.join(__dirname, 'results', 'memory.json')
  fs.mkdirSync(path.dirname(out), { recursive: true })
  fs.writeFileSync(out, JSON.stringify({ date: started.toISOString(), cpu, quick: QUICK, node: process.version, loop, inputs }, null, 2) + '\n')
  console.log(`\nwrote ${path.relative(process.cwd(), out)}`)
}

void main()
