/**
 * @file Where a WebDataset export may write, and what it may replace there. The prefix is never
 * a bucket root nor inside the dataset it exports; a marker (clipeval-export.json) written before
 * any shard records which export the prefix holds, so a re-run of the same export (after a crash,
 * or to check) proceeds while a prefix holding anything else is refused unless overwritten.
 */
import { webDatasetKeys as wds } from '../storage/keys';
import type { ObjectStore } from '../storage/object-store';
import { shown, shownList } from '../util/text';
import type { Plan } from './plan';
import { DatasetError, SPLITS } from './types';

/**
 * The output's store and prefix (ending in `/`). Never the bucket root, and never overlapping a
 * prefix dataset's own prefix: the export would become part of the dataset it was made from (a
 * manifest's dataset is its rows, so a manifest's folder may hold an export).
 */
export function outputPrefix(
  store: ObjectStore,
  out: string,
  dataset: Plan['dataset'],
): { store: ObjectStore; prefix: string } {
  const { store: target, key } = store.at(out);
  const folder = key.replace(/^\/+|\/+$/g, '');
  if (folder === '')
    throw new DatasetError(
      `--out ${out} is a bucket root: give a prefix, e.g. s3://${target.bucket}/webdataset/my-dataset/`,
    );
  const prefix = `${folder}/`;
  const ds = store.at(dataset.uri);
  const dsPrefix = `${ds.key.replace(/^\/+|\/+$/g, '')}/`;
  const overlaps = prefix.startsWith(dsPrefix) || dsPrefix.startsWith(prefix);
  if (dataset.kind !== 'manifest' && ds.store.bucket === target.bucket && overlaps)
    throw new DatasetError(
      `--out ${out} overlaps the dataset ${dataset.uri}: the export would be read back as part of the dataset. Write it under another prefix.`,
    );
  return { store: target, prefix };
}

/** What makes two exports the same: the dataset (fingerprint), names, templates and limits. */
export interface ExportIdentity {
  plan: Plan;
  identity: string;
  settings: { maxSamplesPerTar: number; maxTarBytes: number };
}

/**
 * Claims `prefix` for this export: an empty prefix, one whose marker names this same export, or
 * any prefix with `overwrite`; the marker is written before any shard, so a re-run after a crash
 * is recognised. `finish` deletes what an earlier export left that this one did not write (shard
 * files of the train/val/test folders, the two text files; never other objects) and marks the
 * export complete, with its counts; it returns the URIs it deleted.
 */
export async function claimPrefix(
  target: ObjectStore,
  prefix: string,
  id: ExportIdentity,
  overwrite: boolean,
): Promise<{ finish: (written: readonly string[], counts: object) => Promise<string[]> }> {
  const existing = await target.list(prefix);
  if (existing.length > 0 && !overwrite) {
    const previous = await target.getJson<{ identity?: string; dataset?: string }>(
      prefix + wds.exportMarker,
    );
    if (previous?.identity !== id.identity) {
      const what = previous
        ? `an export of ${shown(String(previous.dataset))} with other contents or settings`
        : `${existing.length} object(s) (${shownList(existing.slice(0, 3).map((o) => o.key))}) that are not a clipeval export`;
      throw new DatasetError(
        `${target.uri(prefix)} already holds ${what}. Choose an empty prefix, or pass --overwrite to replace it (shards of this layout that the new export does not write are deleted; other objects are kept).`,
      );
    }
  }
  await target.putJson(prefix + wds.exportMarker, marker(id, undefined));
  return {
    finish: async (written, counts) => {
      const keep = new Set(written);
      const removed: string[] = [];
      for (const o of existing) {
        const rel = o.key.slice(prefix.length);
        if (isLayoutFile(rel) && !keep.has(rel)) {
          await target.delete(o.key);
          removed.push(target.uri(o.key));
        }
      }
      await target.putJson(prefix + wds.exportMarker, marker(id, counts));
      return removed;
    },
  };
}

/** A file an export writes (other than its marker), by its key relative to the prefix. */
function isLayoutFile(rel: string): boolean {
  if (rel === wds.classNames || rel === wds.templates) return true;
  const split = rel.slice(0, rel.indexOf('/'));
  return (SPLITS as readonly string[]).includes(split) && wds.isSplitFile(rel);
}

function marker(id: ExportIdentity, counts: object | undefined) {
  return {
    format: 'clipeval webdataset export',
    version: 1,
    dataset: id.plan.dataset.uri,
    fingerprint: id.plan.dataset.fingerprint,
    identity: id.identity,
    ...id.settings,
    complete: counts !== undefined,
    ...counts,
  };
}
