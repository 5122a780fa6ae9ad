/**
 * @file Per-image predictions of one route on the test split: one Arrow IPC file, readable by
 * pyarrow, DuckDB and polars, so errors can be inspected image by image outside clipeval.
 *   key (utf8: s3://bucket/key), image_id (utf8), label (int32),
 *   label_name (dictionary<int32, utf8>: the dictionary is every class name in class-index order,
 *     so a row's dictionary index is its label),
 *   top_classes (fixed_size_list<int32>[k]: class indices, best first),
 *   top_scores (fixed_size_list<float32>[k]: their scores)
 * Schema metadata: `clipeval.class_names` (JSON array, class-index order), `clipeval.top_k`, and
 * the caller's metadata (route, variant, run id, ...) as `clipeval.<key>`.
 */
import {
  Dictionary,
  Int32,
  Schema,
  Table,
  Utf8,
  makeData,
  makeVector,
  tableFromIPC,
  tableToIPC,
  vectorFromArray,
} from 'apache-arrow';
import {
  imageRowColumns,
  matrixColumn,
  readFloatMatrix,
  readMatrixColumn,
  requiredColumn,
} from '../storage/arrow-columns';
import type { TopK } from './metrics';

export interface PredictionRow {
  key: string;
  imageId: string;
  label: number;
}

export interface DecodedPredictions {
  rows: PredictionRow[];
  top: TopK;
  k: number;
  classNames: string[];
  /** The caller's metadata, without the `clipeval.` prefix. */
  meta: Record<string, string>;
}

const PREFIX = 'clipeval.';
const CLASS_NAMES = `${PREFIX}class_names`;
const TOP_K = `${PREFIX}top_k`;

export function encodePredictions(
  rows: readonly PredictionRow[],
  top: TopK,
  k: number,
  classNames: readonly string[],
  meta: Readonly<Record<string, string>>,
): Uint8Array {
  const n = rows.length;
  if (top.indices.length !== n * k || top.scores.length !== n * k)
    throw new Error(`expected ${n}x${k} top classes and scores`);
  const labels = Int32Array.from(rows, (r) => r.label);
  for (const v of [...labels, ...top.indices]) {
    if (v < 0 || v >= classNames.length)
      throw new Error(`class index ${v} is out of range for ${classNames.length} classes`);
  }
  const columns = {
    ...imageRowColumns(rows),
    label_name: labelNames(labels, classNames),
    top_classes: matrixColumn(top.indices, k),
    top_scores: matrixColumn(top.scores, k),
  };
  const table = new Table(columns);
  const reserved = Object.keys(meta).filter((key) => [CLASS_NAMES, TOP_K].includes(PREFIX + key));
  if (reserved.length > 0) throw new Error(`metadata key ${reserved[0]} is reserved`);
  const metadata = new Map([
    ...Object.entries(meta).map(([key, v]): [string, string] => [PREFIX + key, v]),
    [CLASS_NAMES, JSON.stringify(classNames)],
    [TOP_K, String(k)],
  ]);
  return tableToIPC(new Table(new Schema(table.schema.fields, metadata), table.batches), 'file');
}

export function decodePredictions(bytes: Uint8Array): DecodedPredictions {
  const table = tableFromIPC(bytes);
  const col = (name: string) => requiredColumn(table, name, 'predictions file');
  const [keys, ids, labels] = ['key', 'image_id', 'label'].map(col);
  const rows: PredictionRow[] = Array.from({ length: table.numRows }, (_, i) => ({
    key: keys!.get(i) as string,
    imageId: ids!.get(i) as string,
    label: labels!.get(i) as number,
  }));
  const { values: scores, dim: k } = readFloatMatrix(table, 'top_scores', 'predictions file');
  const { values: indices } = readMatrixColumn(
    table,
    'top_classes',
    (n) => new Int32Array(n),
    'predictions file',
  );
  const meta: Record<string, string> = {};
  for (const [key, v] of table.schema.metadata) {
    if (key.startsWith(PREFIX) && key !== CLASS_NAMES && key !== TOP_K)
      meta[key.slice(PREFIX.length)] = v;
  }
  const classNames = JSON.parse(table.schema.metadata.get(CLASS_NAMES) ?? '[]') as string[];
  return { rows, top: { indices, scores }, k, classNames, meta };
}

/** Labels as a dictionary column whose dictionary is all class names, in class-index order. */
function labelNames(labels: Int32Array, classNames: readonly string[]) {
  return makeVector(
    makeData({
      // A fixed id (the file's only dictionary): Arrow JS's default comes from a per-process
      // counter, so the same predictions would be different bytes in every worker.
      type: new Dictionary(new Utf8(), new Int32(), 0),
      length: labels.length,
      nullCount: 0,
      data: labels,
      dictionary: vectorFromArray([...classNames], new Utf8()),
    }),
  );
}
