/**
 * @file `clipeval dataset export-wds`: a planned dataset written as CLIP_benchmark-style
 * WebDataset (classnames.txt, zeroshot_classification_templates.txt, <split>/nshards.txt,
 * <split>/0.tar ... N-1.tar, samples `s%07d.<ext>` + `s%07d.cls`), one PutObject per tar.
 *
 * Idempotent: the output is a pure function of the plan, the templates and the limits (samples
 * numbered in plan order, tars byte-identical), so a re-run rewrites the same objects. A marker
 * (clipeval-export.json) written first records what the prefix holds, so a re-run after a crash
 * continues, while a prefix holding anything else is refused unless `overwrite` is set.
 */
import { createHash } from 'node:crypto';
import { webDatasetKeys as wds } from '../storage/keys';
import type { ObjectStore } from '../storage/object-store';
import { mapOrdered } from '../util/concurrency';
import { shown, shownList } from '../util/text';
import type { Plan, PlanItem } from './plan';
import { type ImageBytesReader, imageBytesReader, imageReadFailure } from './read-image-bytes';
import { DatasetError, SPLITS, type Split } from './types';
import { TAR_END_BYTES, type TarMember, packTar, sampleExtension, tarMemberBytes } from './wds-tar';

export interface ExportWdsOptions {
  /** Samples per tar at most (CLIP_benchmark's converter: 10,000). */
  maxSamplesPerTar: number;
  /** Bytes per tar at most; a single sample larger than that gets a tar of its own. */
  maxTarBytes: number;
  /** Images read at once (default 16). */
  concurrency?: number;
  /** The largest image read (CLIPEVAL_MAX_IMAGE_BYTES); larger ones are counted as too-large. */
  maxImageBytes?: number;
  /** Write into a prefix that holds other objects (stale shards of this layout are deleted). */
  overwrite?: boolean;
  /** After each tar is written. */
  onTar?: (t: { split: Split; index: number; samples: number; bytes: number }) => void;
}

export interface ExportWdsResult {
  out: string;
  splits: Partial<Record<Split, { tars: number; samples: number; bytes: number }>>;
  samples: number;
  /** Bytes written in tars. */
  bytes: number;
  failed: { count: number; byReason: Record<string, number>; examples: FailedSample[] };
  /** Objects of an earlier export this one replaced and no longer needs (deleted). */
  removed: string[];
}

export interface FailedSample {
  uri: string;
  reason: string;
}

/** Items one image reader is opened for: a container reader plans its ranged reads over them. */
const READER_GROUP = 1024;
const FAILED_EXAMPLES = 20;

/**
 * Writes `plan`'s items, split by split, under `out` (an s3:// prefix). `templates` are the
 * zero-shot templates the run spec resolves to. Images that cannot be read (gone, changed since
 * planning, too large, unreadable in their container, not an image format clipeval decodes) are
 * counted and left out; any other error (network, throttling) fails the export, which can be
 * re-run.
 */
export async function exportWebDataset(
  store: ObjectStore,
  input: { plan: Plan; templates: readonly string[]; out: string },
  opts: ExportWdsOptions,
): Promise<ExportWdsResult> {
  const { plan } = input;
  const { store: target, prefix } = outputPrefix(store, input.out, plan.dataset.uri);
  const classNames = lines('class name', plan.classNames);
  const templates = lines('template', input.templates);
  const identity = sha256(
    JSON.stringify([
      plan.dataset.fingerprint,
      classNames,
      templates,
      opts.maxSamplesPerTar,
      opts.maxTarBytes,
    ]),
  );
  const existing = await target.list(prefix);
  await claimPrefix(target, prefix, existing, identity, plan, !!opts.overwrite);
  const written = new Set<string>([wds.exportMarker, wds.classNames, wds.templates]);
  await target.putBytes(prefix + wds.classNames, classNames, 'text/plain; charset=utf-8');
  await target.putBytes(prefix + wds.templates, templates, 'text/plain; charset=utf-8');

  const result: ExportWdsResult = {
    out: target.uri(prefix),
    splits: {},
    samples: 0,
    bytes: 0,
    failed: { count: 0, byReason: {}, examples: [] },
    removed: [],
  };
  const items = plan.shards.flatMap((s) => s.items);
  for (const split of SPLITS) {
    const ofSplit = items.filter((i) => i.split === split);
    if (ofSplit.length === 0) continue;
    const done = await exportSplit(store, target, prefix, split, ofSplit, opts, result);
    for (const key of done) written.add(key);
  }
  for (const o of existing) {
    const rel = o.key.slice(prefix.length);
    const ours = rel === wds.classNames || rel === wds.templates || wds.isSplitFile(rel);
    if (ours && !written.has(rel)) {
      await target.delete(o.key);
      result.removed.push(target.uri(o.key));
    }
  }
  await target.putJson(prefix + wds.exportMarker, marker(plan, identity, opts, result));
  return result;
}

