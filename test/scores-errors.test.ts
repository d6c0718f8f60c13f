// Bad input to the score engine's options (NOTES "Score engine (issue 15)"): every fault is a
// KvtrimError INVALID_OPTION whose message names the option (`score`, `score.project`,
// `score.scores`) and what was expected; a throwing getter or Proxy trap of the caller's
// propagates unchanged; nothing the caller passed is modified, and a valid call still works.
import { describe, expect, it } from 'vitest'
import * as kvtrim from '../lib/index'
import { CacheCompressor } from '../lib/cache/transformers'
import { all, caught, expectCode, expectRejects } from './expect'
import * as oracle from './oracle'
import { randomTensor, rng, runSeed } from './random'
import { describeCuda, toDevice } from './cuda/gpu'

type ScoreOptions = { score?: unknown; lengths?: ArrayLike<number>; stream?: bigint }
const api = kvtrim as unknown as {
  tokenScoresSync(keys: unknown, values: unknown, o: ScoreOptions): Float32Array
  tokenScores(keys: unknown, values: unknown, o: ScoreOptions): Promise<Float32Array>
}
const { compress, compressSync, compressInPlaceSync, compressCacheSync, Compressor } = kvtrim

const seed = runSeed()
const r = rng(seed)
// B 2, H 3, S 16, Dk 8, Dv 4: the right project length is 24, the right scores dims [2, 3, 16]
const keys = randomTensor(r, 'float16', [2, 3, 16, 8])
const values = randomTensor(r, 'float16', [2, 3, 16, 4])
const vectors = Float32Array.from({ length: 24 }, () => r() * 2 - 1)
const given = { type: 'float32', data: Float32Array.from({ length: 96 }, () => r()), dims: [2, 3, 16] }
const snapshot = () => [keys.data.slice(), values.data.slice(), vectors.slice(), given.data.slice()] as const
const before = snapshot()

/** score as each entry point takes it: compress, compressInPlace (on copies), tokenScores. */
function everyEntry(score: unknown, code: string, message: RegExp): void {
  expectCode(() => compressSync(keys, values, { keepRatio: 0.5, score } as never), code, message)
  const k = { ...keys, data: keys.data.slice() }, v = { ...values, data: values.data.slice() }
  expectCode(() => compressInPlaceSync(k, v, { keepRatio: 0.5, score } as never), code, message)
  expectCode(() => api.tokenScoresSync(keys, values, { score }), code, message)
}

// the message names `score` itself (not only "scores" or "score.x")
const SCORE = /(^|[^.\w])score([^.\ws]|$)/
const EXPECTED_SCORERS = /'low-norm'.*'high-norm'.*'kv-norm'.*'keydiff'.*project.*scores/

