/**
 * @file Columns shared by the Arrow files clipeval writes (embedding shards, prototypes,
 * predictions, pixel-cache blocks). Matrices are one fixed_size_list<float32|int32|uint8>[dim]
 * value per row, so pyarrow, DuckDB and polars read them as lists of numbers.
 */
import {
  Field,
  FixedSizeList,
  Float32,
  Int32,
  type Table,
  Uint8,
  Utf8,
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
  const col = table.getChild(column);
  if (!col) throw new Error(`${what} has no "${column}" column`);
  const dim = (col.type as FixedSizeList).listSize;
  const values = make(table.numRows * dim);
  let at = 0;
  for (const data of col.data) {
    const child = data.children[0]!;
    const part = (child.values as T).subarray(
      child.offset + data.offset * dim,
      child.offset + (data.offset + data.length) * dim,
    );
    values.set(part, at);
    at += part.length;
  }
  return { values, dim };
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
