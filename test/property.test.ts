// Property tests of the TypeScript facade (fast-check): random shapes, data and option sets give
// either the plain-TS oracle's result bit for bit or a KvtrimError with the code the contract's
// validation (written out below, one fault at a time) says; malformed tensors and arbitrary
// values give a KvtrimError with a code, never another error type and never a crash. Every run
// draws a fresh seed, printed in the test names and by fast-check on failure; KVTRIM_SEED=<n>
// replays one; KVTRIM_PROPERTY_RUNS=<factor> runs longer.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import * as kvtrim from '../lib/index'
import * as transformers from '../lib/cache/transformers'
import { apportionBulk, apportionLoop } from '../lib/cache/budgets'
import { compress as oracleCompress, keyNorms as oracleNorms, type DType, type OracleOptions, type OracleTensor } from './oracle'
import { expectSameBits } from './expect'
import { randomTensor, rng, runSeed } from './random'

const { compress, compressInPlaceSync, compressSync, compressCacheSync, keyNormsSync, KvtrimError } = kvtrim
const seed = runSeed()
// KVTRIM_PROPERTY_RUNS=<factor> multiplies the run counts (a longer hunt than CI's).
const factor = Number(process.env.KVTRIM_PROPERTY_RUNS ?? 1)
const params = (numRuns: number): fc.Parameters<unknown> => ({ seed, numRuns: Math.max(1, Math.round(numRuns * factor)), endOnFailure: true })

// ---- shapes and data -----------------------------------------------------------------------

interface Shape {
  type: DType
  B: number
  H: number
  S: number
  D: number
  Dv: number
  data: number
  spec: { dupRows: number; nanRows: number; infRows: number }
}

const shapeArb: fc.Arbitrary<Shape> = fc.record({
  type: fc.constantFrom<DType>('float16', 'bfloat16', 'float32'),
  B: fc.integer({ min: 0, max: 3 }),
  H: fc.integer({ min: 0, max: 3 }),
  S: fc.oneof(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 13, max: 40 })),
  D: fc.oneof(fc.integer({ min: 1, max: 20 }), fc.constantFrom(64, 128, 130)),
  Dv: fc.integer({ min: 1, max: 20 }),
  data: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  spec: fc.record({
    dupRows: fc.constantFrom(0, 0, 0.3, 0.8),
    nanRows: fc.constantFrom(0, 0, 0.15),
    infRows: fc.constantFrom(0, 0, 0.15),
  }),
})

const ONE = { float16: 0x3c00, bfloat16: 0x3f80, float32: 1 } as const

/** Random data of the shape (never all zeros: one element is set when every one is 0). */
function tensors(s: Shape): { keys: OracleTensor; values: OracleTensor } {
  const r = rng(s.data)
  const keys = randomTensor(r, s.type, [s.B, s.H, s.S, s.D], s.spec)
  const values = randomTensor(r, s.type, [s.B, s.H, s.S, s.Dv])
  for (const t of [keys, values]) {
    if (t.data.length > 0 && t.data.every((x) => x === 0)) t.data[t.data.length >> 1] = ONE[s.type]
  }
  return { keys, values }
}

const copy = (t: OracleTensor): OracleTensor => ({ type: t.type, data: t.data.slice(), dims: [...t.dims] })

// ---- options, and the code the contract's validation gives for each fault -----------------

type Fault =
  | 'none'
  | 'keepRatio'
  | 'keep'
  | 'both'
  | 'neither'
  | 'order'
  | 'score'
  | 'sink'
  | 'recent'
  | 'lengthsCount'
  | 'lengthsValue'
  | 'lengthsType'
  | 'unknownOption'
  | 'stream'
  | 'notAnObject'

/** The contract's validation of compress's options (README "KvtrimError", DESIGN "Operations"): the code of one fault. */
const CODE: Record<Exclude<Fault, 'none'>, string> = {
  keepRatio: 'INVALID_KEEP_RATIO', // not a number, or outside (0, 1]
  keep: 'INVALID_KEEP', // not an integer, or outside [0, seqLen]
  both: 'INVALID_OPTION',
  neither: 'INVALID_OPTION',
  order: 'INVALID_OPTION',
  score: 'INVALID_OPTION',
  sink: 'INVALID_SINK', // not an integer in [0, 2^31 - 1]
  recent: 'INVALID_RECENT',
  lengthsCount: 'INVALID_LENGTHS', // one entry per batch entry
  lengthsValue: 'INVALID_LENGTHS', // each an integer in [0, capacity]
  lengthsType: 'INVALID_LENGTHS',
  unknownOption: 'INVALID_OPTION',
  stream: 'INVALID_OPTION', // host tensors take no stream
  notAnObject: 'INVALID_ARGUMENT',
}