describe('score: bad scorers', () => {
  it('unknown names and values that are not a scorer name the option and list the scorers', () => {
    for (const bad of ['low', 'Low-Norm', 'lownorm', 'KEYDIFF', 'kvnorm', 'key-diff', 'project', 'scores', 'random', '', 5, true, 0n, [], ['keydiff'], () => 1, Symbol('keydiff')]) {
      everyEntry(bad, 'INVALID_OPTION', SCORE)
      expectCode(() => compressSync(keys, values, { keepRatio: 0.5, score: bad } as never), 'INVALID_OPTION', EXPECTED_SCORERS)
    }
  })

  it('an object with neither or both of project and scores, or an unknown member', () => {
    everyEntry({}, 'INVALID_OPTION', SCORE)
    everyEntry({ project: vectors, scores: given }, 'INVALID_OPTION', /one of project or scores/)
    everyEntry({ project: undefined }, 'INVALID_OPTION', SCORE)
    // an unknown member is named as score's, with the known ones
    everyEntry({ projct: vectors }, 'INVALID_OPTION', all("'score\\.projct'", 'score\\.project', 'score\\.scores'))
    everyEntry({ project: vectors, extra: 1 }, 'INVALID_OPTION', /extra/)
    everyEntry({ Scores: given }, 'INVALID_OPTION', /'score\.Scores'; did you mean 'score\.scores'/)
  })

  it('tokenScores takes score, lengths and stream only; its score is checked like compress\'s', () => {
    expectCode(() => api.tokenScoresSync(keys, values, { score: 'keydiff', keepRatio: 0.5 } as never), 'INVALID_OPTION', /keepRatio/)
    expectCode(() => api.tokenScoresSync(keys, values, { score: 'keydiff', lengths: [17, 0] }), 'INVALID_LENGTHS')
    expectCode(() => api.tokenScoresSync(keys, values, 5 as never), 'INVALID_ARGUMENT', /options/)
    expectCode(() => api.tokenScoresSync(keys, values, 'keydiff' as never), 'INVALID_ARGUMENT', /options/)
    expectCode(() => api.tokenScoresSync(keys, randomTensor(r, 'float16', [2, 3, 15, 4]), { score: 'kv-norm' }), 'DIMS_MISMATCH', /seqLen/)
    // options are optional: the default scorer is low-norm
    expect(Array.from(api.tokenScoresSync(keys, values, undefined as never))).toEqual(Array.from(api.tokenScoresSync(keys, values, { score: 'low-norm' })))
  })

  it('tokenScores(keys, values, null) is refused like keyNorms(keys, null); so is the Promise form', async () => {
    expectCode(() => api.tokenScoresSync(keys, values, null as never), 'INVALID_ARGUMENT', /options/)
    await expectRejects(api.tokenScores(keys, values, null as never), 'INVALID_ARGUMENT', /options/)
  })

  it('the CacheCompressor checks score at its first call, the Compressor when made; INVALID_OPTION naming score', () => {
    for (const bad of ['low', 5, {}, { projct: [vectors] }]) {
      const kv = new CacheCompressor({ keepRatio: 0.5, score: bad } as never)
      expectCode(() => kv.afterPrefillSync([{ keys, values }]), 'INVALID_OPTION', /score/)
    }
    for (const bad of ['low', 5]) expectCode(() => new Compressor({ target: 4, interval: 0, score: bad } as never), 'INVALID_OPTION', /score/)
    // the Compressor takes project per layer, and no given scores (they would be stale after a step)
    expectCode(() => new Compressor({ target: 4, interval: 0, score: { scores: [given] } } as never), 'INVALID_OPTION', /score\.scores/)
    expectCode(() => new Compressor({ target: 4, interval: 0, score: { project: vectors } } as never), 'INVALID_OPTION', all('score\\.project', 'per layer'))
  })
})

