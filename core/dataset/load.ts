import type { DatasetSpec } from '../config/run-spec';
import type { ListedObject, ObjectStore } from '../storage/object-store';
import { forEachLimited } from '../util/concurrency';
import { readImageFolder } from './image-folder';
import { manifestFormat, parseManifest } from './manifest';
import type { Plan } from './plan';
import { DatasetError, type DatasetItem, ProblemList, type SkippedObject } from './types';

export interface LoadedDataset {
  kind: Plan['dataset']['kind'];
  layout?: Plan['dataset']['layout'];
  items: DatasetItem[];
  skipped: SkippedObject[];
}

/** Reads a dataset's listing (ImageFolder) or manifest from S3 and returns its labelled items. */
export async function loadDataset(
  store: ObjectStore,
  spec: DatasetSpec,
  onProgress: (objectsSeen: number) => void = () => {},
): Promise<LoadedDataset> {
  const { store: data, key } = store.at(spec.uri);
  if (!(await data.bucketExists())) {
    throw new DatasetError(
      `Dataset ${spec.uri}: bucket "${data.bucket}" does not exist. Check the bucket name in the URI.`,
    );
  }
  if (manifestFormat(key)) {
    return {
      kind: 'manifest',
      items: await loadManifest(data, key, spec, onProgress),
      skipped: [],
    };
  }
  const prefix = key === '' || key.endsWith('/') ? key : `${key}/`;
  const listing = await data.list(prefix, onProgress);
  const folder = readImageFolder(listing, data.bucket, prefix, spec);
  return { kind: 'image-folder', ...folder };
}

/** The manifest at `key` of `data` (the dataset's bucket); its rows may name other buckets. */
async function loadManifest(
  data: ObjectStore,
  key: string,
  spec: DatasetSpec,
  onProgress: (n: number) => void,
): Promise<DatasetItem[]> {
  const text = await data.getText(key);
  if (text === undefined)
    throw new DatasetError(`Manifest ${spec.uri} does not exist. Check the URI.`);
  const entries = parseManifest(text, { bucket: data.bucket, key }, spec);

  // One listing of the manifest's folder answers most lookups; HEAD the rest (other prefixes).
  const folder = key.slice(0, key.lastIndexOf('/') + 1);
  const known = new Map<string, ListedObject>();
  for (const o of await data.list(folder, onProgress)) known.set(data.uri(o.key), o);
  const problems = new ProblemList();
  const items: DatasetItem[] = [];
  const pending = entries.map((e) => async () => {
    const uri = `s3://${e.location.bucket}/${e.location.key}`;
    const obj = known.get(uri) ?? (await data.inBucket(e.location.bucket).head(e.location.key));
    if (!obj) {
      problems.add(`row ${e.row}: object ${uri} does not exist`);
      return;
    }
    items.push({ uri, size: obj.size, etag: obj.etag, className: e.className, split: e.split });
  });
  await forEachLimited(pending.length, 16, (i) => pending[i]!());
  problems.throwIfAny(`Manifest ${spec.uri} refers to missing objects`);
  return items;
}