interface OptionCase {
  fault: Fault
  options: unknown
  /** the oracle's options when fault is 'none' */
  oracle: OracleOptions
}

const FAULTS: Fault[] = ['keepRatio', 'keep', 'both', 'neither', 'order', 'score', 'sink', 'recent', 'lengthsCount', 'lengthsValue', 'lengthsType', 'unknownOption', 'stream', 'notAnObject']

function optionArb(s: Shape, inPlace: boolean): fc.Arbitrary<OptionCase> {
  const { S, B } = s
  const ratio = fc.oneof(
    fc.double({ min: Number.MIN_VALUE, max: 1, noNaN: true }),
    fc.constantFrom(1, 0.5, 0.07, 1 / 3, 0.9999999999999999, Number.MIN_VALUE, 1e-300),
  )
  const count = (max: number) => fc.integer({ min: 0, max })
  return fc
    .record({
      fault: fc.oneof({ weight: 3, arbitrary: fc.constant<Fault>('none') }, { weight: 2, arbitrary: fc.constantFrom(...FAULTS) }),
      byRatio: fc.boolean(),
      ratio,
      keep: count(S),
      order: fc.constantFrom(undefined, 'position', 'norm'),
      score: fc.constantFrom(undefined, 'low-norm', 'high-norm'),
      sink: fc.option(count(S + 3), { nil: undefined }),
      recent: fc.option(count(S + 3), { nil: undefined }),
      lengths: fc.option(fc.array(count(S), { minLength: B, maxLength: B }), { nil: undefined }),
      typed: fc.boolean(),
      badRatio: fc.constantFrom(0, -0, -0.1, 1.0000000000000002, 2, NaN, Infinity, -Infinity, '0.5', null, 1n),
      badKeep: fc.constantFrom(-1, S + 1, S + 100, 1.5, NaN, Infinity, '2', null, 2 ** 53),
      badCount: fc.constantFrom(-1, 0.5, NaN, Infinity, -Infinity, '1', 2 ** 31, 2 ** 53),
      badWord: fc.constantFrom('random', '', 'Position', 5, null as unknown as string),
      badLength: fc.constantFrom(-1, S + 1, 1.5, NaN, '1', null),
      badLengths: fc.constantFrom<unknown>('abc', 5, { length: 1, 0: 1 }, new DataView(new ArrayBuffer(8)), new BigInt64Array(Math.max(1, B)), [1n]),
      at: fc.nat(),
      unknown: fc.constantFrom('keepratio', 'Keep', 'foo', 'length', 'pruneAfter'),
      stream: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      notObject: fc.constantFrom<unknown>(null, undefined, 0.5, 'keepRatio', [0.5], true),
    })
    .map((g): OptionCase => {
      let fault = g.fault
      // faults that cannot happen on this shape become other faults
      if (fault === 'lengthsValue' && B === 0) fault = 'lengthsCount'
      if ((fault === 'order' || fault === 'score') && g.badWord === null) fault = 'keep'
      const o: Record<string, unknown> = {}
      const oracle: OracleOptions = {}
      if (g.byRatio) o.keepRatio = oracle.keepRatio = g.ratio
      else o.keep = oracle.keep = g.keep
      const order = inPlace ? (g.order === 'norm' ? 'position' : g.order) : g.order
      if (order !== undefined) o.order = oracle.order = order
      if (g.score !== undefined) o.score = oracle.score = g.score
      if (g.sink !== undefined) o.sink = oracle.sink = g.sink
      if (g.recent !== undefined) o.recent = oracle.recent = g.recent
      if (g.lengths !== undefined) o.lengths = oracle.lengths = g.typed ? Int32Array.from(g.lengths) : g.lengths
      switch (fault) {
        case 'keepRatio':
          delete o.keep
          o.keepRatio = g.badRatio
          break
        case 'keep':
          delete o.keepRatio
          o.keep = g.badKeep
          break
        case 'both':
          o.keepRatio = g.ratio
          o.keep = g.keep
          break
        case 'neither':
          delete o.keepRatio
          delete o.keep
          break
        case 'order':
          o.order = g.badWord
          break
        case 'score':
          o.score = g.badWord
          break
        case 'sink':
          o.sink = g.badCount
          break
        case 'recent':
          o.recent = g.badCount
          break
        case 'lengthsCount': {
          const n = B === 0 ? 1 : g.at % 2 === 0 ? B + 1 : B - 1
          o.lengths = Array.from({ length: n }, () => 0)
          break
        }
        case 'lengthsValue': {
          const l = Array.from({ length: B }, () => 0) as unknown[]
          l[g.at % B] = g.badLength
          o.lengths = l
          break
        }
        case 'lengthsType':
          o.lengths = g.badLengths
          break
        case 'unknownOption':
          o[g.unknown] = 1
          break
        case 'stream':
          o.stream = g.stream
          break
        case 'notAnObject':
          return { fault, options: g.notObject, oracle }
      }
      return { fault, options: o, oracle }
    })
}

