// Bad input to the selection modes (docs/policies.md "Selection modes"): every fault is a
// KvtrimError whose message names the option (`selection`, `selection.threshold`,
// `selection.adaptive.alpha`, `selection.<member>`, `headKeep`, `headKeep[i]`) and what was
// expected. Codes: INVALID_OPTION for selection and for option combinations, INVALID_KEEP for
// headKeep's counts. A throwing getter or Proxy trap of the caller's propagates unchanged; a
// getter that answers differently each time is read once; the Compressor and CacheCompressor
// refuse any selection but 'per-head'; nothing the caller passed is modified, and a valid call
// still works.
import { describe, expect, it } from 'vitest'
import * as kvtrim from '../lib/index'
import { CacheCompressor } from '../lib/cache/transformers'
import { all, caught, expectCode, expectRejects } from './expect'
import * as oracle from './oracle'
import { randomTensor, rng, runSeed } from './random'
import { describeCuda, toDevice } from './cuda/gpu'

const { KvtrimError, compress, compressSync, compressInPlace, compressInPlaceSync, compressCache, compressCacheSync, Compressor } = kvtrim

const seed = runSeed()
const r = rng(seed)
// B 2, H 3, S 16, Dk 8, Dv 4: headKeep has 6 entries, each in [min(16, sink + recent), 16]
const keys = randomTensor(r, 'float16', [2, 3, 16, 8])
const values = randomTensor(r, 'float16', [2, 3, 16, 4])
const snapshot = () => [keys.data.slice(), values.data.slice()] as const
const before = snapshot()

/**
 * The options as every entry point takes them: compress and compressInPlace (on copies), sync;
 * compressCache with one layer (which does not know headKeep: its counts would be per layer, so
 * there it is an unknown option, refused by its name before its value is read).
 */
function everyEntry(options: object, code: string, message: RegExp): void {
  expectCode(() => compressSync(keys, values, options as never), code, message)
  const k = { ...keys, data: keys.data.slice() }, v = { ...values, data: values.data.slice() }
  expectCode(() => compressInPlaceSync(k, v, options as never), code, message)
  expect(Array.from(k.data), 'a refused compressInPlace leaves the keys as they were').toEqual(Array.from(keys.data))
  if ('headKeep' in options) expectCode(() => compressCacheSync([{ keys, values }], options as never), 'INVALID_OPTION', /Unknown option 'headKeep'/)
  else expectCode(() => compressCacheSync([{ keys, values }], options as never), code, message)
}

// the message names `selection` itself (not only a member)
const SELECTION = /(^|[^.\w])selection([^.\w]|$)/
const THRESHOLD = /selection\.threshold/
const ALPHA = /selection\.adaptive\.alpha/
const HEAD_KEEP = /headKeep/

