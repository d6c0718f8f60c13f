// The evaluation text: stories sampled from the model itself with a fixed seed (temperature 1,
// plain multinomial sampling as llama2.c's run.c does without top-p), so the evaluation runs
// offline and the same on every machine. Each story starts at BOS.
import type { Decoder } from './decoder'
import { BOS } from './tokenizer'

/** mulberry32: a small seeded generator. */
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Draws a token from softmax(logits / temperature). */
export function sample(logits: Float32Array, temperature: number, random: () => number): number {
  let max = -Infinity
  for (const x of logits) max = Math.max(max, x)
  const p = Float64Array.from(logits, (x) => Math.exp((x - max) / temperature))
  let total = 0
  for (const x of p) total += x
  let r = random() * total
  for (let i = 0; i < p.length; i++) {
    r -= p[i]
    if (r <= 0) return i
  }
  return p.length - 1
}

/** `count` token sequences of `length` tokens (`bos` first), sampled with `seed`. */
export async function sampleStories(model: Decoder, count: number, length: number, seed: number, temperature = 1, bos = BOS): Promise<number[][]> {
  const random = rng(seed)
  const stories: number[][] = []
  for (let s = 0; s < count; s++) {
    const tokens = [bos]
    let r = await model.forward([bos], [0], null, { logits: 'last' })
    while (tokens.length < length) {
      tokens.push(sample(r.logits, temperature, random))
      if (tokens.length < length) r = await model.forward([tokens[tokens.length - 1]], [tokens.length - 1], r.cache, { logits: 'last' })
    }
    stories.push(tokens)
  }
  return stories
}
