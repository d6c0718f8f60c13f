// llama2.c checkpoint -> ONNX decoder with transformers.js's conventions, plus the config.json
// that lets AutoModelForCausalLM.from_pretrained load it offline.
//
//   npx tsx convert.ts [checkpoint.bin] [outDir]     (defaults: ../../../shared/models/stories260K.bin, ./model)
//
// Inputs: input_ids, attention_mask, position_ids [batch, seq] int64 and past_key_values.{l}.key /
// .value [batch, kvHeads, past, headDim] float32; outputs: logits [batch, seq, vocab] and
// present.{l}.key / .value [batch, kvHeads, past + seq, headDim]. Keys are cached after RoPE.
// RoPE takes cos / sin from tables indexed by position_ids (so positions are whatever the caller
// passes: after kvtrim compressed the cache, the absolute ones). Attention: query t sees the
// cache rows 0 .. past + t whose attention_mask is 1.
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { readCheckpoint, type Llama2Config, type Weights } from '../../eval/llama2c'
import { DataType, encodeModel, floats, int64s, type AttributeValue, type Graph, type Node, type Tensor } from './onnx-proto'

class Builder {
  readonly nodes: Node[] = []
  readonly initializers: Tensor[] = []
  #n = 0
  op(op: string, inputs: string[], attributes?: Record<string, AttributeValue>, out?: string): string {
    const output = out ?? `${op.toLowerCase()}_${this.#n++}`
    this.nodes.push({ op, inputs, outputs: [output], attributes })
    return output
  }
  init(t: Tensor): string {
    this.initializers.push(t)
    return t.name
  }
  ints(name: string, data: number[]): string {
    return this.init(int64s(name, [data.length], data))
  }
  scalar(name: string, v: number): string {
    return this.init(floats(name, [], [v]))
  }
}

/** [out, in] row-major -> [in, out], for x @ W^T as a MatMul. */
function transposed(w: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols)
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c]
  return t
}

