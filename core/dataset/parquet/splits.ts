import { shown } from '../../util/text';
import { DatasetError, type Split } from '../types';

/** Hugging Face's split names as clipeval's. */
const SPLIT_NAMES: Record<string, Split> = {
  train: 'train',
  val: 'val',
  validation: 'val',
  test: 'test',
};
/** `data/<split>-00000-of-00003.parquet`, older files with a hash after it (`-a09b74b3.parquet`). */
const SHARD_FILE = /^(.+?)-\d+-of-\d+(?:-[0-9a-f]+)?\.parquet$/i;

/**
 * A Parquet file's split and config. The split is named by the file (`<split>-NNNNN-of-NNNNN.parquet`,
 * the Hub's layout) or else by its folder (`<config>/<split>/0000.parquet`, the parquet-converter's).
 * The config is the folder above the split's in the converter layout, else `default`.
 */
export function parquetFileSplit(
  key: string,
  prefix: string,
  uri: string,
): { split: Split; config: string } {
  const parts = key.slice(prefix.length).split('/');
  const name = parts[parts.length - 1]!;
  const fromName = SHARD_FILE.exec(name)?.[1];
  const named = fromName ?? parts[parts.length - 2];
  const split = named === undefined ? undefined : SPLIT_NAMES[named.toLowerCase()];
  if (!split) {
    throw new DatasetError(
      `Parquet file ${shown(uri)}: ${named === undefined ? 'no split in its name or folder' : `split "${shown(named)}" is not one clipeval knows`}. ` +
        `Name files <split>-00000-of-00001.parquet or put them in a <split>/ folder, with split one of ${Object.keys(SPLIT_NAMES).join(', ')}; ` +
        'or copy the files of the splits you want to a prefix of their own and point dataset.uri there.',
    );
  }
  const config = fromName === undefined && parts.length >= 3 ? parts[parts.length - 3]! : 'default';
  return { split, config };
}