/** fn threw (or rejected with) a KvtrimError with this code. */
function expectKvtrimError(err: unknown, code: string, what: string): void {
  if (!(err instanceof KvtrimError)) {
    throw new Error(`${what}: expected a KvtrimError ${code} but got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`)
  }
  expect(err.code, `${what}: ${err.message}`).toBe(code)
}

async function outcome<T>(run: () => T | Promise<T>): Promise<{ ok: true; value: T } | { ok: false; err: unknown }> {
  try {
    return { ok: true, value: await run() }
  } catch (err) {
    return { ok: false, err }
  }
}

type Op = 'compressSync' | 'compress' | 'compressInPlaceSync' | 'keyNormsSync'

function checkCompress(r: kvtrimCompressResult, want: ReturnType<typeof oracleCompress>, what: string): void {
  expect(r.kept, `${what}: kept`).toBe(want.kept)
  expect(r.keys.dims, `${what}: keys.dims`).toEqual(want.keys.dims)
  expect(r.values.dims, `${what}: values.dims`).toEqual(want.values.dims)
  expectSameBits(r.keys.data, want.keys.data, `${what}: keys`)
  expectSameBits(r.values.data, want.values.data, `${what}: values`)
  expectSameBits(r.indices, want.indices, `${what}: indices`)
  expectSameBits(r.lengths, want.lengths, `${what}: lengths`)
}
type kvtrimCompressResult = kvtrim.CompressResult

/** In place: indices, lengths and kept as compress's, and the kept rows at the front of each head. */
function checkInPlace(r: kvtrim.InPlaceResult, k: OracleTensor, v: OracleTensor, want: ReturnType<typeof oracleCompress>, what: string): void {
  expect(r.kept, `${what}: kept`).toBe(want.kept)
  expectSameBits(r.indices, want.indices, `${what}: indices`)
  expectSameBits(r.lengths, want.lengths, `${what}: lengths`)
  const [B, H, S, D] = k.dims
  const Dv = v.dims[3]
  const K = want.kept
  const bits = (a: Float32Array | Uint16Array) => (a instanceof Float32Array ? new Uint32Array(a.buffer, a.byteOffset, a.length) : a)
  const [kd, vd, wk, wv] = [bits(k.data), bits(v.data), bits(want.keys.data), bits(want.values.data)]
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let j = 0; j < want.lengths[b]; j++) {
        const row = b * H + h
        for (let x = 0; x < D; x++) if (kd[(row * S + j) * D + x] !== wk[(row * K + j) * D + x]) throw new Error(`${what}: keys row ${row}/${j} element ${x}`)
        for (let x = 0; x < Dv; x++) if (vd[(row * S + j) * Dv + x] !== wv[(row * K + j) * Dv + x]) throw new Error(`${what}: values row ${row}/${j} element ${x}`)
      }
    }
  }
}

