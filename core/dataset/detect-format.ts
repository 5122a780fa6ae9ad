import type { DatasetSpec } from '../config/run-spec';
import type { ListedObject } from '../storage/object-store';
import { shownList } from '../util/text';
import { DatasetError } from './types';

/** A dataset format as planned (the spec's `auto` resolved). */
export type DatasetFormat = 'imagefolder' | 'manifest' | 'webdataset' | 'parquet';

const TAR = /\.(tar|tar\.gz|tgz)$/i;
const PARQUET = /\.parquet$/i;

/**
 * The format of the objects under a dataset prefix: WebDataset when it holds tars (gzip'd ones
 * too, so they get WebDataset's error rather than being skipped as non-images), Parquet when it
 * holds .parquet files, else ImageFolder. A prefix with both is ambiguous: the spec must say.
 */
export function detectFormat(listing: readonly ListedObject[], spec: DatasetSpec): DatasetFormat {
  if (spec.format !== 'auto') return spec.format;
  const tars = listing.filter((o) => TAR.test(o.key));
  const parquets = listing.filter((o) => PARQUET.test(o.key));
  if (tars.length > 0 && parquets.length > 0) {
    throw new DatasetError(
      `Dataset ${spec.uri} holds both tar files (${shownList(tars.slice(0, 3).map((o) => o.key))}) and Parquet files ` +
        `(${shownList(parquets.slice(0, 3).map((o) => o.key))}): set dataset.format to webdataset or parquet, or point dataset.uri at one of them.`,
    );
  }
  if (tars.length > 0) return 'webdataset';
  if (parquets.length > 0) return 'parquet';
  return 'imagefolder';
}
