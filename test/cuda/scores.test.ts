// The CUDA scorers (native/cuda/kernels/scores.cuh: the fused kernel's phase A and the
// tokenScores kernel) against the CPU path, bit for bit: compress with every scorer ('kv-norm',
// 'keydiff', { project }, { scores }; keys, values and indices) and tokenScores, on random
// float16 / bfloat16 / float32 caches of several shapes with ragged lengths, exact ties, NaN,
// infinite and zero rows, sink and recent and both orders; then split rows, in place, and
// compressCache's one launch for every layer. The emulator's schedules and seeds vary.
import { expect, it } from 'vitest'
import { compressCacheSync, compressSync, tokenScores, tokenScoresSync, type CompressOptions, type Score } from '../../lib/index'
import type { OracleTensor } from '../oracle'
import { expectSameBits } from '../expect'
import { int, pick, rng, runSeed, type Rng } from '../random'
import { describeCuda, forceSplit, resetLaunchesAfterEach, schedule, SCHEDULES, toDevice, withDevice } from './gpu'
import { cacheScore, checkInPlace, expectDeviceResult, randomCache, scorerFor, type CacheSpec, type ScoresMix } from './scorer-cases'

const seed = runSeed()
const SCORERS = ['kv-norm', 'keydiff', 'project', 'scores'] as const
const CANONICAL_NAN = 0x7fc00000
// This suite's scores: some NaN, +-0, +-Inf and exact ties; its caches: exact ties, NaN, infinite and zero rows.
const SCORES: ScoresMix = { nan: 0.03, zero: 0.05, inf: 0.06, dup: 0.15 }
const CACHE: CacheSpec = { keys: { dupRows: 0.2, nanRows: 0.03, infRows: 0.02 }, values: { nanRows: 0.02, infRows: 0.02 }, zeroRows: 0.03 }

function randomCase(r: Rng) {
  const d = r() < 0.4 ? int(r, 1, 40) : pick(r, [64, 66, 72, 128])
  const s = Math.max(1, Math.round(Math.exp(r() * Math.log(1500))))
  let b = int(r, 1, 3), h = int(r, 1, 3)
  while (b * h * s * d > 60_000 && b * h > 1) (b > h ? (b = Math.ceil(b / 2)) : (h = Math.ceil(h / 2)))
  const o: CompressOptions = { order: pick(r, ['position', 'norm'] as const) }
  if (r() < 0.7) o.keepRatio = pick(r, [0.1, 0.4, 0.9, 1])
  else o.keep = int(r, 0, s)
  if (r() < 0.4) o.sink = int(r, 0, 8)
  if (r() < 0.4) o.recent = int(r, 0, 48)
  if (r() < 0.4) o.lengths = Array.from({ length: b }, () => int(r, 0, s))
  return { dims: [b, h, s, d], dv: r() < 0.6 ? d : int(r, 1, 96), o }
}

/** Device compress and tokenScores equal the host's, bit for bit. */
function checkCase(keys: OracleTensor, values: OracleTensor, o: CompressOptions, sc: { host: Score; device: Score }, what: string) {
  withDevice(keys, values, (dk, dv) => {
    const want = compressSync(keys, values, { ...o, score: sc.host })
    const got = compressSync(dk, dv, { ...o, score: sc.device })
    expectDeviceResult(got, want, what)
    const so = { score: sc.host, lengths: o.lengths }
    const hs = tokenScoresSync(keys, values, so)
    const ds = tokenScoresSync(dk, dv, { ...so, score: sc.device })
    expect(ds.dims, `${what}: tokenScores dims`).toEqual(keys.dims.slice(0, 3))
    const dsh = ds.download().data as Float32Array
    expectSameBits(dsh, hs, `${what}: tokenScores`)
    // padding positions hold the canonical NaN
    const [B, H, S] = keys.dims
    const bits = new Uint32Array(dsh.buffer, dsh.byteOffset, dsh.length)
    for (let b = 0; b < B; b++) {
      const len = o.lengths ? o.lengths[b] : S
      for (let h = 0; h < H; h++) {
        for (let t = len; t < S; t++) expect(bits[(b * H + h) * S + t], `${what}: padding b ${b} h ${h} t ${t}`).toBe(CANONICAL_NAN)
      }
    }
    ds.dispose()
  })
}