describe(`facade properties (seed ${seed}; KVTRIM_SEED=${seed} replays)`, () => {
  it('random shapes, data and options: the oracle bit for bit, or the KvtrimError the validation says', async () => {
    const caseArb = fc
      .tuple(shapeArb, fc.constantFrom<Op>('compressSync', 'compress', 'compressInPlaceSync', 'keyNormsSync'))
      .chain(([s, op]) => fc.tuple(fc.constant(s), fc.constant(op), optionArb(s, op === 'compressInPlaceSync')))
    await fc.assert(
      fc.asyncProperty(caseArb, async ([s, op, c]) => {
        const { keys, values } = tensors(s)
        const what = `${op} ${s.type} [${s.B}, ${s.H}, ${s.S}, ${s.D}/${s.Dv}] fault ${c.fault}`
        if (op === 'keyNormsSync') {
          expectSameBits(keyNormsSync(keys), oracleNorms(keys), `${what}: norms`)
          return
        }
        const k = op === 'compressInPlaceSync' ? copy(keys) : keys
        const v = op === 'compressInPlaceSync' ? copy(values) : values
        const got = await outcome(() =>
          op === 'compressSync' ? compressSync(k, v, c.options as never)
          : op === 'compress' ? compress(k, v, c.options as never)
          : compressInPlaceSync(k, v, c.options as never),
        )
        if (c.fault !== 'none') {
          if (got.ok) throw new Error(`${what}: expected ${CODE[c.fault]} but it returned (options ${fmt(c.options)})`)
          expectKvtrimError(got.err, CODE[c.fault], `${what} (options ${fmt(c.options)})`)
          return
        }
        if (!got.ok) throw new Error(`${what}: expected a result but got ${String(got.err)} (options ${fmt(c.options)})`)
        const want = oracleCompress(keys, values, c.oracle)
        if (op === 'compressInPlaceSync') checkInPlace(got.value as kvtrim.InPlaceResult, k, v, want, what)
        else checkCompress(got.value as kvtrimCompressResult, want, what)
        // inputs of compress are never modified
        if (op !== 'compressInPlaceSync') expectSameBits(keys.data, tensors(s).keys.data, `${what}: keys unmodified`)
      }),
      params(1000),
    )
  })

  it('malformed tensors: a KvtrimError with the code of the fault, from every operation', async () => {
    await fc.assert(
      fc.asyncProperty(
        shapeArb.filter((s) => s.B * s.H * s.S > 0),
        fc.constantFrom(...MUTATIONS),
        fc.constantFrom('keys', 'values'),
        fc.constantFrom<Op | 'compressCacheSync' | 'compressCache'>('compressSync', 'compress', 'compressInPlaceSync', 'keyNormsSync', 'compressCacheSync', 'compressCache'),
        fc.nat(),
        async (s, m, side, op, pick) => {
          if (op === 'keyNormsSync' && (side === 'values' || m.pairOnly)) return
          if (m.inPlaceOnly && op !== 'compressInPlaceSync') return
          const { keys, values } = tensors(s)
          const t = { keys: copy(keys), values: copy(values) }
          const bad = m.make(t[side], t, side, pick)
          const [k, v] = side === 'keys' ? [bad, t.values] : [t.keys, bad]
          const what = `${op} ${s.type} [${s.B}, ${s.H}, ${s.S}, ${s.D}/${s.Dv}]: ${side} ${m.name}`
          const o = { keepRatio: 0.5 }
          const got = await outcome(() => {
            switch (op) {
              case 'keyNormsSync': return keyNormsSync(k as never)
              case 'compressSync': return compressSync(k as never, v as never, o)
              case 'compress': return compress(k as never, v as never, o)
              case 'compressInPlaceSync': return compressInPlaceSync(k as never, v as never, o)
              case 'compressCacheSync': return compressCacheSync([{ keys: k, values: v }] as never, o)
              case 'compressCache': return kvtrim.compressCache([{ keys: k, values: v }] as never, o)
            }
          })
          if (m.code === undefined) {
            // a well-formed tensor in disguise (a Proxy, getters): the plain result
            if (!got.ok) throw new Error(`${what}: expected a result but got ${String(got.err)}`)
            if (op === 'keyNormsSync') expectSameBits(got.value as unknown as Float32Array, oracleNorms(keys), what)
            else if (op === 'compressSync' || op === 'compress') checkCompress(got.value as kvtrimCompressResult, oracleCompress(keys, values, o), what)
            return
          }
          if (got.ok) throw new Error(`${what}: expected ${m.code} but it returned`)
          if (m.code === 'OWN') expect(got.err, what).toBe(OWN)
          else expectKvtrimError(got.err, m.code, what)
        },
      ),
      params(1600),
    )
  })

  it('arbitrary values into every public function: a result or a KvtrimError, never another error type', async () => {
    const junk = fc.anything({ maxDepth: 2, withBigInt: true, withTypedArray: true, withSparseArray: true, withNullPrototype: true, withBoxedValues: true })
    const edge = fc.constantFrom<unknown>(-1, 0, 1, 2, 0.5, 1.5, 2 ** 31, 2 ** 53, NaN, Infinity, -0, '', 'float16', 'float32', 'norm', 'static', 'pyramid', 2n ** 64n, -1n, null, [], [1, 2, 3, 4], [0.5, 0.5])
    const value = fc.oneof(junk, edge)
    // objects with kvtrim's own field and option names, so that the checks behind the first ones are reached
    const tensorish = fc.record(
      {
        type: fc.oneof(fc.constantFrom('float16', 'bfloat16', 'float32'), value),
        data: fc.oneof(fc.constantFrom<unknown>(new Uint16Array(8), new Float32Array(8), new Uint16Array(0), new Float32Array(1)), value),
        dims: fc.oneof(fc.array(fc.oneof(fc.integer({ min: -1, max: 4 }), value), { maxLength: 6 }), value),
      },
      { requiredKeys: [] },
    )
    const names = ['keepRatio', 'keep', 'order', 'score', 'sink', 'recent', 'lengths', 'stream', 'pruneAfter', 'skipLayers', 'budgets', 'target', 'interval', 'mode', 'position', 'threshold', 'causal', 'decode', 'sharedMask', 'type', 'device', 'appended', 'layers', 'seqLen', 'attention', 'queries', 'keys', 'values', 'zigzag', 'minRatio', 'every']
    const optionish = fc.dictionary(fc.constantFrom(...names), fc.oneof(value, tensorish), { maxKeys: 4 })
    const layers = fc.array(fc.record({ keys: fc.oneof(tensorish, value), values: fc.oneof(tensorish, value) }, { requiredKeys: [] }), { maxLength: 3 })
    const named = fc.dictionary(fc.constantFrom('past_key_values.0.key', 'past_key_values.0.value', 'present.0.key', 'present.1.value', 'past_key_values.1.key', 'x.4294967295.key'), fc.oneof(tensorish, value), { maxKeys: 4 })
    const anything = fc.oneof(
      { weight: 3, arbitrary: value },
      { weight: 2, arbitrary: tensorish },
      { weight: 2, arbitrary: optionish },
      { weight: 1, arbitrary: layers },
      { weight: 1, arbitrary: named },
      { weight: 1, arbitrary: shapeArb.map((s) => tensors(s).keys as unknown) },
    )
    const fns = Object.entries(SURFACE)
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...fns), fc.array(anything, { maxLength: 4 }), async ([name, fn], args) => {
        const got = await outcome(() => fn(...args))
        if (!got.ok && !(got.err instanceof KvtrimError)) {
          throw new Error(`${name}(${args.map(fmt).join(', ')}) threw ${got.err instanceof Error ? `${got.err.name}: ${got.err.message}` : String(got.err)}`)
        }
        if (!got.ok) expect(typeof (got.err as InstanceType<typeof KvtrimError>).code, name).toBe('string')
      }),
      params(5000),
    )
  })

  it('apportion: the bulk form equals the one-token-at-a-time definition', () => {
    const arb = fc
      .array(fc.record({ x: fc.oneof(fc.double({ min: -50, max: 200, noNaN: true }), fc.integer({ min: 0, max: 100 })), lo: fc.integer({ min: 0, max: 20 }), room: fc.integer({ min: 0, max: 100 }) }), { minLength: 1, maxLength: 8 })
      .chain((ls) => {
        const lo = ls.map((l) => l.lo), hi = ls.map((l) => l.lo + l.room)
        const sum = (a: number[]) => a.reduce((p, q) => p + q, 0)
        return fc.tuple(fc.constant(ls.map((l) => l.x)), fc.integer({ min: sum(lo), max: sum(hi) }), fc.constant(lo), fc.constant(hi))
      })
    fc.assert(
      fc.property(arb, ([x, total, lo, hi]) => {
        const n0 = x.map((v, l) => Math.min(hi[l], Math.max(lo[l], Math.floor(v))))
        const d = total - n0.reduce((a, b) => a + b, 0)
        expect(apportionBulk(x, n0.slice(), d, lo, hi)).toEqual(apportionLoop(x, n0.slice(), d, lo, hi))
      }),
      params(500),
    )
  })
})

