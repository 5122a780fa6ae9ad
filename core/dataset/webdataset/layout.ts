/**
 * @file CLIP_benchmark's WebDataset layout, from a listing: `<root>/<split>/0.tar ... N-1.tar`
 * with `<root>/<split>/nshards.txt` (N), `<root>/classnames.txt` and
 * `<root>/zeroshot_classification_templates.txt`. Which tars make each split, in which order,
 * checked against nshards.txt.
 */
import { webDatasetKeys } from '../../storage/keys';
import type { ListedObject, ObjectStore } from '../../storage/object-store';
import { ObjectTooLargeError } from '../../storage/object-store';
import { quoted, shown, shownList } from '../../util/text';
import { DatasetError, type SkippedObject, type Split } from '../types';
import { compressedTarError } from './tar-index';

// One module names every key: the export writes the same names (core/storage/keys.ts).
const CLASSNAMES_FILE = webDatasetKeys.classNames;
const TEMPLATES_FILE = webDatasetKeys.templates;
const NSHARDS_FILE = webDatasetKeys.nshardsFile;

/** Split folder names as CLIP_benchmark and Hugging Face spell them. */
const SPLIT_FOLDERS: Record<string, Split> = {
  train: 'train',
  val: 'val',
  validation: 'val',
  test: 'test',
};

const TAR = /\.tar$/i;
const COMPRESSED_TAR = /\.(tar\.gz|tgz)$/i;

/** One split's shards in reading order (the order decides which duplicate key is "first"). */
export interface SplitShards {
  split: Split;
  folder: string;
  tars: ListedObject[];
}

export interface WebDatasetLayout {
  splits: SplitShards[];
  /** Tars outside split folders. */
  skipped: SkippedObject[];
  classnames?: ListedObject;
  templates?: ListedObject;
}

/** Reads the layout under `prefix` (nshards.txt files are fetched: each a few bytes). */
export async function readLayout(
  data: ObjectStore,
  prefix: string,
  listing: readonly ListedObject[],
): Promise<WebDatasetLayout> {
  const where = shown(data.uri(prefix));
  const byFolder = new Map<string, { tars: ListedObject[]; nshards?: ListedObject }>();
  const out: WebDatasetLayout = { splits: [], skipped: [] };
  for (const o of listing) {
    const parts = o.key.slice(prefix.length).split('/');
    if (COMPRESSED_TAR.test(o.key)) throw compressedTarError(data.uri(o.key), 'gzip');
    if (parts.length === 1) {
      if (parts[0] === CLASSNAMES_FILE) out.classnames = o;
      if (parts[0] === TEMPLATES_FILE) out.templates = o;
    }
    const isTar = TAR.test(o.key);
    if (isTar && parts.length !== 2) {
      out.skipped.push({
        uri: data.uri(o.key),
        reason: 'a tar outside a split folder (<root>/train/, val/ or test/)',
      });
      continue;
    }
    if (parts.length !== 2 || !(isTar || parts[1] === NSHARDS_FILE)) continue;
    const folder = byFolder.get(parts[0]!) ?? { tars: [] };
    byFolder.set(parts[0]!, folder);
    if (isTar) folder.tars.push(o);
    else folder.nshards = o;
  }
  const seen = new Map<Split, string>();
  for (const [name, folder] of [...byFolder].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (folder.tars.length === 0) continue;
    const split = Object.hasOwn(SPLIT_FOLDERS, name) ? SPLIT_FOLDERS[name]! : undefined;
    if (split === undefined) {
      throw new DatasetError(
        `Dataset ${where}: unknown split folder ${quoted(name)} holds tar shards. Split folders must be named ` +
          `train, val (or validation) or test: rename it, or move its shards out of the dataset prefix.`,
      );
    }
    const other = seen.get(split);
    if (other !== undefined) {
      throw new DatasetError(
        `Dataset ${where}: both ${quoted(other)} and ${quoted(name)} hold shards of the ${split} split. Keep one of the two folders.`,
      );
    }
    seen.set(split, name);
    const tars = await orderTars(data, prefix + name + '/', folder.tars, folder.nshards);
    out.splits.push({ split, folder: name, tars });
  }
  if (out.splits.length === 0) {
    throw new DatasetError(
      `Dataset ${where} holds no WebDataset shards: expected <split>/0.tar ... under it (split folders train, val, test). ` +
        `Check the URI (it should end at the folder that holds the split folders).`,
    );
  }
  return out;
}

/**
 * A split's tars in reading order: 0.tar ... N-1.tar when nshards.txt says N (and then exactly
 * those must exist), else every tar, numbered ones by number, then the others by name.
 */
async function orderTars(
  data: ObjectStore,
  folder: string,
  tars: ListedObject[],
  nshardsFile: ListedObject | undefined,
): Promise<ListedObject[]> {
  const stem = (o: ListedObject) => o.key.slice(folder.length, -'.tar'.length);
  const number = (o: ListedObject) => (/^\d+$/.test(stem(o)) ? Number(stem(o)) : undefined);
  if (nshardsFile === undefined) {
    return [...tars].sort((a, b) => {
      const [na, nb] = [number(a), number(b)];
      if (na !== undefined && nb !== undefined) return na - nb;
      if (na !== undefined || nb !== undefined) return na !== undefined ? -1 : 1;
      return Buffer.compare(Buffer.from(a.key), Buffer.from(b.key));
    });
  }
  const nshardsUri = shown(data.uri(nshardsFile.key));
  const text = await data.getText(nshardsFile.key, { maxBytes: 1024 }).catch((err: unknown) => {
    if (err instanceof ObjectTooLargeError) return 'too large';
    throw err;
  });
  const n = text?.trim() ?? '';
  if (!/^\d+$/.test(n)) {
    throw new DatasetError(
      `${nshardsUri} should hold the split's shard count (an integer), not ${quoted(n, 40)}. Fix it, or delete it (every .tar of the folder is then read).`,
    );
  }
  const want = Number(n);
  const byName = new Map(tars.map((o) => [stem(o), o]));
  const expected = Array.from({ length: Math.min(want, tars.length + 1) }, (_, i) => String(i));
  const missing = expected.filter((s) => !byName.has(s));
  const extra = [...byName.keys()].filter(
    (s) => !/^\d+$/.test(s) || Number(s) >= want || s !== String(Number(s)),
  );
  if (want !== tars.length || missing.length > 0 || extra.length > 0) {
    const detail = [
      missing.length > 0 ? `missing ${shownList(missing.map((s) => `${s}.tar`))}` : '',
      extra.length > 0 ? `not in 0..${want - 1}: ${shownList(extra.map((s) => `${s}.tar`))}` : '',
    ]
      .filter(Boolean)
      .join('; ');
    throw new DatasetError(
      `${nshardsUri} says ${want} shards, but the folder holds ${tars.length} tar(s)${detail ? ` (${detail})` : ''}. ` +
        `Upload the missing shards (named 0.tar ... ${Math.max(0, want - 1)}.tar) or correct nshards.txt (or delete it to read every tar in the folder).`,
    );
  }
  return expected.map((s) => byName.get(s)!);
}