describe('score.project: bad vectors', () => {
  it('the wrong length: kvHeads * keyDim numbers expected, the count said', () => {
    for (const n of [0, 1, 23, 25, 8, 48]) {
      everyEntry({ project: new Float32Array(n).fill(0.5) }, 'INVALID_OPTION', new RegExp(`score\\.project.*kvHeads \\* keyDim = 24.*\\b${n}\\b`))
    }
    // keyDim, not valueDim: 3 heads x 4 is the values' shape, not the keys'
    everyEntry({ project: new Float32Array(12) }, 'INVALID_OPTION', /score\.project/)
  })

  it('not float numbers: other typed arrays, strings, objects, arrays with non-numbers or holes', () => {
    const bad: unknown[] = [
      'abc',
      5,
      null,
      { length: 24 },
      new Int32Array(24),
      new Uint16Array(24),
      new BigInt64Array(24),
      new DataView(new ArrayBuffer(96)),
      Array.from({ length: 24 }, (_, i) => (i === 7 ? '1' : 1)),
      Array.from({ length: 24 }, (_, i) => (i === 3 ? 1n : 1)),
      Array.from({ length: 24 }, (_, i) => (i === 23 ? null : 1)),
      [...new Array(23).fill(1), ,] as unknown[],
      new Array(24),
      new Array(2 ** 32 - 1), // refused at its first hole, not walked
    ]
    for (const project of bad) everyEntry({ project }, 'INVALID_OPTION', all('score\\.project', 'Float32Array', 'finite numbers'))
  })

  it('non-finite entries (NaN, Infinity, or a double beyond fp32) are refused: the lead\'s decision, finite vectors only', () => {
    for (const x of [NaN, Infinity, -Infinity, 1e39, -4e38]) {
      const v = Array.from(vectors)
      v[5] = x
      everyEntry({ project: v }, 'INVALID_OPTION', all('score\\.project', 'finite'))
      everyEntry({ project: Float64Array.from(v) }, 'INVALID_OPTION', all('score\\.project', 'finite'))
      if (Number.isNaN(x) || !Number.isFinite(x)) everyEntry({ project: Float32Array.from(v) }, 'INVALID_OPTION', all('score\\.project', 'finite'))
    }
    // the largest double that rounds to FLT_MAX is finite in fp32 and accepted
    const v = Array.from(vectors)
    v[0] = 3.4028235e38
    expect(api.tokenScoresSync(keys, values, { score: { project: v } })).toBeInstanceOf(Float32Array)
  })

  it('accepted forms give the oracle\'s scores: Float32Array, Float64Array and plain arrays, rounded to fp32', () => {
    const doubles = Array.from({ length: 24 }, (_, i) => (i % 5) / 7 - 0.3) // not fp32 values
    const want = oracle.scores(keys, values, { project: doubles })
    for (const project of [doubles, Float64Array.from(doubles), Float32Array.from(doubles), new Proxy(doubles, {})]) {
      const got = api.tokenScoresSync(keys, values, { score: { project } })
      expect(Array.from(new Uint32Array(got.buffer, got.byteOffset, got.length))).toEqual(Array.from(new Uint32Array(want.buffer)))
    }
  })

  it('compressCache: one vector set per layer; a single set, the wrong count, or a bad layer entry names it', () => {
    const layers = [{ keys, values }, { keys, values }]
    expectCode(() => compressCacheSync(layers, { keepRatio: 0.5, score: { project: vectors } } as never), 'INVALID_OPTION', all('score\\.project', 'per layer'))
    expectCode(() => compressCacheSync(layers, { keepRatio: 0.5, score: { project: [vectors] } } as never), 'INVALID_OPTION', /score\.project/)
    expectCode(() => compressCacheSync(layers, { keepRatio: 0.5, score: { project: [vectors, vectors, vectors] } } as never), 'INVALID_OPTION', /score\.project/)
    expectCode(() => compressCacheSync(layers, { keepRatio: 0.5, score: { project: [vectors, 'x'] } } as never), 'INVALID_OPTION', /score\.project\[1\]/)
    expectCode(() => compressCacheSync(layers, { keepRatio: 0.5, score: { project: [vectors, [NaN]] } } as never), 'INVALID_OPTION', /score\.project\[1\]/)
    expectCode(() => compressCacheSync(layers, { keepRatio: 0.5, score: { project: [vectors, new Float32Array(23)] } } as never), 'INVALID_OPTION', all('score\\.project', '24'))
  })
})

