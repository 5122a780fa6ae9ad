import type { S3Client } from '@aws-sdk/client-s3';
import type { DatasetSpec } from '../config/run-spec';
import {
  bucketExists,
  getText,
  headObject,
  isNotFound,
  type ListedObject,
  listAll,
} from '../storage/objects';
import { parseS3Uri } from '../storage/s3-uri';
import { readImageFolder } from './image-folder';
import { manifestFormat, parseManifest } from './manifest';
import { DatasetError, type DatasetItem, ProblemList, type SkippedObject } from './types';
import type { Plan } from './plan';

export interface LoadedDataset {
  kind: Plan['dataset']['kind'];
  layout?: Plan['dataset']['layout'];
  items: DatasetItem[];
  skipped: SkippedObject[];
}

/** Reads a dataset's listing (ImageFolder) or manifest from S3 and returns its labelled items. */
export async function loadDataset(
  s3: S3Client,
  spec: DatasetSpec,
  onProgress: (objectsSeen: number) => void = () => {},
): Promise<LoadedDataset> {
  const loc = parseS3Uri(spec.uri);
  if (!(await bucketExists(s3, loc.bucket))) {
    throw new DatasetError(
      `Dataset ${spec.uri}: bucket "${loc.bucket}" does not exist. Check the bucket name in the URI.`,
    );
  }
  if (manifestFormat(loc.key)) {
    return { kind: 'manifest', items: await loadManifest(s3, spec, onProgress), skipped: [] };
  }
  const prefix = loc.key === '' || loc.key.endsWith('/') ? loc.key : `${loc.key}/`;
  const listing = await listAll(s3, loc.bucket, prefix, onProgress);
  const folder = readImageFolder(listing, loc.bucket, prefix, spec);
  return { kind: 'image-folder', ...folder };
}

async function loadManifest(
  s3: S3Client,
  spec: DatasetSpec,
  onProgress: (n: number) => void,
): Promise<DatasetItem[]> {
  const loc = parseS3Uri(spec.uri);
  let text: string;
  try {
    text = await getText(s3, loc.bucket, loc.key);
  } catch (err) {
    if (isNotFound(err))
      throw new DatasetError(`Manifest ${spec.uri} does not exist. Check the URI.`);
    throw err;
  }
  const entries = parseManifest(text, loc, spec);

  // One listing of the manifest's folder answers most lookups; HEAD the rest (other prefixes).
  const folder = loc.key.slice(0, loc.key.lastIndexOf('/') + 1);
  const known = new Map<string, ListedObject>();
  for (const o of await listAll(s3, loc.bucket, folder, onProgress))
    known.set(`s3://${loc.bucket}/${o.key}`, o);
  const problems = new ProblemList();
  const items: DatasetItem[] = [];
  const pending = entries.map((e) => async () => {
    const uri = `s3://${e.location.bucket}/${e.location.key}`;
    let obj = known.get(uri);
    if (!obj) {
      try {
        obj = await headObject(s3, e.location.bucket, e.location.key);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        problems.add(`row ${e.row}: object ${uri} does not exist`);
        return;
      }
    }
    items.push({ uri, size: obj.size, etag: obj.etag, className: e.className, split: e.split });
  });
  await runBounded(pending, 16);
  problems.throwIfAny(`Manifest ${spec.uri} refers to missing objects`);
  return items;
}

/** Runs async tasks with at most `limit` in flight. */
async function runBounded(tasks: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, tasks.length) }, async () => {
    while (next < tasks.length) await tasks[next++]!();
  });
  await Promise.all(lanes);
}
