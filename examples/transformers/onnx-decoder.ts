// An ONNX decoder with transformers.js's input/output names, run by onnxruntime-node, as
// kvtrim-eval's Decoder: the converter's output, or a float32 decoder a user exported
// (optimum-style: onnx/model.onnx + config.json with the layer, head and KV head counts).
import { readFileSync } from 'node:fs'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import type { Decoder, DecoderConfig } from '../../eval/decoder'
import type { ForwardOptions, ForwardResult, KvCache } from '../../eval/llama2c'

export class OnnxDecoder implements Decoder {
  readonly sharedMask = true
  readonly #positions: boolean

  private constructor(
    readonly config: DecoderConfig,
    readonly bos: number,
    readonly session: ort.InferenceSession,
  ) {
    this.#positions = session.inputNames.includes('position_ids')
  }

  /** Loads dir/onnx/model.onnx (or `file`) and dir/config.json. */
  static async load(dir: string, file = path.join('onnx', 'model.onnx')): Promise<OnnxDecoder> {
    const cfg = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'))
    const nHeads = cfg.num_attention_heads
    const config: DecoderConfig = {
      nLayers: cfg.num_hidden_layers,
      nHeads,
      nKvHeads: cfg.num_key_value_heads ?? nHeads,
      headDim: cfg.head_dim ?? cfg.hidden_size / nHeads,
      vocabSize: cfg.vocab_size,
      seqLen: cfg.max_position_embeddings ?? 2048,
    }
    const session = await ort.InferenceSession.create(path.join(dir, file))
    for (const name of ['input_ids', 'attention_mask', 'past_key_values.0.key']) {
      if (!session.inputNames.includes(name)) throw new Error(`${dir}: the decoder has no input '${name}' (transformers.js names expected)`)
    }
    return new OnnxDecoder(config, cfg.bos_token_id ?? 1, session)
  }

  async forward(tokens: readonly number[], positions: readonly number[], cache: KvCache | null, o: ForwardOptions = {}): Promise<ForwardResult> {
    const { nLayers, nKvHeads, headDim, vocabSize } = this.config
    const past = cache?.[0].keys.dims[2] ?? 0
    const i64 = (xs: readonly number[]) => new ort.Tensor('int64', BigInt64Array.from(xs, (x) => BigInt(x)), [1, xs.length])
    const feeds: Record<string, ort.Tensor> = {
      input_ids: i64(tokens),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(past + tokens.length).fill(1n), [1, past + tokens.length]),
    }
    if (this.#positions) feeds.position_ids = i64(positions)
    for (let l = 0; l < nLayers; l++) {
      const layer = cache?.[l]
      if (layer && layer.keys.dims[2] !== past) throw new Error('Expected every layer to hold the same number of tokens: one attention mask serves them all')
      const empty = () => new ort.Tensor('float32', new Float32Array(0), [1, nKvHeads, 0, headDim])
      feeds[`past_key_values.${l}.key`] = layer ? new ort.Tensor('float32', layer.keys.data, layer.keys.dims) : empty()
      feeds[`past_key_values.${l}.value`] = layer ? new ort.Tensor('float32', layer.values.data, layer.values.dims) : empty()
    }
    const out = await this.session.run(feeds)
    const all = out.logits.data as Float32Array
    const logits = o.logits === 'last' ? all.slice(all.length - vocabSize) : all
    const next: KvCache = Array.from({ length: nLayers }, (_, l) => ({
      keys: { type: 'float32', data: out[`present.${l}.key`].data as Float32Array, dims: [...out[`present.${l}.key`].dims] },
      values: { type: 'float32', data: out[`present.${l}.value`].data as Float32Array, dims: [...out[`present.${l}.value`].dims] },
    }))
    return { logits, cache: next } // no attention weights: the diagnostic is skipped
  }
}