describe('selection: bad values', () => {
  it('not a selection: wrong types and unknown strings name the option and the modes', () => {
    for (const bad of [5, 0, true, 0n, [], ['adaptive'], () => 1, Symbol('adaptive'), 'perhead', 'Per-Head', 'ADAPTIVE', 'threshold', 'global', 'ada', '']) {
      everyEntry({ keepRatio: 0.5, selection: bad }, 'INVALID_OPTION', SELECTION)
      expectCode(() => compressSync(keys, values, { keepRatio: 0.5, selection: bad } as never), 'INVALID_OPTION', all("'per-head'", 'adaptive', 'threshold'))
    }
  })

  it('an object with neither or both of threshold and adaptive, or an unknown member named selection.<member>', () => {
    everyEntry({ keepRatio: 0.5, selection: {} }, 'INVALID_OPTION', SELECTION)
    everyEntry({ selection: { threshold: 1, adaptive: { alpha: 0.5 } } }, 'INVALID_OPTION', SELECTION)
    everyEntry({ selection: { thresh: 1 } }, 'INVALID_OPTION', all("'selection\\.thresh'", 'selection\\.threshold'))
    everyEntry({ selection: { Threshold: 1 } }, 'INVALID_OPTION', /'selection\.Threshold'; did you mean 'selection\.threshold'/)
    everyEntry({ keepRatio: 0.5, selection: { adaptiv: { alpha: 0.5 } } }, 'INVALID_OPTION', /'selection\.adaptiv'/)
    everyEntry({ selection: { threshold: 1, extra: 1 } }, 'INVALID_OPTION', /selection\.extra/)
    everyEntry({ keepRatio: 0.5, selection: { adaptive: { alpha: 0.5, beta: 1 } } }, 'INVALID_OPTION', /selection\.adaptive\.beta/)
    everyEntry({ keepRatio: 0.5, selection: { adaptive: { alpa: 0.5 } } }, 'INVALID_OPTION', all("'selection\\.adaptive\\.alpa'", 'selection\\.adaptive\\.alpha'))
    for (const bad of [5, 'x', true, [0.5], null]) everyEntry({ keepRatio: 0.5, selection: { adaptive: bad } }, 'INVALID_OPTION', /selection\.adaptive/)
  })

  it('a threshold that is not a number, or NaN', () => {
    for (const t of [NaN, -NaN, '1', '-Infinity', null, 1n, {}, [1], true, new Number(1)]) {
      everyEntry({ selection: { threshold: t } }, 'INVALID_OPTION', THRESHOLD)
    }
    // an undefined threshold is an absent one: neither member given
    everyEntry({ selection: { threshold: undefined } }, 'INVALID_OPTION', all('selection', 'adaptive', 'threshold'))
    // +-Infinity and numbers beyond fp32 are thresholds (t is rounded to float32)
    for (const t of [Infinity, -Infinity, 1e300, -1e300, 5e-324, -0]) {
      expect(() => compressSync(keys, values, { selection: { threshold: t } } as never), String(t)).not.toThrow()
    }
  })

  it('alpha outside [0, 1], NaN or not a number', () => {
    for (const alpha of [-0.1, -1e-300, 1.0000001, 2, NaN, Infinity, -Infinity, '0.5', null, 1n, [0.5]]) {
      everyEntry({ keepRatio: 0.5, selection: { adaptive: { alpha } } }, 'INVALID_OPTION', ALPHA)
    }
    for (const alpha of [0, -0, 1, 0.5, 5e-324, undefined]) {
      expect(() => compressSync(keys, values, { keepRatio: 0.5, selection: { adaptive: { alpha } } } as never), String(alpha)).not.toThrow()
    }
  })

  it('a threshold with keepRatio or keep; adaptive without them', () => {
    everyEntry({ keepRatio: 0.5, selection: { threshold: 0 } }, 'INVALID_OPTION', all('threshold', 'keepRatio'))
    everyEntry({ keep: 4, selection: { threshold: 0 } }, 'INVALID_OPTION', all('threshold', 'keep'))
    everyEntry({ selection: 'adaptive' }, 'INVALID_OPTION', all('keepRatio', 'keep'))
    everyEntry({ selection: { adaptive: { alpha: 0.5 } } }, 'INVALID_OPTION', all('keepRatio', 'keep'))
    // the usual rules still hold next to a selection
    everyEntry({ keepRatio: 2, selection: 'adaptive' }, 'INVALID_KEEP_RATIO', /keepRatio/)
    everyEntry({ keep: 17, selection: 'adaptive' }, 'INVALID_KEEP', /keep/)
    everyEntry({ selection: { threshold: 0 }, sink: -1 }, 'INVALID_SINK', /sink/)
  })
})

