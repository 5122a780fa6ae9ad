/**
 * @file hyparquet and its decompressors, loaded once. Both are ES modules only and clipeval is
 * CommonJS, so they load with import() (as core/report/charts.ts loads vega).
 */
import type * as Hyparquet from 'hyparquet' with { 'resolution-mode': 'import' };
import type * as Compressors from 'hyparquet-compressors' with { 'resolution-mode': 'import' };

export type { AsyncBuffer, FileMetaData, SchemaTree } from 'hyparquet' with {
  'resolution-mode': 'import',
};

export interface ParquetLibrary {
  parquetMetadata: typeof Hyparquet.parquetMetadata;
  parquetSchema: typeof Hyparquet.parquetSchema;
  parquetReadObjects: typeof Hyparquet.parquetReadObjects;
  /** zstd, gzip, brotli, lz4 (snappy is hyparquet's own). */
  compressors: typeof Compressors.compressors;
}

let library: Promise<ParquetLibrary> | undefined;

export function parquetLibrary(): Promise<ParquetLibrary> {
  library ??= Promise.all([import('hyparquet'), import('hyparquet-compressors')]).then(
    ([h, c]) => ({
      parquetMetadata: h.parquetMetadata,
      parquetSchema: h.parquetSchema,
      parquetReadObjects: h.parquetReadObjects,
      compressors: c.compressors,
    }),
  );
  return library;
}
