import {
  checkDatasetSource,
  manifestObjectRefusal,
  type SourcePolicy,
} from '../config/allowed-sources';
import { DEFAULT_PLANNING_LIMITS, type PlanningLimits } from '../config/run-limits';
import type { DatasetSpec } from '../config/run-spec';
import {
  type ListedObject,
  MAX_JSON_CHARS,
  type ObjectStore,
  isUnreadableKey,
} from '../storage/object-store';
import { forEachLimited } from '../util/concurrency';
import { shown } from '../util/text';
import { readImageFolder } from './image-folder';
import { manifestFormat, parseManifest } from './manifest';
import { detectFormat } from './detect-format';
import type { LoadedDataset, PlanningProgress } from './loaded';
import { loadParquet } from './parquet/load-parquet';
import { DatasetError, type DatasetItem, ProblemList } from './types';
import { loadWebDataset } from './webdataset/load-webdataset';

export type { LoadedDataset, PlanningProgress } from './loaded';

export interface LoadOptions {
  /** Called after every listing page and every PROGRESS_EVERY manifest objects checked. */
  onProgress?: (p: PlanningProgress) => void;
  limits?: PlanningLimits;
  /** Where the dataset and its manifest rows may be (core/config/allowed-sources.ts). */
  sources?: SourcePolicy;
}

/** Manifest objects HEADed at once. */
const PARALLEL_HEADS = 16;
/** Progress once per this many manifest rows checked (and after the last). */
const PROGRESS_EVERY = 256;

/**
 * Reads a dataset from S3 and returns its labelled items: a manifest, or the objects under a
 * prefix as ImageFolder, WebDataset or Parquet (dataset.format, or detected from the listing).
 */
export async function loadDataset(
  store: ObjectStore,
  spec: DatasetSpec,
  opts: LoadOptions = {},
): Promise<LoadedDataset> {
  const onProgress = opts.onProgress ?? (() => {});
  const limits = opts.limits ?? DEFAULT_PLANNING_LIMITS;
  checkDatasetSource(opts.sources, spec.uri);
  const { store: data, key } = store.at(spec.uri);
  const manifest =
    spec.format === 'manifest' || (spec.format === 'auto' && manifestFormat(key) !== undefined);
  // The folder planning lists: never the bucket root (that would list the whole bucket).
  const folder = manifest ? key.slice(0, key.lastIndexOf('/') + 1) : key.replace(/^\/+|\/+$/g, '');
  if (folder === '') {
    throw new DatasetError(
      `Dataset ${spec.uri}: ${manifest ? 'the manifest is' : 'the dataset is'} at the bucket root, so planning would list the whole bucket "${data.bucket}". ` +
        `Put the dataset under a prefix (e.g. s3://${data.bucket}/my-dataset/${manifest ? key : ''}) and use that URI.`,
    );
  }
  if (!(await data.bucketExists())) {
    throw new DatasetError(
      `Dataset ${spec.uri}: bucket "${data.bucket}" does not exist. Check the bucket name in the URI.`,
    );
  }
  if (manifest) {
    return {
      kind: 'manifest',
      items: await loadManifest(data, key, spec, limits, onProgress, opts.sources),
      skipped: [],
    };
  }
  const prefix = key === '' || key.endsWith('/') ? key : `${key}/`;
  const listing = await data.list(prefix, (n) => {
    if (n > limits.maxDatasetObjects) throw tooManyObjects(spec, n, limits);
    onProgress({ objectsListed: n });
  });
  const format = detectFormat(listing, spec);
  const context = { limits, onProgress };
  if (format === 'webdataset') return loadWebDataset(data, prefix, listing, spec, context);
  if (format === 'parquet') return loadParquet(data, prefix, listing, spec, context);
  const folderItems = readImageFolder(listing, data.bucket, prefix, spec);
  return { kind: 'image-folder', ...folderItems };
}

function tooManyObjects(spec: DatasetSpec, n: number, limits: PlanningLimits): DatasetError {
  return new DatasetError(
    `Dataset ${spec.uri} has more than ${limits.maxDatasetObjects} objects (${n} listed so far); one run plans at most ${limits.maxDatasetObjects} ` +
      `(CLIPEVAL_MAX_DATASET_OBJECTS). Point dataset.uri at a smaller prefix or manifest, or split the dataset into several runs.`,
  );
}