describe('compressCache: a threshold takes no budgets; adaptive takes every kind', () => {
  it('a threshold with budgets of any kind is INVALID_OPTION naming budgets and the threshold', async () => {
    const layers = [{ keys, values }, { keys, values }]
    for (const budgets of ['pyramid', { pyramid: { beta: 5 } }, { zigzag: [1, 2] }, [0.5, 0.5], { keep: [4, 4] }]) {
      expectCode(() => compressCacheSync(layers, { selection: { threshold: 0 }, budgets } as never), 'INVALID_OPTION', all('budgets', 'threshold'))
      await expectRejects(compressCache(layers, { selection: { threshold: 0 }, budgets } as never), 'INVALID_OPTION', all('budgets', 'threshold'))
    }
    // 'uniform' is no budget of its own: accepted
    expect(compressCacheSync(layers, { selection: { threshold: 0 }, budgets: 'uniform' }).layers.length).toBe(2)
    for (const budgets of ['pyramid', { zigzag: [1, 2] }, [0.5, 0.25], { keep: [4, 9] }]) {
      const extra = typeof budgets === 'string' || 'zigzag' in budgets ? { keepRatio: 0.5 } : {}
      expect(() => compressCacheSync(layers, { ...extra, selection: 'adaptive', budgets } as never), JSON.stringify(budgets)).not.toThrow()
    }
  })
})

