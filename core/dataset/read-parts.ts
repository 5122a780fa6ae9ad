import type { ObjectStore } from '../storage/object-store';
import { parquetPartReader } from './parquet/read-parquet';
import type { PartReader, PartReadOptions } from './parts';
import type { PlanItem } from './plan';
import { tarPartReader } from './webdataset/read-tar';

/**
 * The reader for a shard's items that live in containers: one per container format present
 * (a shard holds one format, but nothing here depends on that).
 */
export function openPartReader(store: ObjectStore, items: readonly PlanItem[]): PartReader {
  const of = (kind: 'tar' | 'parquet') => items.filter((i) => i.part?.kind === kind);
  const tars = of('tar');
  const parquets = of('parquet');
  const readers = {
    tar: tars.length > 0 ? tarPartReader(store, tars) : undefined,
    parquet: parquets.length > 0 ? parquetPartReader(store, parquets) : undefined,
  };
  return {
    read(item: PlanItem, opts?: PartReadOptions): Promise<Uint8Array> {
      const reader = item.part ? readers[item.part.kind] : undefined;
      if (!reader) throw new Error(`${item.uri} was not given to this shard's part reader`);
      return reader.read(item, opts);
    },
  };
}