/** The manifest at `key` of `data` (the dataset's bucket); its rows may name other buckets. */
async function loadManifest(
  data: ObjectStore,
  key: string,
  spec: DatasetSpec,
  limits: PlanningLimits,
  onProgress: (p: PlanningProgress) => void,
  sources?: SourcePolicy,
): Promise<DatasetItem[]> {
  const head = await data.head(key);
  if (!head) throw new DatasetError(`Manifest ${spec.uri} does not exist. Check the URI.`);
  // The manifest is read as one string: V8 caps its length (UTF-8 bytes >= characters).
  if (head.size > MAX_JSON_CHARS) {
    throw new DatasetError(
      `Manifest ${spec.uri} is ${head.size} bytes; a manifest is read as one string of at most ${MAX_JSON_CHARS} characters. Split the dataset into several manifests (one run each).`,
    );
  }
  const text = await data.getText(key);
  if (text === undefined)
    throw new DatasetError(`Manifest ${spec.uri} does not exist. Check the URI.`);
  const entries = parseManifest(text, { bucket: data.bucket, key }, spec);
  // Before any request for a row: a row outside the allowed sources is never even HEADed.
  const refused = new ProblemList();
  for (const e of entries) {
    const why = manifestObjectRefusal(sources, data.bucket, e.location);
    if (why) refused.add(`row ${e.row}: ${shown(why, 600)}`); // its key may hold controls
  }
  refused.throwIfAny(`Manifest ${spec.uri} refers to objects outside the allowed sources`);
  if (entries.length > limits.maxDatasetObjects) {
    throw new DatasetError(
      `Manifest ${spec.uri} has ${entries.length} rows; one run plans at most ${limits.maxDatasetObjects} objects ` +
        `(CLIPEVAL_MAX_DATASET_OBJECTS). Split the manifest into several runs.`,
    );
  }

  // One listing of the manifest's folder answers most lookups; HEAD the rest (other prefixes).
  // A folder with more objects than a dataset may have is not kept: every row is HEADed instead.
  const folder = key.slice(0, key.lastIndexOf('/') + 1);
  const known = new Map<string, ListedObject>();
  const listed = await listAtMost(data, folder, limits.maxDatasetObjects, (n) =>
    onProgress({ objectsListed: n, rowsChecked: 0, rows: entries.length }),
  );
  for (const o of listed ?? []) known.set(data.uri(o.key), o);
  const objectsListed = listed?.length ?? limits.maxDatasetObjects;
  const problems = new ProblemList();
  const items: DatasetItem[] = [];
  let checked = 0;
  const pending = entries.map((e) => async () => {
    const uri = `s3://${e.location.bucket}/${e.location.key}`;
    // A key the store refuses (too long for it, not a valid name) is this row's problem, never
    // an error that fails planning as if it were transient (isUnreadableKey).
    let unreadable: string | undefined;
    const obj =
      known.get(uri) ??
      (await data
        .inBucket(e.location.bucket)
        .head(e.location.key)
        .catch((err: unknown) => {
          if (!isUnreadableKey(err)) throw err;
          unreadable = err instanceof Error ? err.name : String(err);
          return undefined;
        }));
    if (++checked % PROGRESS_EVERY === 0 || checked === entries.length)
      onProgress({ objectsListed, rowsChecked: checked, rows: entries.length });
    if (!obj) {
      problems.add(
        `row ${e.row}: object ${shown(uri)} ${unreadable ? `cannot be read (${shown(unreadable)})` : 'does not exist'}`,
      );
      return;
    }
    items.push({
      uri,
      size: obj.size,
      etag: obj.etag,
      ...(e.className !== undefined ? { className: e.className } : {}),
      split: e.split,
      ...(e.captions ? { captions: e.captions } : {}),
    });
  });
  await forEachLimited(pending.length, PARALLEL_HEADS, (i) => pending[i]!());
  problems.throwIfAny(`Manifest ${spec.uri} refers to missing objects`);
  return items;
}

/** The objects under `prefix`, or undefined when there are more than `max` (listing stops there). */
async function listAtMost(
  data: ObjectStore,
  prefix: string,
  max: number,
  onPage: (listed: number) => void,
): Promise<ListedObject[] | undefined> {
  try {
    return await data.list(prefix, (n) => {
      if (n > max) throw new ListingTooLong();
      onPage(n);
    });
  } catch (err) {
    if (err instanceof ListingTooLong) return undefined;
    throw err;
  }
}

class ListingTooLong extends Error {}