describe('headKeep: bad counts', () => {
  const ok = [4, 5, 6, 7, 8, 16]

  it('the wrong length: INVALID_KEEP, batch * kvHeads = 6 entries expected, the count said', () => {
    for (const n of [1, 3, 5, 7, 12]) {
      everyEntry({ headKeep: new Array(n).fill(4) }, 'INVALID_KEEP', all('headKeep', 'batch \\* kvHeads = 6', `\\b${n}\\b`))
      everyEntry({ headKeep: new Int32Array(n).fill(4) }, 'INVALID_KEEP', all('headKeep', 'batch \\* kvHeads = 6', `\\b${n}\\b`))
    }
    // no rows (kvHeads 0): an empty headKeep is the right length
    const none = { type: 'float16', data: new Uint16Array(0), dims: [2, 0, 16, 8] }
    const res = compressSync(none, none, { headKeep: [] })
    expect(Array.from(res.lengths)).toEqual([0, 0])
    expect(res.headLengths.length).toBe(0)
  })

  // Found by this suite (fixed in a370f46): an empty headKeep for 6 rows was accepted as keep 0.
  it('an empty headKeep for 6 rows is INVALID_KEEP too', () => {
    everyEntry({ headKeep: [] }, 'INVALID_KEEP', all('headKeep', 'batch \\* kvHeads = 6', '\\b0\\b'))
  })

  it('counts outside [min(len, sink + recent), len], fractions, NaN, non-numbers: INVALID_KEEP naming headKeep[i]', () => {
    const at = (i: number, x: unknown) => ok.map((v, j) => (j === i ? x : v))
    // out of range: the row is named, with its bounds
    for (const [i, x] of [[0, 17], [5, -1], [3, 2 ** 31 - 1], [1, 2 ** 31], [2, 2 ** 32 + 4], [4, -(2 ** 31) - 1]] as const) {
      everyEntry({ headKeep: at(i, x) }, 'INVALID_KEEP', all(`headKeep\\[${i}\\]`, '\\[0, 16\\]', `received ${x}\\b`))
    }
    // not integers (or beyond 2^53): INVALID_KEEP naming headKeep (not the entry), integers expected
    for (const [i, x] of [[2, 2.5], [3, NaN], [4, Infinity], [1, -Infinity], [0, 2 ** 53], [0, 1e300], [2, -0.5]] as const) {
      everyEntry({ headKeep: at(i, x) }, 'INVALID_KEEP', all('headKeep', 'integers'))
    }
    // below sink + recent: 2 + 3 = 5 at least
    everyEntry({ headKeep: [5, 6, 4, 7, 8, 16], sink: 2, recent: 3 }, 'INVALID_KEEP', all('headKeep\\[2\\]', '\\[5, 16\\]'))
    // the bound is the entry's valid length: entry 1 (heads 3..5) of length 7
    everyEntry({ headKeep: at(4, 8), lengths: [16, 7] }, 'INVALID_KEEP', all('headKeep\\[4\\]', '7'))
    // and below min(len, sink + recent) is fine when the length is short: entry 1 of length 3 keeps 3
    expect(() => compressSync(keys, values, { headKeep: [5, 5, 5, 3, 3, 3], sink: 2, recent: 3, lengths: [16, 3] })).not.toThrow()
    for (const bad of [['4', 4, 4, 4, 4, 4], [4, 4, 4, null, 4, 4], [4, 4, 4, 4, 4n, 4], [4, 4, 4, 4, 4, undefined]]) {
      const err = caught(() => compressSync(keys, values, { headKeep: bad } as never)) as kvtrim.KvtrimError
      expect(err).toBeInstanceOf(KvtrimError)
      expect(['INVALID_KEEP', 'INVALID_OPTION']).toContain(err.code)
      expect(err.message).toMatch(HEAD_KEEP)
    }
  })

  it('not an array of numbers: a number, a string, an object without length, null', () => {
    for (const bad of [5, 'abcdef', {}, null, true, () => 6, new ArrayBuffer(24), new BigInt64Array(6)]) {
      const err = caught(() => compressSync(keys, values, { headKeep: bad } as never)) as kvtrim.KvtrimError
      expect(err, String(bad)).toBeInstanceOf(KvtrimError)
      expect(['INVALID_OPTION', 'INVALID_KEEP', 'INVALID_ARGUMENT'], `${String(bad)}: ${err.code}`).toContain(err.code)
      expect(err.message).toMatch(HEAD_KEEP)
    }
  })

  it('headKeep with keepRatio or keep, or with a selection other than per-head', () => {
    everyEntry({ headKeep: ok, keepRatio: 0.5 }, 'INVALID_OPTION', all('headKeep', 'keepRatio'))
    everyEntry({ headKeep: ok, keep: 4 }, 'INVALID_OPTION', all('headKeep', 'keep'))
    everyEntry({ headKeep: ok, selection: { threshold: 0 } }, 'INVALID_OPTION', all('headKeep', 'selection'))
    everyEntry({ headKeep: ok, selection: 'adaptive' }, 'INVALID_OPTION', all('headKeep', 'selection'))
    everyEntry({ headKeep: ok, selection: { adaptive: { alpha: 1 } } }, 'INVALID_OPTION', all('headKeep', 'selection'))
    // with 'per-head' (the default, said) it is the caller's counts
    const res = compressSync(keys, values, { headKeep: ok, selection: 'per-head' })
    expect(Array.from(res.headLengths)).toEqual(ok)
  })

  it('accepted forms: plain arrays, Int32Array, Float64Array, Uint8Array, a Proxy of an array: the same result', () => {
    const want = oracle.compress(keys, values, { headKeep: ok })
    for (const headKeep of [ok, Int32Array.from(ok), Float64Array.from(ok), Uint8Array.from(ok), new Proxy(ok.slice(), {})]) {
      const res = compressSync(keys, values, { headKeep })
      expect(Array.from(res.indices), headKeep.constructor.name).toEqual(Array.from(want.indices))
      expect(Array.from(res.headLengths)).toEqual(ok)
    }
  })
})

