/**
 * @file Plans a WebDataset in CLIP_benchmark's layout (./layout.ts): every tar's headers are
 * indexed by byte range (./tar-index.ts), members grouped into samples (./samples.ts), and each
 * sample becomes an item naming its image's byte range in its tar, so extraction reads only the
 * images. Class names come from dataset.classes or classnames.txt, templates from
 * zeroshot_classification_templates.txt, captions from each sample's .txt. With no class names the
 * dataset is unlabelled: captioned images for zero-shot retrieval only.
 */
import type { DatasetSpec } from '../../config/run-spec';
import type { ListedObject, ObjectStore } from '../../storage/object-store';
import { forEachLimited } from '../../util/concurrency';
import { quoted, shown } from '../../util/text';
import type { ContainerLoadContext, LoadedDataset } from '../loaded';
import { DatasetError, type DatasetItem, type SkippedObject, type Split } from '../types';
import { readLayout } from './layout';
import { type Sample, groupSamples, wantsData } from './samples';
import { indexTar } from './tar-index';
import { readClassNames, readTemplates } from './text-files';

/** Tars indexed at once. */
const PARALLEL_TARS = 8;

interface IndexedTar {
  split: Split;
  tar: ListedObject;
  samples: Sample[];
  skipped: SkippedObject[];
}

export async function loadWebDataset(
  data: ObjectStore,
  prefix: string,
  listing: readonly ListedObject[],
  spec: DatasetSpec,
  context: ContainerLoadContext,
): Promise<LoadedDataset> {
  const layout = await readLayout(data, prefix, listing);
  const classes = spec.classes
    ? [...spec.classes]
    : layout.classnames
      ? await readClassNames(data, layout.classnames.key)
      : undefined;
  // Without class names the dataset is unlabelled: its samples are captioned images (retrieval).
  const templates = layout.templates ? await readTemplates(data, layout.templates.key) : undefined;

  const tars = layout.splits.flatMap((s) => s.tars.map((tar) => ({ split: s.split, tar })));
  const indexed = new Array<IndexedTar>(tars.length);
  let containersRead = 0;
  let samples = 0;
  const max = context.limits.maxDatasetObjects;
  context.onProgress({ objectsListed: listing.length, containersRead: 0, containers: tars.length });
  await forEachLimited(tars.length, PARALLEL_TARS, async (i) => {
    const { split, tar } = tars[i]!;
    const tarUri = data.uri(tar.key);
    const index = await indexTar(data, tar.key, {
      size: tar.size,
      etag: tar.etag,
      wantData: wantsData,
    });
    const grouped = groupSamples(index.entries, classes?.length, tarUri);
    if (index.truncated) {
      const cut = index.truncated;
      grouped.skipped.push({
        uri: cut.name === undefined ? tarUri : `${tarUri}#${cut.name}`,
        reason: cut.reason,
      });
    }
    indexed[i] = { split, tar, ...grouped };
    samples += grouped.samples.length;
    if (samples > max) {
      throw new DatasetError(
        `Dataset ${shown(spec.uri)} has more than ${max} samples (${samples} indexed so far); one run plans at most ${max} ` +
          `(CLIPEVAL_MAX_DATASET_OBJECTS). Point dataset.uri at a smaller dataset, or split its shards into several runs.`,
      );
    }
    context.onProgress({
      objectsListed: listing.length,
      containersRead: ++containersRead,
      containers: tars.length,
    });
  });

  // In shard order, so the first occurrence of a key is the one kept.
  const items: DatasetItem[] = [];
  const skipped: SkippedObject[] = [...layout.skipped];
  const firstIn = new Map<Split, Map<string, string>>();
  for (const { split, tar, samples: found, skipped: bad } of indexed) {
    const tarUri = data.uri(tar.key);
    skipped.push(...bad);
    const keys = firstIn.get(split) ?? new Map<string, string>();
    firstIn.set(split, keys);
    for (const s of found) {
      const uri = `${tarUri}#${s.image.name}`;
      const first = keys.get(s.key);
      if (first !== undefined) {
        skipped.push({ uri, reason: `duplicate key ${quoted(s.key)} (first in ${shown(first)})` });
        continue;
      }
      keys.set(s.key, tarUri);
      items.push({
        uri,
        size: s.image.size,
        etag: tar.etag,
        ...(classes && s.label !== undefined ? { className: classes[s.label]! } : {}),
        split,
        part: { kind: 'tar', object: tarUri, offset: s.image.offset, length: s.image.size },
        ...(s.captions ? { captions: s.captions } : {}),
      });
    }
  }
  if (items.length === 0) {
    const reasons = [...new Set(skipped.map((s) => s.reason))]
      .slice(0, 5)
      .map((r) => shown(r, 200));
    throw new DatasetError(
      `Dataset ${shown(spec.uri)}: no usable samples in ${tars.length} tar(s)` +
        (skipped.length > 0 ? `; ${skipped.length} skipped, e.g. ${reasons.join('; ')}` : '') +
        (classes
          ? `. A sample is an image member (${'.jpg, .png, .webp, ...'}) and a .cls member holding its label id, under one key.`
          : `. It has no classnames.txt, so it was read as a captions-only dataset: a sample is an image member and a .txt of captions (one per line) under one key. ` +
            `For classification, upload <root>/classnames.txt (line i names label i) or list the names in dataset.classes (in label-id order).`),
    );
  }
  return {
    kind: 'webdataset',
    items,
    skipped,
    ...(classes ? { classes } : {}),
    ...(templates ? { templates } : {}),
  };
}
