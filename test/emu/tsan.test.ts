// kvtrim's kernels under the ThreadSanitizer build of the emulator (`npm run test:emu:tsan`,
// scripts/test-emu-tsan.sh): every GPU thread is a TSan fiber, so any two conflicting accesses
// that no barrier, __syncwarp, fence/atomic pair or launch boundary orders are reported, whatever
// the schedule. TSan costs 60-260x, so this is a subset of the CUDA suites' small shapes chosen
// to reach every kernel and code path once per schedule: compress_kernel with each copy unit
// (16, 4, 2 bytes), both orders, vector and scalar norms, ragged lengths with padding, sink and
// recent windows, low and high norm; split rows (cooperative, row_barrier); in place; the layers
// kernel; key norms; LMBA from weights and from a query window; ragged heads (a kept count per
// row: headKeep, the adaptive selection) with split rows, order 'norm', padding and in place. Results are checked against the
// oracle too. The script fails the run on any TSan report (they go to log files, not to vitest).
// Outside the TSan run (plain `vitest run`) it skips unless KVTRIM_EMU_TSAN_SUITE=1.
import { afterEach, expect, it } from 'vitest'
import {
  compress, compressCache, compressInPlace, keyNormsSync, layerUncertainty, layerUncertaintySync, tokenScoresSync,
  type CompressOptions,
} from '../../lib/index'
import * as oracle from '../oracle'
import { expectSameBits } from '../expect'
import { randomTensor, rng } from '../random'
import { describeCuda, forceSplit, schedule, SCHEDULES, toDevice } from '../cuda/gpu'

const run = process.env.KVTRIM_EMU_TSAN_SUITE === '1'
const describeTsan = run ? describeCuda : describeCuda.skip

type Case = { type: oracle.DType; dims: number[]; o: CompressOptions; split?: number; path: string }

// Each case names the path it is there for. Shapes are the smallest that reach it: TSan's cost
// grows with the number of GPU threads (512 per compress block) and barriers.
const COMPRESS: Case[] = [
  { path: '16-byte copies, vector norms, sink + recent', type: 'float16', dims: [1, 1, 200, 64], o: { keepRatio: 0.5, sink: 2, recent: 8 } },
  { path: 'order norm (bitonic sort), 4-byte copies, ragged lengths + padding, high norm', type: 'bfloat16', dims: [2, 1, 100, 60], o: { keepRatio: 0.4, order: 'norm', score: 'high-norm', lengths: [100, 50] } },
  { path: 'order norm with more kept tokens than threads (two gather tiles)', type: 'float16', dims: [1, 1, 1100, 8], o: { keepRatio: 0.55, order: 'norm' } },
  { path: 'fp32, scalar norms', type: 'float32', dims: [1, 1, 100, 13], o: { keepRatio: 0.3 } },
  { path: '2-byte copies, order norm, every middle token kept (no selection)', type: 'float16', dims: [1, 1, 60, 13], o: { keep: 55, sink: 4, recent: 4, order: 'norm' } },
  { path: 'no middle token kept', type: 'float16', dims: [1, 1, 60, 13], o: { keep: 10, sink: 4, recent: 6 } },
  { path: 'split rows x2 (cooperative, row barrier)', type: 'float16', dims: [1, 1, 260, 64], o: { keepRatio: 0.5, sink: 1, recent: 8 }, split: 2 },
  { path: 'split rows x3, ragged length', type: 'bfloat16', dims: [1, 1, 300, 8], o: { keepRatio: 0.3, lengths: [280] }, split: 3 },
  // the other scorers' phase A (kernels/scores.cuh): value-row norms, the dot, keydiff's anchor
  // (chunk sums in global scratch, the pairwise tree between barriers)
  { path: 'kv-norm (key and value rows, other widths)', type: 'float16', dims: [1, 1, 120, 64], o: { keepRatio: 0.5, sink: 1, recent: 4, score: 'kv-norm' } },
  { path: 'keydiff: anchor over 5 token chunks, ragged lengths', type: 'float16', dims: [2, 1, 150, 16], o: { keepRatio: 0.4, score: 'keydiff', lengths: [150, 70] } },
  { path: 'project, split rows x2', type: 'bfloat16', dims: [1, 1, 260, 8], o: { keepRatio: 0.5, score: { project: [0.5, -1, 0.25, 2, -0.75, 1, 0.125, -2] } }, split: 2 },
]
const IN_PLACE: Case[] = [
  { path: 'in place, 16-byte copies', type: 'float16', dims: [1, 1, 200, 64], o: { keepRatio: 0.5, sink: 2, recent: 8 } },
  { path: 'in place, 2-byte copies', type: 'bfloat16', dims: [1, 1, 100, 13], o: { keepRatio: 0.3 } },
]

