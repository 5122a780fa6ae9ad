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
import { shown } from '../util/text';
import { claimPrefix, outputPrefix } from './export-target';
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
  const { store: target, prefix } = outputPrefix(store, input.out, plan.dataset);
  const classNames = lines('class name', plan.classNames);
  const templates = lines('template', input.templates);
  const settings = { maxSamplesPerTar: opts.maxSamplesPerTar, maxTarBytes: opts.maxTarBytes };
  const identity = sha256(
    JSON.stringify([plan.dataset.fingerprint, classNames, templates, settings]),
  );
  const claim = await claimPrefix(target, prefix, { plan, identity, settings }, !!opts.overwrite);
  await target.putBytes(prefix + wds.classNames, classNames, 'text/plain; charset=utf-8');
  await target.putBytes(prefix + wds.templates, templates, 'text/plain; charset=utf-8');
  const written = [wds.classNames, wds.templates];

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
    written.push(...(await exportSplit(store, target, prefix, split, ofSplit, opts, result)));
  }
  result.removed = await claim.finish(written, {
    samples: result.samples,
    bySplit: result.splits,
    failed: result.failed.count,
  });
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