// ---- malformed tensors ------------------------------------------------------------------------

const OWN = new RangeError("the caller's own getter")

interface Mutation {
  name: string
  /** the code every operation must give; 'OWN': the caller's error itself; undefined: a valid tensor */
  code: string | undefined
  pairOnly?: boolean
  inPlaceOnly?: boolean
  make: (t: OracleTensor, pair: { keys: OracleTensor; values: OracleTensor }, side: 'keys' | 'values', pick: number) => unknown
}

const with_ = (t: OracleTensor, patch: Record<string, unknown>): unknown => ({ ...t, ...patch })
const other = (t: OracleTensor): DType => (t.type === 'float16' ? 'bfloat16' : 'float16')
const oneOf = <T>(xs: readonly T[], pick: number): T => xs[pick % xs.length]

const MUTATIONS: Mutation[] = [
  { name: 'not an object', code: 'INVALID_ARGUMENT', make: (_t, _p, _s, i) => oneOf([null, undefined, 5, 'tensor', true, 1n], i) },
  { name: 'an unknown type', code: 'INVALID_DTYPE', make: (t, _p, _s, i) => with_(t, { type: oneOf(['int8', 'float64', '', 'Float16', 'fp16'], i) }) },
  { name: 'a type that is not a string', code: 'INVALID_DTYPE', make: (t, _p, _s, i) => with_(t, { type: oneOf([5, null, undefined, {}, ['float16']], i) }) },
  {
    name: 'data not a typed array',
    code: 'INVALID_ARGUMENT',
    make: (t, _p, _s, i) => with_(t, { data: oneOf([Array.from(t.data), 'abc', null, undefined, new DataView(t.data.buffer), t.data.buffer, { length: t.data.length }], i) }),
  },
  {
    name: 'a typed array of the wrong kind',
    code: 'INVALID_ARGUMENT',
    make: (t, _p, _s, i) => {
      const n = t.data.length
      const kinds: ArrayBufferView[] = t.type === 'float32' ? [new Uint16Array(n), new Float64Array(n), new Int32Array(n), new Uint8Array(n * 4)] : [new Float32Array(n), new Uint8Array(n * 2), new Int32Array(n), new BigUint64Array(n)]
      return with_(t, { data: oneOf(kinds, i) })
    },
  },
  { name: 'data one element short', code: 'DATA_LENGTH', make: (t) => with_(t, { data: t.data.subarray(1) }) },
  { name: 'data one element long', code: 'DATA_LENGTH', make: (t) => with_(t, { data: t.type === 'float32' ? new Float32Array(t.data.length + 1) : new Uint16Array(t.data.length + 1) }) },
  {
    name: 'a detached buffer',
    code: 'DETACHED_BUFFER',
    make: (t) => {
      const data = t.data.slice()
      structuredClone(data.buffer, { transfer: [data.buffer] })
      return with_(t, { data })
    },
  },
  { name: 'dims not an array', code: 'INVALID_DIMS', make: (t, _p, _s, i) => with_(t, { dims: oneOf([null, undefined, '1,1,1,1', { 0: 1, 1: 1, 2: 1, 3: 1, length: 4 }, 4], i) }) },
  { name: 'dims of another rank', code: 'INVALID_RANK', make: (t, _p, _s, i) => with_(t, { dims: oneOf([t.dims.slice(1), [...t.dims, 1], [], [t.data.length]], i) }) },
  {
    name: 'dims entries that are not non-negative integers',
    code: 'INVALID_DIMS',
    make: (t, _p, _s, i) => {
      const dims: unknown[] = [...t.dims]
      dims[i % 4] = oneOf([1.5, NaN, Infinity, -1, String(t.dims[i % 4]), null, undefined, 2 ** 53, 1n], Math.floor(i / 4))
      return with_(t, { dims })
    },
  },
  { name: 'headDim 0 or above 1024', code: 'INVALID_DIMS', make: (t, _p, _s, i) => with_(t, { dims: [t.dims[0], t.dims[1], t.dims[2], oneOf([0, 1025, 4096], i)] }) },
  { name: 'more than 2^31 - 1 rows', code: 'TOO_MANY_ROWS', make: (t, _p, _s, i) => with_(t, { dims: oneOf([[2 ** 31, 1, 1, t.dims[3]], [2 ** 16, 2 ** 16, 2 ** 16, 1], [1, 1, 2 ** 40, t.dims[3]]], i) }) },
  {
    name: 'another batch, kvHeads or seqLen than the other tensor',
    code: 'DIMS_MISMATCH',
    pairOnly: true,
    make: (t, _p, _s, i) => {
      const dims = [...t.dims]
      dims[i % 3] += 1
      return { type: t.type, data: t.type === 'float32' ? new Float32Array(dims.reduce((a, b) => a * b, 1)) : new Uint16Array(dims.reduce((a, b) => a * b, 1)), dims }
    },
  },
  {
    name: 'another dtype than the other tensor',
    code: 'INVALID_DTYPE',
    pairOnly: true,
    make: (t) => ({ type: other(t), data: new Uint16Array(t.data.length), dims: [...t.dims] }),
  },
  {
    name: 'values on the same memory as keys (in place)',
    code: 'INVALID_ARGUMENT',
    pairOnly: true,
    inPlaceOnly: true,
    make: (t, p, side) => {
      // both tensors valid on their own, on one buffer, overlapping by one element
      const otherSide = side === 'keys' ? 'values' : 'keys'
      const a = t.data.length, b = p[otherSide].data.length
      const ctor = t.data.constructor as new (buf: ArrayBuffer, off: number, n: number) => Float32Array | Uint16Array
      const size = t.data.BYTES_PER_ELEMENT
      const buf = new ArrayBuffer((a + b - 1) * size)
      p[otherSide] = { ...p[otherSide], data: new ctor(buf, (a - 1) * size, b) }
      return with_(t, { data: new ctor(buf, 0, a) })
    },
  },
  { name: 'a Proxy without traps', code: undefined, make: (t) => new Proxy(t, {}) },
  { name: 'dims a Proxy of an array', code: undefined, make: (t) => with_(t, { dims: new Proxy([...t.dims], {}) }) },
  {
    name: 'fields behind getters',
    code: undefined,
    make: (t) => ({
      get type() { return t.type },
      get data() { return t.data },
      get dims() { return t.dims },
    }),
  },
  {
    name: 'a Proxy whose get trap answers with a bad dims',
    code: 'INVALID_DIMS',
    make: (t) => new Proxy(t, { get: (o, p) => (p === 'dims' ? [1, 'x', 1, 1] : Reflect.get(o, p)) }),
  },
  { name: 'data a Proxy of a typed array', code: 'INVALID_ARGUMENT', make: (t) => with_(t, { data: new Proxy(t.data, {}) }) },
  {
    name: 'a getter that throws',
    code: 'OWN',
    make: (t, _p, _s, i) => {
      const field = oneOf(['type', 'data', 'dims'], i)
      const o: Record<string, unknown> = { ...t }
      Object.defineProperty(o, field, { get: () => { throw OWN }, enumerable: true })
      return o
    },
  },
  {
    name: 'a Proxy whose get trap throws',
    code: 'OWN',
    make: (t) => new Proxy(t, { get: () => { throw OWN } }),
  },
]