export function buildGraph(c: Llama2Config, w: Weights, maxPositions = c.seqLen): Graph {
  const b = new Builder()
  const { dim, hiddenDim, nLayers, nHeads, nKvHeads, headDim, vocabSize } = c
  const kvDim = nKvHeads * headDim, group = nHeads / nKvHeads, half = headDim / 2
  // constants
  const eps = b.scalar('eps', 1e-5)
  const scale = b.scalar('attn_scale', 1 / Math.sqrt(headDim))
  const negInf = b.scalar('neg_inf', -Infinity)
  const zeroI = b.init(int64s('zero_i64', [], [0]))
  const oneI = b.init(int64s('one_i64', [], [1]))
  const cos = new Float32Array(maxPositions * half), sin = new Float32Array(maxPositions * half)
  for (let p = 0; p < maxPositions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p / Math.pow(10000, (2 * i) / headDim) // as run.c and eval/llama2c.ts: double, then float32
      cos[p * half + i] = Math.cos(angle)
      sin[p * half + i] = Math.sin(angle)
    }
  }
  b.init(floats('rope_cos', [maxPositions, half], cos))
  b.init(floats('rope_sin', [maxPositions, half], sin))
  const shapeQ = b.ints('shape_q', [0, 0, nHeads, half, 2])
  const shapeK = b.ints('shape_k', [0, 0, nKvHeads, half, 2])
  const shapeQh = b.ints('shape_q_heads', [0, 0, nHeads, headDim])
  const shapeKh = b.ints('shape_k_heads', [0, 0, nKvHeads, headDim])
  const shapeGroup = b.ints('shape_group', [0, nKvHeads, group, -1, headDim])
  const shapeHeads = b.ints('shape_heads', [0, nHeads, -1, headDim])
  const shapeDim = b.ints('shape_dim', [0, 0, dim])
  const s0 = b.ints('s0', [0]), s1 = b.ints('s1', [1]), s2 = b.ints('s2', [2]), ax4 = b.ints('ax4', [4]), ax2 = b.ints('ax2', [2])
  const ax24 = b.ints('ax24', [2, 4]), ax12 = b.ints('ax12', [1, 2])

  const rmsnorm = (x: string, weight: Float32Array, name: string): string => {
    const ms = b.op('ReduceMean', [b.op('Mul', [x, x])], { axes: [-1], keepdims: 1 })
    const inv = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [ms, eps])])])
    return b.op('Mul', [b.op('Mul', [x, inv]), b.init(floats(name, [weight.length], weight))])
  }
  const linear = (x: string, weight: Float32Array, rows: number, cols: number, name: string): string =>
    b.op('MatMul', [x, b.init(floats(name, [cols, rows], transposed(weight, rows, cols)))])

  // RoPE tables at the given positions: [B, T, 1, half, 1]
  const cosP = b.op('Unsqueeze', [b.op('Gather', ['rope_cos', 'position_ids'], { axis: 0 }), ax24])
  const sinP = b.op('Unsqueeze', [b.op('Gather', ['rope_sin', 'position_ids'], { axis: 0 }), ax24])
  /** x [B, T, heads * headDim] -> rotated interleaved pairs, [B, T, heads, headDim] */
  const rope = (x: string, pairShape: string, headShape: string): string => {
    const p = b.op('Reshape', [x, pairShape])
    const even = b.op('Slice', [p, s0, s1, ax4]), odd = b.op('Slice', [p, s1, s2, ax4])
    const e2 = b.op('Sub', [b.op('Mul', [even, cosP]), b.op('Mul', [odd, sinP])])
    const o2 = b.op('Add', [b.op('Mul', [even, sinP]), b.op('Mul', [odd, cosP])])
    return b.op('Reshape', [b.op('Concat', [e2, o2], { axis: 4 }), headShape])
  }

  // mask [B, 1, 1, T, total]: query t (cache row past + t) sees rows j <= past + t whose attention_mask is 1
  const T = b.op('Gather', [b.op('Shape', ['input_ids']), oneI], { axis: 0 })
  const total = b.op('Gather', [b.op('Shape', ['attention_mask']), oneI], { axis: 0 })
  const past = b.op('Sub', [total, T])
  const cols = b.op('Range', [zeroI, total, oneI])
  const rows = b.op('Unsqueeze', [b.op('Range', [past, total, oneI]), s1])
  const causal = b.op('LessOrEqual', [cols, rows]) // [T, total]
  const padding = b.op('Unsqueeze', [b.op('Cast', ['attention_mask'], { to: DataType.BOOL }), ax12]) // [B, 1, 1, total]
  const allowed = b.op('Unsqueeze', [b.op('And', [causal, padding]), s1]) // [B, 1, 1, T, total]

  let x = b.op('Gather', [b.init(floats('embedding', [vocabSize, dim], w.embedding)), 'input_ids'], { axis: 0 }) // [B, T, dim]
  for (let l = 0; l < nLayers; l++) {
    const h = rmsnorm(x, w.rmsAtt[l], `l${l}.rms_att`)
    const q = rope(linear(h, w.wq[l], dim, dim, `l${l}.wq`), shapeQ, shapeQh) // [B, T, H, hd]
    const k = rope(linear(h, w.wk[l], kvDim, dim, `l${l}.wk`), shapeK, shapeKh)
    const v = b.op('Reshape', [linear(h, w.wv[l], kvDim, dim, `l${l}.wv`), shapeKh])
    const perm = { perm: [0, 2, 1, 3] }
    const keys = b.op('Concat', [`past_key_values.${l}.key`, b.op('Transpose', [k], perm)], { axis: 2 }, `present.${l}.key`)
    const values = b.op('Concat', [`past_key_values.${l}.value`, b.op('Transpose', [v], perm)], { axis: 2 }, `present.${l}.value`)
    // GQA: query heads [B, kvH, group, T, hd] against keys [B, kvH, 1, total, hd]
    const qg = b.op('Reshape', [b.op('Transpose', [q], perm), shapeGroup])
    const kT = b.op('Transpose', [b.op('Unsqueeze', [keys, ax2])], { perm: [0, 1, 2, 4, 3] })
    const scores = b.op('Where', [allowed, b.op('Mul', [b.op('MatMul', [qg, kT]), scale]), negInf])
    const att = b.op('MatMul', [b.op('Softmax', [scores], { axis: -1 }), b.op('Unsqueeze', [values, ax2])]) // [B, kvH, group, T, hd]
    const merged = b.op('Reshape', [b.op('Transpose', [b.op('Reshape', [att, shapeHeads])], perm), shapeDim])
    x = b.op('Add', [x, linear(merged, w.wo[l], dim, dim, `l${l}.wo`)])
    const f = rmsnorm(x, w.rmsFfn[l], `l${l}.rms_ffn`)
    const g = linear(f, w.w1[l], hiddenDim, dim, `l${l}.w1`)
    const up = linear(f, w.w3[l], hiddenDim, dim, `l${l}.w3`)
    const ffn = linear(b.op('Mul', [b.op('Mul', [g, b.op('Sigmoid', [g])]), up]), w.w2[l], dim, hiddenDim, `l${l}.w2`)
    x = b.op('Add', [x, ffn])
  }
  b.op('MatMul', [rmsnorm(x, w.rmsFinal, 'rms_final'), b.init(floats('classifier', [dim, vocabSize], transposed(w.classifier, vocabSize, dim)))], undefined, 'logits')

  const cacheShape = (s: string) => ['batch_size', nKvHeads, s, headDim]
  const I64 = DataType.INT64, F32 = DataType.FLOAT
  return {
    name: 'llama2c_decoder',
    nodes: b.nodes,
    initializers: b.initializers,
    inputs: [
      { name: 'input_ids', type: I64, shape: ['batch_size', 'sequence_length'] },
      { name: 'attention_mask', type: I64, shape: ['batch_size', 'total_sequence_length'] },
      { name: 'position_ids', type: I64, shape: ['batch_size', 'sequence_length'] },
      ...Array.from({ length: nLayers }, (_, l) => [
        { name: `past_key_values.${l}.key`, type: F32, shape: cacheShape('past_sequence_length') },
        { name: `past_key_values.${l}.value`, type: F32, shape: cacheShape('past_sequence_length') },
      ]).flat(),
    ],
    outputs: [
      { name: 'logits', type: F32, shape: ['batch_size', 'sequence_length', vocabSize] },
      ...Array.from({ length: nLayers }, (_, l) => [
        { name: `present.${l}.key`, type: F32, shape: cacheShape('total_sequence_length') },
        { name: `present.${l}.value`, type: F32, shape: cacheShape('total_sequence_length') },
      ]).flat(),
    ],
  }
}