describe('the Promise forms', () => {
  it('reject with the same codes and messages', async () => {
    await expectRejects(compress(keys, values, { keepRatio: 0.5, selection: 'ada' } as never), 'INVALID_OPTION', SELECTION)
    await expectRejects(compress(keys, values, { selection: { threshold: NaN } }), 'INVALID_OPTION', THRESHOLD)
    await expectRejects(compress(keys, values, { keepRatio: 0.5, selection: { adaptive: { alpha: 2 } } }), 'INVALID_OPTION', ALPHA)
    await expectRejects(compress(keys, values, { headKeep: [4, 4, 4, 4, 4, 17] }), 'INVALID_KEEP', /headKeep\[5\]/)
    await expectRejects(compressInPlace({ ...keys, data: keys.data.slice() }, { ...values, data: values.data.slice() }, { keepRatio: 0.5, selection: { threshold: 0 } }), 'INVALID_OPTION', all('threshold', 'keepRatio'))
    await expectRejects(compressCache([{ keys, values }], { selection: 'adaptive' }), 'INVALID_OPTION', all('keepRatio', 'keep'))
  })
})

describe('the Compressor and CacheCompressor refuse any selection but per-head', () => {
  const copies = () => [{ keys: { ...keys, data: keys.data.slice() }, values: { ...values, data: values.data.slice() } }]

  it('INVALID_OPTION naming selection (at construction); headKeep is not an option of theirs', () => {
    for (const selection of ['adaptive', { adaptive: { alpha: 0.5 } }, { threshold: 0 }, 'ada', 5, {}]) {
      expectCode(() => new Compressor({ target: 4, interval: 0, selection } as never), 'INVALID_OPTION', SELECTION)
      expectCode(() => new CacheCompressor({ keepRatio: 0.5, selection } as never).afterPrefillSync(copies()), 'INVALID_OPTION', SELECTION)
    }
    expectCode(() => new Compressor({ target: 4, interval: 0, headKeep: [4, 4, 4, 4, 4, 4] } as never), 'INVALID_OPTION', HEAD_KEEP)
    expectCode(() => new CacheCompressor({ keepRatio: 0.5, headKeep: [4, 4, 4, 4, 4, 4] } as never).afterPrefillSync(copies()), 'INVALID_OPTION', HEAD_KEEP)
    // a getter that answers 'per-head' once and a ragged selection after (or the other way round) is refused
    for (const answers of [['adaptive', 'per-head'], ['per-head', 'adaptive']]) {
      const flip = (o: object) => {
        let n = 0
        return Object.defineProperty(o, 'selection', { get() { return answers[Math.min(n++, answers.length - 1)] }, enumerable: true })
      }
      expectCode(() => new Compressor(flip({ target: 4, interval: 0 }) as never), 'INVALID_OPTION', SELECTION)
      expectCode(() => new CacheCompressor(flip({ keepRatio: 0.5 }) as never).afterPrefillSync(copies()), 'INVALID_OPTION', SELECTION)
    }
  })

  // docs/policies.md: they "refuse any selection but 'per-head'" (found by this suite: 'per-head'
  // was refused by the option's name; fixed in a370f46).
  it("selection: 'per-head' is accepted", () => {
    const step = new Compressor({ target: 4, interval: 0, selection: 'per-head' } as never).stepSync(copies())
    expect(step.layers[0].after).toBe(4)
    const kv = new CacheCompressor({ keepRatio: 0.5, selection: 'per-head' } as never).afterPrefillSync(copies())
    expect(kv.lengths).toEqual([8])
  })
})