// Ragged heads (docs/policies.md "Selection modes"): every (batch entry, head) row keeps its own
// count, so the rows of one launch select, pad and (split) synchronise differently. The counts
// below reach, in one launch, a row with no middle token kept, a row that keeps every token and
// rows that select.
type HeadCase = { type: oracle.DType; dims: number[]; o: CompressOptions & { headKeep?: number[] }; split?: number; path: string }
const HEADS: HeadCase[] = [
  { path: 'headKeep: a count per row, split rows x2, sink + recent', type: 'float16', dims: [1, 3, 200, 16], o: { headKeep: [9, 200, 100], sink: 1, recent: 8 }, split: 2 },
  { path: 'headKeep: order norm, ragged lengths + padding per head', type: 'bfloat16', dims: [2, 2, 100, 8], o: { headKeep: [40, 100, 5, 30], sink: 2, recent: 3, order: 'norm', lengths: [100, 50] } },
  { path: "selection 'adaptive' (device scores, host counts, compress), split rows x2", type: 'float16', dims: [1, 2, 260, 8], o: { keepRatio: 0.3, selection: 'adaptive', sink: 1, recent: 4 }, split: 2 },
]
const HEADS_IN_PLACE: HeadCase = { path: 'in place, headKeep', type: 'float16', dims: [1, 2, 200, 64], o: { headKeep: [60, 150], sink: 2, recent: 8 } }

// The oracle of a plan with per-row counts: each row's `headKeep` best (oracle.selectTop with
// the row's count as `keep`), gathered; rows past a head's count are zero rows with index -1.
function oracleHeads(keys: oracle.OracleTensor, values: oracle.OracleTensor, o: CompressOptions, headKeep: ArrayLike<number>) {
  const [B, H, S, D] = keys.dims
  const Dv = values.dims[3]
  const lens = Array.from({ length: B }, (_, b) => (o.lengths ? o.lengths[b] : S))
  const K = Math.max(0, ...Array.from(headKeep))
  const sc = oracle.scores(keys, values, o.score as oracle.OracleScore | undefined, lens)
  const make = (n: number) => (keys.type === 'float32' ? new Float32Array(n) : new Uint16Array(n))
  const outK = make(B * H * K * D), outV = make(B * H * K * Dv)
  const bits = (a: Float32Array | Uint16Array) => (a instanceof Float32Array ? new Uint32Array(a.buffer, a.byteOffset, a.length) : a)
  const [srcK, srcV, dstK, dstV] = [bits(keys.data), bits(values.data), bits(outK), bits(outV)]
  const indices = new Int32Array(B * H * K).fill(-1)
  for (let row = 0; row < B * H; row++) {
    const len = lens[Math.floor(row / H)]
    const kept = oracle.selectTop(sc.subarray(row * S, row * S + len), len, { sink: o.sink, recent: o.recent, order: o.order, keep: headKeep[row] })
    kept.forEach((pos, j) => {
      indices[row * K + j] = pos
      for (let x = 0; x < D; x++) dstK[(row * K + j) * D + x] = srcK[(row * S + pos) * D + x]
      for (let x = 0; x < Dv; x++) dstV[(row * K + j) * Dv + x] = srcV[(row * S + pos) * Dv + x]
    })
  }
  return { indices, keys: outK, values: outV, kept: K }
}

const SEED = 7