/** One split's tars and nshards.txt; returns the keys written (relative to the prefix). */
async function exportSplit(
  source: ObjectStore,
  target: ObjectStore,
  prefix: string,
  split: Split,
  items: readonly PlanItem[],
  opts: ExportWdsOptions,
  result: ExportWdsResult,
): Promise<string[]> {
  const stats = { tars: 0, samples: 0, bytes: 0 };
  const written: string[] = [];
  let members: TarMember[] = [];
  let tarBytes = TAR_END_BYTES;
  let inTar = 0;
  const flush = async () => {
    const bytes = await packTar(members);
    const key = wds.shard(split, stats.tars);
    await target.putBytes(prefix + key, bytes, 'application/x-tar');
    opts.onTar?.({ split, index: stats.tars, samples: inTar, bytes: bytes.length });
    written.push(key);
    stats.tars++;
    stats.bytes += bytes.length;
    members = [];
    tarBytes = TAR_END_BYTES;
    inTar = 0;
  };
  const read = { ...(opts.maxImageBytes !== undefined ? { maxBytes: opts.maxImageBytes } : {}) };
  const reads = mapOrdered(withReaders(source, items), opts.concurrency ?? 16, (r) =>
    readSample(r.item, () => r.read(r.item, read)),
  );
  for await (const sample of reads) {
    if ('failure' in sample) {
      countFailure(result, sample.item.uri, sample.failure);
      continue;
    }
    const key = wds.sampleKey(stats.samples);
    const cls = new TextEncoder().encode(String(sample.item.label)); // webdataset: str(int), no newline
    const size = tarMemberBytes(sample.bytes.length) + tarMemberBytes(cls.length);
    const full = inTar >= opts.maxSamplesPerTar || tarBytes + size > opts.maxTarBytes;
    if (inTar > 0 && full) await flush();
    members.push(
      { name: `${key}.${sample.ext}`, data: sample.bytes },
      { name: `${key}.cls`, data: cls },
    );
    tarBytes += size;
    inTar++;
    stats.samples++;
  }
  if (inTar > 0) await flush();
  if (stats.tars > 0) {
    // CLIP_benchmark's converter writes the count with a newline (print(num_shards, end="\n")).
    await target.putBytes(prefix + wds.nshards(split), `${stats.tars}\n`, 'text/plain');
    written.push(wds.nshards(split));
  }
  result.splits[split] = stats;
  result.samples += stats.samples;
  result.bytes += stats.bytes;
  return written;
}

/** The items, each with a reader opened for its group of READER_GROUP (lazily, as pulled). */
function* withReaders(
  store: ObjectStore,
  items: readonly PlanItem[],
): Generator<{ item: PlanItem; read: ImageBytesReader }> {
  for (let at = 0; at < items.length; at += READER_GROUP) {
    const group = items.slice(at, at + READER_GROUP);
    const read = imageBytesReader(store, group);
    for (const item of group) yield { item, read };
  }
}

type Sample =
  | { item: PlanItem; bytes: Uint8Array; ext: string }
  | { item: PlanItem; failure: { reason: string; message: string } };

async function readSample(item: PlanItem, read: () => Promise<Uint8Array>): Promise<Sample> {
  let bytes: Uint8Array;
  try {
    bytes = await read();
  } catch (err) {
    const failure = imageReadFailure(item, err);
    if (!failure) throw err;
    return { item, failure };
  }
  const ext = sampleExtension(item, bytes);
  if (ext === undefined)
    return {
      item,
      failure: {
        reason: 'not-an-image',
        message:
          'not-an-image: neither its name nor its first bytes are an image format clipeval decodes',
      },
    };
  return { item, bytes, ext };
}