describe("the caller's getters and Proxies", () => {
  const boom = new RangeError('the caller’s getter')

  it('a throwing getter or trap anywhere in selection or headKeep propagates unchanged (the same object)', async () => {
    const cases: Array<[string, () => object]> = [
      ['selection getter', () => Object.defineProperty({ keepRatio: 0.5 }, 'selection', { get(): never { throw boom }, enumerable: true })],
      ['threshold getter', () => ({ selection: { get threshold(): never { throw boom } } })],
      ['adaptive getter', () => ({ keepRatio: 0.5, selection: { get adaptive(): never { throw boom } } })],
      ['alpha getter', () => ({ keepRatio: 0.5, selection: { adaptive: { get alpha(): never { throw boom } } } })],
      ['selection ownKeys trap', () => ({ keepRatio: 0.5, selection: new Proxy({ adaptive: { alpha: 0.5 } }, { ownKeys: () => { throw boom } }) })],
      ['selection get trap', () => ({ keepRatio: 0.5, selection: new Proxy({ adaptive: { alpha: 0.5 } }, { get: () => { throw boom } }) })],
      ['adaptive ownKeys trap', () => ({ keepRatio: 0.5, selection: { adaptive: new Proxy({ alpha: 0.5 }, { ownKeys: () => { throw boom } }) } })],
      ['headKeep getter', () => Object.defineProperty({}, 'headKeep', { get(): never { throw boom }, enumerable: true })],
      ['headKeep entry', () => ({ headKeep: new Proxy([4, 4, 4, 4, 4, 4], { get: (t, p) => { if (p === '3') throw boom; return Reflect.get(t, p) } }) })],
      ['headKeep length', () => ({ headKeep: new Proxy([4, 4, 4, 4, 4, 4], { get: (t, p) => { if (p === 'length') throw boom; return Reflect.get(t, p) } }) })],
    ]
    for (const [what, make] of cases) {
      expect(caught(() => compressSync(keys, values, make() as never)), what).toBe(boom)
      expect(await compress(keys, values, make() as never).catch((e: unknown) => e), `${what} (Promise)`).toBe(boom)
      const k = { ...keys, data: keys.data.slice() }, v = { ...values, data: values.data.slice() }
      expect(caught(() => compressInPlaceSync(k, v, make() as never)), `${what} (in place)`).toBe(boom)
      // compressCache refuses headKeep by its name, before reading it
      if (!what.startsWith('headKeep')) expect(caught(() => compressCacheSync([{ keys, values }], make() as never)), `${what} (compressCache)`).toBe(boom)
    }
  })

  // The facade reads options.selection once to see whether the selection is ragged
  // (lib/selection.ts wantsSelection), then native code decodes the options and its copy is the
  // one used: "a getter that changes its answer between the two reads gets the decoded answer"
  // (the lead's decision; every other option is read once). What is checked is what is used.
  it('a selection getter that answers differently each time: the decoded (second) answer is used, or a KvtrimError; never a mix', async () => {
    const want = compressSync(keys, values, { selection: { threshold: -2 } })
    const flipping = (answers: unknown[]) => {
      let n = 0
      const o = { get selection(): unknown { return answers[Math.min(n++, answers.length - 1)] } }
      return { o, reads: () => n }
    }
    // ragged first, junk after: refused, naming selection
    const a = flipping([{ threshold: -2 }, 'junk'])
    expectCode(() => compressSync(keys, values, a.o as never), 'INVALID_OPTION', SELECTION)
    expect(a.reads()).toBeLessThanOrEqual(2)
    // the same answer twice: the result
    const b = flipping([{ threshold: -2 }])
    expect(Array.from(compressSync(keys, values, b.o as never).indices)).toEqual(Array.from(want.indices))
    expect(b.reads()).toBeLessThanOrEqual(2)
    // per-head first, a threshold after: native compress refuses a ragged selection it did not expect
    for (const first of [undefined, 'per-head', null]) {
      const c = flipping([first, { threshold: -2 }])
      expectCode(() => compressSync(keys, values, c.o as never), 'INVALID_OPTION', SELECTION)
      const d = flipping([first, { threshold: -2 }])
      await expectRejects(compress(keys, values, d.o as never), 'INVALID_OPTION', SELECTION)
    }
    // a threshold first, per-head after (no keepRatio: the per-head decode wants one)
    const e = flipping([{ threshold: -2 }, 'per-head'])
    expectCode(() => compressSync(keys, values, e.o as never), 'INVALID_OPTION', all('keepRatio', 'keep'))
  })

  it('members inside selection and headKeep entries are read once: what is checked is what is used', async () => {
    const want = compressSync(keys, values, { selection: { threshold: -2 } })
    // the threshold itself: a number first, NaN after
    let m = 0
    const res2 = compressSync(keys, values, { selection: { get threshold(): number { return m++ === 0 ? -2 : NaN } } } as never)
    expect(Array.from(res2.indices)).toEqual(Array.from(want.indices))
    expect(m).toBe(1)
    // alpha: 0.5 then 7; the Promise form too
    let a = 0
    const wantA = compressSync(keys, values, { keepRatio: 0.4, selection: { adaptive: { alpha: 0.5 } } })
    const alpha = () => {
      let own = 0 // each object answers 0.5 at its first read, 7 after
      return { keepRatio: 0.4, selection: { adaptive: { get alpha(): number { a++; return own++ === 0 ? 0.5 : 7 } } } }
    }
    expect(Array.from(compressSync(keys, values, alpha() as never).headLengths)).toEqual(Array.from(wantA.headLengths))
    expect(a).toBe(1)
    expect(Array.from((await compress(keys, values, alpha() as never)).headLengths)).toEqual(Array.from(wantA.headLengths))
    expect(a).toBe(2)
    // headKeep's entries: valid on the first read, out of range after
    let h = 0
    const counts = [4, 5, 6, 7, 8, 16]
    const headKeep = new Proxy(counts, { get: (t, p) => (p === '2' && h++ > 0 ? 99 : Reflect.get(t, p)) })
    const res3 = compressSync(keys, values, { headKeep })
    expect(Array.from(res3.headLengths)).toEqual(counts)
    expect(h).toBe(1)
    // a selection Proxy that answers like the object it wraps
    const proxied = compressSync(keys, values, new Proxy({ selection: new Proxy({ threshold: -2 }, {}) }, {}) as never)
    expect(Array.from(proxied.indices)).toEqual(Array.from(want.indices))
  })
})

