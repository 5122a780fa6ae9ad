import { Field, FixedSizeList, Float32, type Table, makeData, makeVector } from 'apache-arrow';

/**
 * Matrices as Arrow columns: one fixed_size_list<float32>[dim] value per row. Every Arrow file
 * clipeval writes (embedding shards, prototypes, predictions) stores vectors this way, so
 * pyarrow, DuckDB and polars read them as lists of floats.
 */
export function floatMatrixColumn(values: Float32Array, dim: number) {
  const n = values.length / dim;
  // Wraps the Float32Array without copying (vectorFromArray on nested rows is slow).
  return makeVector(
    makeData({
      type: new FixedSizeList(dim, new Field('item', new Float32(), false)),
      length: n,
      nullCount: 0,
      child: makeData({ type: new Float32(), length: n * dim, data: values }),
    }),
  );
}

/** Reads a fixed_size_list<float32> column back into one row-major Float32Array. */
export function readFloatMatrix(
  table: Table,
  column: string,
  what = 'Arrow file',
): { values: Float32Array; dim: number } {
  const col = table.getChild(column);
  if (!col) throw new Error(`${what} has no "${column}" column`);
  const dim = (col.type as FixedSizeList).listSize;
  const values = new Float32Array(table.numRows * dim);
  let at = 0;
  for (const data of col.data) {
    const child = data.children[0]!;
    const part = (child.values as Float32Array).subarray(
      child.offset + data.offset * dim,
      child.offset + (data.offset + data.length) * dim,
    );
    values.set(part, at);
    at += part.length;
  }
  return { values, dim };
}