describeCuda('CUDA scorers', () => {
  resetLaunchesAfterEach()

  for (const scorer of SCORERS) {
    for (const type of ['float16', 'bfloat16', 'float32'] as const) {
      it(`${scorer}, ${type}: random caches, every schedule: device compress and tokenScores equal the host's (seed ${seed})`, () => {
        const r = rng(seed ^ (scorer.length * 131 + type.length))
        const shapes = type === 'float32' ? 1 : 3
        for (const sch of SCHEDULES) {
          for (let i = 0; i < shapes; i++) {
            schedule(sch, seed + i)
            const c = randomCase(r)
            const { keys, values } = randomCache(r, type, c.dims, c.dv, CACHE)
            const sc = scorerFor(r, scorer, c.dims, SCORES)
            try {
              checkCase(keys, values, c.o, sc, `${scorer} ${type} ${sch} case ${i} dims ${c.dims} dv ${c.dv} ${JSON.stringify(c.o)}`)
            } finally {
              sc.free()
            }
          }
        }
      })
    }
  }

  it(`split rows (2, 3, 5 blocks per row; keydiff keeps one): every scorer equals the host (seed ${seed})`, () => {
    const r = rng(seed + 7)
    for (const split of [2, 3, 5]) {
      for (const scorer of SCORERS) {
        const type = pick(r, ['float16', 'bfloat16'] as const)
        schedule(pick(r, SCHEDULES), seed + split)
        forceSplit(split)
        const dims = [1, int(r, 1, 2), int(r, 600, 2200), pick(r, [8, 13, 64, 128])]
        const { keys, values } = randomCache(r, type, dims, dims[3], CACHE)
        const o: CompressOptions = { keepRatio: pick(r, [0.1, 0.5]), sink: int(r, 0, 3), recent: int(r, 0, 40) }
        if (r() < 0.5) o.lengths = [int(r, 1, dims[2])]
        const sc = scorerFor(r, scorer, dims, SCORES)
        try {
          checkCase(keys, values, o, sc, `split ${split} ${scorer} ${type} ${dims} ${JSON.stringify(o)}`)
        } finally {
          sc.free()
        }
      }
    }
  })

  it(`compressInPlace with every scorer: the device buffers equal the host's (seed ${seed})`, () => {
    const r = rng(seed + 11)
    for (const sch of SCHEDULES) {
      for (const scorer of SCORERS) {
        schedule(sch, seed)
        const type = pick(r, ['float16', 'bfloat16'] as const)
        const dims = [int(r, 1, 2), int(r, 1, 3), int(r, 1, 700), pick(r, [8, 13, 64, 128])]
        const { keys, values } = randomCache(r, type, dims, dims[3], CACHE)
        const o: CompressOptions = { keepRatio: pick(r, [0.2, 0.6]), sink: int(r, 0, 4), recent: int(r, 0, 16) }
        if (r() < 0.5) o.lengths = Array.from({ length: dims[0] }, () => int(r, 0, dims[2]))
        const sc = scorerFor(r, scorer, dims, SCORES)
        try {
          checkInPlace(keys, values, o, sc, `in place ${sch} ${scorer} ${type} ${dims} ${JSON.stringify(o)}`)
        } finally {
          sc.free()
        }
      }
    }
  })

  it(`compressCache on device layers (one launch for all layers), each layer with its own project vectors or scores (seed ${seed})`, () => {
    const r = rng(seed + 13)
    const specs = [[1, 2, 300, 64], [1, 4, 77, 64], [1, 2, 512, 64]]
    for (const scorer of SCORERS) {
      const host = specs.map((dims) => randomCache(r, 'float16', dims, 64, CACHE))
      const dev = host.map((l) => ({ keys: toDevice(l.keys), values: toDevice(l.values) }))
      const per = specs.map((dims) => scorerFor(r, scorer, dims, SCORES))
      try {
        const o = { keepRatio: 0.3, sink: 2, recent: 8, order: pick(r, ['position', 'norm'] as const) }
        const want = compressCacheSync(host.map((l) => ({ keys: l.keys, values: l.values })), { ...o, score: cacheScore(scorer, per, 'host') })
        const got = compressCacheSync(dev, { ...o, score: cacheScore(scorer, per, 'device') })
        for (let l = 0; l < specs.length; l++) {
          const what = `${scorer} layer ${l}`
          expectSameBits(got.layers[l].indices as Int32Array, want.layers[l].indices as Int32Array, `${what}: indices`)
          expectSameBits(got.layers[l].keys.download().data, (want.layers[l].keys as OracleTensor).data, `${what}: keys`)
          expectSameBits(got.layers[l].values.download().data, (want.layers[l].values as OracleTensor).data, `${what}: values`)
          got.layers[l].keys.dispose()
          got.layers[l].values.dispose()
        }
      } finally {
        for (const l of dev) {
          l.keys.dispose()
          l.values.dispose()
        }
        for (const p of per) p.free()
      }
    }
  })

  it('tokenScores: the Promise form on device tensors resolves with the Sync result', async () => {
    const r = rng(seed + 17)
    const { keys, values } = randomCache(r, 'bfloat16', [2, 2, 333, 64], 64, CACHE)
    const dk = toDevice(keys), dv = toDevice(values)
    for (const score of ['keydiff', 'low-norm', 'high-norm'] as const) {
      const a = await tokenScores(dk, dv, { score, lengths: [333, 100] })
      expectSameBits(a.download().data, tokenScoresSync(keys, values, { score, lengths: [333, 100] }), `async ${score}`)
      a.dispose()
    }
    dk.dispose()
    dv.dispose()
  })
})
