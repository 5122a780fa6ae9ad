/**
 * @file Columns shared by the Arrow files clipeval writes (embedding shards, prototypes,
 * predictions, pixel-cache blocks). Matrices are one fixed_size_list<float32|int32|uint8>[dim]
 * value per row, so pyarrow, DuckDB and polars read them as lists of numbers.
 */
import {
  type Data,
  Field,
  FixedSizeList,
  Float32,
  Int32,
  type Table,
  Uint8,
  Utf8,
  type Vector,
  makeData,
  makeVector,
  vectorFromArray,
} from 'apache-arrow';

type Matrix = Float32Array | Int32Array | Uint8Array;

export function matrixColumn(values: Matrix, dim: number) {
  const n = values.length / dim;
  // Wraps the typed array without copying (vectorFromArray on nested rows is slow).
  const child =
    values instanceof Float32Array
      ? makeData({ type: new Float32(), length: n * dim, data: values })
      : values instanceof Int32Array
        ? makeData({ type: new Int32(), length: n * dim, data: values })
        : makeData({ type: new Uint8(), length: n * dim, data: values });
  return makeVector(
    makeData({
      type: new FixedSizeList(dim, new Field('item', child.type, false)),
      length: n,
      nullCount: 0,
      child,
    }),
  );
}

/** Reads a fixed_size_list column back into one row-major typed array. */
export function readMatrixColumn<T extends Matrix>(
  table: Table,
  column: string,
  make: (length: number) => T,
  what = 'Arrow file',
): { values: T; dim: number } {
  const { col, dim } = matrixOf(table, column, what);
  const values = make(table.numRows * dim);
  let at = 0;
  for (const data of col.data) {
    const part = chunkValues<T>(data, dim);
    values.set(part, at);
    at += part.length;
  }
  return { values, dim };
}

/**
 * A uint8 matrix column as a view of the file's bytes when it is one record batch (no copy:
 * a pixel-cache block's crops are megabytes, unpacked on the event loop); copied otherwise.
 */
export function readByteMatrixView(
  table: Table,
  column: string,
  what = 'Arrow file',
): { values: Uint8Array; dim: number } {
  const { col, dim } = matrixOf(table, column, what);
  const [only, ...more] = col.data;
  if (only && more.length === 0 && only.children[0]?.values instanceof Uint8Array)
    return { values: chunkValues<Uint8Array>(only, dim), dim };
  return readMatrixColumn(table, column, (n) => new Uint8Array(n), what);
}

function matrixOf(table: Table, column: string, what: string) {
  const col = table.getChild(column);
  if (!col) throw new Error(`${what} has no "${column}" column`);
  return { col: col as Vector<FixedSizeList>, dim: (col.type as FixedSizeList).listSize };
}

/** One record batch's rows of a fixed_size_list column, as a view of its child values. */
function chunkValues<T extends Matrix>(data: Data<FixedSizeList>, dim: number): T {
  const child = data.children[0]!;
  return (child.values as T).subarray(
    child.offset + data.offset * dim,
    child.offset + (data.offset + data.length) * dim,
  ) as T;
}

export const readFloatMatrix = (table: Table, column: string, what?: string) =>
  readMatrixColumn(table, column, (n) => new Float32Array(n), what);

/** The columns naming an image row: key (s3:// URI), image_id, label (int32). */
export function imageRowColumns(rows: readonly { key: string; imageId: string; label: number }[]) {
  return {
    key: vectorFromArray(
      rows.map((r) => r.key),
      new Utf8(),
    ),
    image_id: vectorFromArray(
      rows.map((r) => r.imageId),
      new Utf8(),
    ),
    label: makeVector(Int32Array.from(rows, (r) => r.label)),
  };
}

/** A column that must exist; the error names the file kind (`embedding shard`, `predictions file`). */
export function requiredColumn(table: Table, name: string, what: string) {
  const c = table.getChild(name);
  if (!c) throw new Error(`${what} has no "${name}" column`);
  return c;
}
