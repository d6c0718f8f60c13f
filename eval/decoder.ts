// What kvtrim-eval needs from a model: a forward pass over an explicit cache in kvtrim's layout.
// eval/llama2c.ts's Llama2Model is one; examples/transformers/onnx-decoder.ts wraps an ONNX
// decoder run by onnxruntime-node.
import type { ForwardOptions, ForwardResult, KvCache } from './llama2c'

export interface DecoderConfig {
  nLayers: number
  nHeads: number
  nKvHeads: number
  headDim: number
  vocabSize: number
  /** the longest context it takes */
  seqLen: number
}

export interface Decoder {
  readonly config: DecoderConfig
  /**
   * true where one attention mask serves every layer (ONNX exports): every layer must then hold
   * the same number of tokens, so skipLayers cannot be evaluated.
   */
  readonly sharedMask?: boolean
  /**
   * true where forward() honours KvLayer.heads (a length per KV head, padding masked per head):
   * only then can ragged selections (adaptive, threshold) be evaluated; elsewhere they report n/a,
   * as an ONNX export's single attention mask per batch entry cannot express them.
   */
  readonly perHeadLengths?: boolean
  /** Runs tokens at absolute positions after the cache; `attention` is returned where the decoder can (else the diagnostic is skipped). */
  forward(tokens: readonly number[], positions: readonly number[], cache: KvCache | null, o?: ForwardOptions): ForwardResult | Promise<ForwardResult>
}
