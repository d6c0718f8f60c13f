// A minimal ONNX (protobuf) writer: the few messages a decoder graph needs (ModelProto,
// GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto), field numbers from
// onnx.proto3. No dependency: protobuf's wire format is varints and length-delimited bytes.

class Writer {
  readonly parts: Uint8Array[] = []
  length = 0
  bytes(b: Uint8Array): void {
    this.parts.push(b)
    this.length += b.length
  }
  varint(v: number | bigint): void {
    let x = BigInt.asUintN(64, BigInt(v)) // negative int64: two's complement, 10 bytes
    const out: number[] = []
    do {
      let byte = Number(x & 0x7fn)
      x >>= 7n
      if (x !== 0n) byte |= 0x80
      out.push(byte)
    } while (x !== 0n)
    this.bytes(Uint8Array.from(out))
  }
  key(field: number, wire: 0 | 1 | 2 | 5): void {
    this.varint((field << 3) | wire)
  }
  int(field: number, v: number | bigint): void {
    this.key(field, 0)
    this.varint(v)
  }
  float(field: number, v: number): void {
    this.key(field, 5)
    const b = new Uint8Array(4)
    new DataView(b.buffer).setFloat32(0, v, true)
    this.bytes(b)
  }
  blob(field: number, b: Uint8Array): void {
    this.key(field, 2)
    this.varint(b.length)
    this.bytes(b)
  }
  string(field: number, s: string): void {
    this.blob(field, new TextEncoder().encode(s))
  }
  message(field: number, m: Writer): void {
    this.key(field, 2)
    this.varint(m.length)
    for (const p of m.parts) this.bytes(p)
  }
  packedInts(field: number, vs: ReadonlyArray<number | bigint>): void {
    const m = new Writer()
    for (const v of vs) m.varint(v)
    this.message(field, m)
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.length)
    let at = 0
    for (const p of this.parts) {
      out.set(p, at)
      at += p.length
    }
    return out
  }
}

export const DataType = { FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9 } as const
export type ElemType = (typeof DataType)[keyof typeof DataType]

export interface Tensor {
  name: string
  type: ElemType
  dims: number[]
  /** little-endian raw bytes */
  raw: Uint8Array
}

export type AttributeValue = number | number[] | string | { float: number } | Tensor
export interface Node {
  op: string
  inputs: string[]
  outputs: string[]
  name?: string
  attributes?: Record<string, AttributeValue>
}

export interface ValueInfo {
  name: string
  type: ElemType
  /** numbers, or names of symbolic dimensions */
  shape: Array<number | string>
}

export interface Graph {
  name: string
  nodes: Node[]
  inputs: ValueInfo[]
  outputs: ValueInfo[]
  initializers: Tensor[]
}

function tensorProto(t: Tensor): Writer {
  const w = new Writer()
  w.packedInts(1, t.dims)
  w.int(2, t.type)
  w.string(8, t.name)
  w.blob(9, t.raw)
  return w
}

function attribute(name: string, v: AttributeValue): Writer {
  const w = new Writer()
  w.string(1, name)
  if (typeof v === 'number') {
    w.int(3, v)
    w.int(20, 2) // INT
  } else if (Array.isArray(v)) {
    w.packedInts(8, v)
    w.int(20, 7) // INTS
  } else if (typeof v === 'string') {
    w.string(4, v)
    w.int(20, 3) // STRING
  } else if ('float' in v) {
    w.float(2, v.float)
    w.int(20, 1) // FLOAT
  } else {
    w.message(5, tensorProto(v))
    w.int(20, 4) // TENSOR
  }
  return w
}

function valueInfo(v: ValueInfo): Writer {
  const shape = new Writer()
  for (const d of v.shape) {
    const dim = new Writer()
    if (typeof d === 'number') dim.int(1, d)
    else dim.string(2, d)
    shape.message(1, dim)
  }
  const tensorType = new Writer()
  tensorType.int(1, v.type)
  tensorType.message(2, shape)
  const type = new Writer()
  type.message(1, tensorType)
  const w = new Writer()
  w.string(1, v.name)
  w.message(2, type)
  return w
}

/** A serialized ModelProto (IR version 8, the default opset `opset`). */
export function encodeModel(g: Graph, opset = 17, producer = 'kvtrim-example'): Uint8Array {
  const graph = new Writer()
  g.nodes.forEach((n, i) => {
    const w = new Writer()
    for (const x of n.inputs) w.string(1, x)
    for (const x of n.outputs) w.string(2, x)
    w.string(3, n.name ?? `${n.op}_${i}`)
    w.string(4, n.op)
    for (const [k, v] of Object.entries(n.attributes ?? {})) w.message(5, attribute(k, v))
    graph.message(1, w)
  })
  graph.string(2, g.name)
  for (const t of g.initializers) graph.message(5, tensorProto(t))
  for (const v of g.inputs) graph.message(11, valueInfo(v))
  for (const v of g.outputs) graph.message(12, valueInfo(v))
  const opsetId = new Writer()
  opsetId.string(1, '')
  opsetId.int(2, opset)
  const model = new Writer()
  model.int(1, 8)
  model.string(2, producer)
  model.message(7, graph)
  model.message(8, opsetId)
  return model.finish()
}

export const floats = (name: string, dims: number[], data: ArrayLike<number>): Tensor => {
  const f = Float32Array.from(data)
  return { name, type: DataType.FLOAT, dims, raw: new Uint8Array(f.buffer, f.byteOffset, f.byteLength) }
}
export const int64s = (name: string, dims: number[], data: ReadonlyArray<number>): Tensor => {
  const a = BigInt64Array.from(data, (x) => BigInt(x))
  return { name, type: DataType.INT64, dims, raw: new Uint8Array(a.buffer) }
}