function countFailure(
  result: ExportWdsResult,
  uri: string,
  { reason, message }: { reason: string; message: string },
): void {
  const f = result.failed;
  f.count++;
  f.byReason[reason] = (f.byReason[reason] ?? 0) + 1;
  if (f.examples.length < FAILED_EXAMPLES) f.examples.push({ uri, reason: message });
}

/**
 * The output's store and prefix (ending in `/`). Never the bucket root, and never overlapping the
 * dataset's own prefix: the export would then become part of the dataset it was made from.
 */
function outputPrefix(
  store: ObjectStore,
  out: string,
  datasetUri: string,
): { store: ObjectStore; prefix: string } {
  const { store: target, key } = store.at(out);
  const prefix = key.replace(/^\/+|\/+$/g, '');
  if (prefix === '')
    throw new DatasetError(
      `--out ${out} is a bucket root: give a prefix, e.g. s3://${target.bucket}/webdataset/my-dataset/`,
    );
  const ds = store.at(datasetUri);
  const dsFolder = /\.(jsonl|csv)$/i.test(ds.key)
    ? ds.key.slice(0, ds.key.lastIndexOf('/') + 1)
    : `${ds.key.replace(/\/+$/, '')}/`;
  const outFolder = `${prefix}/`;
  if (
    ds.store.bucket === target.bucket &&
    (outFolder.startsWith(dsFolder) || dsFolder.startsWith(outFolder))
  )
    throw new DatasetError(
      `--out ${out} overlaps the dataset ${datasetUri}: the export would be read back as part of the dataset. Write it under another prefix.`,
    );
  return { store: target, prefix: outFolder };
}

/**
 * Claims the prefix for this export: an empty prefix, or one whose marker names this same export
 * (the same dataset fingerprint, names, templates and limits: a re-run), or any prefix with
 * `overwrite`. Writes the marker before any shard, so a re-run after a crash is recognised.
 */
async function claimPrefix(
  target: ObjectStore,
  prefix: string,
  existing: readonly { key: string }[],
  identity: string,
  plan: Plan,
  overwrite: boolean,
): Promise<void> {
  if (existing.length > 0 && !overwrite) {
    const previous = await target.getJson<{ identity?: string; dataset?: string }>(
      prefix + wds.exportMarker,
    );
    if (previous?.identity !== identity) {
      const what = previous
        ? `an export of ${shown(String(previous.dataset))} with other contents or settings`
        : `${existing.length} object(s) (${shownList(existing.slice(0, 3).map((o) => o.key))}) that are not a clipeval export`;
      throw new DatasetError(
        `${target.uri(prefix)} already holds ${what}. Choose an empty prefix, or pass --overwrite to replace it (shards of this layout that the new export does not write are deleted; other objects are kept).`,
      );
    }
  }
  await target.putJson(prefix + wds.exportMarker, marker(plan, identity));
}

function marker(plan: Plan, identity: string, opts?: ExportWdsOptions, result?: ExportWdsResult) {
  return {
    format: 'clipeval webdataset export',
    version: 1,
    dataset: plan.dataset.uri,
    fingerprint: plan.dataset.fingerprint,
    identity,
    complete: result !== undefined,
    ...(opts ? { maxSamplesPerTar: opts.maxSamplesPerTar, maxTarBytes: opts.maxTarBytes } : {}),
    ...(result
      ? { samples: result.samples, bySplit: result.splits, failed: result.failed.count }
      : {}),
  };
}

/** One entry per line, as CLIP_benchmark's converter prints them (a newline after each). */
function lines(what: 'class name' | 'template', entries: readonly string[]): string {
  const broken = entries.find((e) => /[\r\n]/.test(e));
  if (broken !== undefined) {
    const fix =
      what === 'class name'
        ? 'Give the class a display name without one (classNames in the run spec).'
        : 'Choose templates without line breaks (zeroShot.templates in the run spec).';
    throw new DatasetError(
      `The ${what} ${shown(broken)} holds a line break, which a one-per-line WebDataset file cannot hold. ${fix}`,
    );
  }
  return entries.map((e) => `${e}\n`).join('');
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
