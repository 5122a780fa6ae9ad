/**
 * @file The embedding shard: one Arrow IPC file per plan shard, readable by pyarrow, DuckDB and
 * polars.
 *   key (utf8: s3://bucket/key), image_id (utf8), label (int32), split (dictionary<int8, utf8>),
 *   view (int16: 0 = center crop, 1..K augmented), embedding (fixed_size_list<float32>[dim], L2-normalised)
 * Schema metadata names the embedding space (bundle hash, preprocessing fingerprint, mode and
 * image graph) so shards from different models or choices are never mixed.
 */
import {
  Dictionary,
  Int8,
  Schema,
  Table,
  Utf8,
  makeVector,
  tableFromIPC,
  tableToIPC,
  vectorFromArray,
} from 'apache-arrow';
import {
  imageRowColumns,
  matrixColumn,
  readFloatMatrix,
  requiredColumn,
} from '../storage/arrow-columns';
import type { Split } from '../dataset/types';

export interface ShardRow {
  key: string;
  imageId: string;
  label: number;
  split: Split;
  view: number;
}

export interface ShardMetadata {
  bundleHash: string;
  preprocessFingerprint: string;
  /** `exact` or `fast`; shards written before modes existed have none (read as ''): exact. */
  preprocessing: string;
  /** `fp32`, `fp16` or `int8`; shards written before graphs could be chosen have none: fp32. */
  imageGraph: string;
  datasetFingerprint: string;
  clipevalVersion: string;
}

export interface DecodedShard {
  rows: ShardRow[];
  /** [rows, dim], row-major. */
  embeddings: Float32Array;
  dim: number;
  metadata: ShardMetadata;
}

const META_KEYS: Record<keyof ShardMetadata, string> = {
  bundleHash: 'clipeval.bundle_hash',
  preprocessFingerprint: 'clipeval.preprocess_fingerprint',
  preprocessing: 'clipeval.preprocessing',
  imageGraph: 'clipeval.image_graph',
  datasetFingerprint: 'clipeval.dataset_fingerprint',
  clipevalVersion: 'clipeval.version',
};

/** The split column's dictionary id (the shard's only dictionary). */
const SPLIT_DICTIONARY_ID = 0;

/** The shard's bytes: a pure function of rows, embeddings and metadata (same input, same bytes). */
export function encodeShard(
  rows: readonly ShardRow[],
  embeddings: Float32Array,
  dim: number,
  meta: ShardMetadata,
): Uint8Array {
  if (embeddings.length !== rows.length * dim)
    throw new Error(`expected ${rows.length}x${dim} embeddings, got ${embeddings.length} values`);
  const columns = {
    ...imageRowColumns(rows),
    // A fixed dictionary id: Arrow JS numbers dictionaries from a per-process counter, and that
    // id is in the file, so two workers writing the same shard wrote different bytes and a race
    // between them left a shard whose sha256 was not its manifest's.
    split: vectorFromArray(
      rows.map((r) => r.split),
      new Dictionary(new Utf8(), new Int8(), SPLIT_DICTIONARY_ID),
    ),
    view: makeVector(Int16Array.from(rows, (r) => r.view)),
    embedding: matrixColumn(embeddings, dim),
  };
  const table = new Table(columns);
  const metadata = new Map(
    Object.entries(META_KEYS).map(([k, mk]) => [mk, meta[k as keyof ShardMetadata]]),
  );
  const withMeta = new Table(new Schema(table.schema.fields, metadata), table.batches);
  return tableToIPC(withMeta, 'file');
}

export function decodeShard(bytes: Uint8Array): DecodedShard {
  const table = tableFromIPC(bytes);
  const col = (name: string) => requiredColumn(table, name, 'embedding shard');
  const { values: embeddings, dim } = readFloatMatrix(table, 'embedding', 'embedding shard');
  const [keys, ids, labels, splits, views] = ['key', 'image_id', 'label', 'split', 'view'].map(col);
  const rows: ShardRow[] = Array.from({ length: table.numRows }, (_, i) => ({
    key: keys!.get(i) as string,
    imageId: ids!.get(i) as string,
    label: labels!.get(i) as number,
    split: splits!.get(i) as Split,
    view: views!.get(i) as number,
  }));
  const m = table.schema.metadata;
  const metadata = Object.fromEntries(
    Object.entries(META_KEYS).map(([k, mk]) => [k, m.get(mk) ?? '']),
  ) as unknown as ShardMetadata;
  return { rows, embeddings, dim, metadata };
}
