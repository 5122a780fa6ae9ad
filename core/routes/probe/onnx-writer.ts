/**
 * Writes small ONNX graphs (a ModelProto) from TypeScript, so the probe needs no committed
 * binary and no Python. Hand-rolled rather than protobufjs: a graph of a dozen nodes needs only
 * two protobuf wire types and the handful of onnx.proto fields below (numbers from onnx.proto,
 * IR version 8 = opset 17).
 */

const WIRE_VARINT = 0;
const WIRE_LENGTH_DELIMITED = 2;

/** Appends protobuf fields; nested messages are written into their own writer and framed. */
class ProtoWriter {
  private readonly bytes: number[] = [];

  varint(field: number, value: number | bigint): this {
    this.key(field, WIRE_VARINT);
    this.rawVarint(value);
    return this;
  }

  bytesField(field: number, data: Uint8Array): this {
    this.key(field, WIRE_LENGTH_DELIMITED);
    this.rawVarint(data.length);
    for (const b of data) this.bytes.push(b);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytesField(field, new TextEncoder().encode(s));
  }

  message(field: number, write: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    write(inner);
    return this.bytesField(field, inner.finish());
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }

  private key(field: number, wire: number): void {
    this.rawVarint((field << 3) | wire);
  }

  /** Base-128 varint; negative int64 values take ten bytes (two's complement), as protobuf says. */
  private rawVarint(value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.bytes.push(Number(v));
  }
}

/** onnx.proto TensorProto.DataType values used here. */
export const ElemType = { FLOAT: 1, INT64: 7 } as const;
type ElemTypeValue = (typeof ElemType)[keyof typeof ElemType];

export type Attribute = number | number[];

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  /** Integer (INT) or integer-list (INTS) attributes: all the probe's ops need. */
  attrs?: Record<string, Attribute>;
}

export interface ValueInfo {
  name: string;
  elemType: ElemTypeValue;
  /** A number is a fixed size, a string a symbolic one (any size at run time). */
  shape: (number | string)[];
}

/** An int64 constant (e.g. the axes input of ReduceSum). */
export interface Int64Initializer {
  name: string;
  dims: number[];
  values: number[];
}

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers?: Int64Initializer[];
}

const IR_VERSION = 8;
export const OPSET = 17;

// Field numbers (onnx.proto).
const MODEL = { irVersion: 1, producerName: 2, graph: 7, opsetImport: 8 };
const OPSET_ID = { domain: 1, version: 2 };
const GRAPH = { node: 1, name: 2, initializer: 5, input: 11, output: 12 };
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5 };
const ATTRIBUTE = { name: 1, i: 3, ints: 8, type: 20 };
const ATTRIBUTE_TYPE = { INT: 2, INTS: 7 };
const TENSOR = { dims: 1, dataType: 2, name: 8, rawData: 9 };
const VALUE_INFO = { name: 1, type: 2 };
const TYPE = { tensorType: 1 };
const TENSOR_TYPE = { elemType: 1, shape: 2 };
const SHAPE = { dim: 1 };
const DIMENSION = { value: 1, param: 2 };

function writeValueInfo(w: ProtoWriter, v: ValueInfo): void {
  w.string(VALUE_INFO.name, v.name).message(VALUE_INFO.type, (t) =>
    t.message(TYPE.tensorType, (tt) =>
      tt.varint(TENSOR_TYPE.elemType, v.elemType).message(TENSOR_TYPE.shape, (s) => {
        for (const d of v.shape)
          s.message(SHAPE.dim, (dim) =>
            typeof d === 'number' ? dim.varint(DIMENSION.value, d) : dim.string(DIMENSION.param, d),
          );
      }),
    ),
  );
}

function writeAttribute(w: ProtoWriter, name: string, value: Attribute): void {
  w.string(ATTRIBUTE.name, name);
  if (Array.isArray(value)) {
    // onnx.proto is proto2: repeated scalars are unpacked, one field per value.
    for (const v of value) w.varint(ATTRIBUTE.ints, v);
    w.varint(ATTRIBUTE.type, ATTRIBUTE_TYPE.INTS);
  } else {
    w.varint(ATTRIBUTE.i, value).varint(ATTRIBUTE.type, ATTRIBUTE_TYPE.INT);
  }
}

function writeInitializer(w: ProtoWriter, t: Int64Initializer): void {
  const raw = new Uint8Array(t.values.length * 8);
  const view = new DataView(raw.buffer);
  t.values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
  for (const d of t.dims) w.varint(TENSOR.dims, d);
  w.varint(TENSOR.dataType, ElemType.INT64)
    .string(TENSOR.name, t.name)
    .bytesField(TENSOR.rawData, raw);
}

/** The serialised ModelProto (default domain, opset 17). */
export function encodeModel(graph: OnnxGraph): Uint8Array {
  return new ProtoWriter()
    .varint(MODEL.irVersion, IR_VERSION)
    .string(MODEL.producerName, 'clipeval')
    .message(MODEL.graph, (g) => {
      graph.nodes.forEach((n, i) =>
        g.message(GRAPH.node, (w) => {
          for (const x of n.inputs) w.string(NODE.input, x);
          for (const y of n.outputs) w.string(NODE.output, y);
          w.string(NODE.name, `${n.op}_${i}`).string(NODE.opType, n.op);
          for (const [k, v] of Object.entries(n.attrs ?? {}))
            w.message(NODE.attribute, (a) => writeAttribute(a, k, v));
        }),
      );
      g.string(GRAPH.name, graph.name);
      for (const t of graph.initializers ?? [])
        g.message(GRAPH.initializer, (w) => writeInitializer(w, t));
      for (const v of graph.inputs) g.message(GRAPH.input, (w) => writeValueInfo(w, v));
      for (const v of graph.outputs) g.message(GRAPH.output, (w) => writeValueInfo(w, v));
    })
    .message(MODEL.opsetImport, (o) =>
      o.string(OPSET_ID.domain, '').varint(OPSET_ID.version, OPSET),
    )
    .finish();
}