describeCuda('device keys', () => {
  it('the same codes and messages for device tensors', async () => {
    const dk = toDevice(keys), dv = toDevice(values)
    try {
      expectCode(() => compressSync(dk, dv, { keepRatio: 0.5, selection: 'ada' } as never), 'INVALID_OPTION', SELECTION)
      expectCode(() => compressSync(dk, dv, { selection: { threshold: NaN } }), 'INVALID_OPTION', THRESHOLD)
      expectCode(() => compressSync(dk, dv, { headKeep: [4, 4, 4, 4, 4, 17] }), 'INVALID_KEEP', /headKeep\[5\]/)
      expectCode(() => compressInPlaceSync(dk, dv, { keepRatio: 0.5, selection: { adaptive: { alpha: -1 } } }), 'INVALID_OPTION', ALPHA)
      await expectRejects(compress(dk, dv, { selection: 'adaptive' }), 'INVALID_OPTION', all('keepRatio', 'keep'))
      expectCode(() => compressCacheSync([{ keys: dk, values: dv }], { keepRatio: 0.5, selection: { threshold: 1 } }), 'INVALID_OPTION', all('threshold', 'keepRatio'))
    } finally {
      dk.dispose()
      dv.dispose()
    }
  })
})

describe('after all of the above', () => {
  it('nothing the caller passed was modified, and a valid call of every mode still works', () => {
    const now = snapshot()
    now.forEach((a, i) => expect(Array.from(a), `input ${i}`).toEqual(Array.from(before[i])))
    for (const o of [{ keepRatio: 0.5 }, { keepRatio: 0.5, selection: 'adaptive' }, { selection: { threshold: -1 } }, { headKeep: [1, 2, 3, 4, 5, 6] }] as oracle.OracleOptions[]) {
      const res = compressSync(keys, values, o as never)
      const want = oracle.compress(keys, values, o)
      expect(Array.from(res.indices), JSON.stringify(o)).toEqual(Array.from(want.indices))
      expect(Array.from(res.headLengths), JSON.stringify(o)).toEqual(Array.from(want.headLengths))
    }
  })
})