/** config.json for transformers.js (model_type llama: it reads the layer, head and KV head counts for the cache). */
export function hfConfig(c: Llama2Config): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: c.dim,
    intermediate_size: c.hiddenDim,
    num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads,
    num_key_value_heads: c.nKvHeads,
    head_dim: c.headDim,
    vocab_size: c.vocabSize,
    max_position_embeddings: c.seqLen,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: c.sharedClassifier,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: 'float32',
    'transformers.js_config': { dtype: 'fp32' },
  }
}

/** Writes outDir/onnx/model.onnx, outDir/config.json and outDir/generation_config.json. */
export function convert(checkpoint: string, outDir: string): { onnx: string; bytes: number } {
  const { config, weights } = readCheckpoint(checkpoint)
  const bytes = encodeModel(buildGraph(config, weights))
  mkdirSync(path.join(outDir, 'onnx'), { recursive: true })
  const onnx = path.join(outDir, 'onnx', 'model.onnx')
  writeFileSync(onnx, bytes)
  writeFileSync(path.join(outDir, 'config.json'), JSON.stringify(hfConfig(config), null, 2) + '\n')
  writeFileSync(path.join(outDir, 'generation_config.json'), JSON.stringify({ bos_token_id: 1, eos_token_id: 2 }, null, 2) + '\n')
  return { onnx, bytes: bytes.length }
}

if (require.main === module) {
  const here = __dirname
  const checkpoint = process.argv[2] ?? path.join(process.env.KVTRIM_MODEL_DIR ?? path.join(here, '..', '..', '..', 'shared', 'models'), 'stories260K.bin')
  const out = process.argv[3] ?? path.join(here, 'model')
  const r = convert(checkpoint, out)
  console.log(`wrote ${r.onnx} (${r.bytes} bytes) and ${path.join(out, 'config.json')}`)
}
