/**
 * @file Zero-shot class prototypes as an Arrow IPC file, one row per class:
 *   class_index (int32), label (utf8), name (utf8: the prompt's class name), prototype (fixed_size_list<float32>[dim])
 * Schema metadata: the bundle hash and the templates, so a file names what produced it.
 */
import {
  Schema,
  Table,
  Utf8,
  makeVector,
  tableFromIPC,
  tableToIPC,
  vectorFromArray,
} from 'apache-arrow';
import { matrixColumn, readFloatMatrix } from '../../storage/arrow-columns';

export interface PrototypeFile {
  labels: string[];
  names: string[];
  templates: string[];
  bundleHash: string;
  /** [classes, dim], L2-normalised rows. */
  prototypes: Float32Array;
  dim: number;
}

export function encodePrototypes(p: PrototypeFile): Uint8Array {
  const table = new Table({
    class_index: makeVector(Int32Array.from(p.labels, (_, i) => i)),
    label: vectorFromArray(p.labels, new Utf8()),
    name: vectorFromArray(p.names, new Utf8()),
    prototype: matrixColumn(p.prototypes, p.dim),
  });
  const metadata = new Map([
    ['clipeval.bundle_hash', p.bundleHash],
    ['clipeval.templates', JSON.stringify(p.templates)],
  ]);
  return tableToIPC(new Table(new Schema(table.schema.fields, metadata), table.batches), 'file');
}

export function decodePrototypes(bytes: Uint8Array): PrototypeFile {
  const table = tableFromIPC(bytes);
  const strings = (name: string) => Array.from(table.getChild(name)!.toArray() as string[]);
  const { values, dim } = readFloatMatrix(table, 'prototype', 'prototype file');
  const m = table.schema.metadata;
  return {
    labels: strings('label'),
    names: strings('name'),
    templates: JSON.parse(m.get('clipeval.templates') ?? '[]') as string[],
    bundleHash: m.get('clipeval.bundle_hash') ?? '',
    prototypes: values,
    dim,
  };
}