describe('score.scores: bad tensors', () => {
  const withScores = (s: unknown) => ({ scores: s })

  // The implementation reads score.scores with the one tensor reader, so a value that is not a
  // tensor gets the reader's codes (INVALID_ARGUMENT, INVALID_DTYPE for a missing type), where
  // NOTES said INVALID_OPTION for all bad input (reported); dims or dtype that do not fit the keys
  // are INVALID_OPTION. Either way the message names score.scores.
  it('not a tensor: the tensor reader\'s codes, naming score.scores', () => {
    for (const s of [5, 'x', null, true]) everyEntry(withScores(s), 'INVALID_ARGUMENT', /score\.scores to be a tensor \{ type, data, dims \}/)
    for (const s of [given.data, {}, [given], { data: given.data, dims: [2, 3, 16] }]) everyEntry(withScores(s), 'INVALID_DTYPE', /score\.scores\.type/)
    everyEntry(withScores({ type: 'float32', data: [1, 2], dims: [2, 3, 16] }), 'INVALID_ARGUMENT', /score\.scores\.data/)
    everyEntry(withScores({ type: 'float32', data: given.data, dims: 'abc' }), 'INVALID_DIMS', /score\.scores\.dims/)
    everyEntry(withScores({ type: 'float32', data: given.data, dims: [2, 3, 16.5] }), 'INVALID_DIMS', /score\.scores\.dims\[2\]/)
  })

  it('the wrong dims: [batch, kvHeads, seqLen] of the keys expected, and the dims received said', () => {
    for (const dims of [[2, 3, 15], [2, 3, 17], [1, 3, 16], [2, 1, 16], [2, 3, 16, 1], [6, 16], [96]]) {
      const n = dims.reduce((a, b) => a * b, 1)
      everyEntry(withScores({ type: 'float32', data: new Float32Array(n), dims }), 'INVALID_OPTION', /score\.scores.*\[batch, kvHeads, seqLen\] = \[2, 3, 16\]/)
    }
  })

  it('the wrong dtype or data: float32 expected', () => {
    everyEntry(withScores({ type: 'float16', data: new Uint16Array(96), dims: [2, 3, 16] }), 'INVALID_OPTION', all('score\\.scores', 'float32'))
    everyEntry(withScores({ type: 'bfloat16', data: new Uint16Array(96), dims: [2, 3, 16] }), 'INVALID_OPTION', all('score\\.scores', 'float32'))
    for (const data of [new Float64Array(96), new Uint16Array(96), new Int32Array(96)]) {
      everyEntry(withScores({ type: 'float32', data, dims: [2, 3, 16] }), 'INVALID_ARGUMENT', all('score\\.scores\\.data', 'Float32Array'))
    }
  })

  // Found by this suite (a shorter array was read past its end, an empty one crashed the
  // process): the data must hold batch * kvHeads * seqLen floats.
  it('a data length that does not match the dims is DATA_LENGTH, naming score.scores and both counts', async () => {
    for (const n of [0, 1, 95, 97, 192]) {
      const bad = withScores({ type: 'float32', data: new Float32Array(n).fill(1), dims: [2, 3, 16] })
      everyEntry(bad, 'DATA_LENGTH', new RegExp(`score\\.scores\\.data.*96.*\\b${n}\\b`))
      await expectRejects(compress(keys, values, { keepRatio: 0.5, score: bad } as never), 'DATA_LENGTH', /score\.scores/)
      const layers = [{ keys, values }, { keys, values }]
      expectCode(() => compressCacheSync(layers, { keepRatio: 0.5, score: { scores: [given, bad.scores] } } as never), 'DATA_LENGTH', /score\.scores/)
    }
  })

  it('compressCache: one tensor per layer; a single tensor or a bad layer entry names it', () => {
    const layers = [{ keys, values }, { keys, values }]
    expectCode(() => compressCacheSync(layers, { keepRatio: 0.5, score: { scores: given } } as never), 'INVALID_OPTION', /score\.scores/)
    expectCode(() => compressCacheSync(layers, { keepRatio: 0.5, score: { scores: [given] } } as never), 'INVALID_OPTION', /score\.scores/)
    expectCode(() => compressCacheSync(layers, { keepRatio: 0.5, score: { scores: [given, { ...given, dims: [2, 3, 15] }] } } as never), 'INVALID_OPTION', /score\.scores/)
  })

  it('the Promise forms reject with the same codes', async () => {
    await expectRejects(compress(keys, values, { keepRatio: 0.5, score: withScores({ ...given, dims: [2, 3, 15] }) } as never), 'INVALID_OPTION', /score\.scores/)
    await expectRejects(api.tokenScores(keys, values, { score: { project: [1] } }), 'INVALID_OPTION', /score\.project/)
    await expectRejects(api.tokenScores(keys, values, { score: 'lo' }), 'INVALID_OPTION', SCORE)
  })
})

