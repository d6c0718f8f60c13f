// Run by scripts/pack-test.sh inside a temporary project where the packed kvtrim is installed:
//   node pack-check.cjs cjs|esm [expect-cuda-compiled|expect-cpu-only]
// Loads kvtrim with require() or import(), runs keyNorms and compress on a small fp16 tensor and
// compares them with an inline reference that follows the numeric contract (README/DESIGN).
'use strict'
const assert = require('node:assert/strict')

function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1
  const e = (h >> 10) & 0x1f
  const m = h & 0x3ff
  if (e === 0) return s * m * 2 ** -24
  if (e === 31) return m ? NaN : s * Infinity
  return s * (1 + m / 1024) * 2 ** (e - 15)
}

// Squared norm: chunks of 8 summed left to right in fp32, then a pairwise tree of the chunk
// sums (padded to a power of two with zeros); the norm is the correctly rounded fp32 sqrt.
function refNorm(row) {
  const f = Math.fround
  const sums = []
  for (let c = 0; c < row.length; c += 8) {
    let s = 0
    for (let i = c; i < c + 8; i++) s = f(s + (i < row.length ? f(row[i] * row[i]) : 0))
    sums.push(s)
  }
  let n = 1
  while (n < sums.length) n *= 2
  while (sums.length < n) sums.push(0)
  for (let half = n / 2; half >= 1; half /= 2) for (let i = 0; i < half; i++) sums[i] = f(sums[i] + sums[i + half])
  return f(Math.sqrt(sums[0]))
}

async function main() {
  const [mode, expectation] = process.argv.slice(2)
  const kvtrim = mode === 'esm' ? await import('kvtrim') : require('kvtrim')
  const B = 1, H = 2, S = 13, D = 20
  let seed = 12345
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32)
  const keys = new Uint16Array(B * H * S * D)
  const values = new Uint16Array(B * H * S * D)
  for (let i = 0; i < keys.length; i++) {
    // fp16 bits of small signed values, with exponents 10..17 (about 2^-5 .. 2^2)
    keys[i] = ((rnd() < 0.5 ? 1 : 0) << 15) | ((10 + Math.floor(rnd() * 8)) << 10) | Math.floor(rnd() * 1024)
    values[i] = i & 0xffff
  }
  keys[(1 * S + 4) * D + 3] = keys[(1 * S + 5) * D + 3] // a near tie is fine; ties go to the earlier token
  const k = { type: 'float16', data: keys, dims: [B, H, S, D] }
  const v = { type: 'float16', data: values, dims: [B, H, S, D] }

  const expected = new Float32Array(B * H * S)
  for (let r = 0; r < B * H * S; r++) expected[r] = refNorm(Array.from(keys.subarray(r * D, r * D + D), halfToFloat))

  const norms = await kvtrim.keyNorms(k)
  assert.deepEqual(Array.from(norms), Array.from(expected), 'keyNorms differs from the reference')
  assert.deepEqual(Array.from(kvtrim.keyNormsSync(k)), Array.from(expected), 'keyNormsSync differs')

  const keepRatio = 0.4
  const kept = Math.ceil(keepRatio * S)
  const res = await kvtrim.compress(k, v, { keepRatio })
  assert.equal(res.kept, kept)
  for (let h = 0; h < H; h++) {
    const order = Array.from({ length: S }, (_, t) => t)
      .sort((a, b) => expected[h * S + a] - expected[h * S + b] || a - b)
      .slice(0, kept)
      .sort((a, b) => a - b)
    assert.deepEqual(Array.from(res.indices.subarray(h * kept, h * kept + kept)), order, `head ${h}: kept tokens`)
    for (let j = 0; j < kept; j++) {
      const src = (h * S + order[j]) * D, dst = (h * kept + j) * D
      assert.deepEqual(Array.from(res.keys.data.subarray(dst, dst + D)), Array.from(keys.subarray(src, src + D)))
      assert.deepEqual(Array.from(res.values.data.subarray(dst, dst + D)), Array.from(values.subarray(src, src + D)))
    }
  }

  const b = kvtrim.backend()
  assert.equal(b.default, 'cpu', 'no GPU is expected on a packaging-test machine')
  if (expectation === 'expect-cuda-compiled') assert.equal(b.cuda.compiled, true, 'the prebuilt addon lacks the CUDA path')
  if (expectation === 'expect-cpu-only') assert.equal(b.cuda.compiled, false)
  assert.ok(b.cuda.reason.length > 0)
  console.log(`pack-check ${mode}: keyNorms and compress match the reference (${B * H * S} rows, kept ${kept}/${S}); ` +
    `cuda compiled=${b.cuda.compiled}, not used: ${b.cuda.reason}`)
}

main().catch((err) => {
  console.error(`pack-check ${process.argv[2]}: FAILED:`, err)
  process.exit(1)
})