// ---- the public surface, for arbitrary arguments ------------------------------------------------

/** Every public function and constructor (kvtrim and kvtrim/transformers), with arguments spread. */
const SURFACE: Record<string, (...args: unknown[]) => unknown> = {
  keyNorms: (...a) => kvtrim.keyNorms(...(a as [never, never])),
  keyNormsSync: (...a) => kvtrim.keyNormsSync(...(a as [never, never])),
  compress: (...a) => kvtrim.compress(...(a as [never, never, never])),
  compressSync: (...a) => kvtrim.compressSync(...(a as [never, never, never])),
  compressInPlace: (...a) => kvtrim.compressInPlace(...(a as [never, never, never])),
  compressInPlaceSync: (...a) => kvtrim.compressInPlaceSync(...(a as [never, never, never])),
  compressCache: (...a) => kvtrim.compressCache(...(a as [never, never])),
  compressCacheSync: (...a) => kvtrim.compressCacheSync(...(a as [never, never])),
  layerBudgets: (...a) => kvtrim.layerBudgets(...(a as [never, never])),
  uniformBudget: (...a) => kvtrim.uniformBudget(...(a as [never])),
  pyramidBudgets: (...a) => kvtrim.pyramidBudgets(...(a as [never, never])),
  zigzagBudgets: (...a) => kvtrim.zigzagBudgets(...(a as [never, never, never])),
  apportion: (...a) => kvtrim.apportion(...(a as [never, never, never, never])),
  layerUncertainty: (...a) => kvtrim.layerUncertainty(...(a as [never, never])),
  layerUncertaintySync: (...a) => kvtrim.layerUncertaintySync(...(a as [never, never])),
  Compressor: (...a) => new kvtrim.Compressor(...(a as [never])),
  'Compressor.stepSync': (...a) => new kvtrim.Compressor({ target: 2, interval: 1 }).stepSync(a[0], a[1] as never),
  'Compressor.step (static)': (...a) => new kvtrim.Compressor({ target: 2, interval: 1, mode: 'static' }).step(a[0], a[1] as never),
  normAttentionCorrelation: (...a) => kvtrim.normAttentionCorrelation(...(a as [never, never])),
  spearman: (...a) => kvtrim.spearman(...(a as [never, never])),
  // host tensors only: a device would need a GPU, and sizes are kept small (no 2^31-element allocations)
  tensor: (...a) => kvtrim.tensor(a[0] as never, small(a[1]) as never, (typeof a[2] === 'object' && a[2] !== null ? { ...a[2], device: 'cpu' } : a[2]) as never),
  fromDevicePointer: (...a) => (typeof a[0] === 'bigint' && a[0] > 0n && a[0] < 2n ** 64n ? undefined : kvtrim.fromDevicePointer(...(a as [never, never, never]))),
  DeviceTensor: (...a) => new kvtrim.DeviceTensor(...(a as [never, never, never])),
  pastFromPresent: (...a) => transformers.pastFromPresent(...(a as [never])),
  CacheCompressor: (...a) => new transformers.CacheCompressor(...(a as [never])),
  'CacheCompressor.afterPrefillSync': (...a) => new transformers.CacheCompressor({ keepRatio: 0.5 }).afterPrefillSync(a[0]),
  'CacheCompressor.afterStep': (...a) => new transformers.CacheCompressor({}).afterStep(a[0]),
  // valid tensors, arbitrary options: the option checks behind the tensor checks
  'compressSync (options)': (...a) => kvtrim.compressSync(small4(), small4(), a[0] as never),
  'compressInPlaceSync (options)': (...a) => kvtrim.compressInPlaceSync(small4(), small4(), a[0] as never),
  'compressCacheSync (options)': (...a) => kvtrim.compressCacheSync([{ keys: small4(), values: small4() }, { keys: small4(), values: small4() }], a[0] as never),
  'keyNormsSync (options)': (...a) => kvtrim.keyNormsSync(small4(), a[0] as never),
  'layerBudgets (policy)': (...a) => kvtrim.layerBudgets(a[0] as never, { layers: 3, seqLen: 16, keepRatio: 0.5 }),
  'layerUncertaintySync (options)': (...a) => kvtrim.layerUncertaintySync([{ attention: { type: 'float32', data: new Float32Array(16).fill(0.25), dims: [1, 1, 4, 4] } }], a[0] as never),
  'Compressor.stepSync (step options)': (...a) => {
    const c = new kvtrim.Compressor({ target: 2, interval: 0, mode: 'static' })
    c.stepSync([{ keys: small4(), values: small4() }], { lengths: 4 })
    return c.stepSync([{ keys: small4(), values: small4() }], a[0] as never)
  },
  'CacheCompressor (options, then a cache)': (...a) => {
    const c = new transformers.CacheCompressor(a[0] as never)
    const r = c.afterPrefillSync([{ keys: small4(), values: small4() }])
    return c.afterStepSync(r.cache)
  },
  'CacheCompressor.nextInputs': (...a) => {
    const c = new transformers.CacheCompressor({})
    c.afterPrefillSync([{ keys: SMALL, values: SMALL }])
    return c.nextInputs(...(a as [never, never]))
  },
}

const SMALL = { type: 'float16', data: new Uint16Array(32).fill(0x3c00), dims: [1, 1, 4, 8] }
/** A fresh [1, 1, 4, 8] float16 tensor of distinct rows. */
const small4 = () => ({ type: 'float16', data: Uint16Array.from({ length: 32 }, (_, i) => 0x3c00 + i * 7), dims: [1, 1, 4, 8] })

/** dims as given, unless an array whose product would allocate more than 2^20 elements (then one of 1). */
function small(dims: unknown): unknown {
  if (!Array.isArray(dims)) return dims
  let n = 1
  for (let i = 0; i < dims.length; i++) n *= typeof dims[i] === 'number' && Number.isFinite(dims[i]) ? Math.abs(dims[i] as number) : 1
  return n > 2 ** 20 && n <= Number.MAX_SAFE_INTEGER ? dims.map(() => 1) : dims
}

function fmt(v: unknown): string {
  try {
    return fc.stringify(v).slice(0, 300)
  } catch {
    return typeof v
  }
}