describe("the caller's getters and Proxies", () => {
  const boom = new RangeError('the caller’s getter')

  it('a throwing getter or trap anywhere in score propagates unchanged (the same object)', async () => {
    // each case: the options of compress (with keepRatio) and of tokenScores (without)
    const trapAt = (key: string) => new Proxy(Array.from(vectors), { get: (t, p) => { if (p === key) throw boom; return Reflect.get(t, p) } })
    const cases: Array<[string, (o: object) => object]> = [
      ['score getter', (o) => Object.defineProperty(o, 'score', { get(): never { throw boom }, enumerable: true })],
      ['project getter', (o) => ({ ...o, score: { get project(): never { throw boom } } })],
      ['scores getter', (o) => ({ ...o, score: { get scores(): never { throw boom } } })],
      ['a vector entry', (o) => ({ ...o, score: { project: trapAt('7') } })],
      ['the vector length', (o) => ({ ...o, score: { project: trapAt('length') } })],
      ['score ownKeys trap', (o) => ({ ...o, score: new Proxy({ project: vectors }, { ownKeys: () => { throw boom } }) })],
      ['scores.dims getter', (o) => ({ ...o, score: { scores: { type: 'float32', data: given.data, get dims(): never { throw boom } } } })],
      ['scores.data getter', (o) => ({ ...o, score: { scores: { type: 'float32', get data(): never { throw boom }, dims: [2, 3, 16] } } })],
    ]
    for (const [what, make] of cases) {
      expect(caught(() => compressSync(keys, values, make({ keepRatio: 0.5 }) as never)), what).toBe(boom)
      expect(await compress(keys, values, make({ keepRatio: 0.5 }) as never).catch((e: unknown) => e), `${what} (Promise)`).toBe(boom)
      expect(caught(() => api.tokenScoresSync(keys, values, make({}) as never)), `${what} (tokenScores)`).toBe(boom)
    }
  })

  it('Proxies that answer are read like the objects they wrap; each read once', () => {
    const want = compressSync(keys, values, { keepRatio: 0.5, score: { project: vectors } } as never)
    const proxied = compressSync(keys, values, new Proxy({ keepRatio: 0.5, score: new Proxy({ project: new Proxy(Array.from(vectors), {}) }, {}) }, {}) as never)
    expect(Array.from(proxied.indices)).toEqual(Array.from(want.indices))
    // a getter that answers differently each time: what is checked is what is used
    let n = 0
    const flip = { keepRatio: 0.5, get score(): unknown { return n++ === 0 ? { project: vectors } : 'junk' } }
    expect(Array.from(compressSync(keys, values, flip as never).indices)).toEqual(Array.from(want.indices))
    expect(n).toBe(1)
    let m = 0
    const flipScores = { get scores(): unknown { return m++ === 0 ? given : 5 } }
    const res = compressSync(keys, values, { keepRatio: 0.5, score: flipScores } as never)
    expect(Array.from(res.indices)).toEqual(Array.from(oracle.compress(keys, values, { keepRatio: 0.5, score: { scores: given } }).indices))
    expect(m).toBe(1)
  })
})

describeCuda('device keys', () => {
  // keys and scores in different places: the code of keys and values apart (DEVICE_MISMATCH),
  // naming score.scores and where each one is
  it('scores on the host for device keys (and device scores for host keys) are refused, naming score.scores', async () => {
    const dk = toDevice(keys), dv = toDevice(values)
    const where = all('score\\.scores', 'device tensor', 'host')
    expectCode(() => compressSync(dk, dv, { keepRatio: 0.5, score: { scores: given } } as never), 'DEVICE_MISMATCH', where)
    expectCode(() => api.tokenScoresSync(dk, dv, { score: { scores: given } }), 'DEVICE_MISMATCH', where)
    await expectRejects(compress(dk, dv, { keepRatio: 0.5, score: { scores: given } } as never), 'DEVICE_MISMATCH', where)
    const dscores = kvtrim.tensor(given.data, [2, 3, 16], { type: 'float32', device: 'cuda' })
    expectCode(() => compressSync(keys, values, { keepRatio: 0.5, score: { scores: dscores } } as never), 'DEVICE_MISMATCH', where)
    // project's vectors are host memory for device keys too: accepted
    expect(() => compressSync(dk, dv, { keepRatio: 0.5, score: { project: vectors } } as never)).not.toThrow()
  })
})

describe('after all of the above', () => {
  it('nothing the caller passed was modified, and a valid call of every kind still works', () => {
    const now = snapshot()
    now.forEach((a, i) => expect(Array.from(a), `input ${i}`).toEqual(Array.from(before[i])))
    for (const score of ['low-norm', 'high-norm', 'kv-norm', 'keydiff', { project: vectors }, { scores: given }] as const) {
      const res = compressSync(keys, values, { keepRatio: 0.5, score } as never)
      const want = oracle.compress(keys, values, { keepRatio: 0.5, score: score as oracle.OracleScore })
      expect(Array.from(res.indices), JSON.stringify(score)).toEqual(Array.from(want.indices))
    }
  })
})
