// llama2.c's tokenizer (tokenizer.bin format) in TypeScript: BPE encoding by merge scores with
// byte fallback (byte b is token b + 3), and decoding as run.c prints pieces.
import { readFileSync } from 'node:fs'

export const BOS = 1
export const EOS = 2

export class Tokenizer {
  readonly vocab: Uint8Array[]
  readonly scores: Float32Array
  readonly #ids = new Map<string, number>()
  readonly #decoder = new TextDecoder('utf-8')

  constructor(vocab: Uint8Array[], scores: Float32Array) {
    this.vocab = vocab
    this.scores = scores
    // run.c looks pieces up by binary search over the sorted vocabulary; pieces are unique here
    vocab.forEach((piece, id) => {
      const key = Buffer.from(piece).toString('latin1')
      if (!this.#ids.has(key)) this.#ids.set(key, id)
    })
  }

  /** Reads tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length, bytes. */
  static load(path: string, vocabSize: number): Tokenizer {
    const buf = readFileSync(path)
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.length)
    let at = 4
    const vocab: Uint8Array[] = []
    const scores = new Float32Array(vocabSize)
    for (let i = 0; i < vocabSize; i++) {
      if (at + 8 > buf.length) throw new Error(`${path}: truncated at token ${i}`)
      scores[i] = dv.getFloat32(at, true)
      const len = dv.getInt32(at + 4, true)
      at += 8
      vocab.push(Uint8Array.from(buf.subarray(at, at + len)))
      at += len
    }
    return new Tokenizer(vocab, scores)
  }

  #lookup(bytes: Uint8Array | number[]): number | undefined {
    return this.#ids.get(Buffer.from(bytes).toString('latin1'))
  }

  /** run.c's encode(): a dummy-prefix space, code points (or their bytes + 3), then best-score merges. */
  encode(text: string, bos = true, eos = false): number[] {
    const tokens: number[] = []
    if (bos) tokens.push(BOS)
    const body: number[] = []
    if (text.length > 0) {
      const space = this.#lookup([0x20])
      if (space === undefined) throw new Error('tokenizer has no " " piece')
      body.push(space)
    }
    for (const ch of text) {
      const bytes = Buffer.from(ch, 'utf8')
      const id = this.#lookup(bytes)
      if (id !== undefined) body.push(id)
      else for (const b of bytes) body.push(b + 3)
    }
    for (;;) {
      let best = -1e10, bestId = -1, bestAt = -1
      for (let i = 0; i + 1 < body.length; i++) {
        const a = this.vocab[body[i]], b = this.vocab[body[i + 1]]
        const merged = new Uint8Array(a.length + b.length)
        merged.set(a)
        merged.set(b, a.length)
        const id = this.#lookup(merged)
        if (id !== undefined && this.scores[id] > best) {
          best = this.scores[id]
          bestId = id
          bestAt = i
        }
      }
      if (bestAt < 0) break
      body.splice(bestAt, 2, bestId)
    }
    tokens.push(...body)
    if (eos) tokens.push(EOS)
    return tokens
  }

  /** The bytes of `token` as run.c prints it after `prev`: no leading space after BOS, <0xXX> as the raw byte. */
  pieceBytes(prev: number, token: number): Uint8Array {
    let piece = this.vocab[token]
    if (prev === BOS && piece[0] === 0x20) piece = piece.subarray(1)
    const m = /^<0x([0-9A-F]{2})>$/.exec(Buffer.from(piece).toString('latin1'))
    return m ? Uint8Array.of(parseInt(m[1], 16)) : piece
  }

  /** The text of a token sequence (BOS / EOS print nothing at the start; bytes joined before UTF-8 decoding). */
  decode(tokens: readonly number[]): string {
    const parts: Uint8Array[] = []
    for (let i = 0; i < tokens.length; i++) {
      if (tokens[i] === BOS || tokens[i] === EOS) continue
      parts.push(this.pieceBytes(i > 0 ? tokens[i - 1] : BOS, tokens[i]))
    }
    return this.#decoder.decode(Buffer.concat(parts))
  }
}