describeTsan('kvtrim kernels under ThreadSanitizer', () => {
  afterEach(() => {
    forceSplit(undefined)
    schedule('deterministic', 0)
  })

  // The asynchronous entry points run the launch off the event loop, so vitest's worker stays
  // responsive through minutes of TSan.
  for (const sch of SCHEDULES) {
    COMPRESS.forEach((c, i) => {
      it(`compress_kernel, ${c.path} (${sch})`, async () => {
        const r = rng(SEED + i)
        schedule(sch, SEED + i)
        forceSplit(c.split)
        const keys = randomTensor(r, c.type, c.dims, { dupRows: 0.2, nanRows: 0.03 })
        const values = randomTensor(r, c.type, c.dims)
        const want = oracle.compress(keys, values, c.o)
        const dk = toDevice(keys), dv = toDevice(values)
        const res = await compress(dk, dv, c.o)
        const what = `${sch} ${c.type} ${c.dims} split ${c.split ?? 1} ${JSON.stringify(c.o)}`
        expectSameBits(res.indices, want.indices, `${what}: indices`)
        expectSameBits(res.keys.download().data, want.keys.data, `${what}: keys`)
        expectSameBits(res.values.download().data, want.values.data, `${what}: values`)
        for (const t of [dk, dv, res.keys, res.values]) t.dispose()
      })
    })

    IN_PLACE.forEach((c, i) => {
      it(`compress_kernel ${c.path} (${sch})`, async () => {
        const r = rng(SEED + 10 + i)
        schedule(sch, SEED)
        const keys = randomTensor(r, c.type, c.dims, { dupRows: 0.2 })
        const values = randomTensor(r, c.type, c.dims)
        const want = oracle.compress(keys, values, c.o)
        const dk = toDevice(keys), dv = toDevice(values)
        const res = await compressInPlace(dk, dv, c.o)
        const what = `${sch} ${c.path} ${c.type} ${c.dims}`
        expectSameBits(res.indices, want.indices, `${what}: indices`)
        const [B, H, S, D] = c.dims
        const hk = dk.download().data, hv = dv.download().data
        const k = want.kept
        for (let row = 0; row < B * H; row++) {
          expectSameBits(hk.subarray(row * S * D, (row * S + k) * D), want.keys.data.subarray(row * k * D, (row + 1) * k * D), `${what}: keys row ${row}`)
          expectSameBits(hv.subarray(row * S * D, (row * S + k) * D), want.values.data.subarray(row * k * D, (row + 1) * k * D), `${what}: values row ${row}`)
        }
        dk.dispose()
        dv.dispose()
      })
    })

    HEADS.forEach((c, i) => {
      it(`compress_kernel, ragged heads, ${c.path} (${sch})`, async () => {
        const r = rng(SEED + 50 + i)
        schedule(sch, SEED + i)
        forceSplit(c.split)
        const keys = randomTensor(r, c.type, c.dims, { dupRows: 0.2, nanRows: 0.03 })
        const values = randomTensor(r, c.type, c.dims)
        const dk = toDevice(keys), dv = toDevice(values)
        const res = await compress(dk, dv, c.o)
        // the counts: headKeep's, or the host path's for the same selection (the CPU path and
        // native/core/selection.cc are checked against the contract elsewhere)
        const counts = c.o.headKeep ?? (await compress(keys, values, c.o)).headLengths
        const want = oracleHeads(keys, values, c.o, counts)
        const what = `${sch} ${c.type} ${c.dims} split ${c.split ?? 1} ${JSON.stringify(c.o)}`
        expect(Array.from(res.headLengths), `${what}: headLengths`).toEqual(Array.from(counts))
        expect(res.kept, `${what}: kept`).toBe(want.kept)
        expectSameBits(res.indices, want.indices, `${what}: indices`)
        expectSameBits(res.keys.download().data, want.keys, `${what}: keys`)
        expectSameBits(res.values.download().data, want.values, `${what}: values`)
        for (const t of [dk, dv, res.keys, res.values]) t.dispose()
      })
    })

    it(`compress_kernel ragged heads, ${HEADS_IN_PLACE.path} (${sch})`, async () => {
      const c = HEADS_IN_PLACE
      const r = rng(SEED + 60)
      schedule(sch, SEED)
      const keys = randomTensor(r, c.type, c.dims, { dupRows: 0.2 })
      const values = randomTensor(r, c.type, c.dims)
      const counts = c.o.headKeep as number[]
      const want = oracleHeads(keys, values, c.o, counts)
      const dk = toDevice(keys), dv = toDevice(values)
      const res = await compressInPlace(dk, dv, c.o)
      const what = `${sch} ${c.path} ${c.type} ${c.dims}`
      expect(Array.from(res.headLengths), `${what}: headLengths`).toEqual(counts)
      expectSameBits(res.indices, want.indices, `${what}: indices`)
      const [B, H, S, D] = c.dims
      const K = want.kept
      const hk = dk.download().data, hv = dv.download().data
      for (let row = 0; row < B * H; row++) {
        const k = counts[row]
        // the row's kept rows at its front; the rest as it was
        expectSameBits(hk.subarray(row * S * D, (row * S + k) * D), want.keys.subarray(row * K * D, (row * K + k) * D), `${what}: keys row ${row}`)
        expectSameBits(hv.subarray(row * S * D, (row * S + k) * D), want.values.subarray(row * K * D, (row * K + k) * D), `${what}: values row ${row}`)
        expectSameBits(hk.subarray((row * S + k) * D, (row + 1) * S * D), keys.data.subarray((row * S + k) * D, (row + 1) * S * D), `${what}: keys row ${row} past k`)
      }
      dk.dispose()
      dv.dispose()
    })

    it(`compress_layers_kernel: every layer in one launch (${sch})`, async () => {
      const r = rng(SEED + 20)
      schedule(sch, SEED)
      const host = [[1, 1, 80, 16], [1, 1, 100, 16]].map((dims) => ({
        keys: randomTensor(r, 'float16', dims, { dupRows: 0.2 }), values: randomTensor(r, 'float16', dims),
      }))
      const layers = host.map((l) => ({ keys: toDevice(l.keys), values: toDevice(l.values) }))
      const o = { keepRatio: 0.5, sink: 1, recent: 4 }
      const res = await compressCache(layers, o)
      host.forEach((l, i) => {
        const want = oracle.compress(l.keys, l.values, o)
        expectSameBits(res.layers[i].indices as Int32Array, want.indices, `${sch} layer ${i} indices`)
        expectSameBits(res.layers[i].keys.download().data, want.keys.data, `${sch} layer ${i} keys`)
        expectSameBits(res.layers[i].values.download().data, want.values.data, `${sch} layer ${i} values`)
      })
    })

    it(`token_scores_kernel: keydiff and kv-norm, padding (${sch})`, () => {
      const r = rng(SEED + 35)
      schedule(sch, SEED)
      const keys = randomTensor(r, 'float16', [2, 1, 90, 16], { nanRows: 0.05 }), values = randomTensor(r, 'float16', [2, 1, 90, 8])
      for (const score of ['keydiff', 'kv-norm'] as const) {
        const got = tokenScoresSync(toDevice(keys), toDevice(values), { score, lengths: [90, 40] }).download().data
        expectSameBits(got, oracle.scores(keys, values, score, [90, 40]), `${sch} ${score} scores`)
      }
    })

    it(`key_norms_kernel: vector and scalar rows (${sch})`, () => {
      const r = rng(SEED + 30)
      schedule(sch, SEED)
      for (const [type, dims] of [['float16', [1, 1, 8, 128]], ['float32', [1, 1, 8, 60]]] as const) {
        const keys = randomTensor(r, type, [...dims])
        expectSameBits(keyNormsSync(toDevice(keys)).download().data, oracle.keyNorms(keys), `${sch} ${type} norms`)
      }
    })

    it(`uncertainty_kernel: attention weights and a causal GQA query window (${sch})`, async () => {
      const r = rng(SEED + 40)
      schedule(sch, SEED)
      const n = 2 * 100
      const att = { type: 'float32' as const, dims: [1, 1, 2, 100], data: Float32Array.from({ length: n }, () => Math.fround(r())) }
      const hostA = layerUncertaintySync([{ attention: att }], { threshold: 0.9 })
      const devA = await layerUncertainty([{ attention: toDevice(att) }], { threshold: 0.9 })
      expect(Array.from(devA.counts[0])).toEqual(Array.from(hostA.counts[0]))
      const queries = randomTensor(r, 'float16', [1, 2, 2, 16]), keys = randomTensor(r, 'float16', [1, 1, 40, 16])
      const hostW = layerUncertaintySync([{ queries, keys }], { causal: true, threshold: 0.9 })
      const devW = await layerUncertainty([{ queries: toDevice(queries), keys: toDevice(keys) }], { causal: true, threshold: 0.9 })
      expect(Array.from(devW.counts[0])).toEqual(Array.from(hostW.counts[0]))
    })
  }
})
